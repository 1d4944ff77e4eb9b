"""Block-sampling throughput of LocalLM on the embedded default model.

Settings (edit here or pass flags):
    --candidates 1 16 64   rows decoded together (one batched forward per token)
    --block-len 16         tokens per block
    --blocks 4             blocks per measurement (after one warm-up block)

Prints tokens/s (all candidates together) and ms per batched forward.
Run: .venv/bin/python benchmarks/bench_block_sampling.py
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from inferenceguard import LocalLM, SamplerSettings


def measure(
    lm: LocalLM, prompt_ids: list[int], n: int, block_len: int, blocks: int
) -> tuple[float, float]:
    state = lm.prefill(prompt_ids)
    state.select(torch.zeros(n, dtype=torch.long))
    gen = torch.Generator(device=lm.device).manual_seed(0)
    sampler = SamplerSettings(temperature=1.0)
    lm.sample_block(state, block_len, sampler=sampler, generator=gen)  # warm-up
    start = time.perf_counter()
    forwards = 0
    for _ in range(blocks):
        forwards += lm.sample_block(state, block_len, sampler=sampler, generator=gen).forwards
    elapsed = time.perf_counter() - start
    return n * block_len * blocks / elapsed, 1000 * elapsed / max(forwards, 1)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--candidates", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--block-len", type=int, default=16)
    parser.add_argument("--blocks", type=int, default=4)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    lm = LocalLM.from_pretrained(device=args.device)
    prompt_ids = lm.encode(lm.render("Give me three tips for staying healthy."))
    print(
        f"# {lm.model_id} on {lm.device} ({platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads), prompt {len(prompt_ids)} tokens\n"
    )
    print("| candidates | tokens/s (all rows) | ms per batched forward |")
    print("|---:|---:|---:|")
    for n in args.candidates:
        tps, ms = measure(lm, prompt_ids, n, args.block_len, args.blocks)
        print(f"| {n} | {tps:.1f} | {ms:.1f} |")


if __name__ == "__main__":
    main()
