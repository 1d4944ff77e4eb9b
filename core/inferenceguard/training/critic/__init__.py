"""Critic training (DESIGN.md §5): rollouts of the base model, then the two-head fit.

Pipeline::

    items = prompt_items(["advbench", "xstest_safe", "mine.csv:question"], limit=[64, 64, None])
    settings = RolloutSettings(block_len=16)
    collect_rollouts(items, lm, cost, reward, settings, "rollouts/", in_flight=8)
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
