"""Tool schemas in, tool calls out: the text protocol shared by every front end.

Models whose chat template knows tools get them through the template. Others get a
system-prompt block that lists the tools and asks for calls in the Hermes/Qwen format::

    <tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>

The tool call is ordinary generated text, so the guard verifies its arguments with the
cost model like any other text: a call whose arguments are over budget is never returned.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import InputError

__all__ = [
    "CALL_CLOSE",
    "CALL_OPEN",
    "InvalidToolCall",
    "ToolCall",
    "held_back_length",
    "normalize_tool_choice",
    "normalize_tools",
    "split_tool_calls",
    "tool_choice_instruction",
    "tools_system_prompt",
    "visible_content",
]

ToolCall = dict[str, Any]
#: A malformed or cut-off call: ``{"id", "name", "arguments" (raw text), "error"}``.
InvalidToolCall = dict[str, Any]
#: Markers of the tool-call text protocol.
CALL_OPEN = "<tool_call>"
CALL_CLOSE = "</tool_call>"
_NAME_RE = re.compile(r'"name"\s*:\s*"((?:[^"\\]|\\.)*)"')
_CUT_OFF = "The call was cut off before </tool_call>."
_NOT_A_CALL = "Not a JSON object with a name and object arguments."
_MAX_ARGUMENT_CHARS = 100_000
_TOOL_HINT = (
    'pass {"type": "function", "function": {"name": ..., "description": ..., '
    '"parameters": {"type": "object", "properties": {...}}}}'
)


def normalize_tools(tools: Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """Tools in OpenAI function format: ``{"type": "function", "function": {name, description, parameters}}``.

    Accepts that format (``parameters`` optional, as in the OpenAI API) or the bare
    ``{name, description, parameters}`` dict, which must then have ``parameters``: a bare
    ``{"name": "x"}`` is more likely a mistake than a tool schema.

    Raises:
        InputError: a tool without a name, a bare dict without ``parameters``, or
            parameters that are not a JSON-schema object.
    """
    out = []
    for i, tool in enumerate(tools or []):
        if not isinstance(tool, Mapping):
            raise InputError(f"tools[{i}] must be a dict, got {type(tool).__name__}.")
        wrapped = "function" in tool
        fn = tool.get("function", tool)
        name = fn.get("name") if isinstance(fn, Mapping) else None
        if not isinstance(name, str) or not name:
            raise InputError(f"tools[{i}] has no function name.", hint=_TOOL_HINT)
        if not wrapped and "parameters" not in fn:
            raise InputError(
                f"tools[{i}] ({name!r}) is not a tool schema: it has no 'parameters'.",
                hint=_TOOL_HINT,
            )
        params = fn.get("parameters") or {"type": "object", "properties": {}}
        if not isinstance(params, Mapping) or params.get("type", "object") != "object":
            raise InputError(
                f"tools[{i}].parameters must be a JSON-schema object.", hint=_TOOL_HINT
            )
        out.append(
            {
                "type": "function",
                "function": {
                    "name": name,
                    "description": str(fn.get("description") or ""),
                    "parameters": dict(params),
                },
            }
        )
    return out


def normalize_tool_choice(tool_choice: Any, tool_names: Sequence[str]) -> str | None:
    """The one reading of ``tool_choice``, shared by every front end.

    Args:
        tool_choice: ``None``, ``"auto"``, ``"none"``, ``"any"``/``"required"``/``True``,
            ``False``, a tool name, or ``{"type": "function", "function": {"name": ...}}``.
        tool_names: names of the given tools.

    Returns:
        ``None``, ``"auto"``, ``"none"``, ``"required"`` or a given tool's name.

    Raises:
        InputError: a name that is not among the tools, ``"required"`` without tools,
            or an unrecognised value.
    """
    if tool_choice is None or tool_choice == "auto":
        return tool_choice
    if tool_choice is False or tool_choice == "none":
        return "none"
    if tool_choice is True or tool_choice in ("any", "required"):
        if not tool_names:
            raise InputError(
                f"tool_choice={tool_choice!r} asks for a tool call, but no tools were given.",
                hint="pass tools=[...] or drop tool_choice.",
            )
        return "required"
    name = tool_choice
    if isinstance(tool_choice, Mapping):
        inner = tool_choice.get("function", tool_choice)
        name = inner.get("name") if isinstance(inner, Mapping) else None
    if isinstance(name, str) and name in tool_names:
        return name
    raise InputError(
        f"tool_choice={tool_choice!r} is not 'auto', 'none', 'any', 'required' or the name of a "
        f"bound tool (tools given: {', '.join(tool_names) or 'none'}).",
        hint="name one of the tools, or pass that tool in tools=[...].",
    )


def tools_system_prompt(tools: Sequence[Mapping[str, Any]], tool_choice: Any = None) -> str:
    """The system-prompt block that teaches a template without tool support to call tools."""
    lines = [
        "You can call these tools. To call one, answer with exactly",
        '<tool_call>{"name": <tool name>, "arguments": <JSON object>}</tool_call>',
        "and nothing else. Otherwise answer normally.",
        "<tools>",
        *(json.dumps(t["function"], ensure_ascii=False) for t in tools),
        "</tools>",
    ]
    instruction = tool_choice_instruction(tool_choice)
    if instruction:
        lines.append(instruction)
    return "\n".join(lines)


def tool_choice_instruction(tool_choice: Any) -> str:
    """A sentence that expresses ``tool_choice`` (``auto``/``none``/``required``/a name)."""
    if tool_choice in (None, "auto"):
        return ""
    if tool_choice == "none":
        return "Do not call any tool."
    if tool_choice in ("required", "any", True):
        return "You must call one of the tools."
    name = tool_choice
    if isinstance(tool_choice, Mapping):
        name = tool_choice.get("function", tool_choice).get("name")
    return f"You must call the tool {name!r}."


def split_tool_calls(
    text: str, *, complete: bool = True
) -> tuple[str, list[ToolCall], list[InvalidToolCall]]:
    """Split generated text into content, well-formed tool calls and malformed ones.

    The one rule every front end follows. Each ``<tool_call>…</tool_call>`` segment that
    holds a JSON object with a ``name`` and object ``arguments`` is a tool call. A segment
    that does not parse (bad JSON, no name, non-object or absurdly long arguments), and
    one cut off before ``</tool_call>`` (a length, safety, time or stop-string stop, or
    EOS inside the call), is an *invalid* tool call: a model's bad output is a result for
    the caller to see, never a crash and never a call to run.

    Args:
        text: the generated response, or a growing prefix of it.
        complete: whether ``text`` is final. While streaming (``False``) a trailing call
            that is not closed yet may still close, so it is neither a call nor invalid.

    Returns:
        ``(content, calls, invalid)``. ``content`` is the text outside the calls, with the
        whitespace before the first call dropped; it always starts with
        :func:`visible_content` of ``text``, so a stream can end with a plain delta. Each
        call is ``{"id", "name", "arguments": dict}``; each invalid call is ``{"id",
        "name" (or None), "arguments" (the raw segment, tags included), "error"}``.
    """
    start = text.find(CALL_OPEN)
    if start < 0:
        return text, [], []
    calls: list[ToolCall] = []
    invalid: list[InvalidToolCall] = []
    rest: list[str] = []
    pos = start
    while pos >= 0:
        close = text.find(CALL_CLOSE, pos)
        if close < 0 and not complete:
            break  # still being written
        end = len(text) if close < 0 else close + len(CALL_CLOSE)
        segment = text[pos:end]
        call = _parse_one(_payload(segment)) if close >= 0 else None
        if call is not None:
            calls.append(call)
        else:
            invalid.append(_invalid_call(segment, closed=close >= 0))
        pos = text.find(CALL_OPEN, end)
        rest.append(text[end : pos if pos >= 0 else len(text)])
    head, tail = text[:start].rstrip(), "".join(rest).strip()
    content = f"{head}\n{tail}" if head and tail else head or tail
    return content, calls, invalid


def _payload(segment: str) -> str:
    return segment.removeprefix(CALL_OPEN).removesuffix(CALL_CLOSE).strip()


def _invalid_call(segment: str, *, closed: bool) -> InvalidToolCall:
    match = _NAME_RE.search(segment)
    return {
        "id": f"call_{uuid.uuid4().hex[:12]}",
        "name": match.group(1) if match else None,
        # The raw text, tags included: it is not JSON, so no lenient partial-JSON parser
        # downstream can turn a malformed or cut-off call into a call.
        "arguments": segment,
        "error": _NOT_A_CALL if closed else _CUT_OFF,
    }


def _parse_one(payload: str) -> ToolCall | None:
    if len(payload) > _MAX_ARGUMENT_CHARS:
        return None
    try:
        data = json.loads(payload)
    except (json.JSONDecodeError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    name = data.get("name")
    args = data.get("arguments", data.get("parameters", {}))
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except (json.JSONDecodeError, RecursionError):
            return None
    if not isinstance(name, str) or not name or not isinstance(args, dict):
        return None
    return {"id": f"call_{uuid.uuid4().hex[:12]}", "name": name, "arguments": args}


def held_back_length(text: str, marker: str) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of ``marker``.

    Streaming holds those characters back: the next token may complete the marker.
    """
    for k in range(min(len(marker) - 1, len(text)), 0, -1):
        if text.endswith(marker[:k]):
            return k
    return 0


def visible_content(text: str, *, parse_tools: bool) -> str:
    """The part of a partial answer that can be streamed as content now.

    Without tools it is all of ``text``. With tools it stops before the first
    ``<tool_call>`` (the call is reported once complete, as a tool call) and holds back a
    trailing partial marker and trailing whitespace, which may still belong to a call.
    For a growing ``text`` the result only ever grows. Shared by every front end (through
    :class:`inferenceguard.reply.ReplyAssembler`), so their streams hold back exactly the
    same text.
    """
    if not parse_tools:
        return text
    start = text.find(CALL_OPEN)
    head = text[:start] if start >= 0 else text[: len(text) - held_back_length(text, CALL_OPEN)]
    return head.rstrip()
