"""One reply protocol: the same scripted model outputs through every front end agree.

Each case makes the tiny model write a fixed text (``ScriptedLM``) under a cost model and
request settings, then asks the LangChain chat model, the LlamaIndex LLM and the
OpenAI-compatible server (through FastAPI's ``TestClient``), each streamed and not. The
content, the tool calls (name and arguments) and the invalid tool calls (name and raw
text) must be the same everywhere, and equal what :mod:`inferenceguard.reply` decides.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("langchain_core")
pytest.importorskip("llama_index.core")

from fastapi.testclient import TestClient
from llama_index.core.base.llms.types import ChatMessage, ToolCallBlock

from inferenceguard import CostModel, GuardConfig, InferenceGuard, LocalLM, RewardModel
from inferenceguard.server import create_app
from inferenceguard.testing import ScriptedLM, keyword_cost
from langchain_inferenceguard import ChatInferenceGuard
from llamaindex_inferenceguard import InferenceGuardLLM

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Current time in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
PARIS = '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'
ROME_TIME = '<tool_call>{"name": "get_time", "arguments": {"city": "Rome"}}</tool_call>'
PROMPT = "What is the weather in Paris?"


@dataclass(frozen=True)
class Reply:
    """What a user of any front end reads: content, calls and invalid calls."""

    content: str
    calls: list[tuple[str, dict[str, Any]]]
    invalid: list[tuple[str | None, str]]


@dataclass(frozen=True)
class Case:
    script: str
    expected: Reply
    settings: dict[str, Any] = field(default_factory=dict)
    """Request settings, given to every front end in its own call."""
    unsafe_word: str | None = None
    finish: str = "stop"


CASES = {
    "plain text": Case("Paris is lovely in spring.", Reply("Paris is lovely in spring.", [], [])),
    "one call": Case(PARIS, Reply("", [("get_weather", {"city": "Paris"})], [])),
    "two calls": Case(
        PARIS + "\n" + ROME_TIME,
        Reply("", [("get_weather", {"city": "Paris"}), ("get_time", {"city": "Rome"})], []),
    ),
    "text then a call": Case(
        "Let me check. " + PARIS,
        Reply("Let me check.", [("get_weather", {"city": "Paris"})], []),
    ),
    "call cut off at max_tokens": Case(
        PARIS,
        Reply("", [], [("get_weather", '<tool_call>{"name": "get_weather", "arguments": {"')]),
        settings={"max_tokens": 17},
        finish="length",
    ),
    "call cut off by the safety stop": Case(
        "I will look. " + PARIS,
        Reply(
            "I will look.",
            [],
            [("get_weather", '<tool_call>{"name": "get_weather", "arguments": {"city": "')],
        ),
        unsafe_word="Paris",
        finish="safety",
    ),
    "malformed JSON": Case(
        "Hm. <tool_call>{get_weather: Paris}</tool_call>",
        Reply("Hm.", [], [(None, "<tool_call>{get_weather: Paris}</tool_call>")]),
    ),
    "stop string inside a call": Case(
        PARIS,
        Reply("", [], [("get_weather", '<tool_call>{"name": "get_weather", "')]),
        settings={"stop": "arguments"},
    ),
}


def _guard(tiny_lm: LocalLM, case: Case) -> InferenceGuard:
    cost = (
        keyword_cost([case.unsafe_word])
        if case.unsafe_word
        else CostModel.from_callable(lambda p, r: 0.0, threshold=0.5, id="zero-cost")
    )
    reward = RewardModel.from_callable(lambda p, r: float(len(r)), id="length")
    config = GuardConfig(n_candidates=2, n_beams=1, block_len=4, max_new_tokens=64, seed=0)
    return InferenceGuard(ScriptedLM(tiny_lm, case.script), cost, reward, config=config)


# --------------------------------------------------------------------------- front ends
def via_langchain(guard: InferenceGuard, settings: dict[str, Any], stream: bool) -> Reply:
    llm = ChatInferenceGuard(guard=guard).bind_tools([WEATHER, TIME])
    if stream:
        message = None
        for chunk in llm.stream(PROMPT, **settings):
            message = chunk if message is None else message + chunk
    else:
        message = llm.invoke(PROMPT, **settings)
    return Reply(
        content=message.content,
        calls=[(c["name"], c["args"]) for c in message.tool_calls],
        invalid=[(c["name"], c["args"]) for c in message.invalid_tool_calls],
    )


def via_llamaindex(guard: InferenceGuard, settings: dict[str, Any], stream: bool) -> Reply:
    llm = InferenceGuardLLM(guard=guard)
    messages = [ChatMessage(role="user", content=PROMPT)]
    if stream:
        responses = list(llm.stream_chat(messages, tools=[WEATHER, TIME], **settings))
        assert "".join(r.delta or "" for r in responses) == (responses[-1].message.content or "")
        response = responses[-1]
    else:
        response = llm.chat(messages, tools=[WEATHER, TIME], **settings)
    message = response.message
    blocks = [b for b in message.blocks if isinstance(b, ToolCallBlock)]
    return Reply(
        content=message.content or "",
        calls=[(b.tool_name, b.tool_kwargs) for b in blocks],
        invalid=[
            (c["name"], c["arguments"])
            for c in message.additional_kwargs.get("invalid_tool_calls", [])
        ],
    )


def via_server(guard: InferenceGuard, settings: dict[str, Any], stream: bool) -> Reply:
    body = {"messages": [{"role": "user", "content": PROMPT}], "tools": [WEATHER, TIME]}
    body.update(settings, stream=stream)
    with TestClient(create_app(guard)) as client:
        response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    if not stream:
        message = response.json()["choices"][0]["message"]
        deltas = [message]
    else:
        events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
        assert events[-1] == "[DONE]"
        chunks = [json.loads(e) for e in events[:-1]]
        deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    calls = [c for d in deltas for c in d.get("tool_calls") or []]
    return Reply(
        content="".join(d.get("content") or "" for d in deltas),
        calls=[(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls],
        invalid=[
            (c["name"], c["arguments"]) for d in deltas for c in d.get("invalid_tool_calls") or []
        ],
    )


FRONT_ENDS: dict[str, Callable[[InferenceGuard, dict[str, Any], bool], Reply]] = {
    "langchain": via_langchain,
    "llamaindex": via_llamaindex,
    "server": via_server,
}


@pytest.mark.parametrize("case_name", list(CASES))
def test_every_front_end_gives_the_same_reply(tiny_lm: LocalLM, case_name: str) -> None:
    case = CASES[case_name]
    guard = _guard(tiny_lm, case)
    result = guard.generate(PROMPT, tools=[WEATHER, TIME], **_core_settings(case.settings))
    assert result.finish_reason == case.finish
    replies = {
        f"{name} {'stream' if stream else 'invoke'}": run(guard, case.settings, stream)
        for name, run in FRONT_ENDS.items()
        for stream in (False, True)
    }
    for where, reply in replies.items():
        assert reply == case.expected, where


def _core_settings(settings: dict[str, Any]) -> dict[str, Any]:
    from inferenceguard.config import request_overrides

    return request_overrides(**settings)
