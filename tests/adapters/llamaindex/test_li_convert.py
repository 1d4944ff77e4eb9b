"""The pure converters of the LlamaIndex adapter, on hand-made values (no model)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from li_helpers import add_tool
from llama_index.core.base.llms.types import (
    CachePoint,
    ChatMessage,
    ChatResponse,
    CitableBlock,
    ImageBlock,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)
from llama_index.core.llms.llm import ToolSelection

from inferenceguard import GuardResult, InputError, SafetyReport
from inferenceguard.messages import normalize_messages
from llamaindex_inferenceguard._convert import (
    force_single_tool_call,
    response_raw,
    spec_id,
    to_assistant_message,
    to_core_message,
    to_core_messages,
    to_openai_tools,
    token_counts,
    tool_selections,
)


def msg(role: str, content: str = "x", **kwargs) -> ChatMessage:
    return ChatMessage(role=role, content=content, **kwargs)


# ---------------------------------------------------------------------- messages in
@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("system", "system"),
        ("developer", "system"),
        ("user", "user"),
        ("assistant", "assistant"),
        ("chatbot", "assistant"),
        ("model", "assistant"),
        ("tool", "tool"),
        ("function", "tool"),
    ],
)
def test_roles(role: str, expected: str) -> None:
    assert to_core_message(msg(role))["role"] == expected


def test_text_blocks_join_and_non_content_blocks_are_dropped() -> None:
    message = ChatMessage(
        role="user",
        blocks=[
            TextBlock(text="one"),
            ThinkingBlock(content="hmm"),
            CachePoint(cache_control={"type": "ephemeral"}),
            TextBlock(text="two"),
            CitableBlock(title="t", source="s", content=[TextBlock(text="three")]),
        ],
    )
    assert to_core_message(message) == {"role": "user", "content": "one\ntwo\nthree"}
    assert to_core_message(message)["content"] == message.content + "\nthree"


def test_media_blocks_reach_the_core_which_rejects_them() -> None:
    message = ChatMessage(
        role="user", blocks=[TextBlock(text="see"), ImageBlock(url="http://x/y.png")]
    )
    core = to_core_message(message)
    assert core["content"] == [{"type": "text", "text": "see"}, {"type": "image"}]
    with pytest.raises(InputError, match="'image' part"):
        normalize_messages([core])


def test_tool_call_blocks_become_tool_calls() -> None:
    message = ChatMessage(
        role="assistant",
        blocks=[
            TextBlock(text="Adding."),
            ToolCallBlock(tool_call_id="c1", tool_name="add", tool_kwargs={"a": 1}),
            ToolCallBlock(tool_call_id="c2", tool_name="add", tool_kwargs='{"a": 2}'),
        ],
    )
    core = normalize_messages(to_core_messages([message]))[0]
    assert core == {
        "role": "assistant",
        "content": "Adding.",
        "tool_calls": [
            {"id": "c1", "name": "add", "arguments": {"a": 1}},
            {"id": "c2", "name": "add", "arguments": {"a": 2}},
        ],
    }


@pytest.mark.parametrize(
    "call",
    [
        {"id": "c1", "type": "function", "function": {"name": "add", "arguments": '{"a": 1}'}},
        {"function": {"name": "add", "arguments": {"a": 1}}},  # Ollama: no id
        SimpleNamespace(id="c1", function=SimpleNamespace(name="add", arguments='{"a": 1}')),
    ],
    ids=["openai-dict", "ollama-dict", "object"],
)
def test_additional_kwargs_tool_calls(call) -> None:
    message = ChatMessage(role="assistant", content="", additional_kwargs={"tool_calls": [call]})
    (core,) = normalize_messages(to_core_messages([message]))
    assert core["tool_calls"][0]["name"] == "add"
    assert core["tool_calls"][0]["arguments"] == {"a": 1}


def test_tool_call_blocks_win_over_additional_kwargs() -> None:
    message = to_assistant_message("", [{"id": "c1", "name": "add", "arguments": {"a": 1}}])
    assert len(to_core_message(message)["tool_calls"]) == 1  # not duplicated


def test_tool_results() -> None:
    message = ChatMessage(
        role="tool",
        blocks=[TextBlock(text="5")],
        additional_kwargs={"tool_call_id": "c1", "name": "add"},
    )
    assert to_core_message(message) == {
        "role": "tool",
        "content": "5",
        "tool_call_id": "c1",
        "name": "add",
    }
    bare = to_core_message(ChatMessage(role="tool", content="5"))
    assert bare == {"role": "tool", "content": "5", "tool_call_id": ""}


def test_unknown_message_type() -> None:
    with pytest.raises(TypeError, match="Got unknown type dict"):
        to_core_messages([{"role": "user", "content": "hi"}])


# ---------------------------------------------------------------------- tools in
def test_to_openai_tools() -> None:
    (schema,) = to_openai_tools([add_tool()])
    assert schema["type"] == "function"
    assert schema["function"]["name"] == "add"
    assert set(schema["function"]["parameters"]["properties"]) == {"a", "b"}
    ready = {"type": "function", "function": {"name": "f", "parameters": {}}}
    assert to_openai_tools([ready]) == [ready]
    assert to_openai_tools(None) is None and to_openai_tools([]) is None
    with pytest.raises(TypeError, match="unknown tool type int"):
        to_openai_tools([3])


def test_long_tool_descriptions_are_accepted() -> None:
    from llama_index.core.tools import FunctionTool

    tool = FunctionTool.from_defaults(fn=lambda: 1, name="f", description="d" * 2000)
    assert len(to_openai_tools([tool])[0]["function"]["description"]) == 2000


# ---------------------------------------------------------------------- text out
def test_to_assistant_message() -> None:
    plain = to_assistant_message("Hello")
    assert plain.role == MessageRole.ASSISTANT and plain.content == "Hello"
    assert plain.additional_kwargs == {}
    assert to_assistant_message("").content == ""

    calls = [{"id": "c1", "name": "add", "arguments": {"a": 2, "b": 3}}]
    message = to_assistant_message("", calls)
    assert message.blocks == [
        ToolCallBlock(tool_call_id="c1", tool_name="add", tool_kwargs={"a": 2, "b": 3})
    ]
    assert message.additional_kwargs["tool_calls"] == [
        {
            "id": "c1",
            "type": "function",
            "function": {"name": "add", "arguments": '{"a": 2, "b": 3}'},
        }
    ]
    with_text = to_assistant_message("Adding.", calls)
    assert with_text.content == "Adding." and len(with_text.blocks) == 2
    # round trip: what we return is accepted back as history
    assert to_core_message(with_text)["tool_calls"] == calls


def test_tool_selections() -> None:
    calls = [{"id": "c1", "name": "add", "arguments": {"a": 2}}]
    response = ChatResponse(message=to_assistant_message("", calls))
    assert tool_selections(response) == [
        ToolSelection(tool_id="c1", tool_name="add", tool_kwargs={"a": 2})
    ]
    legacy = ChatResponse(
        message=ChatMessage(
            role="assistant",
            content="",
            additional_kwargs={
                "tool_calls": [
                    {"function": {"name": "add", "arguments": '{"a": 1}'}},
                    {"id": "x", "function": {"name": "add", "arguments": "not json"}},
                    {"function": {"arguments": "{}"}},  # no name: skipped
                ]
            },
        )
    )
    assert [(s.tool_id, s.tool_kwargs) for s in tool_selections(legacy)] == [
        ("add", {"a": 1}),
        ("x", {}),
    ]
    assert tool_selections(ChatResponse(message=to_assistant_message("hi"))) == []


def test_force_single_tool_call() -> None:
    calls = [
        {"id": "c1", "name": "add", "arguments": {"a": 1}},
        {"id": "c2", "name": "add", "arguments": {"a": 2}},
    ]
    response = ChatResponse(message=to_assistant_message("Two.", calls))
    force_single_tool_call(response)
    assert [s.tool_id for s in tool_selections(response)] == ["c1"]
    assert len(response.message.additional_kwargs["tool_calls"]) == 1
    assert response.message.content == "Two."


# ---------------------------------------------------------------------- metadata out
def _result() -> GuardResult:
    report = SafetyReport(cost=0.1, budget=0.5, threshold=0.5, safe=True, max_prefix_cost=0.2)
    return GuardResult(
        text="hi", finish_reason="stop", prompt_tokens=7, completion_tokens=2, safety=report
    )


def test_token_counts_and_raw() -> None:
    result = _result()
    assert token_counts(result) == {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}
    raw = response_raw(result, "m")
    assert raw["model"] == "m" and raw["finish_reason"] == "stop"
    assert raw["usage"] == token_counts(result)
    assert raw["safety"] == result.safety.model_dump()
    json.dumps(raw)  # JSON-ready


def test_spec_id() -> None:
    assert spec_id("default") == "default" and spec_id(None) is None
    assert spec_id(SimpleNamespace(id="keywords:x")) == "keywords:x"
    assert spec_id(SimpleNamespace(model_id="tiny")) == "tiny"
    assert spec_id(object()) == "object"
