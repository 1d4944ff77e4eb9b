"""Pure converters between LangChain objects and the InferenceGuard core.

Nothing here loads a model or runs a search; each function can be tested on its own.

* :func:`convert_messages` — LangChain messages → core message dicts.
* :func:`convert_tools` / :func:`normalize_tool_choice` — ``bind_tools`` arguments →
  OpenAI-format tool schemas and a ``tool_choice`` the core understands.
* :func:`guard_overrides` — the adapter's fields and per-call keyword arguments →
  :class:`~inferenceguard.GuardConfig` overrides for one request.
* :func:`visible_content` / :func:`split_tool_calls` — generated text → message content,
  tool calls and invalid tool calls.
* :class:`ChunkAssembler` — core :class:`~inferenceguard.StreamChunk` items → LangChain
  :class:`~langchain_core.outputs.ChatGenerationChunk` items (the one streaming path).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    InvalidToolCall,
    SystemMessage,
    ToolCall,
    ToolCallChunk,
    ToolMessage,
    UsageMetadata,
)
from langchain_core.messages.tool import invalid_tool_call, tool_call, tool_call_chunk
from langchain_core.outputs import ChatGenerationChunk
from langchain_core.utils.function_calling import convert_to_openai_tool

from inferenceguard.errors import InputError
from inferenceguard.result import GuardResult, StreamChunk
from inferenceguard.tools import CALL_CLOSE, CALL_OPEN, parse_tool_calls, visible_content

__all__ = [
    "PROVIDER",
    "ChunkAssembler",
    "convert_message",
    "convert_messages",
    "convert_tools",
    "guard_overrides",
    "normalize_tool_choice",
    "response_metadata",
    "split_tool_calls",
    "usage_metadata",
    "visible_content",
]

#: ``ls_provider`` and ``response_metadata["model_provider"]``.
PROVIDER = "inferenceguard"


# Content blocks that describe an assistant's own tool use or reasoning; the model sees
# tool calls through ``AIMessage.tool_calls``, so these are not rendered as text.
_SKIPPED_AI_BLOCKS = frozenset(
    {
        "tool_use",
        "tool_call",
        "tool_call_chunk",
        "invalid_tool_call",
        "server_tool_call",
        "server_tool_call_chunk",
        "server_tool_result",
        "reasoning",
        "thinking",
        "redacted_thinking",
    }
)
_NAME_RE = re.compile(r'"name"\s*:\s*"((?:[^"\\]|\\.)*)"')


# --------------------------------------------------------------------------- messages
def _content_text(content: str | list[Any], *, index: int, is_ai: bool) -> str:
    """Join the text of a message's content; other block types are an error."""
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for part in content:
        if isinstance(part, str):
            parts.append(part)
            continue
        kind = part.get("type") if isinstance(part, Mapping) else type(part).__name__
        if kind == "text":
            parts.append(str(part.get("text", "")))
        elif is_ai and kind in _SKIPPED_AI_BLOCKS:
            continue
        else:
            raise InputError(
                f"messages[{index}].content has a {kind!r} block; this model only takes text.",
                hint="send text content only (images, audio and files are not supported).",
            )
    return "".join(parts)


def convert_message(message: BaseMessage, index: int = 0) -> dict[str, Any]:
    """Convert one LangChain message to a core message dict.

    Args:
        message: a system, human, AI, tool, function or generic chat message.
        index: its position in the conversation (used in error messages).

    Returns:
        ``{"role", "content", ...}``; assistant turns carry ``tool_calls``
        (``[{"id", "name", "arguments"}]``), tool turns ``tool_call_id`` and ``name``.

    Raises:
        TypeError: an unknown message type.
        InputError: content with non-text blocks (images, audio, files).
    """
    if not isinstance(
        message,
        SystemMessage | HumanMessage | AIMessage | ToolMessage | FunctionMessage | ChatMessage,
    ):
        raise TypeError(f"Got unknown type {message!r}")
    text = _content_text(message.content, index=index, is_ai=isinstance(message, AIMessage))
    if isinstance(message, SystemMessage):
        return {"role": "system", "content": text}
    if isinstance(message, HumanMessage):
        return {"role": "user", "content": text}
    if isinstance(message, AIMessage):
        out: dict[str, Any] = {"role": "assistant", "content": text}
        if message.tool_calls:
            out["tool_calls"] = [
                {
                    "id": call.get("id") or f"call_{index}_{j}",
                    "name": call["name"],
                    "arguments": call["args"],
                }
                for j, call in enumerate(message.tool_calls)
            ]
        return out
    if isinstance(message, ToolMessage):
        if message.status == "error" and not text.lower().startswith("error"):
            text = f"Error: {text}"
        out = {"role": "tool", "content": text, "tool_call_id": message.tool_call_id}
        if message.name:
            out["name"] = message.name
        return out
    if isinstance(message, FunctionMessage):
        return {"role": "tool", "content": text, "tool_call_id": "", "name": message.name}
    # ChatMessage: the core maps role aliases (human, ai, developer, function), rejects others.
    return {"role": message.role, "content": text}


