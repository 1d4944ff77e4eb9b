"""Pure converters between LangChain objects and the InferenceGuard core.

Nothing here loads a model or runs a search; each function can be tested on its own.

* :func:`convert_messages` — LangChain messages → core message dicts.
* :func:`convert_tools` / :func:`normalize_tool_choice` — ``bind_tools`` arguments →
  OpenAI-format tool schemas and a ``tool_choice`` the core understands.
* :func:`guard_overrides` — the adapter's fields and per-call keyword arguments →
  :class:`~inferenceguard.GuardConfig` overrides for one request.
* :func:`reply_chunks` — the core's reply events (:mod:`inferenceguard.reply`: content
  deltas, then the final reply with tool calls and invalid tool calls) → LangChain
  :class:`~langchain_core.outputs.ChatGenerationChunk` items (the one streaming path).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolCallChunk,
    ToolMessage,
    UsageMetadata,
)
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGenerationChunk
from langchain_core.utils.function_calling import convert_to_openai_tool

from inferenceguard.config import REQUEST_SETTINGS, request_overrides
from inferenceguard.errors import InputError
from inferenceguard.reply import ContentDelta, FinalReply, ReplyEvent
from inferenceguard.result import GuardResult
from inferenceguard.tools import normalize_tool_choice

__all__ = [
    "PROVIDER",
    "convert_message",
    "convert_messages",
    "convert_tools",
    "guard_overrides",
    "normalize_tool_choice",
    "reply_chunks",
    "response_metadata",
    "usage_metadata",
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


# --------------------------------------------------------------------------- config
def guard_overrides(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Merge parameter layers into :class:`~inferenceguard.GuardConfig` overrides.

    Each layer holds adapter-style parameters (``temperature``, ``top_p``, ``max_tokens``,
    ``stop``, ``seed``, ``timeout``, any ``GuardConfig`` field name, and ``guard_config``:
    a dict of ``GuardConfig`` fields applied before the layer's named values). Later
    layers win; ``None`` values are skipped. The named request settings are mapped by
    :func:`inferenceguard.config.request_overrides`, the one mapping every front end
    uses: ``temperature=0`` means greedy decoding, a string ``stop`` is one stop string.

    Unknown names are passed through, so the core rejects them with a
    :class:`~inferenceguard.ConfigError` that names the field.
    """
    out: dict[str, Any] = {}
    for layer in layers:
        nested = layer.get("guard_config") or {}
        out.update((k, v) for k, v in nested.items() if v is not None)
        named = {k: v for k, v in layer.items() if k != "guard_config" and v is not None}
        settings = {k: named.pop(k) for k in REQUEST_SETTINGS if k in named}
        out.update(named)
        out.update(request_overrides(**settings))
    return out


# --------------------------------------------------------------------------- output
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


def _tool_call_chunks(final: FinalReply) -> list[ToolCallChunk]:
    """Tool calls as chunks (one index each), so merged streams rebuild the same calls.

    A valid call's arguments are JSON; an invalid call's are its raw text, ``<tool_call>``
    included, which is never JSON: LangChain's lenient parsing of merged chunks turns it
    into an ``invalid_tool_call``, never into a call.
    """
    raw = [
        (c["name"], json.dumps(c["arguments"], ensure_ascii=False), c["id"])
        for c in final.tool_calls
    ]
    raw += [(c["name"], c["arguments"], c["id"]) for c in final.invalid_tool_calls]
    return [
        tool_call_chunk(name=name, args=args, id=call_id, index=i)
        for i, (name, args, call_id) in enumerate(raw)
    ]


def reply_chunks(event: ReplyEvent, model_name: str) -> list[ChatGenerationChunk]:
    """One reply event as LangChain chunks.

    A content delta is a content chunk. The final reply is one empty chunk with
    ``chunk_position="last"`` carrying the tool calls, ``usage_metadata`` (once per
    stream) and ``response_metadata`` (``model_name``, ``model_provider``,
    ``finish_reason``, ``safety``).
    """
    if isinstance(event, ContentDelta):
        return [ChatGenerationChunk(message=AIMessageChunk(content=event.text))]
    last = AIMessageChunk(
        content="",
        tool_call_chunks=_tool_call_chunks(event),
        usage_metadata=usage_metadata(event.result),
        response_metadata=response_metadata(event.result, model_name),
        chunk_position="last",
    )
    return [ChatGenerationChunk(message=last)]
