"""``inferenceguard eval``: run strategies over prompt sets and write a report.

See :mod:`inferenceguard.evaluation.runner` for what is written and how resuming works.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

__all__ = ["register", "run"]

EPILOG = """examples:
  # the built-in sets, small: 8 prompts each, 4 strategies
  inferenceguard eval --harmful advbench --benign mt_bench --limit 8 --out runs/small

  # your own files (FILE[:COLUMN]; CSV/TSV, JSONL, JSON list, TXT) and strategy options
  inferenceguard eval --harmful my_attacks.csv:goal --benign questions.txt \\
      --strategy plain --strategy best_of_n:n_candidates=16 \\
      --strategy inferenceguard:n_candidates=32,n_beams=8 --max-new-tokens 64 --out runs/mine

  # data-parallel over 4 GPUs (the records equal a 1-process run's)
  accelerate launch --num_processes 4 -m inferenceguard.cli eval --harmful advbench --out runs/big
  # on CPU-only machines, 2 processes (accelerate's --cpu launcher starts only one):
  accelerate launch --multi_gpu --num_processes 2 -m inferenceguard.cli eval ... --out runs/cpu

  # interrupted? run the same command again: finished records are kept and skipped
  inferenceguard eval --list          # built-in prompt sets and strategy presets

strategies: NAME[:KEY=VALUE,...] with NAME one of inferenceguard, inferenceguard+critic,
beam, beam_lagrangian, best_of_n, best_of_n_lagrangian, args, plain and KEY any GuardConfig
field (verified=true|false picks generate / generate_unverified).
prompt sets: [NAME=]SOURCE[:COLUMN]; SOURCE is a file, a built-in name, or a Hugging Face
dataset id (needs the `datasets` package and the hub; --hf-split picks the split).
"""

DEFAULT_STRATEGIES = ("plain", "best_of_n", "beam", "inferenceguard")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``eval`` subcommand to the ``inferenceguard`` parser."""
    p = subparsers.add_parser(
        "eval",
        help="evaluate InferenceGuard and baselines: safety rate, reward, refusals, time",
        description="Run strategies over prompt sets; write records.jsonl, summary.json, "
        "report.md and plots under --out (resumable).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    data = p.add_argument_group("prompts")
    data.add_argument(
        "--prompts", action="append", default=[], metavar="SPEC", help="prompt set, kind unknown"
    )
    data.add_argument(
        "--harmful",
        action="append",
        default=[],
        metavar="SPEC",
        help="prompt set of harmful requests",
    )
    data.add_argument(
        "--benign",
        action="append",
        default=[],
        metavar="SPEC",
        help="prompt set of benign requests",
    )
    data.add_argument("--limit", type=int, default=None, help="at most N prompts per set")
    data.add_argument("--hf-split", default=None, help="split of hub datasets (default: test)")
    runp = p.add_argument_group("run")
    runp.add_argument(
        "--strategy",
        action="append",
        default=[],
        metavar="SPEC",
        help=f"strategy to run, repeatable (default: {', '.join(DEFAULT_STRATEGIES)}"
        " [+ inferenceguard+critic when a critic is loaded])",
    )
    runp.add_argument("--out", help="run folder (resumed if it exists)")
    runp.add_argument("--max-new-tokens", type=int, default=None)
    runp.add_argument(
        "--seed", type=int, default=0, help="run seed (per-prompt seeds derive from it)"
    )
    runp.add_argument(
        "--prefix-stride",
        type=int,
        default=16,
        help="re-score response prefixes every N tokens for every strategy (0: off)",
    )
    runp.add_argument("--overwrite", action="store_true", help="discard the folder's records")
    runp.add_argument("--no-progress", action="store_true", help="no progress bar")
    runp.add_argument("--no-plots", action="store_true", help="skip the plots")
    runp.add_argument("--list", action="store_true", help="list prompt sets and strategies")
    models = p.add_argument_group("models and base config")
    models.add_argument(
        "--model", default=None, help="hub id or folder (default: embedded SmolLM2)"
    )
    models.add_argument("--cost-model", default="default", help="cost model spec")
    models.add_argument("--reward-model", default="default", help="reward model spec")
    models.add_argument("--critic", default="default", help="critic folder, 'default' or 'none'")
    models.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: auto)")
    models.add_argument("--dtype", default=None, help="model dtype (default: fp32 CPU, bf16 CUDA)")
    models.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (small models: 1 is fastest)"
    )
    models.add_argument("--n-candidates", type=int, default=None, help="N for every strategy")
    models.add_argument("--n-beams", type=int, default=None, help="K for every strategy")
    models.add_argument("--block-len", type=int, default=None, help="B for every strategy")
    models.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other GuardConfig field for every strategy (repeatable)",
    )
    p.set_defaults(func=run)


