"""Scoring policies: how a step ranks candidates and which ones it may keep.

* :class:`Penalised` — InferenceGuard and the plain baselines (DESIGN.md §4): every
  verified-unsafe candidate ranks below every safe one; with the budget enforced, an
  unsafe candidate is never kept in prefix mode and never becomes an answer.
* :class:`Lagrangian` — the ``*_lagrangian`` baselines: ``reward − λ·cost``, no hard
  constraint, nothing is ever dropped for being unsafe.

A policy replaces the search's former ``lagrangian`` / ``keep_unsafe`` / ``strict`` /
``exhausted`` flags: the loop asks the policy, never a flag.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from ..safety import lagrangian_scores
from .context import SearchContext
from .steps import Beam, Candidates, penalised

__all__ = ["Lagrangian", "Penalised", "ScoringPolicy"]


class ScoringPolicy(Protocol):
    """What :func:`~inferenceguard.search.beam.block_search` asks about candidates.

    Attributes:
        resamples: an all-unsafe step is rolled back and resampled with a penalty.
        rank_single: a lone candidate is scored by the reward model too.
    """

    resamples: bool
    rank_single: bool

    def keeps_unsafe(self, ctx: SearchContext) -> bool:
        """Unsafe candidates stay in the search (and may be answers)."""

    def exhausts(self, ctx: SearchContext, cands: Candidates) -> bool:
        """This step proves no safe continuation was found."""

    def score(
        self, ctx: SearchContext, cands: Candidates, task: torch.Tensor, p_safe: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Selection scores `[n]` (higher is better) and which candidates are eligible `[n]`."""

    def admit(self, ctx: SearchContext, cands: Candidates, done: torch.Tensor) -> torch.Tensor:
        """Which finished rows ``done`` `[m]` may become answers (the pool), `[≤m]`."""

    def commits(self, ctx: SearchContext) -> bool:
        """The search may stream its shared prefix (text that every answer will start with)."""

    def pick(self, ctx: SearchContext, pool: Sequence[Beam]) -> Beam:
        """The answer among finished candidates (``pool`` is not empty)."""


@dataclass(frozen=True)
class Penalised:
    """The penalised objective (:func:`~inferenceguard.safety.penalised_scores`)."""

    resamples: bool = True
    rank_single: bool = False

    def keeps_unsafe(self, ctx: SearchContext) -> bool:
        # Only the evaluation of unguarded baselines keeps unsafe candidates (ranked last).
        return not ctx.enforce_budget

    def exhausts(self, ctx: SearchContext, cands: Candidates) -> bool:
        return not bool(cands.safe.any())

    def score(
        self, ctx: SearchContext, cands: Candidates, task: torch.Tensor, p_safe: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        scores = penalised(ctx, task, cands.z, p_safe)
        # Prefix mode: an unsafe candidate can never become safe again, so it is dropped.
        if self.commits(ctx):
            return scores, cands.safe
        return scores, torch.ones_like(cands.safe)

    def admit(self, ctx: SearchContext, cands: Candidates, done: torch.Tensor) -> torch.Tensor:
        return done if self.keeps_unsafe(ctx) else done[cands.safe[done]]

    def commits(self, ctx: SearchContext) -> bool:
        return ctx.config.safety_mode == "prefix" and not self.keeps_unsafe(ctx)

    def pick(self, ctx: SearchContext, pool: Sequence[Beam]) -> Beam:
        # Safe answers first; unsafe ones are only in the pool of unguarded baselines.
        pool = [b for b in pool if b.tracked_cost <= ctx.budget] or list(pool)
        if len(pool) == 1:
            return pool[0]
        # The answer is the finished candidate with the best verified final reward.
        reward = ctx.reward([b.text for b in pool])
        return pool[int(torch.argmax(reward))]


@dataclass(frozen=True)
class Lagrangian:
    """The Lagrangian baseline: ``reward − λ·tracked cost``, unsafe candidates kept."""

    resamples: bool = False
    rank_single: bool = True

    def keeps_unsafe(self, ctx: SearchContext) -> bool:
        return True

    def exhausts(self, ctx: SearchContext, cands: Candidates) -> bool:
        return False

    def score(
        self, ctx: SearchContext, cands: Candidates, task: torch.Tensor, p_safe: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        scores = lagrangian_scores(task, cands.tracked, multiplier=ctx.config.lagrange_multiplier)
        return scores, torch.ones_like(cands.safe)

    def admit(self, ctx: SearchContext, cands: Candidates, done: torch.Tensor) -> torch.Tensor:
        return done

    def commits(self, ctx: SearchContext) -> bool:
        return False

    def pick(self, ctx: SearchContext, pool: Sequence[Beam]) -> Beam:
        if len(pool) == 1:
            return pool[0]
        reward = ctx.reward([b.text for b in pool])
        costs = torch.tensor([b.tracked_cost for b in pool])
        scores = lagrangian_scores(reward, costs, multiplier=ctx.config.lagrange_multiplier)
        return pool[int(torch.argmax(scores))]
