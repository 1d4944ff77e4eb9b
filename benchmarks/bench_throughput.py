"""In-process throughput of one shared guard under concurrent requests (cross-request batching).

For every search configuration and concurrency level, ``--requests`` requests (half benign,
half harmful prompts) are sent from ``c`` threads to one guard on the embedded defaults
(SmolLM2-135M, the shipped cost probe, MiniLM reward, the shipped critic). It prints
requests/s, latency p50/p99, rows per batched forward (from the guard's step scheduler)
and the speed-up over concurrency 1; then the single-request floor ratio: one guarded
request at N=16 K=4 B=16 against ``model.generate`` sampling the same N rows × D tokens
with no scoring. Every answer is checked to be within budget.

Settings (flags):
    --configs 4,2,8,32 16,4,16,32   N,K,B,max_new_tokens of each search configuration
    --concurrency 1,4,16            concurrency levels
    --requests 16                   requests per level (at least the concurrency)
    --floor-tokens 128              D of the floor ratio (0 skips it)
    --threads 1                     torch threads
    --no-critic                     skip the shipped critic

Full run (on a quiet 2-core machine; minutes):
    .venv/bin/python benchmarks/bench_throughput.py --threads 2 --requests 32
Short run (a loaded machine):
    .venv/bin/python benchmarks/bench_throughput.py --requests 16 --floor-tokens 64
Target: at concurrency 16, ≥ 3× the requests/s of concurrency 1; floor ratio ≤ 1.1×.
"""

from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch
from _reference import sample_plain
from load_server import PROMPTS


def percentile(xs: list[float], q: float) -> float:
    """Percentile ``q`` in [0, 100], linear between ranks."""
    xs = sorted(xs)
    pos = (len(xs) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def run_level(guard: Any, concurrency: int, requests: int, overrides: dict) -> dict[str, Any]:
    """``requests`` requests from ``concurrency`` threads; throughput and latency."""
    stats = guard.scheduler.stats
    forwards, rows = stats.forwards, stats.rows
    latencies: list[float] = []
    unsafe: list[int] = []

    def one(i: int) -> None:
        started = time.perf_counter()
        result = guard.generate(PROMPTS[i % len(PROMPTS)], seed=i, **overrides)
        latencies.append(time.perf_counter() - started)
        if not result.safety.safe:
            unsafe.append(i)

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(max(requests, concurrency))))
    wall = time.perf_counter() - started
    n_forwards = stats.forwards - forwards
    return {
        "c": concurrency,
        "requests_per_s": len(latencies) / wall,
        "p50_s": percentile(latencies, 50),
        "p99_s": percentile(latencies, 99),
        "rows_per_forward": (stats.rows - rows) / n_forwards if n_forwards else 0.0,
        "unsafe": len(unsafe),
    }


def floor_ratio(guard: Any, tokens: int) -> tuple[float, float, int]:
    """(guard s, generate s, answer tokens): one request N=16 K=4 B=16 vs plain sampling
    of the same 16 rows × ``tokens`` tokens."""
    overrides = {"n_candidates": 16, "n_beams": 4, "block_len": 16, "max_new_tokens": tokens}
    prompt = "Write a long story about a lighthouse keeper and the sea."
    lm = guard.lm
    ids = torch.tensor([lm.encode(lm.render(prompt))], device=lm.device).repeat(16, 1)
    guard_s, plain_s, answer = [], [], 0
    for seed in range(2):  # best of two, alternated
        started = time.perf_counter()
        answer = guard.generate(prompt, seed=seed, **overrides).completion_tokens
        guard_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        sample_plain(lm, ids, tokens)
        plain_s.append(time.perf_counter() - started)
    return min(guard_s), min(plain_s), answer


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--configs", nargs="+", default=["4,2,8,32", "16,4,16,32"])
    parser.add_argument("--concurrency", default="1,4,16")
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--floor-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-critic", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from inferenceguard import build_guard

    guard = build_guard(critic=None if args.no_critic else "default")
    levels = [int(c) for c in args.concurrency.split(",")]
    print(f"load: {os.getloadavg()}  torch threads: {args.threads}  guard: {guard!r}")
    print("| N,K,B,D | c | requests/s | × c=1 | p50 s | p99 s | rows/forward | unsafe |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for spec in args.configs:
        n, k, b, d = (int(x) for x in spec.split(","))
        overrides = {"n_candidates": n, "n_beams": k, "block_len": b, "max_new_tokens": d}
        guard.generate(PROMPTS[0], seed=0, **overrides)  # warm-up
        base = None
        for c in levels:
            r = run_level(guard, c, args.requests, overrides)
            base = base or r["requests_per_s"]
            print(
                f"| {spec} | {c} | {r['requests_per_s']:.3f} | {r['requests_per_s'] / base:.2f} "
                f"| {r['p50_s']:.2f} | {r['p99_s']:.2f} | {r['rows_per_forward']:.1f} "
                f"| {r['unsafe']} |",
                flush=True,
            )
    if args.floor_tokens:
        g, p, answer = floor_ratio(guard, args.floor_tokens)
        print(
            f"floor: guard N=16 K=4 B=16 {g:.2f}s ({answer} tokens) vs generate 16×"
            f"{args.floor_tokens} {p:.2f}s = {g / p:.2f}×"
        )
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
