"""Pure converters between OpenAI Chat Completions bodies and the InferenceGuard core.

Nothing here runs a model or touches the network; each function is tested on its own.

* :func:`guard_call` — a :class:`~.schemas.ChatCompletionRequest` → the arguments of
  :meth:`InferenceGuard.astream <inferenceguard.InferenceGuard.astream>`.
* :func:`finish_reason` — the guard's finish reason → OpenAI's.
* :func:`visible_content` / :func:`split_tool_calls` — generated text → what may be
  streamed now, and the final content plus tool calls.
* :func:`completion` — a :class:`~inferenceguard.GuardResult` → a ``chat.completion``.
* :class:`ChunkTranslator` — the core's :class:`~inferenceguard.StreamChunk` items →
  ``chat.completion.chunk`` objects (the one streaming path).
* :func:`error_response` — any exception → an HTTP status and an OpenAI error body.

Finish reasons: ``stop`` → ``stop``; ``length`` → ``length``; ``safety`` (no safe
continuation: the answer stops at the last verified prefix or is the refusal text) →
``content_filter``; ``timeout`` (``GuardConfig.max_time``) → ``length``, because, as with a
token limit, the answer was cut short for a resource limit rather than for safety. A
complete tool call in an answer that ended normally → ``tool_calls``. The guard's own
reason is always in ``safety.finish_reason``.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import (
    ConfigError,
    ContextLengthError,
    InferenceGuardError,
    InputError,
    ResourceError,
)
from ..result import GuardResult, StreamChunk
from ..tools import CALL_CLOSE, CALL_OPEN, ToolCall, parse_tool_calls, visible_content
from .schemas import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChunkChoice,
    Delta,
    ErrorDetail,
    ErrorResponse,
    FinishReason,
    FunctionCall,
    ResponseMessage,
    ToolCallDelta,
    Usage,
)
from .schemas import ToolCall as ToolCallModel

__all__ = [
    "CALL_CLOSE",
    "CALL_OPEN",
    "FINISH_REASONS",
    "ChunkTranslator",
    "GuardCall",
    "completion",
    "completion_id",
    "error_body",
    "error_response",
    "finish_reason",
    "guard_call",
    "safety_payload",
    "split_tool_calls",
    "usage",
    "validation_message",
    "validation_param",
    "visible_content",
]


#: The guard's finish reason → OpenAI's (see the module docstring).
FINISH_REASONS: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "safety": "content_filter",
    "timeout": "length",
}


# --------------------------------------------------------------------------- request
@dataclass(frozen=True)
class GuardCall:
    """What one request asks the guard for."""

    messages: list[dict[str, Any]]
    """OpenAI-style messages (the core validates them)."""
    tools: list[dict[str, Any]] | None
    """Tool schemas in OpenAI function format, or ``None``."""
    tool_choice: Any
    """``None``, ``"auto"``, ``"none"``, ``"required"`` or ``{"type", "function": {"name"}}``."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """:class:`~inferenceguard.GuardConfig` overrides for this request."""
    stream: bool = False
    """Whether to answer with server-sent events."""
    include_usage: bool = False
    """``stream_options.include_usage``."""
    parallel_tool_calls: bool = True
    """``False`` keeps only the first tool call."""

    @property
    def parse_tools(self) -> bool:
        """Whether tool calls are parsed out of the answer (tools given, choice not ``none``)."""
        return bool(self.tools) and self.tool_choice != "none"

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``InferenceGuard.astream``/``agenerate`` after ``messages``."""
        return {"tools": self.tools, "tool_choice": self.tool_choice, **self.overrides}


def guard_call(request: ChatCompletionRequest) -> GuardCall:
    """Translate a validated request into guard arguments.

    ``temperature=0`` or ``top_p=0`` means greedy decoding (``do_sample=False``);
    ``max_completion_tokens`` (or ``max_tokens``) becomes ``max_new_tokens``; ``stop`` a
    list; ``seed`` is passed through. Safety settings (budget, candidates, strategy) are
    the server's and cannot be changed by a client.
    """
    overrides: dict[str, Any] = {}
    if request.max_new_tokens is not None:
        overrides["max_new_tokens"] = request.max_new_tokens
    if request.temperature == 0 or request.top_p == 0:
        overrides["do_sample"] = False
    else:
        if request.temperature is not None:
            overrides["temperature"] = request.temperature
        if request.top_p is not None:
            overrides["top_p"] = request.top_p
    if request.seed is not None:
        overrides["seed"] = request.seed
    if request.stop is not None:
        overrides["stop"] = [request.stop] if isinstance(request.stop, str) else list(request.stop)
    tools = [t.model_dump(exclude_none=True) for t in request.tools] if request.tools else None
    choice = request.tool_choice
    if choice is not None and not isinstance(choice, str):
        choice = choice.model_dump()
    return GuardCall(
        messages=request.messages,
        tools=tools,
        tool_choice=choice if tools else None,
        overrides=overrides,
        stream=bool(request.stream),
        include_usage=bool(request.stream_options and request.stream_options.include_usage),
        parallel_tool_calls=request.parallel_tool_calls is not False,
    )


