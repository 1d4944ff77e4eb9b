"""Critic training (DESIGN.md §5): rollouts of the base model, then the two-head fit.

Pipeline::

    items = prompt_items(["advbench/harmful_behaviors.csv:goal", "mt_bench_question.jsonl"])
    collect_rollouts(items, lm, cost, reward, RolloutSettings(block_len=16), "rollouts/")
    result = train_critic(load_rollouts("rollouts/"))
    save_critic(result.critic, "my_critic/")      # from inferenceguard.critic

or, from the shell, ``inferenceguard train-critic`` (see ``--help``).
"""

from .rollouts import (
    PromptItem,
    RolloutData,
    RolloutSettings,
    collect_rollouts,
    load_rollouts,
    prompt_items,
)
from .train import TrainResult, TrainSettings, format_summary, train_critic

__all__ = [
    "PromptItem",
    "RolloutData",
    "RolloutSettings",
    "TrainResult",
    "TrainSettings",
    "collect_rollouts",
    "format_summary",
    "load_rollouts",
    "prompt_items",
    "train_critic",
]
