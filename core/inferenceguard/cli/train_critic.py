"""``inferenceguard train-critic``: roll out the base model, train the critic, save it.

With no options it reproduces the shipped critic (embedded SmolLM2, default cost and
reward models, the prompt mix below from the built-in data folders), writing it to ``./critic``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import GuardConfig
from ._common import (
    add_model_args,
    add_parser,
    add_threads_arg,
    model_specs,
    rank_device,
    set_threads,
)

if TYPE_CHECKING:
    from ..lm import LocalLM
    from ..scorers.base import CostModel, RewardModel
    from ..training.critic.rollouts import PromptItem, RolloutData, RolloutSettings

__all__ = ["DEFAULT_MIX", "DEFAULT_PROMPTS", "default_prompt_specs", "register", "run"]

#: The shipped critic's prompt mix: (built-in prompt set, prompts taken from it, spread
#: evenly over the set; :data:`inferenceguard.evaluation.tasks.BUILTIN_SETS`). Half harmful
#: requests from four benchmarks, half benign ones, including XSTest's safe prompts that
#: sound unsafe, so the safety head sees topic words in requests that should be answered.
DEFAULT_MIX: tuple[tuple[str, int], ...] = (
    ("advbench", 64),
    ("harmbench_test", 48),
    ("strongreject", 56),
    ("malicious_instruct", 32),
    ("alpaca", 96),
    ("xstest_safe", 64),
    ("mt_bench", 40),
)
#: The prompt specs of :data:`DEFAULT_MIX` (what ``--prompts`` defaults to).
DEFAULT_PROMPTS: tuple[str, ...] = tuple(name for name, _ in DEFAULT_MIX)

#: Settings of the shipped critic (the CLI defaults): 400 prompts (398 once two
#: MaliciousInstruct prompts that StrongREJECT also has are kept once) x 8 samples = 3,184
#: responses, sized for about 25-30 min of rollouts on 2 quiet CPU cores with --threads 1.
DEFAULT_SAMPLES = 8  # responses per prompt: 8 rows cost little more than 4 per forward
# The search's own defaults: a critic only fits a search with the same block length and
# sampler.
DEFAULT_BLOCK_LEN: int = GuardConfig.model_fields["block_len"].default
DEFAULT_MAX_NEW_TOKENS = 64  # step fractions are tokens / this
DEFAULT_TEMPERATURE: float = GuardConfig.model_fields["temperature"].default
# Prompts rolled out at once through one StepScheduler: their forwards and scorer calls
# share batches. The records do not depend on it (each prompt has its own generator).
DEFAULT_IN_FLIGHT = 8

EPILOG = """examples:
  # reproduce the shipped critic (SmolLM2 + default cost/reward, the built-in prompt mix:
  # 400 prompts x 8 samples, ~30 min on 2 CPU cores)
  inferenceguard train-critic --out core/inferenceguard/assets/default_critic --threads 1

  # a quick end-to-end check: 4 prompts per built-in set (28), 4 samples, 32 tokens
  inferenceguard train-critic --limit 4 --samples-per-prompt 4 --max-new-tokens 32 \\
      --threads 1 --out /tmp/critic-smoke

  # your own model, cost model and prompts (FILE[:COLUMN], repeatable)
  inferenceguard train-critic --model ./my-llama --cost-model PKU-Alignment/beaver-7b-unified-cost \\
      --prompts data/harmful.csv:goal --prompts data/benign.jsonl:turns[0] \\
      --samples-per-prompt 5 --block-len 32 --max-new-tokens 128 --out my_critic

  # rollouts on 4 GPUs (rank 0 merges and trains); an interrupted run resumes
  accelerate launch --num_processes 4 -m inferenceguard.cli train-critic --out my_critic
  # (CPU-only: `accelerate launch --cpu` starts one process without MPI; use --multi_gpu,
  #  which goes through torchrun, and the gloo CPU backend is picked when CUDA is absent)