# --------------------------------------------------------------------------- output
def split_tool_calls(text: str, *, complete: bool = True) -> tuple[str, list[ToolCall]]:
    """Split an answer into content and well-formed tool calls.

    Each ``<tool_call>…</tool_call>`` segment is parsed by
    :func:`inferenceguard.tools.parse_tool_calls`. A segment that does not parse, or one
    cut off before ``</tool_call>`` when the answer did not end normally (``complete``
    False), stays in the content as text.

    Returns:
        ``(content, calls)``; ``content`` always starts with
        ``visible_content(text, parse_tools=True)``, so a stream can finish with a delta.
    """
    start = text.find(CALL_OPEN)
    if start < 0:
        return text, []
    head = text[:start].rstrip()
    pieces: list[str] = []
    calls: list[ToolCall] = []
    pos = start
    while pos >= 0:
        close = text.find(CALL_CLOSE, pos)
        end = len(text) if close < 0 else close + len(CALL_CLOSE)
        segment = text[pos:end]
        _, parsed = parse_tool_calls(segment)
        if len(parsed) == 1 and (close >= 0 or complete):
            calls.append(parsed[0])
        else:
            pieces.append(segment)
        pos = text.find(CALL_OPEN, end)
        pieces.append(text[end : pos if pos >= 0 else len(text)])
    if not calls:
        return text, []
    tail = "".join(pieces).strip()
    return (f"{head}\n{tail}" if head and tail else head or tail), calls


def finish_reason(result: GuardResult, *, has_tool_calls: bool) -> FinishReason:
    """OpenAI's finish reason for a result (see the module docstring)."""
    if has_tool_calls and result.finish_reason == "stop":
        return "tool_calls"
    return FINISH_REASONS[result.finish_reason]


def usage(result: GuardResult) -> Usage:
    """Token usage of one request, counted in token ids."""
    return Usage(
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        total_tokens=result.prompt_tokens + result.completion_tokens,
    )


def safety_payload(result: GuardResult) -> dict[str, Any]:
    """The ``safety`` field: the SafetyReport plus the guard's own finish reason."""
    return {**result.safety.model_dump(mode="json"), "finish_reason": result.finish_reason}


def completion_id() -> str:
    """A fresh ``chatcmpl-…`` id."""
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def _final_parts(
    result: GuardResult, *, parse_tools: bool, parallel_tool_calls: bool
) -> tuple[str, list[ToolCall]]:
    if not parse_tools:
        return result.text, []
    content, calls = split_tool_calls(result.text, complete=result.finish_reason == "stop")
    return content, calls if parallel_tool_calls else calls[:1]


def _function(call: ToolCall) -> FunctionCall:
    return FunctionCall(
        name=call["name"], arguments=json.dumps(call["arguments"], ensure_ascii=False)
    )


def completion(
    result: GuardResult,
    *,
    model: str,
    parse_tools: bool,
    parallel_tool_calls: bool = True,
    id: str | None = None,
) -> ChatCompletion:
    """A ``chat.completion`` body for a finished request."""
    content, calls = _final_parts(
        result, parse_tools=parse_tools, parallel_tool_calls=parallel_tool_calls
    )
    message = ResponseMessage(
        content=content if content or not calls else None,
        tool_calls=[ToolCallModel(id=c["id"], function=_function(c)) for c in calls] or None,
    )
    return ChatCompletion(
        id=id or completion_id(),
        model=model,
        choices=[
            Choice(message=message, finish_reason=finish_reason(result, has_tool_calls=bool(calls)))
        ],
        usage=usage(result),
        safety=safety_payload(result),
    )


