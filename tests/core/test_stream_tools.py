"""``guard.stream(..., tools=...)``: text deltas carry content only, the calls come parsed
on the final chunk (issue 20, item 9), the same way for sync and async streams."""

from __future__ import annotations

import pytest

from inferenceguard import CostModel, GuardConfig, InferenceGuard, RewardModel
from inferenceguard.testing import ScriptedLM

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
CALL = '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'
SCRIPT = "Let me check the weather. " + CALL


@pytest.fixture
def guard(tiny_lm):
    config = GuardConfig(
        n_candidates=1, n_beams=1, block_len=4, max_new_tokens=64, do_sample=False, seed=0
    )
    return InferenceGuard(
        ScriptedLM(tiny_lm, SCRIPT),
        CostModel.from_callable(lambda p, r: 0.0, threshold=0.5),
        RewardModel.from_callable(lambda p, r: 0.0),
        config=config,
    )


def _check(chunks):
    *deltas, final = chunks
    text = "".join(c.delta for c in deltas)
    assert "<tool" not in text and text == "Let me check the weather."
    assert len([c for c in deltas if c.delta]) > 1  # still a stream, not one burst
    assert final.result is not None and final.result.text == SCRIPT  # the raw answer
    assert [(c["name"], c["arguments"]) for c in final.tool_calls] == [
        ("get_weather", {"city": "Paris"})
    ]
    assert final.invalid_tool_calls == []


def test_stream_with_tools_yields_content_and_the_calls_apart(guard):
    _check(list(guard.stream("Weather in Paris?", tools=[WEATHER])))


async def test_astream_with_tools_yields_content_and_the_calls_apart(guard):
    _check([c async for c in guard.astream("Weather in Paris?", tools=[WEATHER])])


def test_tool_choice_none_streams_the_markup_as_plain_text(guard):
    chunks = list(guard.stream("Weather in Paris?", tools=[WEATHER], tool_choice="none"))
    assert "".join(c.delta for c in chunks) == SCRIPT
    assert chunks[-1].tool_calls == []
