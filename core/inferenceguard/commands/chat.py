"""``inferenceguard chat``: ask the guarded model, one question or interactively."""

from __future__ import annotations

import argparse
import sys

__all__ = ["register"]

EPILOG = """examples:
  inferenceguard chat "What is the capital of France?"
  inferenceguard chat --n-candidates 8 --max-new-tokens 64      # interactive
  inferenceguard chat --model ./my-llama --cost-model ./my-guard "Hello"
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "chat",
        help="chat with a guarded model (streams verified-safe text)",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("prompt", nargs="?", help="one question; omit for an interactive session")
    p.add_argument("--model", default=None, help="hub id or folder (default: embedded SmolLM2)")
    p.add_argument(
        "--cost-model", default="default", help="cost model spec (default: shipped probe)"
    )
    p.add_argument("--reward-model", default="default", help="reward model spec")
    p.add_argument("--critic", default="default", help="critic folder, 'default' or 'none'")
    p.add_argument("--n-candidates", type=int, default=8)
    p.add_argument("--n-beams", type=int, default=2)
    p.add_argument("--block-len", type=int, default=16)
    p.add_argument("--max-new-tokens", type=int, default=96)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--device", default=None)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..config import GuardConfig
    from ..guard import build_guard

    config = GuardConfig(
        n_candidates=args.n_candidates,
        n_beams=args.n_beams,
        block_len=args.block_len,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        seed=args.seed,
    )
    guard = build_guard(
        model=args.model,
        cost_model=args.cost_model,
        reward_model=args.reward_model,
        critic=None if args.critic == "none" else args.critic,
        config=config,
        device=args.device,
    )
    history: list[dict[str, str]] = []
    prompts = [args.prompt] if args.prompt else _interactive()
    for prompt in prompts:
        history.append({"role": "user", "content": prompt})
        result = None
        for chunk in guard.stream(history if not args.prompt else prompt):
            sys.stdout.write(chunk.delta)
            sys.stdout.flush()
            result = chunk.result or result
        report = result.safety
        print(
            f"\n[finish={result.finish_reason} cost={report.cost:.3f} budget={report.budget:.3f} "
            f"safe={report.safe} {report.wall_time_s:.1f}s]"
        )
        history.append({"role": "assistant", "content": result.text})
    return 0


def _interactive():
    while True:
        try:
            line = input("\n> ").strip()
        except EOFError:
            return
        if line in {"exit", "quit"}:
            return
        if line:
            yield line
