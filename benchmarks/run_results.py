"""Generate ``benchmarks/RESULTS.md``: InferenceGuard and its baselines on the embedded defaults.

One command (CPU, offline; the settings below are the defaults)::

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/run_results.py

Settings (flags; every strategy gets the same prompts, seed per prompt, models, budget):

    --sets advbench harmbench_val mt_bench alpaca   harmful: AdvBench, HarmBench validation
                                                    (standard behaviours); benign: MT-Bench
                                                    first turns, harmless Alpaca
    --n-prompts 24          prompts per set, spread evenly over each file
    --max-new-tokens 64     D, the same for every strategy
    --n-candidates 16       N for InferenceGuard, beam search and best-of-N (K = N/4)
    --block-len 16          B
    --strategies ...        default: plain best_of_n best_of_n_lagrangian beam
                            beam_lagrangian args inferenceguard (when the shipped critic
                            loads: inferenceguard:use_critic=false inferenceguard+critic)
    --out benchmarks/results/default   records.jsonl, summary.json, report.md, plots/
    --threads 1             torch CPU threads

A small run for a quick look (about 10-15 minutes on 2 CPU cores)::

    .venv/bin/python benchmarks/run_results.py --n-prompts 8 --max-new-tokens 32 --n-candidates 8

Re-running the same command resumes: finished records are kept (``--overwrite`` starts
afresh). Data-parallel: ``accelerate launch --num_processes P benchmarks/run_results.py``
(on CPU-only machines add ``--multi_gpu``; see ``inferenceguard eval --help``).

Models: SmolLM2-135M-Instruct (embedded), the shipped MiniLM cost probe
(``benchmarks/DEFAULT_COST_MODEL.md``), MiniLM relevance reward, the shipped critic if any.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "core") not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(REPO / "core"))

import torch  # noqa: E402

from inferenceguard import (  # noqa: E402
    ArtifactError,
    CriticMismatchError,
    GuardConfig,
    InferenceGuard,
    build_guard,
)
from inferenceguard._distributed import ProcessInfo  # noqa: E402
from inferenceguard._io import atomic_write_text  # noqa: E402
from inferenceguard.evaluation import (  # noqa: E402
    EvalRun,
    evaluate,
    init_distributed,
    load_prompt_set,
)
from inferenceguard.evaluation.report import CAVEATS, markdown_table, render_markdown  # noqa: E402

BASELINES = (
    "plain",
    "best_of_n",
    "best_of_n_lagrangian",
    "beam",
    "beam_lagrangian",
    "args",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--sets", nargs="+", default=["advbench", "harmbench_val", "mt_bench", "alpaca"])
    p.add_argument("--n-prompts", type=int, default=24)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--n-candidates", type=int, default=16)
    p.add_argument("--n-beams", type=int, default=None, help="default: N/4")
    p.add_argument("--block-len", type=int, default=16)
    p.add_argument("--strategies", nargs="+", default=None)
    p.add_argument("--no-critic", action="store_true", help="do not load the shipped critic")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None)
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: a 135M model's forwards are too small to gain "
        "from more, and on a shared machine extra threads only wait on each other)",
    )
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "default")
    p.add_argument("--results-md", type=Path, default=REPO / "benchmarks" / "RESULTS.md")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def _command(args: argparse.Namespace) -> str:
    parts = ["python benchmarks/run_results.py"]
    defaults = parse_args([])
    for key in ("n_prompts", "max_new_tokens", "n_candidates", "n_beams", "block_len", "seed"):
        value = getattr(args, key)
        if value != getattr(defaults, key):
            parts.append(f"--{key.replace('_', '-')} {value}")
    if args.sets != defaults.sets:
        parts.append("--sets " + " ".join(args.sets))
    if args.strategies:
        parts.append("--strategies " + " ".join(args.strategies))
    if args.no_critic:
        parts.append("--no-critic")
    return " ".join(parts)


def _config(args: argparse.Namespace) -> GuardConfig:
    return GuardConfig(
        n_candidates=args.n_candidates,
        n_beams=args.n_beams or max(1, args.n_candidates // 4),
        block_len=min(args.block_len, args.max_new_tokens),
        max_new_tokens=args.max_new_tokens,
    )


def _guard(args: argparse.Namespace, info: ProcessInfo) -> tuple[InferenceGuard, str]:
    """The embedded defaults (with the shipped critic unless refused), and, if there is
    no critic, why."""
    config, device = _config(args), args.device
    if device is None and info.world_size > 1 and torch.cuda.is_available():
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', info.rank))}"
    no_critic_reason = (
        "`--no-critic` was given"
        if args.no_critic
        else "no shipped critic matches this model and cost model"
    )
    try:
        guard = build_guard(
            critic=None if args.no_critic else "default", config=config, device=device
        )
    except (ArtifactError, CriticMismatchError) as exc:  # a broken or foreign shipped critic
        print(f"warning: running without the shipped critic: {exc}", file=sys.stderr)
        no_critic_reason = f"the shipped critic did not load: {type(exc).__name__}"
        guard = build_guard(critic=None, config=config, device=device)
    return guard, no_critic_reason


def _strategies(args: argparse.Namespace, guard: InferenceGuard) -> list[str]:
    # "inferenceguard" uses the guard's critic when one loaded; name the critic-free arm.
    with_critic = ["inferenceguard:use_critic=false", "inferenceguard+critic"]
    return args.strategies or [
        *BASELINES,
        *(with_critic if guard.critic is not None else ["inferenceguard"]),
    ]


def _details(run: EvalRun, rel_out: str) -> str:
    """The run's own report, less what the page shows above it, linked from the page."""
    plots = {
        caption: f"plots/{run.files[role].name}"
        for caption, role in (
            ("Reward vs safety rate", "plot_reward_vs_safety"),
            ("Max prefix cost per strategy", "plot_max_prefix_cost"),
        )
        if role in run.files
    }
    note = None if plots else "Plots skipped: matplotlib is not installed."
    body = render_markdown(
        run.records,
        run.summaries,
        run.meta,
        title="Details",
        plot_files=plots,
        plot_note=note,
        caveats=False,
        skip_groups=("kind:harmful", "kind:benign"),
    )
    body = body.split("\n", 1)[1]  # drop the details' title line; the page has its own
    return body.replace("## ", "### ").replace("](plots/", f"]({rel_out}/plots/")


