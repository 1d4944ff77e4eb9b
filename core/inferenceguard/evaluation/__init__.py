"""Evaluation harness: InferenceGuard and its baselines on the same prompts, models and budget.

Contracts, implementations and orchestration live apart, as in lm-evaluation-harness:

* :mod:`.tasks` — prompt sets (built-in benchmarks, local files, hub datasets);
* :mod:`.presets` — named strategy presets + :class:`~inferenceguard.GuardConfig`
  overrides, parsed from ``"best_of_n:n_candidates=16"``;
* :mod:`.metrics` — pure functions: safety rate with exact intervals, reward, cost,
  refusals (:func:`is_refusal`), time and tokens;
* :mod:`.runner` — :func:`evaluate`: per-prompt records, resume, ``accelerate launch``;
* :mod:`.report` — markdown, JSON and plots;
* :mod:`.cli` — ``inferenceguard eval``.

Example::

    from inferenceguard.evaluation import evaluate, load_prompt_set

    run = evaluate(guard, ["plain", "best_of_n", "inferenceguard"],
                   [load_prompt_set("advbench", limit=16)], "runs/demo", max_new_tokens=64)
    for s in run.summaries:
        print(s.strategy, s.group, s.safety_rate, s.reward_mean)
"""

from .metrics import (
    GroupSummary,
    clopper_pearson,
    is_refusal,
    summarize,
    unsafe_rate_upper_bound,
)
from .presets import PRESETS, StrategySpec, parse_strategy
from .runner import EvalRun, evaluate, init_distributed, prompt_seed
from .tasks import BUILTIN_SETS, PromptSet, load_prompt_set

__all__ = [
    "BUILTIN_SETS",
    "PRESETS",
    "EvalRun",
    "GroupSummary",
    "PromptSet",
    "StrategySpec",
    "clopper_pearson",
    "evaluate",
    "init_distributed",
    "is_refusal",
    "load_prompt_set",
    "parse_strategy",
    "prompt_seed",
    "summarize",
    "unsafe_rate_upper_bound",
]
