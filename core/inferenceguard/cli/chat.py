"""``inferenceguard chat``: ask the guarded model, one question or interactively."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator

from ..config import GuardConfig
from ._common import add_model_args, add_parser, guard_from_args

__all__ = ["register", "run"]

EPILOG = """examples:
  inferenceguard chat "What is the capital of France?"
  inferenceguard chat --n-candidates 8 --max-new-tokens 64      # interactive
  inferenceguard chat --model ./my-llama --cost-model ./my-guard "Hello"
"""

#: The guard's own sampling temperature, which the shipped critic was trained at: another
#: value would make every default chat start with a "critic trained with other settings"
#: warning.
DEFAULT_TEMPERATURE: float = GuardConfig.model_fields["temperature"].default


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``chat`` subcommand."""
    p = add_parser(
        subparsers,
        "chat",
        help="chat with a guarded model (streams verified-safe text)",
        description="Stream the guarded model's verified-safe answer to one question, or "
        "hold an interactive session (type 'exit' or Ctrl-D to leave).",
        epilog=EPILOG,
    )
    p.add_argument("prompt", nargs="?", help="one question; omit for an interactive session")
    search = p.add_argument_group("search")
    search.add_argument("--n-candidates", type=int, default=8, help="N: candidates per step")
    search.add_argument("--n-beams", type=int, default=2, help="K: beams kept per step")
    search.add_argument("--block-len", type=int, default=16, help="B: tokens per block")
    search.add_argument("--max-new-tokens", type=int, default=96, help="D: answer length")
    search.add_argument(
        "--temperature",
        type=float,
        default=DEFAULT_TEMPERATURE,
        help="sampling temperature (the shipped critic's)",
    )
    search.add_argument(
        "--seed", type=int, default=None, help="sampling seed (default: a fresh one each run)"
    )
    add_model_args(p)
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> GuardConfig:
    """The :class:`GuardConfig` the chat options describe."""
    return GuardConfig(
        n_candidates=args.n_candidates,
        n_beams=args.n_beams,
        block_len=args.block_len,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        seed=args.seed,
    )


def run(args: argparse.Namespace) -> int:
    """Entry point of ``inferenceguard chat``; returns the exit code."""
    guard = guard_from_args(args, config_from_args(args))
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


def _interactive() -> Iterator[str]:
    while True:
        try:
            line = input("\n> ").strip()
        except EOFError:
            return
        if line in {"exit", "quit"}:
            return
        if line:
            yield line
