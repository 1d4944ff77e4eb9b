"""Chat messages in the one shape the core understands, with clear errors for anything else.

A message is a dict ``{"role": ..., "content": str}``; roles are ``system``, ``user``,
``assistant`` and ``tool``. Assistant turns may carry ``tool_calls``
(``[{"id", "name", "arguments": dict}]``); tool turns carry ``tool_call_id`` and ``name``.
A plain string is shorthand for one user message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .errors import InputError

__all__ = ["ROLES", "Message", "last_user_text", "normalize_messages"]

Message = dict[str, Any]
ROLES = ("system", "user", "assistant", "tool")
_ROLE_ALIASES = {"human": "user", "ai": "assistant", "developer": "system", "function": "tool"}


def _text_content(content: Any, index: int) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence) and not isinstance(content, bytes | bytearray):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping) and part.get("type") == "text":
                parts.append(str(part.get("text", "")))
            else:
                kind = part.get("type") if isinstance(part, Mapping) else type(part).__name__
                raise InputError(
                    f"messages[{index}].content has a {kind!r} part; this model only takes text.",
                    hint="send text parts only (images, audio and files are not supported).",
                )
        return "".join(parts)
    raise InputError(
        f"messages[{index}].content must be a string or a list of text parts, got {type(content).__name__}."
    )


def _tool_calls(raw: Any, index: int) -> list[dict[str, Any]]:
    if not raw:
        return []
    if not isinstance(raw, Sequence):
        raise InputError(f"messages[{index}].tool_calls must be a list, got {type(raw).__name__}.")
    calls = []
    for j, call in enumerate(raw):
        if not isinstance(call, Mapping):
            raise InputError(f"messages[{index}].tool_calls[{j}] must be a dict.")
        fn = call.get("function") if isinstance(call.get("function"), Mapping) else call
        name = fn.get("name")
        if not isinstance(name, str) or not name:
            raise InputError(f"messages[{index}].tool_calls[{j}] has no tool name.")
        args = fn.get("arguments", fn.get("args", {}))
        if isinstance(args, str):
            import json

            try:
                args = json.loads(args) if args.strip() else {}
            except json.JSONDecodeError as exc:
                raise InputError(
                    f"messages[{index}].tool_calls[{j}].arguments is not valid JSON: {exc}."
                ) from None
        if not isinstance(args, Mapping):
            raise InputError(f"messages[{index}].tool_calls[{j}].arguments must be an object.")
        calls.append(
            {"id": str(call.get("id") or f"call_{j}"), "name": name, "arguments": dict(args)}
        )
    return calls


def _one_message(msg: Mapping[str, Any], role: str, i: int) -> Message:
    calls = _tool_calls(msg.get("tool_calls"), i) if role == "assistant" else []
    # Only an assistant turn that calls tools may come without text (as in the OpenAI API);
    # a turn without content anywhere else is a malformed message, not an empty one.
    if msg.get("content") is None and not calls:
        raise InputError(
            f"messages[{i}] ({role}) has no content.",
            hint='give every message a "content" string (only an assistant message with '
            "tool_calls may omit it).",
        )
    item: Message = {"role": role, "content": _text_content(msg.get("content"), i)}
    if calls:
        item["tool_calls"] = calls
    if role == "tool":
        item["tool_call_id"] = str(msg.get("tool_call_id") or "")
        if msg.get("name"):
            item["name"] = str(msg["name"])
    return item


def normalize_messages(messages: str | Sequence[Mapping[str, Any]]) -> list[Message]:
    """Validate and copy messages into the core's canonical form.

    Args:
        messages: a string (one user turn) or a list of ``{"role", "content", ...}`` dicts.

    Returns:
        A new list of canonical message dicts.

    Raises:
        InputError: empty list, unknown role, missing or non-text content, or malformed
            tool calls.
    """
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    if isinstance(messages, Mapping) or not isinstance(messages, Sequence):
        raise InputError(
            f"messages must be a string or a list of message dicts, got {type(messages).__name__}.",
            hint='pass [{"role": "user", "content": "..."}].',
        )
    if len(messages) == 0:
        raise InputError("messages is empty.", hint="send at least one user message.")
    out: list[Message] = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, Mapping):
            raise InputError(f"messages[{i}] must be a dict, got {type(msg).__name__}.")
        role = msg.get("role")
        role = _ROLE_ALIASES.get(role, role) if isinstance(role, str) else role
        if role not in ROLES:
            raise InputError(
                f"messages[{i}].role is {msg.get('role')!r}; expected one of {', '.join(ROLES)}."
            )
        out.append(_one_message(msg, role, i))
    if all(m["role"] == "system" for m in out):
        raise InputError(
            "messages holds only system turns; there is nothing to answer.",
            hint="add a user message.",
        )
    return out


def last_user_text(messages: Sequence[Message]) -> str:
    """The text the cost and reward models see as "the prompt": the latest user turn.

    Tool results after it are appended, so a tool's output that the answer builds on is
    judged with the request.
    """
    for i in range(len(messages) - 1, -1, -1):
        if messages[i]["role"] == "user":
            tail = [m["content"] for m in messages[i + 1 :] if m["role"] == "tool"]
            return "\n".join([messages[i]["content"], *tail])
    return messages[-1]["content"]