def convert_messages(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """Convert a LangChain conversation to core message dicts (see :func:`convert_message`)."""
    return [convert_message(message, i) for i, message in enumerate(messages)]


# --------------------------------------------------------------------------- tools
def convert_tools(tools: Sequence[Any]) -> list[dict[str, Any]]:
    """Tools (``BaseTool``, functions, pydantic classes, JSON-schema dicts) → OpenAI format."""
    return [convert_to_openai_tool(tool) for tool in tools]


def normalize_tool_choice(tool_choice: Any, tool_names: Sequence[str]) -> str | None:
    """Map LangChain's ``tool_choice`` values to the core's.

    Args:
        tool_choice: ``None``, ``"auto"``, ``"none"``, ``"any"``/``"required"``/``True``,
            ``False``, a tool name, or ``{"type": "function", "function": {"name": ...}}``.
        tool_names: names of the bound tools.

    Returns:
        ``None``, ``"auto"``, ``"none"``, ``"required"`` or a bound tool's name.

    Raises:
        ValueError: a tool name that is not bound, or an unrecognised value.
    """
    if tool_choice is None or tool_choice == "auto":
        return tool_choice
    if tool_choice is False or tool_choice == "none":
        return "none"
    if tool_choice is True or tool_choice in ("any", "required"):
        return "required"
    name = tool_choice
    if isinstance(tool_choice, Mapping):
        inner = tool_choice.get("function", tool_choice)
        name = inner.get("name") if isinstance(inner, Mapping) else None
    if isinstance(name, str) and name in tool_names:
        return name
    raise ValueError(
        f"tool_choice={tool_choice!r} is not 'auto', 'none', 'any', 'required' or the name of a "
        f"bound tool ({', '.join(tool_names) or 'no tools bound'})."
    )


# --------------------------------------------------------------------------- config
# Adapter field / LangChain keyword → GuardConfig field.
_RENAMED = {"max_tokens": "max_new_tokens", "timeout": "max_time"}


def guard_overrides(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Merge parameter layers into :class:`~inferenceguard.GuardConfig` overrides.

    Each layer holds adapter-style parameters (``temperature``, ``max_tokens``, ``stop``,
    ``seed``, ``timeout``, any ``GuardConfig`` field name, and ``guard_config``: a dict
    of ``GuardConfig`` fields applied before the layer's named values). Later layers win;
    ``None`` values are skipped. ``temperature=0`` means greedy decoding
    (``do_sample=False``), as in the OpenAI-style APIs LangChain users know.

    Unknown names are passed through, so the core rejects them with a
    :class:`~inferenceguard.ConfigError` that names the field.
    """
    out: dict[str, Any] = {}
    for layer in layers:
        nested = layer.get("guard_config") or {}
        for key, value in [
            *nested.items(),
            *((k, v) for k, v in layer.items() if k != "guard_config"),
        ]:
            if value is None:
                continue
            if key == "temperature" and value == 0:
                out["do_sample"] = False
                continue
            if key == "stop":
                value = [value] if isinstance(value, str) else list(value)
            out[_RENAMED.get(key, key)] = value
    return out


# --------------------------------------------------------------------------- output
def _invalid(segment: str, call_id: str, error: str) -> InvalidToolCall:
    match = _NAME_RE.search(segment)
    # ``args`` keeps the raw text, ``<tool_call>`` included: it is not JSON, so LangChain's
    # lenient partial-JSON parsing can never turn a malformed or cut-off call into a call.
    return invalid_tool_call(
        name=match.group(1) if match else None, args=segment, id=call_id, error=error
    )


def split_tool_calls(
    text: str, *, complete: bool = True
) -> tuple[str, list[ToolCall], list[InvalidToolCall]]:
    """Split a response into content, well-formed tool calls and malformed ones.

    Each ``<tool_call>…</tool_call>`` segment is parsed by
    :func:`inferenceguard.tools.parse_tool_calls`. A segment that does not parse (bad
    JSON, no name, non-object arguments) becomes an invalid tool call, as does one cut
    off before ``</tool_call>`` unless the response ended normally (``complete``).

    Args:
        text: the generated response.
        complete: whether generation ended normally (``finish_reason == "stop"``); a
            response stopped for safety, length or time may end inside a call.

    Returns:
        ``(content, tool_calls, invalid_tool_calls)``. ``content`` is the text outside the
        calls, with the whitespace before the first call dropped; it always starts with
        :func:`visible_content` of ``text``.
    """
    start = text.find(CALL_OPEN)
    if start < 0:
        return text, [], []
    head, rest = text[:start].rstrip(), []
    calls: list[ToolCall] = []
    invalid: list[InvalidToolCall] = []
    pos = start
    while pos >= 0:
        close = text.find(CALL_CLOSE, pos)
        end = len(text) if close < 0 else close + len(CALL_CLOSE)
        segment = text[pos:end]
        _, parsed = parse_tool_calls(segment)
        if len(parsed) == 1 and (close >= 0 or complete):
            found = parsed[0]
            calls.append(tool_call(name=found["name"], args=found["arguments"], id=found["id"]))
        elif len(parsed) == 1:
            invalid.append(
                _invalid(segment, parsed[0]["id"], "The call was cut off before </tool_call>.")
            )
        else:
            invalid.append(
                _invalid(
                    segment,
                    f"call_{uuid.uuid4().hex[:12]}",
                    "Not a JSON object with a name and object arguments.",
                )
            )
        pos = text.find(CALL_OPEN, end)
        rest.append(text[end : pos if pos >= 0 else len(text)])
    tail = "".join(rest).strip()
    content = f"{head}\n{tail}" if head and tail else head or tail
    return content, calls, invalid


def usage_metadata(result: GuardResult) -> UsageMetadata:
    """Token usage of one request, counted in token ids."""
    return UsageMetadata(
        input_tokens=result.prompt_tokens,
        output_tokens=result.completion_tokens,
        total_tokens=result.prompt_tokens + result.completion_tokens,
    )


def response_metadata(result: GuardResult, model_name: str) -> dict[str, Any]:
    """``response_metadata`` of the final message: model, finish reason and the safety report."""
    return {
        "model_name": model_name,
        "model_provider": PROVIDER,
        "finish_reason": result.finish_reason,
        "safety": result.safety.model_dump(),
    }


def _tool_call_chunks(
    calls: Sequence[ToolCall], invalid: Sequence[InvalidToolCall]
) -> list[ToolCallChunk]:
    """Tool calls as chunks (one index each), so merged streams rebuild the same calls."""
    raw = [(c["name"], json.dumps(c["args"], ensure_ascii=False), c["id"]) for c in calls]
    raw += [(c["name"], c["args"], c["id"]) for c in invalid]
    return [
        tool_call_chunk(name=name, args=args, id=call_id, index=i)
        for i, (name, args, call_id) in enumerate(raw)
    ]


class ChunkAssembler:
    """Turns the core's stream into LangChain chunks; shared by the sync and async paths.

    Feed it every :class:`~inferenceguard.StreamChunk`. Committed text comes back as
    content chunks right away (with tools bound, text from ``<tool_call>`` on is held
    back and reported at the end as tool calls). The core's final item produces the last
    chunks: any remaining content, then one empty chunk with ``chunk_position="last"``
    carrying the tool calls, ``usage_metadata`` (once per stream) and
    ``response_metadata`` (``model_name``, ``model_provider``, ``finish_reason``,
    ``safety``).

    Args:
        model_name: reported in ``response_metadata["model_name"]``.
        parse_tools: whether tools are bound (and ``tool_choice`` is not ``"none"``).
    """

    def __init__(self, *, model_name: str, parse_tools: bool) -> None:
        self.model_name = model_name
        self.parse_tools = parse_tools
        self.text = ""
        self.emitted = ""

    def feed(self, item: StreamChunk) -> list[ChatGenerationChunk]:
        """Convert one core stream item to zero or more LangChain chunks."""
        if item.result is not None:
            return self._final(item.result)
        self.text += item.delta
        visible = visible_content(self.text, parse_tools=self.parse_tools)
        return self._content(visible)

    def _content(self, content: str) -> list[ChatGenerationChunk]:
        if len(content) <= len(self.emitted) or not content.startswith(self.emitted):
            return []
        delta, self.emitted = content[len(self.emitted) :], content
        return [ChatGenerationChunk(message=AIMessageChunk(content=delta))]

    def _final(self, result: GuardResult) -> list[ChatGenerationChunk]:
        if self.parse_tools:
            content, calls, invalid = split_tool_calls(
                result.text, complete=result.finish_reason == "stop"
            )
        else:
            content, calls, invalid = result.text, [], []
        last = AIMessageChunk(
            content="",
            tool_call_chunks=_tool_call_chunks(calls, invalid),
            usage_metadata=usage_metadata(result),
            response_metadata=response_metadata(result, self.model_name),
            chunk_position="last",
        )
        return [*self._content(content), ChatGenerationChunk(message=last)]
