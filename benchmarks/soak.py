"""Soak test: thousands of mixed requests from many threads against one shared guard.

Not part of the default test suite. Asserts that every answer and every streamed prefix is
within budget (re-checked with the cost function), that bad requests fail with typed
errors and leave the guard usable, and that memory stays flat.

Settings (flags):
    --requests 2000   total requests
    --threads 16      concurrent callers
    --seconds 900     stop early after this many seconds
    --no-batching     one request step at a time (default: cross-request batching on, the
                      threads' rows share each forward; checks every row is freed at the end)

Uses a tiny random Llama with the SmolLM2 tokenizer (fast), and a hash-based cost model
that flags a pseudo-random third of all texts, so the search has real work to do.
Run: .venv/bin/python benchmarks/soak.py --requests 2000 --threads 16
"""

from __future__ import annotations

import argparse
import hashlib
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import torch
from transformers import AutoTokenizer

from inferenceguard import (
    BatchingConfig,
    CostModel,
    GuardConfig,
    InferenceGuard,
    InferenceGuardError,
    RewardModel,
    embedded_lm_dir,
)
from inferenceguard.testing import tiny_random_lm

BUDGET = 0.5


def hashed_cost(prompt: str, response: str) -> float:
    return hashlib.sha256(response.encode()).digest()[0] / 255.0 * 0.75


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=900)
    parser.add_argument("--no-batching", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    lm = tiny_random_lm(AutoTokenizer.from_pretrained(embedded_lm_dir()))
    guard = InferenceGuard(
        lm,
        CostModel.from_callable(hashed_cost, threshold=BUDGET, id="hashed"),
        RewardModel.from_callable(lambda p, r: float(len(set(r))), id="distinct-chars"),
        config=GuardConfig(n_candidates=4, n_beams=2, block_len=4, max_new_tokens=16),
        batching=BatchingConfig(enabled=not args.no_batching),
    )
    strategies = ["inferenceguard", "beam", "best_of_n", "plain"]
    counts = {"ok": 0, "typed_errors": 0, "violations": 0, "closed_early": 0, "other_errors": 0}
    lock = threading.Lock()
    deadline = time.monotonic() + args.seconds
    samples: list[float] = []

    def one(i: int) -> None:
        if time.monotonic() > deadline:
            return
        rng = random.Random(i)
        kind = rng.random()
        try:
            if kind < 0.05:  # a bad request must fail with a typed error
                guard.generate([], seed=i)
                outcome = "other_errors"
            elif kind < 0.15:  # a client that goes away after the first chunk
                stream = guard.stream(f"Request {i}", seed=i, strategy=rng.choice(strategies))
                next(stream)
                stream.close()
                outcome = "closed_early"
            else:
                streamed = ""
                for chunk in guard.stream(f"Request {i}", seed=i, strategy=rng.choice(strategies)):
                    streamed += chunk.delta
                    if streamed and hashed_cost("", streamed) > BUDGET:
                        raise AssertionError(f"streamed over budget: {streamed!r}")
                    if chunk.result is not None and chunk.result.text != streamed:
                        raise AssertionError("final text differs from the stream")
                outcome = "ok"
        except InferenceGuardError:
            outcome = "typed_errors"
        except AssertionError:
            outcome = "violations"
        except Exception:
            outcome = "other_errors"
        with lock:
            counts[outcome] += 1
            if i % 100 == 0:
                samples.append(rss_mb())

    start = time.perf_counter()
    start_rss = rss_mb()
    with ThreadPoolExecutor(max_workers=args.threads) as pool:
        list(pool.map(one, range(args.requests)))
    elapsed = time.perf_counter() - start
    done = sum(counts.values())
    print(f"requests: {done} in {elapsed:.0f} s ({done / elapsed:.1f}/s), threads: {args.threads}")
    print(f"outcomes: {counts}")
    print(
        f"RSS MB: start {start_rss:.0f}, samples {[round(s) for s in samples[:3]]} ... "
        f"{[round(s) for s in samples[-3:]]}, peak {max([*samples, start_rss]):.0f}"
    )
    stats = guard.scheduler.stats
    print(
        f"batching: {not args.no_batching}, rows per forward {stats.rows_per_forward:.1f}, "
        f"left in flight {guard.scheduler.in_flight}"
    )
    if guard.scheduler.in_flight != (0, 0, 0):
        raise SystemExit("FAILED: requests still hold rows after the run")
    if counts["violations"] or counts["other_errors"]:
        raise SystemExit("FAILED: budget violations or untyped errors")
    print("PASSED: every answer and streamed prefix within budget")


if __name__ == "__main__":
    main()
