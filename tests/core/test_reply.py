"""The one tool-call splitter and the one reply assembler, on hand-made text (no model)."""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inferenceguard import GuardConfig, GuardResult, SafetyReport, StreamChunk
from inferenceguard.config import request_overrides
from inferenceguard.reply import ContentDelta, FinalReply, ReplyAssembler, final_reply
from inferenceguard.testing import tool_protocol_texts
from inferenceguard.tools import split_tool_calls, visible_content

CALL = '<tool_call>{"name": "add", "arguments": {"a": 1, "b": 2}}</tool_call>'


def result(text: str, finish_reason: str = "stop") -> GuardResult:
    report = SafetyReport(cost=0.0, budget=0.5, threshold=0.5, safe=True, max_prefix_cost=0.0)
    return GuardResult(
        text=text, finish_reason=finish_reason, prompt_tokens=7, completion_tokens=5, safety=report
    )


def run(text: str, cuts: list[int], *, parse_tools: bool = True, finish: str = "stop", **kw):
    """Feed ``text`` committed in pieces cut at ``cuts``; return (deltas, final reply)."""
    assembler = ReplyAssembler(parse_tools=parse_tools, **kw)
    bounds = sorted({0, len(text), *(c % (len(text) + 1) for c in cuts)})
    events = []
    for a, b in itertools.pairwise(bounds):
        events += assembler.feed(StreamChunk(delta=text[a:b]))
    events += assembler.feed(StreamChunk(result=result(text, finish)))
    assert isinstance(events[-1], FinalReply) and events[-1] is assembler.final
    assert all(isinstance(e, ContentDelta) and e.text for e in events[:-1])
    return [e.text for e in events[:-1]], events[-1]


# --------------------------------------------------------------------------- splitter
def test_split_plain_text_and_calls() -> None:
    assert split_tool_calls("hello") == ("hello", [], [])
    content, calls, invalid = split_tool_calls(f"Sure. {CALL}")
    assert content == "Sure."
    assert [(c["name"], c["arguments"]) for c in calls] == [("add", {"a": 1, "b": 2})]
    assert invalid == []
    content, calls, _ = split_tool_calls(f"{CALL}\n{CALL} done")
    assert content == "done"
    assert len(calls) == 2 and calls[0]["id"] != calls[1]["id"]


@pytest.mark.parametrize(
    "payload",
    [
        "{not json}",
        '{"arguments": {"a": 1}}',  # no name
        '{"name": "add", "arguments": [1, 2]}',  # arguments not an object
        '"just a string"',
        '{"name": "add", "arguments": "{broken"}',
    ],
)
def test_malformed_calls_become_invalid_tool_calls(payload: str) -> None:
    text = f"<tool_call>{payload}</tool_call>"
    content, calls, invalid = split_tool_calls(text)
    assert (content, calls) == ("", [])
    assert [c["arguments"] for c in invalid] == [text]
    assert "JSON object" in invalid[0]["error"]


def test_a_call_cut_off_before_its_closing_tag_is_invalid_once_the_text_is_final() -> None:
    text = 'I will add. <tool_call>{"name": "add", "arguments": {"a": 1}}'
    content, calls, invalid = split_tool_calls(text)
    assert (content, calls) == ("I will add.", [])
    assert invalid[0]["name"] == "add" and "cut off" in invalid[0]["error"]
    # While streaming the call may still close: it is neither a call nor invalid yet.
    assert split_tool_calls(text, complete=False) == ("I will add.", [], [])


protocol_text_st = tool_protocol_texts()


@settings(max_examples=300)
@given(protocol_text_st, st.booleans())
def test_split_never_raises_and_only_returns_closed_well_formed_calls(
    text: str, complete: bool
) -> None:
    content, calls, invalid = split_tool_calls(text, complete=complete)
    for call in calls:
        assert call["name"] and isinstance(call["arguments"], dict)
        assert json.dumps(call["name"]) in text
    assert len(calls) <= text.count("</tool_call>")
    for bad in invalid:
        assert bad["arguments"].startswith("<tool_call>")
    assert "<tool_call>" not in content
    assert content.startswith(visible_content(text, parse_tools=True))


