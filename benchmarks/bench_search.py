"""Search cost and safety on the embedded defaults: InferenceGuard vs best-of-N vs plain.

Settings (flags):
    --n-harmful 10 --n-benign 10   prompts from AdvBench and MT-Bench (the built-in data)
    --max-new-tokens 48            the same for every strategy
    --configs 16,4,16 32,8,16      InferenceGuard (N, K, B); best-of-N runs at each N

Prints seconds per response, the ratio to plain decoding measured in the same run, and
the safety rate (verified cost within budget). Plain decoding is measured *unguarded*
(``generate_unverified``) so its unsafe answers count; the others are what users get.

Run: .venv/bin/python benchmarks/bench_search.py [--critic]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch

from inferenceguard import InferenceGuard
from inferenceguard._data import PACKAGE_DATA as DATA
from inferenceguard.prompts import load_prompts


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=DATA)
    parser.add_argument("--n-harmful", type=int, default=10)
    parser.add_argument("--n-benign", type=int, default=10)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--configs", nargs="+", default=["16,4,16", "32,8,16"])
    parser.add_argument("--critic", action="store_true", help="load the shipped critic")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1 is fastest for 135M on 2 cores)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    harmful = load_prompts(
        args.data_dir / "advbench" / "harmful_behaviors.csv", column="goal", limit=args.n_harmful
    )
    benign = load_prompts(
        args.data_dir / "mt_bench" / "mt_bench_question.jsonl", limit=args.n_benign
    )
    prompts = [("harmful", p) for p in harmful] + [("benign", p) for p in benign]
    guard = InferenceGuard.from_defaults(critic=args.critic)
    base = dict(max_new_tokens=args.max_new_tokens, temperature=1.0, seed=args.seed)
    runs: list[tuple[str, dict, bool]] = [
        ("plain", dict(strategy="plain", n_candidates=1, n_beams=1), False)
    ]
    for spec in args.configs:
        n, k, b = (int(x) for x in spec.split(","))
        runs.append(
            (
                f"InferenceGuard N={n} K={k} B={b}",
                dict(n_candidates=n, n_beams=k, block_len=b),
                True,
            )
        )
        runs.append(
            (f"best-of-N N={n}", dict(strategy="best_of_n", n_candidates=n, n_beams=1), True)
        )

    print(
        f"# {guard!r}\n# {platform.machine()} CPU, {torch.get_num_threads()} threads, "
        f"{len(harmful)} AdvBench + {len(benign)} MT-Bench prompts, max_new_tokens={args.max_new_tokens}\n"
    )
    rows = []
    plain_time = None
    for name, overrides, enforced in runs:
        seconds, safe = [], {"harmful": [], "benign": []}
        for kind, prompt in prompts:
            start = time.perf_counter()
            call = guard.generate if enforced else guard.generate_unverified
            result = call(prompt, **{**base, **overrides})
            seconds.append(time.perf_counter() - start)
            safe[kind].append(result.safety.safe)
        mean_s = statistics.mean(seconds)
        plain_time = plain_time or mean_s
        rows.append(
            (name, mean_s, mean_s / plain_time, _rate(safe["harmful"]), _rate(safe["benign"]))
        )
        print(f"done: {name} ({mean_s:.1f} s/response)", flush=True)
    print("\n| strategy | s/response | × plain | safety rate AdvBench | safety rate MT-Bench |")
    print("|---|---:|---:|---:|---:|")
    for name, s, ratio, h, b in rows:
        print(f"| {name} | {s:.1f} | {ratio:.1f} | {h} | {b} |")


def _rate(flags: list[bool]) -> str:
    return (
        f"{sum(flags)}/{len(flags)} ({100 * sum(flags) / max(len(flags), 1):.0f}%)"
        if flags
        else "-"
    )


if __name__ == "__main__":
    main()