then: InferenceGuard(lm, cost, reward, critic=load_critic("my_critic", lm=lm, cost_model=cost))
"""


def default_prompt_specs(limit: int | None = None) -> tuple[list[str], list[int]]:
    """(specs, limits) of :data:`DEFAULT_MIX`, each limit capped at ``limit`` if given."""
    specs = [name for name, _ in DEFAULT_MIX]
    limits = [n if limit is None else min(n, limit) for _, n in DEFAULT_MIX]
    return specs, limits


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train-critic`` parser."""
    p = add_parser(
        subparsers,
        "train-critic",
        help="train a latent critic from rollouts of the base model",
        description=(
            "Sample responses from the base model block by block (as the search does), score "
            "them with the cost and reward models, and train the critic's safety and value "
            "heads. Rollouts are resumable and shard over `accelerate launch` ranks."
        ),
        epilog=EPILOG,
    )
    models = add_model_args(p, critic=False)
    add_threads_arg(models)
    _add_rollout_args(p.add_argument_group("rollouts"))
    _add_training_args(p.add_argument_group("training"))
    p.set_defaults(func=run)


def _add_rollout_args(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--prompts",
        action="append",
        metavar="FILE[:COLUMN]|SET",
        help="prompt file (csv/json/jsonl/txt) or built-in prompt set name, repeatable "
        "(default: "
        + ", ".join(f"{name} ({n})" for name, n in DEFAULT_MIX)
        + "; 200 harmful and 200 benign prompts)",
    )
    group.add_argument(
        "--limit",
        type=int,
        default=None,
        help="at most this many prompts per file (its first ones) or set (spread over it); "
        "with the default mix, caps each set's count (default: all of each --prompts, the "
        "mix's counts otherwise)",
    )
    group.add_argument(
        "--samples-per-prompt", type=int, default=DEFAULT_SAMPLES, help="responses per prompt"
    )
    group.add_argument(
        "--block-len", type=int, default=DEFAULT_BLOCK_LEN, help="B; must equal the search's"
    )
    group.add_argument("--max-new-tokens", type=int, default=DEFAULT_MAX_NEW_TOKENS, help="D")
    group.add_argument(
        "--temperature", type=float, default=DEFAULT_TEMPERATURE, help="sampling temperature"
    )
    group.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass")
    group.add_argument(
        "--budget", type=float, default=None, help="d (default: the cost model's threshold)"
    )
    group.add_argument(
        "--rollouts",
        default=None,
        help="rollout folder (default: <INFERENCEGUARD_HOME>/critic_rollouts/<hash of settings>)",
    )
    group.add_argument(
        "--rollouts-only", action="store_true", help="collect rollouts, do not train"
    )
    group.add_argument(
        "--in-flight",
        type=int,
        default=DEFAULT_IN_FLIGHT,
        help="prompts rolled out at once, sharing batched forwards (1: one at a time)",
    )
    group.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _add_training_args(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--out", default="critic", help="critic folder to write")
    group.add_argument("--seed", type=int, default=0, help="sampling, split and training seed")
    group.add_argument(
        "--val-fraction", type=float, default=0.15, help="prompts held out for early stopping"
    )
    group.add_argument(
        "--test-fraction", type=float, default=0.15, help="prompts held out for the metrics"
    )
    group.add_argument("--max-epochs", type=int, default=200, help="training epochs at most")


def _rollout_dir(args: argparse.Namespace, ids: list[str], settings_doc: str) -> Path:
    if args.rollouts:
        return Path(args.rollouts)
    import hashlib

    from .._io import home_dir

    key = hashlib.sha256((settings_doc + "\n" + "\n".join(ids)).encode()).hexdigest()[:12]
    return home_dir() / "critic_rollouts" / key


def run(args: argparse.Namespace) -> int:
    """Run ``train-critic``; returns the exit code."""
    from .._distributed import process_info
    from ..training.critic.rollouts import collect_rollouts

    specs = model_specs(args)  # a missing folder fails before anything is loaded
    set_threads(args.threads)
    info = process_info()
    items, settings = _prompt_items(args), _rollout_settings(args)
    started = time.perf_counter()
    lm, cost, reward = _load_models(specs, rank_device(args.device, info))
    doc = json.dumps(
        [lm.model_id, cost.id, reward.id, settings.to_dict()], sort_keys=True, default=str
    )
    rollout_dir = _rollout_dir(args, [i.id for i in items], doc)
    if info.is_main:
        print(
            f"train-critic: {len(items)} prompts × {settings.samples_per_prompt} samples, "
            f"B={settings.block_len}, D={settings.max_new_tokens}; model {lm.model_id}, "
            f"cost {cost.id}, reward {reward.id}; rollouts in {rollout_dir}",
            flush=True,
        )
    collect_rollouts(
        items,
        lm,
        cost,
        reward,
        settings,
        rollout_dir,
        progress=not args.no_progress,
        in_flight=args.in_flight,
    )
    rollout_s = time.perf_counter() - started
    if not info.is_main or args.rollouts_only:
        return 0
    return _train_and_save(args, items, rollout_dir, rollout_s)


def _prompt_items(args: argparse.Namespace) -> list[PromptItem]:
    from ..training.critic.rollouts import prompt_items

    if args.prompts:
        return prompt_items(args.prompts, limit=args.limit)
    return prompt_items(*default_prompt_specs(args.limit))


def _rollout_settings(args: argparse.Namespace) -> RolloutSettings:
    from ..lm import SamplerSettings
    from ..training.critic.rollouts import RolloutSettings

    return RolloutSettings(
        samples_per_prompt=args.samples_per_prompt,
        block_len=args.block_len,
        max_new_tokens=args.max_new_tokens,
        sampler=SamplerSettings(temperature=args.temperature, top_p=args.top_p),
        budget=args.budget,
        seed=args.seed,
    )


def _load_models(
    specs: dict[str, Any], device: str | None
) -> tuple[LocalLM, CostModel, RewardModel]:
    from ..lm import LocalLM
    from ..scorers import registry

    lm = LocalLM.from_pretrained(specs["model"], device=device, dtype=specs["dtype"])
    cost = registry.load_cost_model(specs["cost_model"], device=device)
    reward = registry.load_reward_model(specs["reward_model"], device=device)
    return lm, cost, reward


def _train_and_save(
    args: argparse.Namespace, items: list[PromptItem], rollout_dir: Path, rollout_s: float
) -> int:
    from ..critic.io import save_critic
    from ..training.critic.rollouts import load_rollouts
    from ..training.critic.train import TrainSettings, format_summary, train_critic

    data = load_rollouts(rollout_dir)
    wanted = {i.id for i in items}
    if len(data.records) != len(wanted):
        # The folder may hold prompts of an earlier, larger run: train on this run's only.
        data = _subset(data, wanted)
    train_started = time.perf_counter()
    result = train_critic(
        data,
        TrainSettings(
            seed=args.seed,
            val_fraction=args.val_fraction,
            test_fraction=args.test_fraction,
            max_epochs=args.max_epochs,
        ),
        progress=not args.no_progress,
    )
    specs, limits = (
        (args.prompts, [args.limit] * len(args.prompts))
        if args.prompts
        else default_prompt_specs(args.limit)
    )
    # What --prompts/--limit rebuild this run from: spec and its prompt limit (null: all).
    result.critic.metadata["data"]["prompt_specs"] = [
        [str(spec), n] for spec, n in zip(specs, limits, strict=True)
    ]
    out = save_critic(result.critic, args.out)
    print(format_summary(result.metrics))
    print(
        f"saved {out} (rollouts {rollout_s:.0f} s, "
        f"training {time.perf_counter() - train_started:.0f} s)"
    )
    return 0


def _subset(data: RolloutData, wanted: set[str]) -> RolloutData:
    """Only the blocks of prompts in ``wanted`` (re-indexed)."""
    import torch

    from ..training.critic.rollouts import RolloutData

    keep = [i for i, r in enumerate(data.records) if r["prompt_id"] in wanted]
    remap = torch.full((len(data.records),), -1, dtype=torch.long)
    remap[torch.tensor(keep)] = torch.arange(len(keep))
    mask = remap[data.prompt_index] >= 0
    return RolloutData(
        info=data.info,
        records=[data.records[i] for i in keep],
        hidden=data.hidden[mask],
        z=data.z[mask],
        step_frac=data.step_frac[mask],
        within_budget=data.within_budget[mask],
        reward=data.reward[mask],
        prompt_index=remap[data.prompt_index][mask],
    )
