"""``inferenceguard`` command line: one module per verb, imported only when that verb runs.

Each entry of :data:`COMMANDS` names a ``register(subparsers)`` function as
``"module:function"``. ``register`` adds the verb's parser and sets ``func`` to a callable
that takes the parsed :class:`argparse.Namespace` and returns an exit code.

The library's own errors (:class:`~inferenceguard.errors.InferenceGuardError`) are reported
on one line, ``inferenceguard: error: <message> Fix: <hint>``, with exit status 2; any other
exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from ..errors import InferenceGuardError
from ._common import error_line

__all__ = ["COMMANDS", "SUMMARIES", "build_parser", "error_line", "main", "resolve"]

#: verb -> ``"module:register"``; a verb's module (and its heavy imports) loads only when used.
COMMANDS: dict[str, str] = {
    "chat": "inferenceguard.cli.chat:register",
    "train-cost": "inferenceguard.cli.train_cost:register",
    "train-critic": "inferenceguard.cli.train_critic:register",
    "eval": "inferenceguard.cli.eval:register",
    "serve": "inferenceguard.cli.serve:register",
}

#: One line per verb for ``inferenceguard --help``, shown without importing the verb's module.
SUMMARIES: dict[str, str] = {
    "chat": "chat with a guarded model (streams verified-safe text)",
    "train-cost": "retrain the embedded cost probe, request gate or response judge",
    "train-critic": "collect rollouts and train a latent critic",
    "eval": "compare strategies on prompt sets",
    "serve": "OpenAI-compatible guarded server",
}

Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


def resolve(spec: str) -> Register:
    """The ``register`` function that a :data:`COMMANDS` entry ``"module:attr"`` names."""
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The ``inferenceguard`` parser.

    Args:
        argv: the command line about to be parsed: only the verb it names is imported and
            registered in full, the others are listed by name. ``None`` registers every verb.
    """
    from .._version import __version__

    parser = argparse.ArgumentParser(
        prog="inferenceguard",
        description="Almost surely safe decoding (w.r.t. a cost model) for local LLMs.",
    )
    parser.add_argument("--version", action="version", version=f"inferenceguard {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = set(COMMANDS) if argv is None else {_verb(argv)}
    for verb, spec in COMMANDS.items():
        if verb in wanted:
            _register(sub, verb, spec)
        else:
            sub.add_parser(verb, help=SUMMARIES[verb])
    return parser


def _verb(argv: Sequence[str]) -> str | None:
    # The top-level parser has no option that takes a value, so the verb is the first word.
    return next((a for a in argv if not a.startswith("-")), None)


def _register(sub: argparse._SubParsersAction, verb: str, spec: str) -> None:
    try:
        register = resolve(spec)
    except ModuleNotFoundError as exc:
        # Only the verb's own module missing (a trimmed installation) is expected; a
        # dependency missing inside it is a real error.
        module = spec.partition(":")[0]
        if not exc.name or not module.startswith(exc.name):
            raise
        sub.add_parser(verb, help=f"{SUMMARIES[verb]} (not available in this installation)")
        return
    register(sub)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``inferenceguard`` script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except InferenceGuardError as exc:
        print(f"inferenceguard: error: {error_line(exc)}", file=sys.stderr)
        return 2
