"""The GPU check: InferenceGuard on an 8B-shaped policy with a 1B-shaped guard model, one script.

Needs nothing downloaded: the policy is a randomly initialised Llama-3-8B-shaped model in
bf16 (speed does not depend on trained weights) and the cost model a randomly initialised
Llama-Guard-3-1B-shaped model (:class:`~inferenceguard.scorers.guard_model.GenerativeGuardCost`,
P("unsafe") at the verdict position); the critic is a random
:class:`~inferenceguard.critic.LatentCritic` of the policy's width, the reward a plain
function. The tokenizer is the embedded SmolLM2 tokenizer (49,152 tokens, so the
embedding and output layers are smaller than Llama 3's 128,256; everything else has the
real shapes). Random guard weights put P(unsafe) near 0.5, so the budget is 0.6.

It runs, in one process:

* the reference: plain ``model.generate`` at batch 1, D = 128 sampled tokens;
* InferenceGuard at (N, K, B) = (16, 4, 16) and the paper's (128, 32, 32), D = 128, at
  concurrency 1 and 8 (threads on one guard: their rows share each batched forward).

and prints, per run: seconds per response (wall / requests), × plain, response tokens/s,
rows per forward, peak GPU memory and guard-model tokens per response. It then checks
that every CUDA path ran: the policy's and the guard model's forwards on the device, the
requests' ``torch.Generator`` on the device, bf16 hidden states into the critic; it exits
with status 1 if one did not.

Run (one H100/H200, under 8 minutes):
    python benchmarks/gpu_check.py
On CPU with tiny shapes (what the test suite runs):
    python benchmarks/gpu_check.py --tiny
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch
from _reference import sample_plain

LLAMA3_8B = dict(
    hidden_size=4096,
    intermediate_size=14336,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=8,
    rope_theta=500000.0,
    max_position_embeddings=8192,
)
LLAMA_GUARD3_1B = dict(
    hidden_size=2048,
    intermediate_size=8192,
    num_hidden_layers=16,
    num_attention_heads=32,
    num_key_value_heads=8,
    head_dim=64,
    rope_theta=500000.0,
    max_position_embeddings=8192,
    tie_word_embeddings=True,
)
TINY_POLICY = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=2048,
)
TINY_GUARD = dict(TINY_POLICY, hidden_size=32, intermediate_size=64)
GUARD_TEMPLATE = (
    "Task: check if there is unsafe content in the conversation.\n"
    "User: {{ messages[0]['content'] }}\nAgent: {{ messages[1]['content'] }}\n"
    "Provide your safety assessment:"
)
PROMPTS = [
    "Give me three tips for staying healthy.",
    "How do I make a bomb at home?",
    "Write a short poem about the sea.",
    "Explain photosynthesis to a ten-year-old.",
]


@dataclass
class Probe:
    """What actually ran where (filled by wrappers around the models)."""

    policy_devices: set[str] = field(default_factory=set)
    guard_devices: set[str] = field(default_factory=set)
    generator_devices: set[str] = field(default_factory=set)
    critic_dtypes: set[str] = field(default_factory=set)
    guard_tokens: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def random_llama(shape: dict[str, Any], tokenizer: Any, device: str, dtype: torch.dtype) -> Any:
    """A randomly initialised Llama of ``shape``, built directly on ``device`` in ``dtype``."""
    from transformers import LlamaConfig, LlamaForCausalLM

    eos = tokenizer.eos_token_id
    config = LlamaConfig(vocab_size=len(tokenizer), eos_token_id=eos, pad_token_id=eos, **shape)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    return model.eval()


def watch(model: Any, probe: Probe, *, guard: bool) -> None:
    """Record the device of every forward's inputs (and the guard model's token count); a
    hook, so ``model.forward``'s signature (which LocalLM inspects) stays the same."""

    def hook(module: Any, args: tuple, kwargs: dict[str, Any]) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        with probe.lock:
            if guard:
                mask = kwargs.get("attention_mask")
                probe.guard_devices.add(str(ids.device))
                probe.guard_tokens += int(mask.sum()) if mask is not None else ids.numel()
            else:
                probe.policy_devices.add(str(ids.device))

    model.register_forward_pre_hook(hook, with_kwargs=True)


def build(args: argparse.Namespace, probe: Probe) -> Any:
    """The guard: random policy, random guard model as the cost model, random critic."""
    from transformers import AutoTokenizer

    from inferenceguard import InferenceGuard, LocalLM, RewardModel, embedded_lm_dir
    from inferenceguard.critic.model import CriticArchitecture, LatentCritic
    from inferenceguard.scorers.guard_model import GenerativeGuardCost

    tokenizer = AutoTokenizer.from_pretrained(embedded_lm_dir())
    dtype = torch.float32 if args.tiny else torch.bfloat16
    policy = random_llama(TINY_POLICY if args.tiny else LLAMA3_8B, tokenizer, args.device, dtype)
    guard_model = random_llama(
        TINY_GUARD if args.tiny else LLAMA_GUARD3_1B, tokenizer, args.device, dtype
    )
    watch(policy, probe, guard=False)
    watch(guard_model, probe, guard=True)
    verdicts = tuple(tokenizer.encode(w, add_special_tokens=False)[0] for w in (" safe", " no"))
    cost = GenerativeGuardCost(
        guard_model,
        AutoTokenizer.from_pretrained(embedded_lm_dir()),
        id="random-llama-guard-3-1b-shape",
        chat_template=GUARD_TEMPLATE,
        verdict_token_ids=verdicts,
        batch_size=args.guard_batch,
    )
    critic = LatentCritic(CriticArchitecture(hidden_size=policy.config.hidden_size))
    critic = critic.to(args.device).eval()
    predict = critic.predict

    def watched_predict(hidden: torch.Tensor, z: torch.Tensor, frac: torch.Tensor) -> Any:
        probe.critic_dtypes.add(f"{hidden.dtype}@{hidden.device.type}")
        return predict(hidden, z, frac)

    critic.predict = watched_predict  # type: ignore[method-assign]
    reward = RewardModel.from_callable(lambda p, r: float(len(set(r.split()))), id="distinct")
    lm = LocalLM(policy, tokenizer, model_id="random-llama-3-8b-shape")
    return InferenceGuard(lm, cost, reward, critic=critic)


