"""What several verbs share: the model arguments, the guard they build, ``--set``, threads.

The ``--model/--cost-model/--reward-model/--critic`` group is defined here once, and so is
what its values mean (``--critic none`` is no critic; a value written as a path must exist).
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, InferenceGuardError

if TYPE_CHECKING:
    from .._distributed import ProcessInfo
    from ..config import GuardConfig
    from ..guard import InferenceGuard

__all__ = [
    "HelpFormatter",
    "add_model_args",
    "add_parser",
    "add_set_arg",
    "add_threads_arg",
    "critic_spec",
    "error_line",
    "guard_from_args",
    "model_specs",
    "parse_sets",
    "rank_device",
    "set_threads",
]


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the epilog's layout and ends every option's help with its default.

    An option whose help already says ``(default ...)`` keeps its own wording; this is how
    a ``None`` default is explained in words ("default: CUDA when available").
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "(default" in text or action.nargs == 0 or not action.option_strings:
            return text
        if action.default in (None, [], argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)"


def error_line(exc: InferenceGuardError) -> str:
    """``exc``'s message and its fix (``"<message> Fix: <hint>"``) as one line."""
    return " ".join(str(exc).split())


def add_parser(
    subparsers: argparse._SubParsersAction, verb: str, **kwargs: Any
) -> argparse.ArgumentParser:
    """A verb's parser, with the help formatter every verb uses."""
    return subparsers.add_parser(verb, formatter_class=HelpFormatter, **kwargs)


def add_model_args(
    parser: argparse.ArgumentParser, *, critic: bool = True, title: str = "models"
) -> argparse._ArgumentGroup:
    """Add ``--model --cost-model --reward-model [--critic] --device --dtype`` to ``parser``.

    Returns:
        The argument group (titled ``title``), for the verb's own model options.
    """
    group = parser.add_argument_group(title)
    group.add_argument(
        "--model",
        default="default",
        help="base LM: a folder, a hub id, or 'default' (the embedded SmolLM2-135M-Instruct)",
    )
    group.add_argument(
        "--cost-model",
        default="default",
        help="cost model: a folder, a hub id, or 'default' (the shipped MiniLM probe)",
    )
    group.add_argument(
        "--reward-model",
        default="default",
        help="reward model: a folder, a hub id, or 'default' (MiniLM relevance)",
    )
    if critic:
        group.add_argument(
            "--critic",
            default="default",
            help="critic folder, 'default' (the shipped critic, for the default model) or 'none'",
        )
    group.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:1 … (default: CUDA when available)"
    )
    group.add_argument(
        "--dtype", default=None, help="model dtype (default: float32 on CPU, bfloat16 on CUDA)"
    )
    return group


def critic_spec(args: argparse.Namespace) -> str | None:
    """``--critic`` as :func:`inferenceguard.build_guard` takes it (``none`` -> ``None``)."""
    return None if args.critic == "none" else args.critic


def model_specs(args: argparse.Namespace) -> dict[str, Any]:
    """The model arguments as :func:`inferenceguard.build_guard` keywords, checked first.

    Raises:
        ModelLoadError: a value written as a path (``./x``, ``/x``, ``~/x``) does not exist;
            reported before anything loads, not later as an invalid hub id.
    """
    from .._sources import local_source

    specs: dict[str, Any] = {
        "model": args.model,
        "cost_model": args.cost_model,
        "reward_model": args.reward_model,
    }
    if hasattr(args, "critic"):
        specs["critic"] = critic_spec(args)
    names = {"model": "model", "cost_model": "cost model", "reward_model": "reward model"}
    for key, value in specs.items():
        if isinstance(value, str):
            local_source(value, what=names.get(key, key))
    return {**specs, "device": args.device, "dtype": args.dtype}


def guard_from_args(
    args: argparse.Namespace, config: GuardConfig, **overrides: Any
) -> InferenceGuard:
    """Build the guard the model arguments describe (``overrides`` replace any of them)."""
    import inferenceguard

    # Looked up at call time: the one builder, wherever the package defines it.
    return inferenceguard.build_guard(**{**model_specs(args), **overrides}, config=config)


def rank_device(device: str | None, info: ProcessInfo) -> str | None:
    """``device``, or under a multi-GPU ``accelerate launch`` this rank's own GPU."""
    if device is not None or info.world_size <= 1:
        return device
    import torch

    if not torch.cuda.is_available():
        return None
    return f"cuda:{int(os.environ.get('LOCAL_RANK', info.rank))}"


def add_set_arg(parser: argparse.ArgumentParser | argparse._ArgumentGroup, scope: str) -> None:
    """Add the repeatable ``--set KEY=VALUE`` (any :class:`GuardConfig` field)."""
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"any other GuardConfig field {scope}, repeatable; VALUE is JSON or a bare "
        "string (default: none)",
    )


def parse_sets(items: list[str]) -> dict[str, Any]:
    """``--set`` values as GuardConfig fields (values are JSON when they parse as JSON).

    Raises:
        ConfigError: an item is not ``KEY=VALUE`` or ``KEY`` is no GuardConfig field.
    """
    from ..config import GuardConfig

    fields = list(GuardConfig.model_fields)
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f"did you mean --set {close[0]}=...?" if close else None
            raise ConfigError(
                f"--set {item!r}: expected KEY=VALUE with KEY a GuardConfig field.",
                hint=hint or f"KEY is one of: {', '.join(fields)}.",
            )
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def add_threads_arg(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, default: int | None = None
) -> None:
    """Add ``--threads`` (torch CPU threads)."""
    parser.add_argument(
        "--threads",
        type=int,
        default=default,
        help="torch CPU threads; 1 is fastest for small models on a busy machine"
        + ("" if default is not None else " (default: torch's choice)"),
    )


def set_threads(threads: int | None) -> None:
    """Apply ``--threads`` (``None``: leave torch's default)."""
    if threads:
        import torch

        torch.set_num_threads(threads)
