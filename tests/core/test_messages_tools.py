"""Message normalisation and the tool-call text protocol, including fuzzing."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inferenceguard import InputError
from inferenceguard.messages import last_user_text, normalize_messages
from inferenceguard.tools import normalize_tools, split_tool_calls, tools_system_prompt


def test_string_is_one_user_turn():
    assert normalize_messages("hi") == [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("messages", "match"),
    [
        ([], "empty"),
        ([{"role": "wizard", "content": "x"}], "role"),
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": "x"}]}],
            "only takes text",
        ),
        ([{"role": "system", "content": "x"}], "only system"),
        ({"role": "user", "content": "x"}, "list of message dicts"),
        ([{"role": "user", "content": 3}], "content must be"),
        (
            [
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [{"name": "f", "arguments": "{bad"}],
                }
            ],
            "JSON",
        ),
    ],
)
def test_bad_messages_get_a_clear_input_error(messages, match):
    with pytest.raises(InputError, match=match):
        normalize_messages(messages)


def test_aliases_text_parts_and_tool_turns():
    msgs = normalize_messages(
        [
            {"role": "human", "content": [{"type": "text", "text": "a"}, "b"]},
            {
                "role": "ai",
                "content": None,
                "tool_calls": [{"function": {"name": "f", "arguments": '{"x": 1}'}}],
            },
            {"role": "tool", "content": "42", "tool_call_id": "c1", "name": "f"},
        ]
    )
    assert msgs[0] == {"role": "user", "content": "ab"}
    assert msgs[1]["tool_calls"] == [{"id": "call_0", "name": "f", "arguments": {"x": 1}}]
    assert msgs[2] == {"role": "tool", "content": "42", "tool_call_id": "c1", "name": "f"}
    assert last_user_text(msgs) == "ab\n42"


def test_tool_call_round_trip():
    content, calls, invalid = split_tool_calls(
        'Sure.<tool_call>{"name": "add", "arguments": {"a": 1}}</tool_call>'
    )
    assert content == "Sure."
    assert [(c["name"], c["arguments"]) for c in calls] == [("add", {"a": 1})]
    assert invalid == []


@pytest.mark.parametrize(
    "text",
    [
        "<tool_call>{not json}</tool_call>",
        '<tool_call>{"arguments": {}}</tool_call>',
        '<tool_call>{"name": "f", "arguments": [1, 2]}</tool_call>',
        '<tool_call>["f"]</tool_call>',
        '<tool_call>{"name": "f", "arguments": {"x": "' + "y" * 200_000 + '"}}</tool_call>',
    ],
)
def test_malformed_tool_calls_are_invalid_calls_not_text(text):
    # A malformed call is reported as an invalid call with its raw text, never run and
    # never shown as content (it used to stay in the content on some front ends).
    content, calls, invalid = split_tool_calls(text)
    assert calls == [] and content == ""
    assert [c["arguments"] for c in invalid] == [text]
    assert invalid[0]["error"]


@given(st.text(max_size=300))
def test_split_tool_calls_never_raises(text):
    content, calls, invalid = split_tool_calls(text)
    assert isinstance(content, str)
    assert all(isinstance(c["arguments"], dict) for c in calls)
    assert all(isinstance(c["arguments"], str) for c in invalid)


@given(
    st.text(min_size=1, max_size=20).filter(lambda s: "<" not in s),
    st.dictionaries(
        st.text(max_size=10), st.one_of(st.integers(), st.text(max_size=20)), max_size=5
    ),
)
def test_any_well_formed_call_is_recovered(name, arguments):
    payload = json.dumps({"name": name, "arguments": arguments})
    _, calls, _ = split_tool_calls(f"<tool_call>{payload}</tool_call>")
    assert calls and calls[0]["name"] == name and calls[0]["arguments"] == arguments


def test_tools_are_normalised_and_rendered():
    tools = normalize_tools(
        [{"name": "f", "description": "does f", "parameters": {"type": "object"}}]
    )
    assert tools[0]["type"] == "function" and tools[0]["function"]["name"] == "f"
    prompt = tools_system_prompt(tools, "f")
    assert "<tool_call>" in prompt and "You must call the tool 'f'." in prompt
    with pytest.raises(InputError, match="name"):
        normalize_tools([{"description": "x"}])


def test_partial_markers_are_held_back_while_streaming():
    from inferenceguard.tools import held_back_length, visible_content

    assert held_back_length("Hi <tool_c", "<tool_call>") == 7
    assert held_back_length("Hi", "<tool_call>") == 0
    assert held_back_length("end\n\nUs", "\n\nUser:") == 4
    assert visible_content("Hi <tool_call>{", parse_tools=True) == "Hi"
    assert visible_content("Hi <tool", parse_tools=False) == "Hi <tool"
