"""``inferenceguard chat``: ask the guarded model, one question or interactively."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..config import GuardConfig
from ..errors import ContextLengthError
from ._common import (
    add_model_args,
    add_parser,
    add_set_arg,
    add_threads_arg,
    error_line,
    guard_from_args,
    parse_sets,
    set_threads,
)

if TYPE_CHECKING:
    from ..guard import InferenceGuard

__all__ = ["CHAT_DEFAULTS", "config_from_args", "register", "run"]

EPILOG = """examples:
  inferenceguard chat "What is the capital of France?"
  inferenceguard chat --n-candidates 8 --max-new-tokens 64      # interactive
  inferenceguard chat --model ./my-llama --cost-model ./my-guard "Hello"
  inferenceguard chat --budget 0.3 --set top_p=0.9 --threads 1 "Hello"
"""

#: Smaller than GuardConfig's for a quick answer on a CPU. The temperature is the guard's
#: own, which the shipped critic was trained at: another value would make every default
#: chat start with a "critic trained with other settings" warning.
CHAT_DEFAULTS: dict[str, Any] = {
    "n_candidates": 8,
    "n_beams": 2,
    "block_len": 16,
    "max_new_tokens": 96,
    "temperature": GuardConfig.model_fields["temperature"].default,
}


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
    for flag, kind, what in (
        ("--n-candidates", int, "N: candidates per step"),
        ("--n-beams", int, "K: beams kept per step"),
        ("--block-len", int, "B: tokens per block"),
        ("--max-new-tokens", int, "D: answer length in tokens"),
        ("--temperature", float, "sampling temperature (the shipped critic's)"),
    ):
        default = CHAT_DEFAULTS[flag[2:].replace("-", "_")]
        search.add_argument(flag, type=kind, default=None, help=f"{what} (default: {default})")
    search.add_argument(
        "--budget", type=float, default=None, help="d (default: the cost model's threshold)"
    )
    search.add_argument(
        "--seed", type=int, default=None, help="sampling seed (default: a fresh one each run)"
    )
    add_set_arg(search, "(the options above win)")
    add_threads_arg(add_model_args(p))
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> GuardConfig:
    """The :class:`GuardConfig` of the chat: its defaults, then ``--set``, then the options."""
    values: dict[str, Any] = {**CHAT_DEFAULTS, **parse_sets(args.set)}
    for key in (*CHAT_DEFAULTS, "budget", "seed"):
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    return GuardConfig(**values)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``inferenceguard chat``; returns the exit code."""
    config = config_from_args(args)
    set_threads(args.threads)
    guard = guard_from_args(args, config)
    if args.prompt:
        _answer(guard, args.prompt)
        return 0
    history: list[dict[str, str]] = []
    for prompt in _interactive():
        history.append({"role": "user", "content": prompt})
        try:
            text = _answer(guard, history)
        except ContextLengthError as exc:
            # Only this turn is dropped: the conversation so far goes on.
            history.pop()
            print(f"inferenceguard: error: {error_line(exc)}", file=sys.stderr)
            continue
        history.append({"role": "assistant", "content": text})
    return 0


def _answer(guard: InferenceGuard, messages: str | list[dict[str, str]]) -> str:
    """Stream the answer to stdout, then its safety line; returns the answer's text."""
    result = None
    for chunk in guard.stream(messages):
        sys.stdout.write(chunk.delta)
        sys.stdout.flush()
        result = chunk.result or result
    assert result is not None  # the last chunk carries the result
    report = result.safety
    print(
        f"\n[finish={result.finish_reason} cost={report.cost:.3f} budget={report.budget:.3f} "
        f"safe={report.safe} {report.wall_time_s:.1f}s]"
    )
    return result.text


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
