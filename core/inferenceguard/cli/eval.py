"""``inferenceguard eval``: run strategies over prompt sets and write a report.

See :mod:`inferenceguard.evaluation.runner` for what is written and how resuming works.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from ._common import (
    add_model_args,
    add_parser,
    add_set_arg,
    add_threads_arg,
    guard_from_args,
    parse_sets,
    rank_device,
    set_threads,
)

if TYPE_CHECKING:
    from ..config import GuardConfig
    from ..evaluation import EvalRun, PromptSet
    from ..guard import InferenceGuard

__all__ = ["DEFAULT_STRATEGIES", "register", "run"]

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

  # data-parallel on a Ray cluster (one GPU per worker if the cluster has GPUs)
  inferenceguard eval --ray --ray-workers 8 --harmful advbench --out /shared/runs/big

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
    p = add_parser(
        subparsers,
        "eval",
        help="evaluate InferenceGuard and baselines: safety rate, reward, refusals, time",
        description="Run strategies over prompt sets; write records.jsonl, summary.json, "
        "report.md and plots under --out (resumable).",
        epilog=EPILOG,
    )
    _add_prompt_args(p.add_argument_group("prompts"))
    _add_run_args(p.add_argument_group("run"))
    models = add_model_args(p, title="models and base config")
    add_threads_arg(models)
    for flag, letter in (("--n-candidates", "N"), ("--n-beams", "K"), ("--block-len", "B")):
        models.add_argument(
            flag, type=int, default=None, help=f"{letter} for every strategy (default: each's own)"
        )
    add_set_arg(models, "for every strategy")
    p.set_defaults(func=run)


def _add_prompt_args(group: argparse._ArgumentGroup) -> None:
    for flag, what in (
        ("--prompts", "prompt set, kind unknown"),
        ("--harmful", "prompt set of harmful requests"),
        ("--benign", "prompt set of benign requests"),
    ):
        group.add_argument(
            flag,
            action="append",
            default=[],
            metavar="SPEC",
            help=f"{what}, repeatable (default: none)",
        )
    group.add_argument(
        "--limit", type=int, default=None, help="at most N prompts per set (default: all)"
    )
    group.add_argument("--hf-split", default=None, help="split of hub datasets (default: test)")


def _add_run_args(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--strategy",
        action="append",
        default=[],
        metavar="SPEC",
        help=f"strategy to run, repeatable (default: {', '.join(DEFAULT_STRATEGIES)}"
        " [+ inferenceguard:use_critic=false when a critic is loaded, the ablation arm];"
        " 'inferenceguard' uses the loaded critic, as every entry point does)",
    )
    group.add_argument(
        "--out", help="run folder, resumed if it exists (default: none, it is required)"
    )
    group.add_argument(
        "--max-new-tokens",
        type=int,
        default=None,
        help="D for every strategy (default: GuardConfig's)",
    )
    group.add_argument(
        "--seed", type=int, default=0, help="run seed; per-prompt seeds derive from it"
    )
    group.add_argument(
        "--in-flight",
        type=int,
        default=1,
        help="prompts run at once, sharing batched forwards (records do not depend on it)",
    )
    group.add_argument(
        "--prefix-stride",
        type=int,
        default=16,
        help="re-score response prefixes every N tokens for every strategy (0: off)",
    )
    group.add_argument("--overwrite", action="store_true", help="discard the folder's records")
    group.add_argument("--no-progress", action="store_true", help="no progress bar")
    group.add_argument("--no-plots", action="store_true", help="skip the plots")
    group.add_argument("--list", action="store_true", help="list prompt sets and strategies")
    group.add_argument(
        "--ray",
        action="store_true",
        help="shard the prompts over Ray tasks (needs the ray extra; --out on shared storage)",
    )
    group.add_argument(
        "--ray-workers",
        type=int,
        default=None,
        help="Ray tasks with --ray (default: the cluster's GPUs, else 1)",
    )
    group.add_argument(
        "--ray-address",
        default=None,
        help="Ray cluster to join, e.g. auto (default: $RAY_ADDRESS, else a local cluster)",
    )


def _list() -> int:
    from ..evaluation import BUILTIN_SETS, PRESETS

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
    from .._distributed import process_info
    from ..errors import ConfigError
    from ..evaluation import parse_strategy

    if not args.out:
        raise ConfigError("--out is required.", hint="e.g. --out runs/first")
    prompt_sets = _prompt_sets(args)
    config = base_config(args)
    for spec in args.strategy:  # a typo fails here, before any model loads
        parse_strategy(spec)
    set_threads(args.threads)
    if args.ray:
        return _run_ray(args, prompt_sets, config)
    info = process_info()
    result = _evaluate(args, prompt_sets, config, rank_device(args.device, info))
    if info.is_main:
        _print_summary(result)
    return 0


def _evaluate(
    args: argparse.Namespace,
    prompt_sets: list[PromptSet],
    config: GuardConfig,
    device: str | None,
    **specs: Any,
) -> EvalRun:
    """Build the guard (``specs`` replace model arguments) and run this rank's share."""
    from ..evaluation import evaluate

    guard = _build(args, config, device, **specs)
    strategies = list(args.strategy) or list(DEFAULT_STRATEGIES)
    if not args.strategy and guard.critic is not None:
        strategies.append("inferenceguard:use_critic=false")
    return evaluate(
        guard,
        strategies,
        prompt_sets,
        args.out,
        seed=args.seed,
        max_new_tokens=args.max_new_tokens,
        prefix_stride=args.prefix_stride,
        in_flight=args.in_flight,
        overwrite=args.overwrite,
        progress=not args.no_progress,
        plots=not args.no_plots,
    )