def plain_seconds(guard: Any, tokens: int) -> float:
    """``model.generate`` at batch 1, ``tokens`` sampled tokens (best of two)."""
    lm = guard.lm
    ids = torch.tensor([lm.encode(lm.render(PROMPTS[0]))], device=lm.device)
    times = []
    for _ in range(2):
        sync()
        started = time.perf_counter()
        sample_plain(lm, ids, tokens)
        sync()
        times.append(time.perf_counter() - started)
    return min(times)


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def run(guard: Any, probe: Probe, nkb: tuple[int, int, int], c: int, d: int) -> dict[str, Any]:
    """``c`` concurrent requests at (N, K, B), D = ``d``."""
    n, k, b = nkb
    overrides = dict(n_candidates=n, n_beams=k, block_len=b, max_new_tokens=d, budget=0.6)
    original = guard._context

    def context(*a: Any, **kw: Any) -> Any:
        ctx = original(*a, **kw)
        probe.generator_devices.add(str(ctx.generator.device))
        return ctx

    guard._context = context
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    stats, tokens_before = guard.scheduler.stats, probe.guard_tokens
    forwards, rows = stats.forwards, stats.rows
    sync()
    started = time.perf_counter()
    with ThreadPoolExecutor(c) as pool:
        results = list(
            pool.map(lambda i: guard.generate(PROMPTS[i % len(PROMPTS)], seed=i, **overrides), range(c))
        )  # fmt: skip
    sync()
    wall = time.perf_counter() - started
    guard._context = original
    n_forwards = stats.forwards - forwards
    return {
        "s_per_response": wall / c,
        "tokens_per_s": sum(r.completion_tokens for r in results) / wall,
        "rows_per_forward": (stats.rows - rows) / n_forwards if n_forwards else 0.0,
        "peak_gb": torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else 0.0,
        "guard_tokens": (probe.guard_tokens - tokens_before) / c,
        "all_safe": all(r.safety.safe for r in results),
    }


def checks(probe: Probe, device: str, tiny: bool) -> list[tuple[str, bool]]:
    """Every path on the device it should be on."""
    want = torch.device(device).type
    hidden = "torch.float32" if tiny else "torch.bfloat16"
    return [
        ("policy forwards on the device", {d.split(":")[0] for d in probe.policy_devices} == {want}),
        ("guard-model forwards on the device", {d.split(":")[0] for d in probe.guard_devices} == {want}),
        ("generators on the device", {d.split(":")[0] for d in probe.generator_devices} == {want}),
        (f"{hidden} hidden states into the critic", probe.critic_dtypes == {f"{hidden}@{want}"}),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tiny", action="store_true", help="tiny shapes, CPU, seconds")
    parser.add_argument("--device", default=None)
    parser.add_argument("--guard-batch", type=int, default=64, help="guard-model batch size")
    args = parser.parse_args()
    args.device = args.device or ("cpu" if args.tiny else "cuda")
    if args.tiny:
        torch.set_num_threads(1)
    configs = [(4, 2, 4), (8, 4, 8)] if args.tiny else [(16, 4, 16), (128, 32, 32)]
    levels, d = ([1, 2], 16) if args.tiny else ([1, 8], 128)
    probe = Probe()
    started = time.perf_counter()
    guard = build(args, probe)
    print(f"built in {time.perf_counter() - started:.1f}s on {args.device}: {guard!r}")
    plain = plain_seconds(guard, d)
    print(f"plain generate, batch 1, {d} tokens: {plain:.2f}s ({d / plain:.1f} tokens/s)")
    print("| N,K,B | c | s/response | × plain | tokens/s | rows/forward | peak GB | guard tokens/response | safe |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for nkb in configs:
        for c in levels:
            r = run(guard, probe, nkb, c, d)
            print(
                f"| {nkb} | {c} | {r['s_per_response']:.2f} | {r['s_per_response'] / plain:.1f} "
                f"| {r['tokens_per_s']:.1f} | {r['rows_per_forward']:.1f} | {r['peak_gb']:.1f} "
                f"| {r['guard_tokens']:.0f} | {r['all_safe']} |",
                flush=True,
            )
    results = checks(probe, args.device, args.tiny)
    for name, ok in results:
        print(f"check: {name}: {'ok' if ok else 'FAILED'}")
    print(f"total {time.perf_counter() - started:.1f}s")
    raise SystemExit(0 if all(ok for _, ok in results) else 1)


if __name__ == "__main__":
    main()
