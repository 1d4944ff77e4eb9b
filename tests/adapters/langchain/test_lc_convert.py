"""The pure converters of ``langchain_inferenceguard._convert``: no model involved."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
)
from pydantic import BaseModel, Field

from inferenceguard import GuardConfig, GuardResult, SafetyReport, StreamChunk
from inferenceguard.errors import InputError
from inferenceguard.messages import normalize_messages
from inferenceguard.reply import ReplyAssembler
from inferenceguard.testing import tool_protocol_texts
from inferenceguard.tools import split_tool_calls, visible_content
from langchain_inferenceguard._convert import (
    convert_message,
    convert_messages,
    convert_tools,
    guard_overrides,
    normalize_tool_choice,
    reply_chunks,
    response_metadata,
    usage_metadata,
)

CALL = '<tool_call>{"name": "add", "arguments": {"a": 1, "b": 2}}</tool_call>'


def make_result(text: str, finish_reason: str = "stop", completion_tokens: int = 5) -> GuardResult:
    report = SafetyReport(cost=0.0, budget=0.5, threshold=0.5, safe=True, max_prefix_cost=0.0)
    return GuardResult(
        text=text,
        finish_reason=finish_reason,
        prompt_tokens=7,
        completion_tokens=completion_tokens,
        safety=report,
    )


def merge(chunks: list) -> AIMessageChunk:
    """Merge LangChain chunks the way ``stream()`` users and ``generate_from_stream`` do."""
    full = chunks[0].message
    for chunk in chunks[1:]:
        full = full + chunk.message
    return full


# --------------------------------------------------------------------------- messages
def test_every_message_type_maps_to_a_core_role() -> None:
    messages = [
        SystemMessage("be brief"),
        HumanMessage("add 1 and 2", name="alice"),
        AIMessage("", tool_calls=[{"name": "add", "args": {"a": 1, "b": 2}, "id": "c1"}]),
        ToolMessage("3", tool_call_id="c1", name="add"),
        AIMessage("It is 3."),
        ChatMessage(role="developer", content="extra rule"),
        FunctionMessage(name="legacy", content="ok"),
        HumanMessage("thanks"),
    ]
    out = convert_messages(messages)
    assert [m["role"] for m in out] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
        "developer",
        "tool",
        "user",
    ]
    assert out[2]["tool_calls"] == [{"id": "c1", "name": "add", "arguments": {"a": 1, "b": 2}}]
    assert out[3] == {"role": "tool", "content": "3", "tool_call_id": "c1", "name": "add"}
    # The core accepts the result as is: agent histories ending in a tool turn included.
    assert normalize_messages(out[:4])[-1]["role"] == "tool"
    assert normalize_messages(out)[5]["role"] == "system"


def test_list_content_keeps_text_and_drops_assistant_tool_blocks() -> None:
    ai = AIMessage(
        [
            {"type": "text", "text": "some "},
            "text",
            {"type": "tool_use", "id": "abc", "name": "add", "input": {"a": 1}},
        ],
        tool_calls=[{"name": "add", "args": {"a": 1}, "id": "abc"}],
    )
    out = convert_message(ai)
    assert out["content"] == "some text"
    assert out["tool_calls"][0]["name"] == "add"


def test_error_tool_message_is_marked_as_an_error() -> None:
    out = convert_message(ToolMessage("missing b", tool_call_id="x", status="error"))
    assert out["content"] == "Error: missing b"
    kept = convert_message(ToolMessage("Error: missing b", tool_call_id="x", status="error"))
    assert kept["content"] == "Error: missing b"


def test_image_content_is_rejected_with_the_core_input_error() -> None:
    msg = HumanMessage([{"type": "image_url", "image_url": {"url": "http://x/y.png"}}])
    with pytest.raises(InputError, match="'image_url' block"):
        convert_messages([HumanMessage("hi"), msg])
    with pytest.raises(InputError, match=r"messages\[1\]"):
        convert_messages([HumanMessage("hi"), msg])


def test_unknown_message_type_raises_type_error_naming_it() -> None:
    with pytest.raises(TypeError, match="Got unknown type"):
        convert_message(RemoveMessage(id="1"))


text_st = st.text(max_size=30)
content_st = st.one_of(
    text_st, st.lists(st.builds(lambda t: {"type": "text", "text": t}, text_st), max_size=3)
)
args_st = st.dictionaries(
    st.text(min_size=1, max_size=8), st.one_of(st.integers(), text_st, st.booleans()), max_size=3
)
call_st = st.builds(
    lambda name, args, i: {"name": name, "args": args, "id": f"id{i}"},
    st.text(min_size=1, max_size=12),
    args_st,
    st.integers(0, 99),
)
message_st = st.one_of(
    st.builds(SystemMessage, content=content_st),
    st.builds(HumanMessage, content=content_st),
    st.builds(AIMessage, content=content_st, tool_calls=st.lists(call_st, max_size=2)),
    st.builds(ToolMessage, content=content_st, tool_call_id=st.text(max_size=8)),
)


def _text(content: str | list) -> str:
    return content if isinstance(content, str) else "".join(p["text"] for p in content)


@given(st.lists(message_st, min_size=1, max_size=6))
def test_conversion_preserves_roles_text_and_tool_calls(messages: list[BaseMessage]) -> None:
    out = convert_messages(messages)
    roles = {"system": "system", "human": "user", "ai": "assistant", "tool": "tool"}
    assert [m["role"] for m in out] == [roles[m.type] for m in messages]
    for src, dst in zip(messages, out, strict=True):
        assert dst["content"] == _text(src.content)
        if isinstance(src, AIMessage) and src.tool_calls:
            assert [(c["id"], c["name"], c["arguments"]) for c in dst["tool_calls"]] == [
                (c["id"], c["name"], c["args"]) for c in src.tool_calls
            ]
    if any(m["role"] != "system" for m in out):
        normalized = normalize_messages(out)  # the core accepts every converted conversation
        assert [m["content"] for m in normalized] == [m["content"] for m in out]


# --------------------------------------------------------------------------- tools
class GetWeather(BaseModel):
    """Get the weather at a location."""

    location: str = Field(description="The city")


def test_tools_of_every_kind_become_openai_tools() -> None:
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    schema = {"title": "lookup", "description": "Look up.", "type": "object", "properties": {}}
    tools = convert_tools([add, GetWeather, schema])
    assert [t["function"]["name"] for t in tools] == ["add", "GetWeather", "lookup"]
    assert all(t["type"] == "function" for t in tools)
    assert tools[1]["function"]["parameters"]["properties"]["location"]["type"] == "string"


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (None, None),
        ("auto", "auto"),
        ("none", "none"),
        (False, "none"),
        ("any", "required"),
        ("required", "required"),
        (True, "required"),
        ("add", "add"),
        ({"type": "function", "function": {"name": "mul"}}, "mul"),
        ({"name": "mul"}, "mul"),
    ],
)
def test_tool_choice_values(choice: object, expected: str | None) -> None:
    assert normalize_tool_choice(choice, ["add", "mul"]) == expected


@pytest.mark.parametrize("choice", ["div", {"function": {"name": "div"}}, 3])
def test_tool_choice_rejects_unbound_tools(choice: object) -> None:
    with pytest.raises(ValueError, match="bound tool"):
        normalize_tool_choice(choice, ["add", "mul"])


# --------------------------------------------------------------------------- config
def test_guard_overrides_map_names_and_layer_in_order() -> None:
    instance = {
        "guard_config": {"budget": 0.2, "max_new_tokens": 99, "top_p": 0.9},
        "temperature": 0.7,
        "max_tokens": 32,
        "stop": None,
        "timeout": 5.0,
    }
    call = {"guard_config": {"top_p": 0.5}, "stop": "END", "seed": 3}
    out = guard_overrides(instance, call)
    assert out == {
        "budget": 0.2,
        "max_new_tokens": 32,  # the named field wins over guard_config
        "top_p": 0.5,
        "temperature": 0.7,
        "max_time": 5.0,
        "stop": ["END"],
        "seed": 3,
    }
    GuardConfig().replace(**out)  # every key is a GuardConfig field


def test_temperature_zero_means_greedy() -> None:
    assert guard_overrides({"temperature": 0}) == {"do_sample": False}
    assert GuardConfig().replace(**guard_overrides({"temperature": 0})).do_sample is False


# --------------------------------------------------------------------------- output
def test_usage_and_response_metadata() -> None:
    result = make_result("hi", finish_reason="length", completion_tokens=3)
    assert usage_metadata(result) == {"input_tokens": 7, "output_tokens": 3, "total_tokens": 10}
    meta = response_metadata(result, "m")
    assert meta["model_name"] == "m"
    assert meta["model_provider"] == "inferenceguard"
    assert meta["finish_reason"] == "length"
    assert meta["safety"]["budget"] == 0.5


def _feed_all(text: str, cuts: list[int], *, parse_tools: bool, finish_reason: str = "stop"):
    """The LangChain chunks of a stream of ``text`` committed in pieces cut at ``cuts``."""
    assembler = ReplyAssembler(parse_tools=parse_tools)
    bounds = sorted({0, len(text), *(c % (len(text) + 1) for c in cuts)})
    items = [StreamChunk(delta=text[a:b]) for a, b in itertools.pairwise(bounds)]
    items.append(StreamChunk(result=make_result(text, finish_reason)))
    return [
        chunk
        for item in items
        for event in assembler.feed(item)
        for chunk in reply_chunks(event, "m")
    ]


def test_assembler_reports_usage_and_metadata_once_on_the_last_chunk() -> None:
    chunks = _feed_all("Hello there, friend.", [3, 9, 14], parse_tools=False)
    assert [c.message.chunk_position for c in chunks][-1] == "last"
    assert sum(c.message.usage_metadata is not None for c in chunks) == 1
    assert sum("model_name" in c.message.response_metadata for c in chunks) == 1
    full = merge(chunks)
    assert full.content == "Hello there, friend."
    assert full.usage_metadata == {"input_tokens": 7, "output_tokens": 5, "total_tokens": 12}
    assert full.response_metadata["model_name"] == "m"


def test_assembler_turns_a_streamed_call_into_tool_calls() -> None:
    chunks = _feed_all(f"Sure. {CALL}", [2, 8, 20, 40], parse_tools=True)
    assert all("<tool" not in c.message.content for c in chunks)
    full = merge(chunks)
    assert full.content == "Sure."
    assert [(c["name"], c["args"]) for c in full.tool_calls] == [("add", {"a": 1, "b": 2})]


protocol_text_st = tool_protocol_texts()


@settings(max_examples=300)
@given(protocol_text_st, st.lists(st.integers(0, 400), max_size=6), st.booleans())
def test_streamed_merge_equals_split_and_never_repairs_invalid_calls(
    text: str, cuts: list[int], complete: bool
) -> None:
    chunks = _feed_all(text, cuts, parse_tools=True, finish_reason="stop" if complete else "safety")
    full = merge(chunks)
    content, calls, invalid = split_tool_calls(text)
    assert full.content == content
    # LangChain re-parses merged tool-call chunks leniently; an invalid call must stay invalid.
    assert [(c["name"], c["args"]) for c in full.tool_calls] == [
        (c["name"], c["arguments"]) for c in calls
    ]
    assert len(full.invalid_tool_calls) == len(invalid)
    # Content is never taken back: each chunk extends the text streamed before it.
    streamed = "".join(c.message.content for c in chunks)
    assert streamed == content


@given(st.text(max_size=40), st.text(max_size=20))
def test_visible_content_only_grows(prefix: str, more: str) -> None:
    earlier = visible_content(prefix, parse_tools=True)
    later = visible_content(prefix + more, parse_tools=True)
    assert later.startswith(earlier)


@settings(max_examples=200)
@given(
    st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=3),
    st.integers(1, 80),
)
def test_truncated_calls_are_never_valid_after_a_safety_stop(args: dict, cut: int) -> None:
    full_call = "<tool_call>" + json.dumps({"name": "search", "arguments": args}) + "</tool_call>"
    text = full_call[: min(cut, len(full_call) - 1)]  # cut anywhere before the end
    chunks = _feed_all(text, [cut // 2], parse_tools=True, finish_reason="safety")
    merged = merge(chunks)
    assert merged.tool_calls == []
    assert len(merged.invalid_tool_calls) == (1 if text.startswith("<tool_call>") else 0)
    assert split_tool_calls(text)[1] == []
