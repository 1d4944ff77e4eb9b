"""The latent critic (DESIGN.md §5): rollouts, the model, training, and its file format.

Pipeline::

    items = prompt_items(["advbench/harmful_behaviors.csv:goal", "mt_bench_question.jsonl"])
    collect_rollouts(items, lm, cost, reward, RolloutSettings(block_len=16), "rollouts/")
    result = train_critic(load_rollouts("rollouts/"))
    save_critic(result.critic, "my_critic/")
    guard = InferenceGuard(lm, cost, reward, critic=load_critic("my_critic/", lm=lm, cost_model=cost))

or, from the shell, ``inferenceguard train-critic`` (see ``--help``).
"""

from .io import load_critic, load_default_critic, read_critic_metadata, save_critic
from .model import CriticArchitecture, LatentCritic
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
    "CriticArchitecture",
    "LatentCritic",
    "PromptItem",
    "RolloutData",
    "RolloutSettings",
    "TrainResult",
    "TrainSettings",
    "collect_rollouts",
    "format_summary",
    "load_critic",
    "load_default_critic",
    "load_rollouts",
    "prompt_items",
    "read_critic_metadata",
    "save_critic",
    "train_critic",
]
