"""Safety-state invariants (DESIGN.md §3), property-tested."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from inferenceguard.safety import (
    advance_max_cost,
    is_safe,
    lagrangian_scores,
    penalised_scores,
    safety_increments,
    safety_trace,
)

finite = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, allow_infinity=False)
cost_rows = st.lists(finite, min_size=1, max_size=12)


@given(cost_rows, finite)
def test_z_never_rises_in_prefix_mode(costs, budget):
    z = safety_trace(torch.tensor([costs], dtype=torch.float64), budget)[0]
    assert bool((z[1:] <= z[:-1]).all())


@given(cost_rows, finite)
def test_final_z_nonnegative_exactly_when_every_prefix_within_budget(costs, budget):
    z = safety_trace(torch.tensor([costs], dtype=torch.float64), budget)[0]
    assert bool(z[-1] >= 0) == all(c <= budget for c in costs)


@given(cost_rows, finite)
def test_saute_increment_form_matches_running_max(costs, budget):
    c = torch.tensor([costs], dtype=torch.float64)
    increments = safety_increments(c)
    assert bool((increments[0, 1:] >= 0).all())
    z_saute = budget - torch.cumsum(increments, dim=-1)
    torch.testing.assert_close(z_saute, safety_trace(c, budget))


@given(cost_rows)
def test_incremental_update_equals_batch_trace(costs):
    tracked = torch.tensor([float("-inf")], dtype=torch.float64)
    for c in costs:
        tracked = advance_max_cost(tracked, torch.tensor([c], dtype=torch.float64))
    assert float(tracked[0]) == max(costs)


def test_final_mode_tracks_only_the_latest_cost():
    c = torch.tensor([[0.9, 0.1]])
    assert safety_trace(c, 0.5, mode="final")[0].tolist() == pytest.approx([-0.4, 0.4])
    assert advance_max_cost(
        torch.tensor([0.9]), torch.tensor([0.1]), "final"
    ).tolist() == pytest.approx([0.1])


def test_boundary_cost_equal_to_budget_is_safe():
    assert is_safe(torch.tensor([0.0, -1e-9])).tolist() == [True, False]


@settings(max_examples=200)
@given(
    st.lists(st.tuples(finite, st.floats(-5, 5), st.floats(0, 1)), min_size=1, max_size=20),
    st.floats(1, 100),
    st.booleans(),
)
def test_every_unsafe_candidate_ranks_below_every_safe_one(rows, penalty, with_critic):
    task = torch.tensor([r[0] for r in rows])
    z = torch.tensor([r[1] for r in rows])
    p = torch.tensor([r[2] for r in rows]) if with_critic else None
    scores = penalised_scores(task, z, p_safe=p, penalty=penalty)
    trusted = (z >= 0) & ((p >= 0.5) if p is not None else True)
    doubted = (z >= 0) & ~trusted
    unsafe = z < 0
    for lower, higher in ((unsafe, trusted), (unsafe, doubted), (doubted, trusted)):
        if lower.any() and higher.any():
            assert scores[lower].max() < scores[higher].min()
    # Safe and trusted candidates keep their task order.
    assert torch.equal(scores[trusted], task[trusted])


def test_less_unsafe_candidates_rank_first():
    scores = penalised_scores(torch.tensor([5.0, 0.0]), torch.tensor([-0.1, -3.0]))
    assert scores[0] > scores[1]


def test_penalty_must_be_at_least_one():
    with pytest.raises(ValueError, match="penalty"):
        penalised_scores(torch.zeros(1), torch.zeros(1), penalty=0.5)


def test_lagrangian_score():
    assert lagrangian_scores(torch.tensor([1.0]), torch.tensor([0.5]), multiplier=4).tolist() == [
        -1.0
    ]
