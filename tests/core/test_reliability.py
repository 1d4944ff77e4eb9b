"""Concurrency, cancellation and faults: one guard shared by many callers stays correct."""

from __future__ import annotations

import asyncio
import gc
from concurrent.futures import ThreadPoolExecutor

import pytest

from inferenceguard import CostModel, ScorerError


def test_threads_sharing_one_guard_get_their_own_answers(make_guard):
    guard = make_guard(n_candidates=4, n_beams=2)
    seeds = list(range(8))
    expected = {s: guard.generate("Hi", seed=s).text for s in seeds}
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda s: (s, guard.generate("Hi", seed=s)), seeds * 2))
    for seed, result in results:
        assert result.text == expected[seed]
        assert result.safety.config["seed"] == seed


async def test_asyncio_tasks_sharing_one_guard_get_their_own_answers(make_guard):
    guard = make_guard()
    expected = [guard.generate("Hi", seed=s).text for s in range(4)]
    results = await asyncio.gather(*(guard.agenerate("Hi", seed=s) for s in range(4)))
    assert [r.text for r in results] == expected


def test_closing_a_stream_early_stops_the_search(make_guard, tiny_lm, monkeypatch):
    guard = make_guard(block_len=2, max_new_tokens=12)
    calls = []
    original = tiny_lm.model.forward
    monkeypatch.setattr(
        tiny_lm.model, "forward", lambda *a, **k: calls.append(1) or original(*a, **k)
    )
    stream = guard.stream("Hi")
    next(stream)
    seen = len(calls)
    stream.close()
    gc.collect()
    assert len(calls) == seen  # no more forwards after close
    assert guard.generate("Hi").safety.safe  # and the guard still serves


async def test_cancelling_an_async_stream_leaves_the_guard_usable(make_guard):
    guard = make_guard(block_len=1, max_new_tokens=12)

    async def consume():
        async for _ in guard.astream("Hi"):
            await asyncio.sleep(0.05)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await guard.agenerate("Hi")).safety.safe


def test_a_failing_request_leaves_the_guard_usable(make_guard):
    state = {"fail": True}

    def flaky(prompt, response):
        if state["fail"] and response:
            raise RuntimeError("scorer crashed")
        return 0.0

    guard = make_guard(cost=CostModel.from_callable(flaky, threshold=0.5))
    with pytest.raises(ScorerError, match="scorer crashed"):
        guard.generate("Hi")
    state["fail"] = False
    assert guard.generate("Hi").safety.safe


@pytest.mark.parametrize(
    ("fn", "match"),
    [
        (lambda ps, rs: [float("nan")] * len(rs), "non-finite"),
        (lambda ps, rs: [0.0] * (len(rs) + 1), "shape"),
    ],
)
def test_cost_models_returning_garbage_are_rejected(make_guard, fn, match):
    guard = make_guard(cost=CostModel.from_callable(fn, threshold=0.5, batched=True))
    with pytest.raises(ScorerError, match=match):
        guard.generate("Hi")