def _provenance(run: EvalRun, rel_out: str, info: ProcessInfo) -> tuple[str, str]:
    """Where the numbers were computed, and which responses this call generated."""
    hardware = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), device "
        f"`{run.meta.get('device')}`, {info.world_size} process(es)"
    )
    resumed = len(run.records) - run.new_records
    provenance = (
        f"{run.new_records} of {len(run.records)} responses were generated by that call and "
        f"{resumed} resumed from `{rel_out}/shards/`"
        if resumed
        else f"all {len(run.records)} responses were generated by that call"
    )
    return hardware, provenance


def _page(args: argparse.Namespace, run: EvalRun, info: ProcessInfo, elapsed: float,
          critic_note: str) -> str:  # fmt: skip
    rel_out = os.path.relpath(args.out, args.results_md.parent)
    headline = [s for s in run.summaries if s.group == "kind:harmful"]
    benign = [s for s in run.summaries if s.group == "kind:benign"]
    hardware, provenance = _provenance(run, rel_out, info)
    generation_min = sum(float(r.get("seconds") or 0.0) for r in run.records) / 60
    return f"""# Results: InferenceGuard vs baselines on the embedded defaults

Generated by `{_command(args)}` in {elapsed / 60:.1f} min ({hardware}); {provenance}
(generation alone, summed over responses: {generation_min:.1f} min). Cost model
`{run.meta.get("cost_model")}`. Per-response records: `{rel_out}/records.jsonl`; summary:
`{rel_out}/summary.json`. {critic_note[0].upper() + critic_note[1:]}.

This is a **small** run on a 135M-parameter model with a small learned cost model: it checks
that the harness and the strategies behave as described and shows their trade-offs; it is
not a reproduction of the paper's Table 2 (7B models, PKU-SafeRLHF, Beaver cost model), and
its numbers are not comparable to the paper's.

## Headline: harmful prompts

{markdown_table(headline)}
## Benign prompts (helpfulness, over-refusal, cost of the guard)

{markdown_table(benign)}
## What these numbers mean, and what they do not

- Every "safe" is **with respect to the default cost model** (a logistic probe on MiniLM
  embeddings of the prompt–response pair, threshold 0.5 = budget; its measured quality and
  known weaknesses are in `benchmarks/DEFAULT_COST_MODEL.md`). A response it misjudges is
  misjudged here too: InferenceGuard's 100% means "the cost model never saw an over-budget
  text in what was returned", not "nothing harmful was said".
- A weak base model makes unsafe raw outputs rarer and blunter than a 7B model would; the
  small prompt counts make every rate's 95% interval wide (see the brackets).
{CAVEATS}
{_details(run, rel_out)}"""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    if args.threads:
        torch.set_num_threads(args.threads)
    info = init_distributed()
    guard, no_critic_reason = _guard(args, info)
    sets = [load_prompt_set(name, limit=args.n_prompts) for name in args.sets]
    run = evaluate(
        guard,
        _strategies(args, guard),
        sets,
        args.out,
        seed=args.seed,
        max_new_tokens=args.max_new_tokens,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    elapsed = time.perf_counter() - started
    if not info.is_main:
        return 0
    critic_note = (
        "the shipped critic was loaded"
        if guard.critic is not None
        else f"no critic was used ({no_critic_reason}), so `inferenceguard+critic` is not in "
        "this run"
    )
    atomic_write_text(args.results_md, _page(args, run, info, elapsed, critic_note))
    print(markdown_table([s for s in run.summaries if s.group == "kind:harmful"]))
    print(f"wrote {args.results_md} ({elapsed / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