@given(st.text(max_size=40), st.text(max_size=20))
def test_visible_content_only_grows(prefix: str, more: str) -> None:
    earlier = visible_content(prefix, parse_tools=True)
    assert visible_content(prefix + more, parse_tools=True).startswith(earlier)


def test_visible_content_holds_back_possible_calls() -> None:
    assert visible_content("Sure <tool", parse_tools=False) == "Sure <tool"
    assert visible_content("Sure <tool", parse_tools=True) == "Sure"
    assert visible_content("Sure <tool_call>{", parse_tools=True) == "Sure"
    assert visible_content("a < b", parse_tools=True) == "a < b"


# --------------------------------------------------------------------------- assembler
def test_plain_text_streams_as_committed_and_ends_with_the_result() -> None:
    deltas, final = run("Hello there, friend.", [3, 9, 14], parse_tools=False)
    assert deltas == ["Hel", "lo the", "re, f", "riend."]
    assert final.content == "Hello there, friend." and final.finish_reason == "stop"
    assert final.result.completion_tokens == 5


def test_a_streamed_call_is_held_back_and_reported_as_a_call() -> None:
    deltas, final = run(f"Sure. {CALL}", [2, 8, 20, 40])
    assert "".join(deltas) == "Sure." and all("<" not in d for d in deltas)
    assert [(c["name"], c["arguments"]) for c in final.tool_calls] == [("add", {"a": 1, "b": 2})]


def test_without_parallel_calls_only_the_first_is_kept() -> None:
    _, final = run(f"{CALL}{CALL}", [5], parallel_tool_calls=False)
    assert len(final.tool_calls) == 1
    assert len(final_reply(result(f"{CALL}{CALL}"), parse_tools=True).tool_calls) == 2


def test_tool_markup_is_plain_content_without_tools() -> None:
    deltas, final = run(CALL, [4], parse_tools=False)
    assert "".join(deltas) == CALL == final.content and final.tool_calls == []


@settings(max_examples=300)
@given(protocol_text_st, st.lists(st.integers(0, 400), max_size=6), st.booleans())
def test_deltas_never_take_back_text_and_add_up_to_the_final_content(
    text: str, cuts: list[int], parse_tools: bool
) -> None:
    deltas, final = run(text, cuts, parse_tools=parse_tools, finish="length")
    assert "".join(deltas) == final.content
    if parse_tools:
        content, calls, invalid = split_tool_calls(text)
        assert final.content == content
        assert [c["name"] for c in final.tool_calls] == [c["name"] for c in calls]
        assert [c["arguments"] for c in final.invalid_tool_calls] == [
            c["arguments"] for c in invalid
        ]


# --------------------------------------------------------------------------- settings
@pytest.mark.parametrize(
    ("settings_in", "expected"),
    [
        ({"temperature": 0}, {"do_sample": False}),
        ({"temperature": 0.0, "top_p": 0.9}, {"do_sample": False}),
        ({"top_p": 0}, {"do_sample": False}),
        ({"temperature": 0.7, "top_p": 0.9}, {"temperature": 0.7, "top_p": 0.9}),
        ({"max_tokens": 9}, {"max_new_tokens": 9}),
        ({"stop": "END"}, {"stop": ["END"]}),
        ({"stop": ["a", "b"]}, {"stop": ["a", "b"]}),
        ({"stop": None, "seed": None, "temperature": None}, {}),
        ({"seed": 3, "timeout": 2.5}, {"seed": 3, "max_time": 2.5}),
    ],
)
def test_request_overrides_is_the_one_mapping(settings_in: dict, expected: dict) -> None:
    out = request_overrides(**settings_in)
    assert out == expected
    GuardConfig().replace(**out)  # every key is a valid GuardConfig field