class ChunkTranslator:
    """Turns the core's stream into ``chat.completion.chunk`` objects.

    Feed it every :class:`~inferenceguard.StreamChunk`. :meth:`start` gives the opening
    chunk (``delta.role``). Committed text comes back as content chunks right away (with
    tools, text from ``<tool_call>`` on is held back). The core's final item produces the
    last chunks: any remaining content, one chunk with all ``tool_calls``, the chunk with
    ``finish_reason`` and ``safety``, and, with ``include_usage``, a chunk with empty
    ``choices`` and the ``usage``.

    Args:
        model: the served model's name.
        parse_tools: whether tools were given (and ``tool_choice`` is not ``none``).
        include_usage: ``stream_options.include_usage``.
        parallel_tool_calls: ``False`` keeps only the first tool call.
    """

    def __init__(
        self,
        *,
        model: str,
        parse_tools: bool,
        include_usage: bool = False,
        parallel_tool_calls: bool = True,
        id: str | None = None,
        created: int | None = None,
    ) -> None:
        self.id = id or completion_id()
        self.created = int(time.time()) if created is None else created
        self.model = model
        self.parse_tools = parse_tools
        self.include_usage = include_usage
        self.parallel_tool_calls = parallel_tool_calls
        self.text = ""
        self.emitted = ""
        self.result: GuardResult | None = None

    def _chunk(self, choices: list[ChunkChoice], **extra: Any) -> ChatCompletionChunk:
        return ChatCompletionChunk(
            id=self.id,
            created=self.created,
            model=self.model,
            choices=choices,
            include_usage=self.include_usage,
            **extra,
        )

    def start(self) -> ChatCompletionChunk:
        """The opening chunk: ``{"role": "assistant", "content": ""}``."""
        return self._chunk([ChunkChoice(delta=Delta(role="assistant", content=""))])

    def feed(self, item: StreamChunk) -> list[ChatCompletionChunk]:
        """Convert one core stream item to zero or more chunks."""
        if item.result is not None:
            return self.finish(item.result)
        self.text += item.delta
        return self._content(visible_content(self.text, parse_tools=self.parse_tools))

    def _content(self, content: str) -> list[ChatCompletionChunk]:
        if len(content) <= len(self.emitted) or not content.startswith(self.emitted):
            return []
        delta, self.emitted = content[len(self.emitted) :], content
        return [self._chunk([ChunkChoice(delta=Delta(content=delta))])]

    def finish(self, result: GuardResult) -> list[ChatCompletionChunk]:
        """The closing chunks for the final result (also used for ``SafetyExhaustedError``)."""
        self.result = result
        content, calls = _final_parts(
            result, parse_tools=self.parse_tools, parallel_tool_calls=self.parallel_tool_calls
        )
        out = self._content(content)
        if calls:
            deltas = [
                ToolCallDelta(index=i, id=c["id"], function=_function(c))
                for i, c in enumerate(calls)
            ]
            out.append(self._chunk([ChunkChoice(delta=Delta(tool_calls=deltas))]))
        reason = finish_reason(result, has_tool_calls=bool(calls))
        out.append(
            self._chunk(
                [ChunkChoice(delta=Delta(), finish_reason=reason)], safety=safety_payload(result)
            )
        )
        if self.include_usage:
            out.append(self._chunk([], usage=usage(result)))
        return out


# --------------------------------------------------------------------------- errors
_PARAM_RE = re.compile(r"^((?:messages|tools|tool_choice)(?:\[\d+\])?(?:\.\w+(?:\[\d+\])?)*)")


def error_body(
    message: str, *, type: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """OpenAI's error body ``{"error": {"message", "type", "param", "code"}}``."""
    return ErrorResponse(
        error=ErrorDetail(message=message, type=type, param=param, code=code)
    ).model_dump()


def error_response(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """HTTP status and OpenAI error body for an exception raised while serving a request.

    =====================================  ======  ==========================  ==========================
    exception                              status  type                        code
    =====================================  ======  ==========================  ==========================
    ContextLengthError                     400     invalid_request_error       context_length_exceeded
    InputError (bad messages or tools)     400     invalid_request_error       invalid_value
    ConfigError (a value out of range)     400     invalid_request_error       invalid_value
    ResourceError (memory bound)           413     invalid_request_error       request_too_large
    other InferenceGuardError              500     server_error                the class name
    anything else                          500     server_error                internal_error
    =====================================  ======  ==========================  ==========================

    Internal details of unexpected errors are not sent to the client.
    """
    if isinstance(exc, InputError | ConfigError):
        match = _PARAM_RE.match(str(exc))
        code = "context_length_exceeded" if isinstance(exc, ContextLengthError) else "invalid_value"
        return 400, error_body(
            str(exc),
            type="invalid_request_error",
            param=match.group(1) if match else None,
            code=code,
        )
    if isinstance(exc, ResourceError):
        return 413, error_body(str(exc), type="invalid_request_error", code="request_too_large")
    if isinstance(exc, InferenceGuardError):
        return 500, error_body(str(exc), type="server_error", code=type(exc).__name__)
    return 500, error_body(
        "The server had an error while processing the request.",
        type="server_error",
        code="internal_error",
    )


def validation_param(loc: Sequence[Any]) -> str | None:
    """``("body", "messages", 0, "role")`` → ``"messages[0].role"``."""
    parts = [p for p in loc if p != "body"]
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or None


def validation_message(errors: Sequence[Mapping[str, Any]]) -> tuple[str, str | None, str]:
    """Message, first ``param`` and ``code`` for pydantic/FastAPI validation errors."""
    parts = []
    first_param = None
    for err in errors:
        if err.get("type") == "json_invalid":
            return (
                "We could not parse the JSON body of your request: "
                f"{err.get('ctx', {}).get('error', 'invalid JSON')}. Send valid JSON.",
                None,
                "invalid_json",
            )
        param = validation_param(err.get("loc", ()))
        first_param = first_param or param
        msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        parts.append(f"{param}: {msg}" if param else msg)
    return ("Invalid request: " + "; ".join(parts) + "."), first_param, "invalid_value"
