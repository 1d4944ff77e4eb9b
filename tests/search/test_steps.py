"""Each step of the block search on small hand-made tensors (and the tiny model where a
step samples)."""

from __future__ import annotations

import pytest
import torch

from inferenceguard import RewardModel
from inferenceguard.search.steps import (
    Beam,
    candidate_width,
    critic_features,
    expand,
    extend_beams,
    finished_rows,
    next_target,
    sample_verified,
    select_top_k,
    shared_prefix,
    task_scores,
    verify,
)
from inferenceguard.testing import keyword_cost


def test_expand_repeats_each_beam_width_times_in_beam_order():
    assert expand(3, 2).tolist() == [0, 0, 1, 1, 2, 2]
    assert expand(2, torch.tensor([1, 3])).tolist() == [0, 1, 1, 1]  # per-beam widths
    assert expand(1, 4).tolist() == [0, 0, 0, 0]


def test_candidate_width_gives_every_live_beam_at_least_one_child():
    assert candidate_width(16, 4) == 4
    assert candidate_width(2, 4) == 1


def test_select_top_k_keeps_the_best_eligible_and_splits_off_finished_ones():
    scores = torch.tensor([0.1, 0.9, 0.5, 0.7, 0.3])
    eligible = torch.tensor([True, False, True, True, True])
    finished = torch.tensor([False, False, True, False, False])
    live, done = select_top_k(scores, eligible, finished, k=3)
    assert live.tolist() == [3, 4]  # 1 is best but ineligible; 2 is taken but finished
    assert done.tolist() == [2]


def test_select_top_k_breaks_ties_by_row_order():
    scores = torch.zeros(6)
    live, done = select_top_k(
        scores, torch.ones(6, dtype=torch.bool), torch.zeros(6, dtype=torch.bool), 4
    )
    assert live.tolist() == [0, 1, 2, 3] and done.numel() == 0


def test_select_top_k_ranks_an_eligible_minus_infinity_above_ineligible_rows():
    scores = torch.tensor([5.0, float("-inf")])
    live, _ = select_top_k(scores, torch.tensor([False, True]), torch.zeros(2, dtype=torch.bool), 1)
    assert live.tolist() == [1]


def test_select_top_k_gives_every_request_its_own_k_slots():
    scores = torch.tensor([0.1, 0.9, 0.8, 0.2, 0.7, 0.3])
    request = torch.tensor([0, 0, 1, 1, 0, 1])
    live, done = select_top_k(
        scores, torch.ones(6, dtype=torch.bool), torch.zeros(6, dtype=torch.bool), 2, request
    )
    assert live.tolist() == [1, 4, 2, 5] and done.numel() == 0


def test_finished_rows_are_ended_or_at_the_length_limit(make_cands):
    cands = make_cands(["a", "b", "c"], [0, 0, 0], finished=[True, False, False], lengths=[1, 3, 2])
    assert finished_rows(cands, used=9, max_new=12).tolist() == [True, True, False]


def test_extend_beams_appends_the_block_to_the_parent_history(make_cands):
    parents = [Beam(tokens=[7], boundaries=[0, 1], tracked_cost=0.1, z_trace=[0.4])]
    cands = make_cands(["x", "y"], [0, 0], z=[0.3, -0.2], finished=[True, False])
    scores = torch.tensor([2.0, 1.0])
    done = extend_beams(parents, cands, torch.tensor([0]), scores, finished=True)[0]
    live = extend_beams(parents, cands, torch.tensor([1]), scores, finished=False)[0]
    assert done.tokens == [0, 0, 0] and done.boundaries == [0, 1, 3] and done.finish == "stop"
    assert done.z_trace == pytest.approx([0.4, 0.3]) and done.score == 2.0
    assert live.finish is None and live.tracked_cost == pytest.approx(0.7)


def test_shared_prefix_is_the_longest_common_block_boundary():
    a = Beam(tokens=[1, 2, 3, 4], boundaries=[0, 2, 4])
    b = Beam(tokens=[1, 2, 9, 9], boundaries=[0, 2, 4])
    c = Beam(tokens=[1, 2, 3, 4, 5], boundaries=[0, 2, 5])
    assert shared_prefix([a, b]) == 2
    assert shared_prefix([a, c]) == 2
    assert shared_prefix([a]) == 4
    assert (
        shared_prefix([Beam(tokens=[1], boundaries=[0, 1]), Beam(tokens=[2], boundaries=[0, 1])])
        == 0
    )
    assert shared_prefix([]) == 0


