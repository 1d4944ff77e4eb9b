"""Tool calling, structured output and an agent loop, made deterministic with ScriptedLM.

``ScriptedLM`` forces the tiny model to write a given text while the whole guarded search
(candidates, cost, selection, streaming) still runs, so these tests prove what the
standard suite's tool tests would prove with a model that calls tools on its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool, tool
from pydantic import BaseModel, Field

from inferenceguard.errors import SafetyExhaustedError
from inferenceguard.testing import ScriptedLM, keyword_cost
from langchain_inferenceguard import ChatInferenceGuard

MakeLLM = Callable[..., ChatInferenceGuard]


def call_text(name: str, arguments: dict[str, Any]) -> str:
    payload = json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False)
    return f"<tool_call>{payload}</tool_call>"


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def search(query: str) -> str:
    """Search the web."""
    return "results"


class GetWeather(BaseModel):
    """Get the current weather at a location."""

    location: str = Field(description="The city, e.g. Paris")


def spy_on_guard(llm: ChatInferenceGuard, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Record the messages, tools and tool_choice that reach ``guard.stream``."""
    guard = llm.get_guard()
    calls: list[dict[str, Any]] = []
    original = guard.stream

    def stream(messages: Any, **kwargs: Any) -> Any:
        calls.append({"messages": messages, **kwargs})
        return original(messages, **kwargs)

    monkeypatch.setattr(guard, "stream", stream)
    return calls


# --------------------------------------------------------------------------- tool calls
@pytest.mark.parametrize("output_version", ["v0", "v1"])
def test_forced_tool_call_is_parsed_in_invoke_and_stream(
    make_llm: MakeLLM, output_version: str
) -> None:
    llm = make_llm(script=call_text("add", {"a": 1, "b": 2}), output_version=output_version)
    bound = llm.bind_tools([add, search])
    msg = bound.invoke("What is 1 + 2?")
    assert msg.text == ""
    assert [(c["name"], c["args"]) for c in msg.tool_calls] == [("add", {"a": 1, "b": 2})]
    assert msg.invalid_tool_calls == []
    assert msg.response_metadata["finish_reason"] == "stop"
    assert any(block["type"] == "tool_call" for block in msg.content_blocks)

    chunks = list(bound.stream("What is 1 + 2?"))
    assert all("<tool_call>" not in str(c.content) for c in chunks)
    assert chunks[-1].chunk_position == "last"
    full = chunks[0]
    for chunk in chunks[1:]:
        full = full + chunk
    assert [(c["name"], c["args"]) for c in full.tool_calls] == [("add", {"a": 1, "b": 2})]


async def test_forced_tool_call_async(make_llm: MakeLLM) -> None:
    bound = make_llm(script=call_text("add", {"a": 1, "b": 2})).bind_tools([add])
    msg = await bound.ainvoke("What is 1 + 2?")
    assert [(c["name"], c["args"]) for c in msg.tool_calls] == [("add", {"a": 1, "b": 2})]


def test_tools_passed_to_invoke_directly(make_llm: MakeLLM) -> None:
    llm = make_llm(script=call_text("add", {"a": 1, "b": 2}))
    msg = llm.invoke("What is 1 + 2?", tools=[add], tool_choice="any")
    assert [(c["name"], c["args"]) for c in msg.tool_calls] == [("add", {"a": 1, "b": 2})]


def test_text_before_the_call_streams_as_content(make_llm: MakeLLM) -> None:
    llm = make_llm(script="Let me add. " + call_text("add", {"a": 1, "b": 2}))
    msg = llm.bind_tools([add]).invoke("What is 1 + 2?")
    assert msg.content == "Let me add."
    assert msg.tool_calls[0]["name"] == "add"


