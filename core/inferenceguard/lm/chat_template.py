"""Prompt rendering: the tokenizer's chat template, tool schemas, or a plain transcript."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ..messages import Message, normalize_messages
from ..tools import normalize_tools, tools_system_prompt

__all__ = ["render"]


def render(
    tokenizer: Any,
    messages: str | Sequence[Mapping[str, Any]],
    *,
    tools: Sequence[Mapping[str, Any]] | None = None,
    tool_choice: Any = None,
    add_generation_prompt: bool = True,
) -> str:
    """Render chat messages (and tool schemas) into the prompt text.

    Templates that know tools get them natively; others get the tool block of
    :mod:`inferenceguard.tools` in the system prompt, with assistant tool calls and tool
    results rendered as ``<tool_call>`` / ``<tool_response>`` text. A tokenizer without
    a chat template falls back to a plain ``Role: content`` transcript ending in
    ``Assistant:``.
    """
    msgs = normalize_messages(messages)
    tool_list = normalize_tools(tools)
    template = getattr(tokenizer, "chat_template", None) or ""
    native_tools = "tools" in template and "tool_call" in template
    if tool_list and (not native_tools or tool_choice not in (None, "auto")):
        msgs = _with_tool_system_prompt(msgs, tools_system_prompt(tool_list, tool_choice))
    if not native_tools:
        msgs = [_flatten_tool_turns(m) for m in msgs]
    if not template:
        return _plain_transcript(msgs, add_generation_prompt)
    kwargs: dict[str, Any] = {"tokenize": False, "add_generation_prompt": add_generation_prompt}
    if native_tools and tool_list:
        kwargs["tools"] = tool_list
    return tokenizer.apply_chat_template(msgs, **kwargs)


def _with_tool_system_prompt(msgs: list[Message], block: str) -> list[Message]:
    if msgs and msgs[0]["role"] == "system":
        first = {**msgs[0], "content": f"{msgs[0]['content']}\n\n{block}".strip()}
        return [first, *msgs[1:]]
    return [{"role": "system", "content": block}, *msgs]


def _flatten_tool_turns(msg: Message) -> Message:
    """Render tool calls and results as text for templates that do not know tools."""
    if msg["role"] == "assistant" and msg.get("tool_calls"):
        calls = "".join(
            "<tool_call>"
            + json.dumps({"name": c["name"], "arguments": c["arguments"]}, ensure_ascii=False)
            + "</tool_call>"
            for c in msg["tool_calls"]
        )
        return {"role": "assistant", "content": (msg["content"] + calls).strip()}
    if msg["role"] == "tool":
        return {"role": "user", "content": f"<tool_response>{msg['content']}</tool_response>"}
    return {"role": msg["role"], "content": msg["content"]}


def _plain_transcript(msgs: list[Message], add_generation_prompt: bool) -> str:
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in msgs]
    if add_generation_prompt:
        lines.append("Assistant:")
    return "\n".join(lines)
