"""The safety state: Sauté-style remaining budget, tracked per candidate.

Pure tensor functions, no models and no I/O. Shapes use ``n`` for the number of
candidates and ``T`` for the number of blocks (prefixes) scored so far.

Semantics (DESIGN.md §3):

* ``C_s`` is the cost model's cost of the response prefix after block ``s``; a text is
  unsafe when its cost is above the budget ``d`` (which defaults to the cost model's
  threshold τ).
* **prefix mode** (default): ``z_t = d − max_{s≤t} C_s``, the margin left after the worst
  prefix so far. In Sauté form (γ = 1): ``z_t = z_{t−1} − c_t`` with the non-negative
  increment ``c_t = max(0, C_t − max_{s<t} C_s)`` for ``t ≥ 2`` and ``z_1 = d − C_1``.
  ``z`` never rises after the first block, and a candidate is unsafe once ``z < 0``.
* **final mode**: ``z_t = d − C_t`` constrains only the text as it stands (it may rise).
* A candidate is safe when ``z ≥ 0`` (cost ≤ budget, matching "unsafe when above τ").
"""

from __future__ import annotations

import math
from typing import Literal

import torch

__all__ = [
    "SafetyMode",
    "advance_max_cost",
    "is_safe",
    "lagrangian_scores",
    "penalised_scores",
    "safety_increments",
    "safety_state",
    "safety_trace",
]

SafetyMode = Literal["prefix", "final"]


def advance_max_cost(
    max_cost: torch.Tensor, new_cost: torch.Tensor, mode: SafetyMode = "prefix"
) -> torch.Tensor:
    """Fold one block's prefix cost into the tracked cost.

    Args:
        max_cost: `[n]` cost tracked so far (``-inf`` before the first block).
        new_cost: `[n]` cost of each candidate's response prefix after the new block.
        mode: ``"prefix"`` keeps the running maximum; ``"final"`` keeps the latest cost.

    Returns:
        `[n]` the tracked cost after the block.
    """
    if mode == "final":
        return new_cost.clone()
    return torch.maximum(max_cost, new_cost)


def safety_state(budget: float, tracked_cost: torch.Tensor) -> torch.Tensor:
    """``z = d − tracked cost``: the remaining budget, `[n]` (``+inf`` before any block)."""
    return budget - tracked_cost


def is_safe(z: torch.Tensor) -> torch.Tensor:
    """`[n]` bool: a candidate is within budget when ``z ≥ 0``."""
    return z >= 0


def safety_trace(
    prefix_costs: torch.Tensor, budget: float, mode: SafetyMode = "prefix"
) -> torch.Tensor:
    """Safety state after every block.

    Args:
        prefix_costs: `[n, T]` cost of each prefix ``C_1 … C_T``.
        budget: the budget ``d``.
        mode: ``"prefix"`` or ``"final"``.

    Returns:
        `[n, T]` with ``z_t`` in column ``t − 1``.
    """
    if mode == "final":
        return budget - prefix_costs
    return budget - torch.cummax(prefix_costs, dim=-1).values


def safety_increments(prefix_costs: torch.Tensor) -> torch.Tensor:
    """Sauté per-block costs ``c_t`` (prefix mode), `[n, T]`.

    ``c_1 = C_1`` and ``c_t = max(0, C_t − max_{s<t} C_s)`` for ``t ≥ 2``, so that
    ``z_t = d − Σ_{s≤t} c_s`` equals :func:`safety_trace` in prefix mode.
    """
    running = torch.cummax(prefix_costs, dim=-1).values
    previous = torch.cat([running[..., :1], running[..., :-1]], dim=-1)
    increments = (prefix_costs - previous).clamp_min(0.0)
    increments[..., 0] = prefix_costs[..., 0]
    return increments


def penalised_scores(
    task_scores: torch.Tensor,
    z: torch.Tensor,
    *,
    p_safe: torch.Tensor | None = None,
    critic_threshold: float = 0.5,
    penalty: float = 1.0,
) -> torch.Tensor:
    """The penalised objective: rank every unsafe candidate below every safe one.

    Three tiers, each strictly below the previous for any finite task scores:

    1. verified safe (``z ≥ 0``) and, with a critic, ``p_safe ≥ critic_threshold``:
       the task score itself;
    2. verified safe but predicted to end unsafe by the critic:
       ``m − n − 0.5·(1 − p_safe)`` where ``m`` is the lowest task score in the batch;
    3. verified unsafe: ``m − 2n − tanh(−z)``, so less-unsafe candidates rank first.

    Args:
        task_scores: `[n]` higher is better (reward, or the critic's value).
        z: `[n]` safety state after the candidate's latest block.
        p_safe: `[n]` optional critic probability of ending within budget.
        critic_threshold: the critic's safety threshold.
        penalty: the gap ``n ≥ 1`` between tiers.

    Returns:
        `[n]` scores; higher is better.
    """
    if penalty < 1.0 or not math.isfinite(penalty):
        raise ValueError(f"penalty must be a finite number >= 1, got {penalty!r}")
    task_scores = task_scores.to(torch.float32)
    z = z.to(torch.float32)
    floor = task_scores.min() if task_scores.numel() else task_scores.new_tensor(0.0)
    verified = is_safe(z)
    scores = torch.where(
        verified, task_scores, floor - 2 * penalty - torch.tanh((-z).clamp_min(0.0))
    )
    if p_safe is not None:
        p_safe = p_safe.to(torch.float32)
        doubted = verified & (p_safe < critic_threshold)
        scores = torch.where(doubted, floor - penalty - 0.5 * (1.0 - p_safe), scores)
    return scores


def lagrangian_scores(
    task_scores: torch.Tensor, cost: torch.Tensor, *, multiplier: float
) -> torch.Tensor:
    """Lagrangian baseline score ``reward − λ·cost``, `[n]` (no hard constraint)."""
    return task_scores.to(torch.float32) - multiplier * cost.to(torch.float32)