def _parse_sets(items: list[str]) -> dict[str, Any]:
    from ..config import GuardConfig
    from ..errors import ConfigError

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in GuardConfig.model_fields:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE with KEY a GuardConfig field.")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _list() -> int:
    from .presets import PRESETS
    from .tasks import BUILTIN_SETS

    print("built-in prompt sets (--harmful/--benign/--prompts NAME):")
    for name, b in BUILTIN_SETS.items():
        print(f"  {name:<20} {b.kind:<8} {b.description}")
    print("\nstrategies (--strategy NAME[:KEY=VALUE,...]):")
    for name, preset in PRESETS.items():
        mode = "guarded" if preset.verified else "raw"
        print(f"  {name:<22} {mode:<8} {preset.description}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Entry point of ``inferenceguard eval``; returns the exit code."""
    if args.list:
        return _list()
    from ..errors import ConfigError, InferenceGuardError

    try:
        return _run(args)
    except InferenceGuardError as exc:
        print(f"inferenceguard eval: error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1


def _run(args: argparse.Namespace) -> int:
    from ..config import GuardConfig
    from ..errors import ArtifactError, ConfigError, CriticMismatchError
    from ..guard import build_guard
    from .report import markdown_table
    from .runner import evaluate, init_distributed
    from .tasks import load_prompt_set

    if not args.out:
        raise ConfigError("--out is required.", hint="e.g. --out runs/first")
    specs = [(s, None) for s in args.prompts]
    specs += [(s, "harmful") for s in args.harmful]
    specs += [(s, "benign") for s in args.benign]
    if not specs:
        raise ConfigError(
            "No prompts given.", hint="e.g. --harmful advbench --benign mt_bench (see --list)."
        )
    prompt_sets = [
        load_prompt_set(spec, limit=args.limit, kind=kind, split=args.hf_split)
        for spec, kind in specs
    ]
    base: dict[str, Any] = _parse_sets(args.set)
    for key in ("n_candidates", "n_beams", "block_len"):
        if getattr(args, key) is not None:
            base[key] = getattr(args, key)
    if args.max_new_tokens is not None:
        base["max_new_tokens"] = args.max_new_tokens
    if "n_beams" not in base and "n_candidates" in base:
        base["n_beams"] = max(1, min(base["n_candidates"] // 4, GuardConfig().n_beams))
    if "block_len" not in base and "max_new_tokens" in base:
        base["block_len"] = min(GuardConfig().block_len, base["max_new_tokens"])
    config = GuardConfig(**base)

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    info = init_distributed()
    device = args.device
    if device is None and info.world_size > 1:
        import torch

        if torch.cuda.is_available():
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', info.rank))}"
    build = {
        "model": args.model,
        "cost_model": args.cost_model,
        "reward_model": args.reward_model,
        "config": config,
        "device": device,
        "dtype": args.dtype,
    }
    critic = None if args.critic == "none" else args.critic
    try:
        guard = build_guard(critic=critic, **build)
    except (ArtifactError, CriticMismatchError) as exc:
        if critic != "default":
            raise
        # The shipped critic is optional: the baselines and critic-free InferenceGuard
        # can still be measured.
        print(f"warning: running without the shipped critic: {exc}", file=sys.stderr)
        guard = build_guard(critic=None, **build)
    strategies = list(args.strategy) or list(DEFAULT_STRATEGIES)
    if not args.strategy and guard.critic is not None:
        strategies.append("inferenceguard+critic")
    result = evaluate(
        guard,
        strategies,
        prompt_sets,
        args.out,
        seed=args.seed,
        max_new_tokens=args.max_new_tokens,
        prefix_stride=args.prefix_stride,
        overwrite=args.overwrite,
        progress=not args.no_progress,
        plots=not args.no_plots,
    )
    if info.is_main:
        headline = [s for s in result.summaries if s.group == "kind:harmful"] or [
            s for s in result.summaries if s.group == "all"
        ]
        print(markdown_table(headline))
        for role, path in result.files.items():
            print(f"{role:>22}: {path}")
    return 0
