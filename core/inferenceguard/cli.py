"""``inferenceguard`` command line: one subcommand module per verb, imported lazily.

Each module named in :data:`COMMANDS` exposes ``register(subparsers)`` which adds its
parser and sets ``func`` to a callable taking the parsed ``argparse.Namespace`` and
returning an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["COMMANDS", "main"]

#: verb -> module with ``register(subparsers)``; heavy imports happen only when chosen.
COMMANDS = {
    "chat": ("inferenceguard.commands.chat", "chat with a guarded model"),
    "train-cost": ("inferenceguard.training.cost_probe", "train the default cost probe"),
    "train-critic": ("inferenceguard.critic.cli", "collect rollouts and train a latent critic"),
    "eval": ("inferenceguard.evaluation.cli", "compare strategies on prompt sets"),
    "serve": ("inferenceguard.server.cli", "OpenAI-compatible guarded server"),
}


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    from ._version import __version__

    parser = argparse.ArgumentParser(
        prog="inferenceguard",
        description="Almost surely safe decoding (w.r.t. a cost model) for local LLMs.",
    )
    parser.add_argument("--version", action="version", version=f"inferenceguard {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    # Only import the module of the verb being run (argparse needs its parser); list the rest.
    wanted = next((a for a in argv if a in COMMANDS), None)
    for verb, (module, summary) in COMMANDS.items():
        if verb != wanted:
            sub.add_parser(verb, help=summary)
            continue
        try:
            importlib.import_module(module).register(sub)
        except ModuleNotFoundError as exc:
            if not exc.name or not module.startswith(exc.name):
                raise
            sub.add_parser(verb, help=f"{summary} (not available in this installation)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``inferenceguard`` script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    return int(func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
