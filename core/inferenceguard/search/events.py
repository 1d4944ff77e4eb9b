"""What a strategy yields while it runs and what it returns at the end."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field

import torch

from ..result import FinishReason

__all__ = ["BlockEvent", "Commit", "Outcome", "Search"]


@dataclass(frozen=True)
class Commit:
    """``text`` (the full committed response so far) will start every final answer.

    Attributes:
        text: the committed response text (stop strings cut).
        tokens: its token ids, for releasing it token by token (empty: unknown).
    """

    text: str
    tokens: tuple[int, ...] = ()


@dataclass(frozen=True)
class BlockEvent:
    """The critic's inputs after one verified block, one row per candidate.

    This is exactly what the critic is trained on (:mod:`inferenceguard.training.critic.rollouts`
    records these rows) and what it is asked about at serving time.

    Attributes:
        hidden: `[n, H]` final-layer hidden state at each candidate's last real token.
        z: `[n]` safety state (budget − tracked cost) after the block.
        step_frac: `[n]` tokens budgeted so far (this block included) / ``max_new_tokens``.
    """

    hidden: torch.Tensor
    z: torch.Tensor
    step_frac: torch.Tensor


@dataclass
class Outcome:
    """What a strategy found, before the runner's final verification.

    Attributes:
        tokens: the response's token ids.
        text: the response text (stop strings cut).
        finish_reason: why the strategy ended.
        exhausted: no safe continuation was found.
        z_trace: the safety state after each block of the chosen answer.
        max_prefix_cost: the highest verified cost of its prefixes.
    """

    tokens: list[int]
    text: str
    finish_reason: FinishReason
    exhausted: bool = False
    z_trace: list[float] = field(default_factory=list)
    max_prefix_cost: float = float("-inf")


#: A strategy: yields Commit / BlockEvent, returns the Outcome.
Search = Generator[Commit | BlockEvent, None, Outcome]
