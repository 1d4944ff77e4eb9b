"""The scoring policies on hand-made candidates: what each ranks first, keeps and answers."""

from __future__ import annotations

import pytest
import torch

from inferenceguard.search.scoring import Lagrangian, Penalised
from inferenceguard.search.steps import Beam


def test_penalised_ranks_every_unsafe_candidate_below_every_safe_one(make_ctx, make_cands):
    ctx = make_ctx()
    cands = make_cands(["a", "b", "c"], [0, 0, 0], z=[0.1, -0.01, 0.2])
    scores, eligible = Penalised().score(ctx, cands, torch.tensor([0.0, 100.0, 1.0]), None)
    assert scores.argsort(descending=True).tolist() == [2, 0, 1]
    assert eligible.tolist() == [True, False, True]  # prefix mode: unsafe is dropped


def test_penalised_keeps_unsafe_candidates_in_final_mode_and_for_unguarded_runs(
    make_ctx, make_cands
):
    cands = make_cands(["a", "b"], [0, 0], z=[0.1, -0.5])
    _, eligible = Penalised().score(make_ctx(safety_mode="final"), cands, torch.zeros(2), None)
    assert eligible.tolist() == [True, True]
    unguarded = make_ctx()
    unguarded.enforce_budget = False
    policy = Penalised()
    assert policy.keeps_unsafe(unguarded) and not policy.commits(unguarded)
    assert policy.admit(unguarded, cands, torch.tensor([0, 1])).tolist() == [0, 1]
    assert policy.admit(make_ctx(), cands, torch.tensor([0, 1])).tolist() == [0]


def test_penalised_is_exhausted_only_when_no_candidate_is_safe(make_ctx, make_cands):
    policy, ctx = Penalised(), make_ctx()
    assert policy.exhausts(ctx, make_cands(["a", "b"], [0, 0], z=[-0.1, -0.2]))
    assert not policy.exhausts(ctx, make_cands(["a", "b"], [0, 0], z=[-0.1, 0.0]))


def test_penalised_answers_with_the_best_safe_finished_candidate(make_ctx):
    ctx = make_ctx()  # reward = len(text)
    pool = [
        Beam(text="unsafe but long", tracked_cost=0.9),
        Beam(text="ok", tracked_cost=0.1),
        Beam(text="okay", tracked_cost=0.5),
    ]
    assert Penalised().pick(ctx, pool).text == "okay"


def test_lagrangian_trades_reward_against_cost_and_keeps_everything(make_ctx, make_cands):
    ctx = make_ctx(lagrange_multiplier=10.0)
    cands = make_cands(["a", "b"], [0, 0], z=[0.4, -0.5])  # tracked cost 0.1 and 1.0
    policy = Lagrangian()
    scores, eligible = policy.score(ctx, cands, torch.tensor([1.0, 5.0]), None)
    assert scores.tolist() == pytest.approx([0.0, -5.0], abs=1e-6) and eligible.all()
    assert not policy.exhausts(ctx, cands) and not policy.commits(ctx) and not policy.resamples
    pool = [Beam(text="long unsafe text", tracked_cost=1.0), Beam(text="short", tracked_cost=0.0)]
    assert policy.pick(make_ctx(lagrange_multiplier=20.0), pool).text == "short"  # 16 - 20 < 5
    assert policy.pick(make_ctx(lagrange_multiplier=0.0), pool).text == "long unsafe text"