def test_tools_and_tool_choice_reach_the_core(
    make_llm: MakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    llm = make_llm(script=call_text("search", {"query": "x"}))
    calls = spy_on_guard(llm, monkeypatch)
    for choice, expected in [(None, None), ("any", "required"), ("search", "search")]:
        llm.bind_tools([add, search, GetWeather], tool_choice=choice).invoke("hi")
        assert calls[-1]["tool_choice"] == expected
        names = [t["function"]["name"] for t in calls[-1]["tools"]]
        assert names == ["add", "search", "GetWeather"]
    with pytest.raises(ValueError, match="bound tool"):
        llm.bind_tools([add], tool_choice="search")


def test_tool_choice_none_leaves_the_text_as_content(make_llm: MakeLLM) -> None:
    script = call_text("add", {"a": 1, "b": 2})
    msg = make_llm(script=script).bind_tools([add], tool_choice="none").invoke("hi")
    assert msg.tool_calls == []
    assert msg.content == script


def test_no_argument_and_unicode_calls(make_llm: MakeLLM) -> None:
    @tool
    def magic() -> int:
        """Return a magic number."""
        return 42

    msg = make_llm(script=call_text("magic", {})).bind_tools([magic]).invoke("magic?")
    assert [(c["name"], c["args"]) for c in msg.tool_calls] == [("magic", {})]

    msg = make_llm(script=call_text("search", {"query": "你好 こんにちは"})).bind_tools([search])
    assert msg.invoke("hi").tool_calls[0]["args"] == {"query": "你好 こんにちは"}


def test_malformed_call_is_an_invalid_tool_call(make_llm: MakeLLM) -> None:
    script = '<tool_call>{"name": "add", "arguments": {"a": 1,, }}</tool_call>'
    msg = make_llm(script=script).bind_tools([add]).invoke("hi")
    assert msg.tool_calls == []
    assert len(msg.invalid_tool_calls) == 1
    assert msg.invalid_tool_calls[0]["name"] == "add"
    assert msg.invalid_tool_calls[0]["args"] == script


# --------------------------------------------------------------------------- safety
ARGS_OVER_BUDGET = call_text("search", {"query": "how to build a bomb at home"})


def _all_text(message: BaseMessage) -> str:
    """Everything a message carries that a caller or a tool could act on."""
    return json.dumps(
        [message.content, message.tool_calls, message.invalid_tool_calls], ensure_ascii=False
    )


def test_tool_call_with_arguments_over_budget_is_never_returned(make_llm: MakeLLM) -> None:
    llm = make_llm(script=ARGS_OVER_BUDGET, cost=keyword_cost(["bomb"]))
    bound = llm.bind_tools([search], tool_choice="any")

    msg = bound.invoke("Search for bomb-making instructions.")
    assert msg.tool_calls == []
    assert "bomb" not in _all_text(msg)
    assert msg.response_metadata["finish_reason"] == "safety"
    assert msg.response_metadata["safety"]["exhausted"]
    # The safe prefix of the cut-off call is reported, but never as an executable call.
    assert [c["name"] for c in msg.invalid_tool_calls] == ["search"]

    chunks = list(bound.stream("Search for bomb-making instructions."))
    assert all("bomb" not in _all_text(c) for c in chunks)
    full = chunks[0]
    for chunk in chunks[1:]:
        full = full + chunk
    assert full.tool_calls == []


def test_on_exhausted_raise_propagates_the_core_error(make_llm: MakeLLM) -> None:
    llm = make_llm(
        script=ARGS_OVER_BUDGET, cost=keyword_cost(["bomb"]), guard_config={"on_exhausted": "raise"}
    )
    with pytest.raises(SafetyExhaustedError) as info:
        llm.bind_tools([search]).invoke("Search for bomb-making instructions.")
    assert "bomb" not in info.value.result.text


# --------------------------------------------------------------------------- structured output
@pytest.mark.parametrize("method", ["function_calling", "json_schema"])
def test_structured_output_through_tool_calling(make_llm: MakeLLM, method: str) -> None:
    llm = make_llm(script=call_text("GetWeather", {"location": "Paris"}))
    structured = llm.with_structured_output(GetWeather, method=method)
    assert structured.invoke("Weather in Paris?") == GetWeather(location="Paris")
    assert list(structured.stream("Weather in Paris?"))[-1] == GetWeather(location="Paris")

    as_dict = llm.with_structured_output(GetWeather.model_json_schema(), method=method)
    assert as_dict.invoke("Weather in Paris?") == {"location": "Paris"}

    raw = llm.with_structured_output(GetWeather, include_raw=True).invoke("Weather in Paris?")
    assert raw["parsed"] == GetWeather(location="Paris")
    assert raw["raw"].response_metadata["safety"]["safe"]


# --------------------------------------------------------------------------- history + agent
def test_tool_results_are_rendered_back_to_the_model(
    make_llm: MakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    llm = make_llm(script="The answer is 3.")
    calls = spy_on_guard(llm, monkeypatch)
    history = [
        HumanMessage("What is 1 + 2?"),
        AIMessage("", tool_calls=[{"name": "add", "args": {"a": 1, "b": 2}, "id": "c1"}]),
        ToolMessage("3", tool_call_id="c1", name="add"),
    ]
    msg = llm.bind_tools([add]).invoke(history)
    assert msg.content == "The answer is 3."
    assert msg.tool_calls == []
    sent = calls[-1]["messages"]
    assert sent[1]["tool_calls"] == [{"id": "c1", "name": "add", "arguments": {"a": 1, "b": 2}}]
    assert sent[2] == {"role": "tool", "content": "3", "tool_call_id": "c1", "name": "add"}
    prompt = llm.get_guard().lm.render(sent, tools=calls[-1]["tools"])
    assert "3" in prompt.split("What is 1 + 2?")[1]  # the tool result follows the question


class ScriptByTurn(BaseCallbackHandler):
    """Plays a model that calls a tool first and answers once it sees the tool's result."""

    def __init__(self, lm: ScriptedLM, call: str, answer: str) -> None:
        self.lm, self.call, self.answer = lm, call, answer

    def on_chat_model_start(
        self, serialized: Any, messages: list[list[BaseMessage]], **kw: Any
    ) -> None:
        has_result = isinstance(messages[0][-1], ToolMessage)
        self.lm.set_script(self.answer if has_result else self.call)


def run_agent(
    llm: ChatInferenceGuard, tools: list[BaseTool], question: str, config: dict[str, Any]
) -> list[BaseMessage]:
    """A minimal tool-calling agent: call the model, run its tool calls, repeat."""
    by_name = {t.name: t for t in tools}
    bound = llm.bind_tools(tools)
    messages: list[BaseMessage] = [HumanMessage(question)]
    for _ in range(4):
        reply = bound.invoke(messages, config=config)
        messages.append(reply)
        if not reply.tool_calls:
            return messages
        messages += [by_name[call["name"]].invoke(call) for call in reply.tool_calls]
    raise AssertionError("the agent did not finish")


def test_agent_loop_completes_a_tool_call(make_llm: MakeLLM) -> None:
    llm = make_llm(script="")
    lm = llm.get_guard().lm
    assert isinstance(lm, ScriptedLM)
    director = ScriptByTurn(lm, call_text("add", {"a": 2, "b": 3}), "2 + 3 = 5.")
    messages = run_agent(llm, [add, search], "What is 2 + 3?", {"callbacks": [director]})
    assert [type(m).__name__ for m in messages] == [
        "HumanMessage",
        "AIMessage",
        "ToolMessage",
        "AIMessage",
    ]
    assert messages[1].tool_calls[0]["args"] == {"a": 2, "b": 3}
    assert messages[2].content == "5"
    assert messages[2].tool_call_id == messages[1].tool_calls[0]["id"]
    assert messages[3].content == "2 + 3 = 5."
    assert messages[3].response_metadata["safety"]["safe"]
