"""Streaming that streams (issue 19): the commit horizon, the early first block, token
deltas and the timing fields, on the tiny model with scripted costs."""

from __future__ import annotations

import hashlib

import pytest

from inferenceguard import CostModel
from inferenceguard.search.baselines import STRATEGIES
from inferenceguard.search.events import BlockEvent, Commit
from inferenceguard.search.steps import Beam, commit_horizon


def _hash_cost(prompt: str, response: str) -> float:
    return hashlib.sha256(f"7:{response}".encode()).digest()[0] / 255.0


HASHED = CostModel.from_callable(_hash_cost, threshold=0.5)
#: Four beams that diverge: with ``H = None`` little is committed before the end.
WIDE = {"n_candidates": 8, "n_beams": 4, "block_len": 3, "max_new_tokens": 12}


def _beam(tokens: list[int], score: float, block: int = 2) -> Beam:
    return Beam(tokens=tokens, boundaries=list(range(0, len(tokens) + 1, block)), score=score)


# --------------------------------------------------------------------------- the step
def test_horizon_step_commits_the_best_beams_next_block_and_drops_the_others():
    beams = [_beam([1, 2, 3, 4], 0.1), _beam([5, 6, 7, 8], 0.9), _beam([5, 6, 9, 9], 0.5)]
    pool = [_beam([1, 2], 1.0), _beam([5, 6], 2.0)]
    keep, kept_pool, committed = commit_horizon(beams, pool, 0, 1)
    assert committed == 2  # two blocks at the front, one allowed behind: one committed
    assert keep == [1, 2] and kept_pool == [pool[1]]
    # Within the horizon nothing is forced, and H = None never forces anything.
    assert commit_horizon(beams, pool, 0, 2) == ([0, 1, 2], pool, 0)
    assert commit_horizon(beams, pool, 0, None) == ([0, 1, 2], pool, 0)


def test_horizon_zero_and_first_block_commit_up_to_the_front():
    beams = [_beam([1, 2, 3, 4], 0.9), _beam([1, 2, 7, 8], 0.5)]
    assert commit_horizon(beams, [], 0, 0)[::2] == ([0], 4)
    # First block early: only the first block is forced, then H = None takes over.
    assert commit_horizon(beams, [], 0, None, first_block=True) == ([0, 1], [], 2)
    assert commit_horizon(beams, [], 2, None, first_block=True) == ([0, 1], [], 2)


# --------------------------------------------------------------------------- the search
def _lags(guard, **overrides) -> list[int]:
    """Blocks between the search front and the committed text, after every step."""
    ctx = guard._context("Hi", None, None, overrides)
    search = STRATEGIES[ctx.config.strategy](ctx)
    steps, committed, lags = 0, 0, []
    block = ctx.config.block_len
    for event in search:
        if isinstance(event, BlockEvent):
            if steps:
                lags.append(steps - committed // block)
            steps += 1
        elif isinstance(event, Commit):
            assert len(event.tokens) > committed  # commits only grow
            committed = len(event.tokens)
    return lags


@pytest.mark.parametrize("horizon", [0, 1, 2])
def test_horizon_bounds_how_far_the_committed_text_trails_the_front(make_guard, horizon):
    guard = make_guard(cost=HASHED, budget=0.8, **WIDE)
    assert max(_lags(guard, commit_horizon=None)) > 2  # without a horizon: commits late
    lags = _lags(guard, commit_horizon=horizon)
    assert lags and max(lags) <= horizon


def test_first_block_early_commits_after_the_first_block(make_guard):
    guard = make_guard(cost=HASHED, budget=0.8, **WIDE)
    assert _lags(guard, commit_horizon=None)[0] == 1
    assert _lags(guard, commit_horizon=None, commit_first_block=True)[0] == 0


@pytest.mark.parametrize(
    ("seed", "ids", "deltas"),
    [
        (
            0,
            [41451, 9723, 43275, 12173, 16317, 48688, 2898, 40230, 41538, 46549, 20718, 4262],
            [
                " furthermore proud confiscatedinflammEND counterproductive",
                " mental Whitney lunchtime pericard Listen illness",
                "",
            ],
        ),
        (
            1,
            [15558, 24525, 36780, 48241, 16309, 25525, 30325, 43041, 31153, 13774, 23045, 8248],
            [
                " tombhanded Adaptiveinclusive prolif retinal brightest Inspiration \"' arrays"
                " deprived insulin",
                "",
            ],
        ),
    ],
)
def test_without_a_horizon_outputs_are_exactly_those_of_the_shared_prefix_search(
    make_guard, seed, ids, deltas
):
    # Recorded with the search before the horizon existed (same tiny model and seed).
    guard = make_guard(cost=HASHED, budget=0.8, seed=seed, commit_horizon=None, **WIDE)
    assert guard.generate("Hi").token_ids == ids
    assert [c.delta for c in guard.stream("Hi", stream_deltas="block")] == deltas


@pytest.mark.parametrize("horizon", [None, 0, 1, 2])
def test_token_deltas_add_up_to_the_block_deltas(make_guard, horizon):
    guard = make_guard(cost=HASHED, budget=0.8, commit_horizon=horizon, **WIDE)
    by_block = [c.delta for c in guard.stream("Hi", stream_deltas="block")]
    by_token = [c.delta for c in guard.stream("Hi", stream_deltas="token")]
    assert "".join(by_token) == "".join(by_block) == guard.generate("Hi").text
    assert len([d for d in by_token if d]) > len([d for d in by_block if d])


def test_token_deltas_hold_back_a_partial_stop_string(make_guard, tiny_lm):
    text = make_guard(do_sample=False, n_candidates=1, n_beams=1).generate("Hi").text
    stop = text[5:9]  # a stop string inside the answer: nothing from it on is shown
    guard = make_guard(do_sample=False, n_candidates=1, n_beams=1, stop=[stop])
    streamed = ""
    for chunk in guard.stream("Hi"):
        streamed += chunk.delta
        assert stop[0] not in streamed[5:]
    assert streamed == text[:5] == chunk.result.text


def test_report_times_the_first_text_and_the_largest_gap(make_guard):
    guard = make_guard(cost=HASHED, budget=0.8, **WIDE)
    for overrides in (
        {"commit_horizon": None},
        {"commit_horizon": 0},
        {"commit_first_block": True},
    ):
        streamed = list(guard.stream("Hi", **overrides))
        report = streamed[-1].result.safety
        assert 0.0 < report.time_to_first_text_s <= report.wall_time_s
        assert 0.0 <= report.max_delta_gap_s <= report.wall_time_s
        generated = guard.generate("Hi", **overrides).safety
        assert 0.0 < generated.time_to_first_text_s <= generated.wall_time_s
    early = guard.generate("Hi", commit_horizon=0).safety
    late = guard.generate("Hi", commit_horizon=None).safety
    assert early.steps == late.steps and early.time_to_first_text_s < late.time_to_first_text_s


def test_an_empty_answer_has_no_first_text_time(make_guard):
    always = CostModel.from_callable(lambda p, r: 1.0, threshold=0.5)
    result = make_guard(cost=always).generate("Hi")
    assert result.text == ""
    assert result.safety.time_to_first_text_s is None and result.safety.max_delta_gap_s is None
