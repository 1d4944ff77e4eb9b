"""Pure converters between LlamaIndex objects and the core's plain dicts.

Nothing here loads a model or calls the guard, so every function can be tested on
hand-made values. :class:`~llamaindex_inferenceguard.InferenceGuardLLM` only sequences them:

* :func:`to_core_messages`: ``ChatMessage`` list -> core message dicts (text, tool calls
  from ``ToolCallBlock`` or ``additional_kwargs["tool_calls"]``, tool results).
* :func:`to_openai_tools`: LlamaIndex tools -> OpenAI function schemas.
* :func:`partial_response` / :func:`final_response`: the core's reply events
  (:mod:`inferenceguard.reply`) -> streamed and final ``ChatResponse`` objects.
* :func:`to_assistant_message`: content and tool calls -> ``ChatMessage`` the way li-core
  0.14 integrations build it (``ToolCallBlock`` in ``blocks`` *and* OpenAI-style dicts in
  ``additional_kwargs["tool_calls"]``; malformed or cut-off calls in
  ``additional_kwargs["invalid_tool_calls"]``).
* :func:`tool_selections`: ``ChatResponse`` -> ``ToolSelection`` list.
* :func:`token_counts` / :func:`response_raw`: ``GuardResult`` -> usage and ``raw``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from llama_index.core.base.llms.types import (
    CachePoint,
    ChatMessage,
    ChatResponse,
    CitableBlock,
    CitationBlock,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)
from llama_index.core.llms.llm import ToolSelection

from inferenceguard.reply import FinalReply
from inferenceguard.result import GuardResult

__all__ = [
    "final_response",
    "force_single_tool_call",
    "partial_response",
    "response_raw",
    "spec_id",
    "to_assistant_message",
    "to_core_message",
    "to_core_messages",
    "to_openai_tools",
    "token_counts",
    "tool_selections",
]

# LlamaIndex roles -> core roles. "chatbot" (Cohere) and "model" (Gemini) are assistant
# turns; "developer" is OpenAI's newer name for system; "function" is the legacy tool role.
_ROLES: dict[str, str] = {
    MessageRole.SYSTEM.value: "system",
    MessageRole.DEVELOPER.value: "system",
    MessageRole.USER.value: "user",
    MessageRole.ASSISTANT.value: "assistant",
    MessageRole.CHATBOT.value: "assistant",
    MessageRole.MODEL.value: "assistant",
    MessageRole.TOOL.value: "tool",
    MessageRole.FUNCTION.value: "tool",
}


# ---------------------------------------------------------------------- messages in
def to_core_messages(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """Convert LlamaIndex chat messages into the core's message dicts.

    Args:
        messages: the conversation, oldest first.

    Returns:
        One ``{"role", "content", ...}`` dict per message; the core validates them
        (:func:`inferenceguard.messages.normalize_messages`).

    Raises:
        TypeError: an element is not a ``ChatMessage``.
    """
    return [to_core_message(message) for message in messages]


def to_core_message(message: ChatMessage) -> dict[str, Any]:
    """Convert one ``ChatMessage`` (see :func:`to_core_messages`).

    Text blocks become the content (joined with newlines, as ``ChatMessage.content`` does);
    thinking blocks and cache points are dropped; images, audio, video and documents are
    passed on as non-text parts so that the core rejects them with an ``InputError``
    naming the part. Assistant tool calls come from ``ToolCallBlock`` blocks, else from
    ``additional_kwargs["tool_calls"]`` (OpenAI or Ollama style). Tool results take their
    ``tool_call_id`` and ``name`` from ``additional_kwargs``.

    Raises:
        TypeError: ``message`` is not a ``ChatMessage``.
    """
    if not isinstance(message, ChatMessage):
        raise TypeError(f"Got unknown type {type(message).__name__}: {message!r:.120}")
    role_value = message.role.value if isinstance(message.role, MessageRole) else message.role
    role = _ROLES.get(str(role_value), str(role_value))  # unknown roles: the core names them
    parts = _content_parts(message.blocks)
    if all(isinstance(part, str) for part in parts):
        content: Any = "\n".join(parts)
    else:
        content = [{"type": "text", "text": p} if isinstance(p, str) else p for p in parts]
    out: dict[str, Any] = {"role": role, "content": content}
    extra = message.additional_kwargs
    if role == "assistant":
        calls = _tool_calls_of(message)
        if calls:
            out["tool_calls"] = calls
    elif role == "tool":
        out["tool_call_id"] = str(extra.get("tool_call_id") or "")
        name = extra.get("name") or extra.get("tool_name")
        if name:
            out["name"] = str(name)
    return out


def _content_parts(blocks: Sequence[Any]) -> list[str | dict[str, Any]]:
    """Text of text-like blocks as strings; other media as ``{"type": ...}`` parts."""
    parts: list[str | dict[str, Any]] = []
    for block in blocks:
        if isinstance(block, TextBlock):
            parts.append(block.text)
        elif isinstance(block, ToolCallBlock | ThinkingBlock | CachePoint):
            continue  # tool calls are carried separately; reasoning is not sent back
        elif isinstance(block, CitableBlock):
            parts.extend(_content_parts(block.content))
        elif isinstance(block, CitationBlock):
            parts.extend(_content_parts([block.cited_content]))
        else:
            parts.append({"type": str(getattr(block, "block_type", type(block).__name__))})
    return parts


def _tool_calls_of(message: ChatMessage) -> list[dict[str, Any]]:
    blocks = [b for b in message.blocks if isinstance(b, ToolCallBlock)]
    if blocks:
        return [
            {"id": b.tool_call_id or "", "name": b.tool_name, "arguments": b.tool_kwargs}
            for b in blocks
        ]
    return [_plain_tool_call(c) for c in message.additional_kwargs.get("tool_calls") or []]


def _plain_tool_call(call: Any) -> Any:
    """An ``additional_kwargs`` tool call as a dict the core reads (objects are dumped)."""
    if isinstance(call, Mapping):
        return dict(call)
    if hasattr(call, "model_dump"):  # e.g. openai's ChatCompletionMessageToolCall
        return call.model_dump()
    function = getattr(call, "function", None)
    if function is not None:
        return {
            "id": getattr(call, "id", None),
            "name": getattr(function, "name", None),
            "arguments": getattr(function, "arguments", None),
        }
    return call  # the core rejects it with an InputError naming the index


# ---------------------------------------------------------------------- tools in
def to_openai_tools(tools: Sequence[Any] | None) -> list[dict[str, Any]] | None:
    """LlamaIndex tools (or ready OpenAI-format dicts) -> OpenAI function schemas.

    Args:
        tools: ``BaseTool`` objects (their ``metadata.to_openai_tool()`` is used, without
            OpenAI's 1024-character description limit, which a local model does not have)
            or dicts already in OpenAI function format.

    Returns:
        The schemas, or ``None`` when there are no tools.

    Raises:
        TypeError: an element is neither a tool nor a dict.
    """
    if not tools:
        return None
    schemas = []
    for tool in tools:
        if isinstance(tool, Mapping):
            schemas.append(dict(tool))
        elif hasattr(tool, "metadata") and hasattr(tool.metadata, "to_openai_tool"):
            schemas.append(tool.metadata.to_openai_tool(skip_length_check=True))
        else:
            raise TypeError(f"Got unknown tool type {type(tool).__name__}: {tool!r:.120}")
    return schemas


# ---------------------------------------------------------------------- text out
def partial_response(content: str, delta: str) -> ChatResponse:
    """A streamed item: ``content`` is everything shown so far, ``delta`` the new piece."""
    return ChatResponse(
        message=ChatMessage(role=MessageRole.ASSISTANT, content=content), delta=delta, raw={}
    )


def final_response(final: FinalReply, model_name: str, *, delta: str | None = None) -> ChatResponse:
    """The response for a finished reply; ``delta`` is set when it ends a stream.

    ``raw`` holds the usage, finish reason and safety report (:func:`response_raw`) and
    ``additional_kwargs`` the token counts, as LlamaIndex integrations do.
    """
    return ChatResponse(
        message=to_assistant_message(final.content, final.tool_calls, final.invalid_tool_calls),
        delta=delta,
        raw=response_raw(final.result, model_name),
        additional_kwargs=token_counts(final.result),
    )


def to_assistant_message(
    content: str,
    calls: Sequence[Mapping[str, Any]] = (),
    invalid: Sequence[Mapping[str, Any]] = (),
) -> ChatMessage:
    """Build the assistant ``ChatMessage`` for a response.

    Args:
        content: the response text (without tool-call markup).
        calls: parsed tool calls ``{"id", "name", "arguments": dict}``.
        invalid: malformed or cut-off calls ``{"id", "name", "arguments": raw text,
            "error"}``; they are kept in ``additional_kwargs["invalid_tool_calls"]`` (LlamaIndex
            has no type for them), never run as calls.

    Returns:
        A message whose ``blocks`` hold a ``TextBlock`` (omitted when a tool call has no
        accompanying text) and one ``ToolCallBlock`` per call, and whose
        ``additional_kwargs["tool_calls"]`` repeats the calls in OpenAI format, as li-core
        0.14's OpenAI integration does (chat engines and structured output read it).
    """
    blocks: list[Any] = [TextBlock(text=content)] if content or not calls else []
    blocks += [
        ToolCallBlock(tool_call_id=c["id"], tool_name=c["name"], tool_kwargs=dict(c["arguments"]))
        for c in calls
    ]
    extra: dict[str, Any] = {}
    if calls:
        extra["tool_calls"] = [
            {
                "id": c["id"],
                "type": "function",
                "function": {
                    "name": c["name"],
                    "arguments": json.dumps(c["arguments"], ensure_ascii=False),
                },
            }
            for c in calls
        ]
    if invalid:
        extra["invalid_tool_calls"] = [dict(c) for c in invalid]
    return ChatMessage(role=MessageRole.ASSISTANT, blocks=blocks, additional_kwargs=extra)


def tool_selections(response: ChatResponse) -> list[ToolSelection]:
    """The tool calls of a response as ``ToolSelection`` objects.

    ``ToolCallBlock`` blocks are read first; a message without them falls back to
    ``additional_kwargs["tool_calls"]``. JSON-string arguments are decoded; arguments
    that are not a JSON object become ``{}`` (``ToolSelection`` drops them the same way).
    """
    out = []
    for call in _tool_calls_of(response.message):
        if not isinstance(call, Mapping):
            continue
        fn = call.get("function") if isinstance(call.get("function"), Mapping) else call
        args = fn.get("arguments", fn.get("args", {}))
        if isinstance(args, str):
            try:
                args = json.loads(args) if args.strip() else {}
            except json.JSONDecodeError:
                args = {}
        name = fn.get("name")
        if not name:
            continue
        out.append(
            ToolSelection(
                tool_id=str(call.get("id") or name),
                tool_name=str(name),
                tool_kwargs=args if isinstance(args, dict) else {},
            )
        )
    return out


def force_single_tool_call(response: ChatResponse) -> None:
    """Keep only the first tool call of ``response`` (``allow_parallel_tool_calls=False``)."""
    message = response.message
    seen = False
    kept: list[Any] = []
    for block in message.blocks:
        if isinstance(block, ToolCallBlock):
            if seen:
                continue
            seen = True
        kept.append(block)
    message.blocks = kept
    calls = message.additional_kwargs.get("tool_calls")
    if calls and len(calls) > 1:
        message.additional_kwargs["tool_calls"] = [calls[0]]


# ---------------------------------------------------------------------- metadata out
def spec_id(value: Any) -> Any:
    """A JSON-ready stand-in for a model spec: plain values as is, objects by their id."""
    if value is None or isinstance(value, str | int | float | bool | dict | list):
        return value
    return str(
        getattr(value, "id", None) or getattr(value, "model_id", None) or type(value).__name__
    )


def token_counts(result: GuardResult) -> dict[str, int]:
    """``{"prompt_tokens", "completion_tokens", "total_tokens"}`` of a result.

    These are the keys LlamaIndex's ``TokenCountingHandler`` reads from ``raw["usage"]``
    and that its integrations put in ``ChatResponse.additional_kwargs``.
    """
    return {
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "total_tokens": result.total_tokens,
    }


def response_raw(result: GuardResult, model_name: str) -> dict[str, Any]:
    """The ``raw`` payload of a final response: usage, safety report, finish reason.

    Returns:
        ``{"model", "usage", "finish_reason", "safety"}``, where ``safety`` is the
        :class:`~inferenceguard.SafetyReport` as a dict (verified cost, budget, z trace …).
    """
    return {
        "model": model_name,
        "usage": token_counts(result),
        "finish_reason": result.finish_reason,
        "safety": result.safety.model_dump(),
    }
