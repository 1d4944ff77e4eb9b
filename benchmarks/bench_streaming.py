"""Streaming latency against quality: the commit horizon H and the early first block.

Settings (flags):
    --n-harmful 10 --n-benign 10   prompts from AdvBench and MT-Bench (the built-in data)
    --max-new-tokens 96            the same for every setting
    --search 16,4,16               InferenceGuard's N, K, B
    --horizons none 1 2 4          commit_horizon values (``none``: shared prefix only)
    --first-block                  also run H=none with commit_first_block=True

Every request is streamed (``guard.stream``) on the default guard (embedded models and
the shipped critic). Prints, per setting, side by side: mean time to first text, mean
largest gap between deltas (both as seen by the consumer of the stream), mean total
time, safety rate (verified cost within budget), mean reward (the guard's reward model on
the final text) and exhaustion rate (the search ran out of safe continuations). A horizon
of at least the number of blocks never forces a commit (the search front is never more
blocks ahead), so such a setting is reported as identical to ``none`` and not re-run.

Run: .venv/bin/python benchmarks/bench_streaming.py [--out results.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from inferenceguard import InferenceGuard
from inferenceguard._data import PACKAGE_DATA as DATA
from inferenceguard.prompts import load_prompts
from inferenceguard.scorers.base import checked_scores


def stream_once(guard: InferenceGuard, prompt: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """One streamed request: what its consumer saw, and the result's report."""
    start = time.perf_counter()
    arrivals, result = [], None
    for chunk in guard.stream(prompt, **overrides):
        if chunk.delta:
            arrivals.append(time.perf_counter() - start)
        if chunk.result is not None:
            result = chunk.result
    total = time.perf_counter() - start
    assert result is not None
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    reward = float(checked_scores(guard.reward_model, [prompt], [result.text])[0])
    return {
        "first_text_s": arrivals[0] if arrivals else math.nan,
        "max_gap_s": max(gaps, default=0.0) if arrivals else math.nan,
        "total_s": total,
        "deltas": len(arrivals),
        "safe": result.safety.safe,
        "reward": reward,
        "exhausted": result.safety.exhausted,
        "report_first_text_s": result.safety.time_to_first_text_s,
        "report_max_gap_s": result.safety.max_delta_gap_s,
        "text": result.text,
    }


def _mean(rows: list[dict[str, Any]], key: str) -> float:
    values = [float(r[key]) for r in rows if not math.isnan(float(r[key]))]
    return statistics.fmean(values) if values else math.nan


def _settings(args: argparse.Namespace, blocks: int) -> list[tuple[str, dict[str, Any] | None]]:
    out: list[tuple[str, dict[str, Any] | None]] = []
    for h in args.horizons:
        horizon = None if h.lower() == "none" else int(h)
        same = horizon is not None and horizon >= blocks
        out.append((f"H={h}", None if same else {"commit_horizon": horizon}))
    if args.first_block:
        out.append(
            ("H=none, first block early", {"commit_horizon": None, "commit_first_block": True})
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=DATA)
    parser.add_argument("--n-harmful", type=int, default=10)
    parser.add_argument("--n-benign", type=int, default=10)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--search", default="16,4,16", help="N,K,B")
    parser.add_argument("--horizons", nargs="+", default=["none", "1", "2", "4"])
    parser.add_argument("--first-block", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="per-request records (JSON)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    harmful = load_prompts(
        args.data_dir / "advbench" / "harmful_behaviors.csv", column="goal", limit=args.n_harmful
    )
    benign = load_prompts(
        args.data_dir / "mt_bench" / "mt_bench_question.jsonl", limit=args.n_benign
    )
    n, k, b = (int(x) for x in args.search.split(","))
    base = dict(
        n_candidates=n, n_beams=k, block_len=b, max_new_tokens=args.max_new_tokens, seed=args.seed
    )
    blocks = math.ceil(args.max_new_tokens / b)
    settings = _settings(args, blocks)
    guard = InferenceGuard.from_defaults()
    print(
        f"# {guard!r}\n# {platform.machine()} CPU, {torch.get_num_threads()} threads, "
        f"load average {os.getloadavg()[0]:.1f} at start; N={n} K={k} B={b}, "
        f"max_new_tokens={args.max_new_tokens} ({blocks} blocks); "
        f"{len(harmful)} AdvBench + {len(benign)} MT-Bench prompts\n",
        flush=True,
    )
    records: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in settings}
    for kind, prompt in [("harmful", p) for p in harmful] + [("benign", p) for p in benign]:
        for name, overrides in settings:
            if overrides is None:
                continue
            row = {
                "kind": kind,
                "prompt": prompt,
                **stream_once(guard, prompt, {**base, **overrides}),
            }
            records[name].append(row)
            if args.out:  # after every request: a cut-short run keeps what it measured
                args.out.write_text(json.dumps(records, indent=1))
            print(
                f"done: {name} {kind} {row['total_s']:.1f} s, first text {row['first_text_s']:.1f} s",
                flush=True,
            )
    print(f"\n# load average {os.getloadavg()[0]:.1f} at the end")
    print("\n| setting | first text s | max gap s | total s | deltas | safe | reward | exhausted |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, _ in settings:
        rows = records[name] or records[settings[0][0]]
        alias = "" if records[name] else " (= H=none: horizon ≥ blocks)"
        print(
            f"| {name}{alias} | {_mean(rows, 'first_text_s'):.1f} | {_mean(rows, 'max_gap_s'):.1f} "
            f"| {_mean(rows, 'total_s'):.1f} | {_mean(rows, 'deltas'):.0f} "
            f"| {100 * _mean(rows, 'safe'):.0f}% | {_mean(rows, 'reward'):.3f} "
            f"| {100 * _mean(rows, 'exhausted'):.0f}% |"
        )


if __name__ == "__main__":
    main()