def _run_ray(args: argparse.Namespace, prompt_sets: list[PromptSet], config: GuardConfig) -> int:
    """``--ray``: every rank a Ray task that builds its own guard; rank 0 merges and reports."""
    try:
        import ray
    except ModuleNotFoundError:
        print(
            "inferenceguard eval --ray needs ray: pip install 'inferenceguard[ray]'",
            file=sys.stderr,
        )
        return 1
    from .._distributed import run_on_ray
    from ..errors import ConfigError

    if args.ray_workers is not None and args.ray_workers < 1:
        raise ConfigError(f"--ray-workers must be at least 1, got {args.ray_workers}.")
    ray.init(address=args.ray_address, ignore_reinit_error=True)
    gpus = int(ray.cluster_resources().get("GPU", 0))
    workers = args.ray_workers or gpus or 1
    resources = {"GPU": 1.0} if gpus else {"CPU": float(args.threads or 1)}
    results = run_on_ray(
        _eval_rank, args, prompt_sets, config, world_size=workers, resources=resources
    )
    _print_summary(results[0])  # rank 0's: the merged run
    return 0


def _eval_rank(
    args: argparse.Namespace, prompt_sets: list[PromptSet], config: GuardConfig
) -> EvalRun | None:
    """One rank inside its Ray task: models named ``module:function`` are built here."""
    from .._distributed import process_info, resolve_factory

    set_threads(args.threads)
    names = ("model", "cost_model", "reward_model")
    specs = {name: resolve_factory(getattr(args, name)) for name in names}
    # Ray gives the task its own GPU(s): the default device is the right one.
    result = _evaluate(args, prompt_sets, config, args.device, **specs)
    return result if process_info().is_main else None


def _prompt_sets(args: argparse.Namespace) -> list[PromptSet]:
    from ..errors import ConfigError
    from ..evaluation import load_prompt_set

    specs = [(s, None) for s in args.prompts]
    specs += [(s, "harmful") for s in args.harmful]
    specs += [(s, "benign") for s in args.benign]
    if not specs:
        raise ConfigError(
            "No prompts given.", hint="e.g. --harmful advbench --benign mt_bench (see --list)."
        )
    return [
        load_prompt_set(spec, limit=args.limit, kind=kind, split=args.hf_split)
        for spec, kind in specs
    ]


def base_config(args: argparse.Namespace) -> GuardConfig:
    """The config every strategy starts from: ``--set``, then the named options.

    A smaller N or D given alone shrinks K and B with it, so ``--n-candidates 4`` or
    ``--max-new-tokens 8`` stay valid without spelling out the rest.
    """
    from ..config import GuardConfig

    base: dict[str, Any] = parse_sets(args.set)
    for key in ("n_candidates", "n_beams", "block_len", "max_new_tokens"):
        if getattr(args, key) is not None:
            base[key] = getattr(args, key)
    defaults = GuardConfig()
    if "n_beams" not in base and "n_candidates" in base:
        base["n_beams"] = max(1, min(base["n_candidates"] // 4, defaults.n_beams))
    if "block_len" not in base and "max_new_tokens" in base:
        base["block_len"] = min(defaults.block_len, base["max_new_tokens"])
    return GuardConfig(**base)


def _build(
    args: argparse.Namespace, config: GuardConfig, device: str | None, **specs: Any
) -> InferenceGuard:
    from ..errors import ArtifactError, CriticMismatchError

    try:
        return guard_from_args(args, config, device=device, **specs)
    except (ArtifactError, CriticMismatchError) as exc:
        if args.critic != "default":
            raise
        # The shipped critic is optional: the baselines and critic-free InferenceGuard
        # can still be measured.
        print(f"warning: running without the shipped critic: {exc}", file=sys.stderr)
        return guard_from_args(args, config, device=device, **{**specs, "critic": None})


def _print_summary(result: EvalRun | None) -> None:
    """Every table of report.md, each under its heading, then where the files are."""
    from ..evaluation.report import render_markdown

    if result is None:  # pragma: no cover - rank 0 always returns its run
        return
    print(render_markdown(result.records, result.summaries, result.meta, caveats=False))
    for role, path in result.files.items():
        print(f"{role:>22}: {path}")
