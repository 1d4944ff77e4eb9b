"""The reply protocol: the guard's stream in, neutral reply events out.

Every front end (the LangChain chat model, the LlamaIndex LLM, the OpenAI-compatible
server) answers through :class:`ReplyAssembler` and only maps its events to its own
types, so what is streamed as content, what is a tool call and what is an invalid tool
call is decided once, here:

* :class:`ContentDelta` — new content that may be shown now. Only committed text, which
  the cost model verified within budget, ever reaches it; with tools, text from
  ``<tool_call>`` on is held back (:func:`inferenceguard.tools.visible_content`).
* :class:`FinalReply` — the end: the whole content, the tool calls, the invalid tool
  calls (:func:`inferenceguard.tools.split_tool_calls`) and the :class:`GuardResult`.

The deltas of one reply always add up to ``FinalReply.content``: a delta is never taken
back.

Example::

    assembler = ReplyAssembler(parse_tools=True)
    for chunk in guard.stream(messages, tools=tools):
        for event in assembler.feed(chunk):
            ...  # ContentDelta(text) ..., then one FinalReply
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from .result import GuardResult, StreamChunk
from .tools import InvalidToolCall, ToolCall, split_tool_calls, visible_content

__all__ = [
    "ContentDelta",
    "FinalReply",
    "ReplyAssembler",
    "ReplyEvent",
    "content_chunks",
    "final_reply",
    "parses_tools",
]


@dataclass(frozen=True)
class ContentDelta:
    """New content to show; it extends the content shown so far."""

    text: str


@dataclass(frozen=True)
class FinalReply:
    """The finished reply: what each front end turns into its final message."""

    content: str
    """All content of the reply (tool-call markup removed)."""
    result: GuardResult
    """The guard's result: finish reason, usage and the safety report."""
    tool_calls: list[ToolCall] = field(default_factory=list)
    """Well-formed calls, ``{"id", "name", "arguments": dict}``."""
    invalid_tool_calls: list[InvalidToolCall] = field(default_factory=list)
    """Malformed or cut-off calls, ``{"id", "name", "arguments" (raw text), "error"}``."""

    @property
    def finish_reason(self) -> str:
        """The guard's finish reason (``stop``, ``length``, ``safety``, ``timeout``)."""
        return self.result.finish_reason


ReplyEvent = ContentDelta | FinalReply


def final_reply(
    result: GuardResult, *, parse_tools: bool, parallel_tool_calls: bool = True
) -> FinalReply:
    """The :class:`FinalReply` of a finished (non-streamed) request.

    Args:
        result: the guard's result.
        parse_tools: whether tools were given and ``tool_choice`` is not ``"none"``;
            without tools, tool-call markup is plain content.
        parallel_tool_calls: ``False`` keeps only the first well-formed call.
    """
    if not parse_tools:
        return FinalReply(content=result.text, result=result)
    content, calls, invalid = split_tool_calls(result.text, complete=True)
    if not parallel_tool_calls:
        calls = calls[:1]
    return FinalReply(content=content, result=result, tool_calls=calls, invalid_tool_calls=invalid)


class ReplyAssembler:
    """Turns one request's :class:`StreamChunk` items into :data:`ReplyEvent` items.

    Feed it every chunk, in order (sync or async streams alike). It keeps the committed
    text and the content shown so far; see the module docstring for the events.

    Args:
        parse_tools: as for :func:`final_reply`.
        parallel_tool_calls: as for :func:`final_reply`.
    """

    def __init__(self, *, parse_tools: bool, parallel_tool_calls: bool = True) -> None:
        self.parse_tools = parse_tools
        self.parallel_tool_calls = parallel_tool_calls
        self.text = ""
        """The committed text so far."""
        self.shown = ""
        """The content sent as :class:`ContentDelta` items so far."""
        self.final: FinalReply | None = None
        """The final reply, once the result has arrived."""

    def feed(self, chunk: StreamChunk) -> list[ReplyEvent]:
        """The events for one chunk: zero or one delta, then the final reply if it ends."""
        if chunk.result is not None:
            return self.finish(chunk.result)
        self.text += chunk.delta
        return self._show(visible_content(self.text, parse_tools=self.parse_tools))

    def finish(self, result: GuardResult) -> list[ReplyEvent]:
        """The closing events for ``result``: the rest of the content, then the final reply.

        Also for results that arrive outside the stream (``SafetyExhaustedError.result``).
        """
        self.final = final_reply(
            result, parse_tools=self.parse_tools, parallel_tool_calls=self.parallel_tool_calls
        )
        return [*self._show(self.final.content), self.final]

    def _show(self, content: str) -> list[ReplyEvent]:
        # Content only grows by extension: a delta already sent is never taken back.
        if len(content) <= len(self.shown) or not content.startswith(self.shown):
            return []
        delta, self.shown = content[len(self.shown) :], content
        return [ContentDelta(delta)]


def parses_tools(tools: Sequence[Any] | None, tool_choice: Any) -> bool:
    """Whether tool calls are parsed out of the answer: tools given, ``tool_choice`` not
    ``"none"`` (otherwise tool-call markup is plain content)."""
    return bool(tools) and tool_choice != "none"


def content_chunks(chunks: Iterator[StreamChunk]) -> Iterator[StreamChunk]:
    """A guard stream with tools parsed: content deltas only (no ``<tool_call>`` markup,
    held back exactly as the front ends hold it back), then the final chunk with the
    calls in ``tool_calls`` / ``invalid_tool_calls``. Closing it closes ``chunks``."""
    assembler = ReplyAssembler(parse_tools=True)
    try:
        for chunk in chunks:
            for event in assembler.feed(chunk):
                if isinstance(event, ContentDelta):
                    yield StreamChunk(delta=event.text)
                else:
                    yield StreamChunk(
                        result=event.result,
                        tool_calls=event.tool_calls,
                        invalid_tool_calls=event.invalid_tool_calls,
                    )
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