def test_verify_scores_texts_and_tracks_the_worst_prefix(make_ctx, make_cands):
    ctx = make_ctx(cost=keyword_cost(["bad"]))
    cands = make_cands(["fine", "bad", "fine"], [0, 1, 2])
    verify(ctx, cands, parent_cost=torch.tensor([0.0, 0.0, 1.0]))
    assert cands.cost.tolist() == [0.0, 1.0, 0.0]
    assert cands.tracked.tolist() == [0.0, 1.0, 1.0]  # prefix mode never forgets a bad prefix
    assert cands.z.tolist() == [0.5, -0.5, -0.5] and cands.safe.tolist() == [True, False, False]
    final = make_ctx(cost=keyword_cost(["bad"]), safety_mode="final")
    verify(final, cands, parent_cost=torch.tensor([0.0, 0.0, 1.0]))
    assert cands.safe.tolist() == [True, False, True]


def test_critic_features_use_the_budgeted_tokens_for_every_row(make_block):
    block, z = make_block([1, 3], [True, False]), torch.tensor([0.25, 0.5])
    event = critic_features(block, z, tokens_budgeted=8, max_new=16)
    assert event.step_frac.tolist() == [0.5, 0.5]
    assert torch.equal(event.hidden, block.hidden) and torch.equal(event.z, z)


def test_task_scores_skip_the_reward_model_for_a_lone_candidate(make_ctx, make_cands):
    calls = []
    reward = RewardModel.from_callable(lambda p, r: calls.append(r) or 1.0)
    ctx = make_ctx(reward=reward)
    task, p_safe = task_scores(ctx, make_cands(["a"], [0]), None, rank_single=False)
    assert task.tolist() == [0.0] and p_safe is None and calls == []
    task, _ = task_scores(ctx, make_cands(["a"], [0]), None, rank_single=True)
    assert task.tolist() == [1.0] and calls == ["a"]


def test_task_scores_ask_the_critic_when_given_features(make_ctx, make_cands):
    class Critic:
        def predict(self, hidden, z, step_frac):
            return torch.full_like(z, 0.25), hidden[:, 0]

    ctx = make_ctx(critic_ranking="value")
    ctx.critic = Critic()
    cands = make_cands(["a", "b"], [0, 0])
    event = critic_features(cands.block, cands.z, 4, 8)
    task, p_safe = task_scores(ctx, cands, event, rank_single=False)
    assert task.tolist() == [0.0, 2.0] and p_safe.tolist() == [0.25, 0.25]
    assert ctx.stats.critic_used


def test_adaptive_narrowing_only_while_every_live_beam_is_far_inside_the_budget(make_ctx):
    ctx = make_ctx(adaptive=True, adaptive_margin=0.25, adaptive_min_candidates=2, n_candidates=8)
    assert next_target(ctx, 8, torch.tensor([0.3, 0.4]), rounds=0) == 2
    assert next_target(ctx, 2, torch.tensor([0.3, 0.1]), rounds=0) == 8
    assert next_target(ctx, 2, torch.tensor([0.3, 0.4]), rounds=1) == 2  # resampled: unchanged
    assert next_target(make_ctx(n_candidates=8), 8, torch.tensor([0.4]), rounds=0) == 8


def test_sample_verified_penalises_and_resamples_until_a_candidate_is_safe(tiny_lm, make_ctx):
    ctx = make_ctx(tiny_lm, do_sample=False, logit_penalty=1e4, resample_rounds=3)
    ctx.prompt_ids = tiny_lm.encode(tiny_lm.render("Hi"))
    state = tiny_lm.prefill(ctx.prompt_ids)
    parents = expand(1, 2)
    state.select(parents)
    first = tiny_lm.decode(state.next_logits[0].argmax(dim=-1, keepdim=True))
    ctx.cost_model = keyword_cost([first])
    cands = sample_verified(ctx, state, [Beam()], parents, 3, resample_rounds=3)
    assert cands.rounds >= 1 and bool(cands.safe.all())
    assert all(first.lower() not in t.lower() for t in cands.texts)
    assert ctx.stats.all_unsafe_steps == 1 and ctx.stats.resample_rounds == cands.rounds
    assert state.length == len(ctx.prompt_ids) + 3  # the rejected blocks were rolled back
