"""Cross-request batching: requests in flight share forwards, and each gets its own answer."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from inferenceguard import CostModel, InferenceGuard, RewardModel
from inferenceguard.config import GuardConfig
from inferenceguard.search.scheduler import BatchingConfig, StepScheduler

PROMPTS = [
    "Hi",
    "Tell me a story about a dragon who learned to paint with watercolours.",
    "What is 2+2?",
    "List three fruits, then explain which one you like best and why, in detail.",
]


def _concurrently(fn, items):
    """Run ``fn`` on every item in its own thread, all started together."""
    start = threading.Barrier(len(items))

    def call(item):
        start.wait()
        return fn(item)

    with ThreadPoolExecutor(len(items)) as pool:
        return list(pool.map(call, items))


def _counting_step_many(lm, monkeypatch):
    """Record the number of rows and of requests in every batched forward."""
    calls: list[tuple[int, int]] = []
    original = lm.step_many

    def counting(states, tokens):
        calls.append((sum(s.n for s in states), len(states)))
        return original(states, tokens)

    monkeypatch.setattr(lm, "step_many", counting)
    return calls


def test_greedy_answers_are_token_identical_alone_and_in_flight(make_guard, tiny_lm, monkeypatch):
    guard = make_guard(do_sample=False, n_candidates=4, n_beams=2, max_new_tokens=12)
    alone = [guard.generate(p).token_ids for p in PROMPTS]
    calls = _counting_step_many(tiny_lm, monkeypatch)
    together = _concurrently(lambda p: guard.generate(p).token_ids, PROMPTS)
    assert together == alone
    # The requests really shared forwards: some forward decoded rows of all four.
    assert max(n_requests for _, n_requests in calls) == len(PROMPTS)
    assert len(calls) < 4 * 12  # fewer forwards than one per request per token


def test_seeded_sampling_is_reproducible_with_others_in_flight(make_guard):
    guard = make_guard(temperature=1.0)
    seeds = [3, 4, 5, 6]
    alone = [guard.generate(p, seed=s).text for p, s in zip(PROMPTS, seeds, strict=True)]
    together = _concurrently(
        lambda ps: guard.generate(ps[0], seed=ps[1]).text, list(zip(PROMPTS, seeds, strict=True))
    )
    assert together == alone


def test_scorer_and_critic_calls_are_batched_across_requests(make_guard):
    sizes: list[int] = []

    def cost_batch(prompts, texts):
        sizes.append(len(texts))
        return [0.0] * len(texts)

    cost = CostModel.from_callable(cost_batch, threshold=0.5, batched=True)
    guard = make_guard(cost=cost, n_candidates=4, n_beams=2, max_new_tokens=8, block_len=4)
    _concurrently(lambda p: guard.generate(p), PROMPTS)
    assert max(sizes) > 4  # one call held candidates of several requests
    assert guard.scheduler.in_flight == (0, 0, 0)


def test_admission_waits_instead_of_exceeding_the_row_limit(tiny_lm, monkeypatch):
    guard = InferenceGuard(
        tiny_lm,
        CostModel.from_callable(lambda p, r: 0.0, threshold=0.5),
        RewardModel.from_callable(lambda p, r: float(len(r))),
        config=GuardConfig(n_candidates=4, n_beams=2, block_len=4, max_new_tokens=8, seed=0),
        batching=BatchingConfig(max_rows=8),
    )
    calls = _counting_step_many(tiny_lm, monkeypatch)
    results = _concurrently(lambda p: guard.generate(p), PROMPTS)
    assert all(r.safety.safe for r in results)
    assert max(rows for rows, _ in calls) <= 8  # never more than two requests' rows
    assert guard.scheduler.in_flight == (0, 0, 0)


def test_cancelled_stream_frees_its_rows_at_the_next_step(make_guard):
    guard = make_guard(max_new_tokens=64, block_len=4)

    async def main():
        stream = guard.astream("Tell me a long story.")
        async for _chunk in stream:
            break  # the reader goes away after the first delta
        await stream.aclose()

    asyncio.run(main())
    assert guard.scheduler.in_flight == (0, 0, 0)


def test_a_paused_stream_does_not_hold_up_other_requests(make_guard):
    guard = make_guard(max_new_tokens=12, block_len=4)
    paused = guard.stream("Hi")
    next(paused)  # admitted, then left waiting for its reader
    other = guard.generate("What is 2+2?")  # would deadlock if the paused one blocked it
    assert other.safety.safe
    rest = list(paused)
    assert rest[-1].result is not None


def test_batching_can_be_turned_off(tiny_lm):
    guard = InferenceGuard(
        tiny_lm,
        CostModel.from_callable(lambda p, r: 0.0, threshold=0.5),
        RewardModel.from_callable(lambda p, r: float(len(r))),
        config=GuardConfig(n_candidates=4, n_beams=2, block_len=4, max_new_tokens=8, seed=0),
        batching=BatchingConfig(enabled=False),
    )
    on = InferenceGuard(
        tiny_lm, guard.cost_model, guard.reward_model, config=guard.config
    ).generate("Hi")
    assert guard.generate("Hi").text == on.text


def test_a_failing_batch_reaches_every_request_in_it():
    scheduler = StepScheduler()
    tickets = [scheduler.admit(1, 1) for _ in range(2)]

    def boom(items):
        raise RuntimeError("scorer failed")

    def call(ticket):
        with ticket.active(), pytest.raises(RuntimeError, match="scorer failed"):
            scheduler.submit("k", boom, 1)
        ticket.release()

    _concurrently(call, tickets)
    assert scheduler.in_flight == (0, 0, 0)


def _hash_cost(salt: int):
    def cost(prompt: str, response: str) -> float:
        return hashlib.sha256(f"{salt}:{prompt}:{response}".encode()).digest()[0] / 255.0

    return cost


@settings(max_examples=10)
@given(
    seed=st.integers(0, 2**16),
    salt=st.integers(0, 2**16),
    budget=st.floats(0.05, 0.95),
    block_len=st.integers(1, 4),
    resample_rounds=st.integers(0, 2),
    mode=st.sampled_from(["prefix", "final"]),
)
def test_nothing_over_budget_with_concurrent_requests(
    make_guard, seed, salt, budget, block_len, resample_rounds, mode
):
    fn = _hash_cost(salt)
    guard = make_guard(
        cost=CostModel.from_callable(fn, threshold=0.5),
        seed=seed,
        budget=budget,
        block_len=block_len,
        resample_rounds=resample_rounds,
        safety_mode=mode,
        max_new_tokens=8,
    )

    def run(prompt):
        streamed = ""
        for chunk in guard.stream(prompt):
            streamed += chunk.delta
            assert fn(prompt, streamed) <= budget or streamed == ""
            if chunk.result is not None:
                assert chunk.result.text == streamed
                assert chunk.result.safety.safe or streamed == ""
        return streamed

    _concurrently(run, PROMPTS)
    assert guard.scheduler.in_flight == (0, 0, 0)


def test_step_many_matches_stepping_each_state_alone(tiny_lm):
    prompts = ["Hi", "A much longer prompt than the first one, with many more tokens in it."]
    together = [tiny_lm.prefill(tiny_lm.encode(tiny_lm.render(p))) for p in prompts]
    alone = [tiny_lm.prefill(tiny_lm.encode(tiny_lm.render(p))) for p in prompts]
    for states, rows in ((together, (3, 2)), (alone, (3, 2))):
        for state, n in zip(states, rows, strict=True):
            state.select(torch.zeros(n, dtype=torch.long))
    for _ in range(4):
        tokens = [s.next_logits.argmax(-1) for s in alone]
        tiny_lm.step_many(together, tokens)
        for state, t in zip(alone, tokens, strict=True):
            tiny_lm.step(state, t)
        for a, b in zip(together, alone, strict=True):
            assert a.length == b.length
            torch.testing.assert_close(a.next_logits, b.next_logits, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(a.hidden, b.hidden, atol=1e-5, rtol=1e-5)
    # the caches stay usable alone: roll back one token and step again
    state = together[0]
    checkpoint = state.checkpoint()
    tiny_lm.step(state, state.next_logits.argmax(-1))
    state.rollback(checkpoint)
    assert state.cache.get_seq_length() == state.length
