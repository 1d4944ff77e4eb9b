"""Pure converters between OpenAI Chat Completions bodies and the InferenceGuard core.

Nothing here runs a model or touches the network; each function is tested on its own.

* :func:`guard_call` — a :class:`~.schemas.ChatCompletionRequest` → the arguments of
  :meth:`InferenceGuard.astream <inferenceguard.InferenceGuard.astream>`.
* :func:`finish_reason` — the guard's finish reason → OpenAI's.
* :func:`completion` — a finished reply (:class:`~inferenceguard.reply.FinalReply`) → a
  ``chat.completion``.
* :class:`ChunkFormat` — the core's reply events (:mod:`inferenceguard.reply`: content
  deltas, then the final reply) → ``chat.completion.chunk`` objects (the one streaming
  path; :class:`~inferenceguard.reply.ReplyAssembler` decides what is content, what is a
  tool call and what is an invalid tool call, as for every front end).
* :func:`error_response` — any exception → an HTTP status and an OpenAI error body.

Finish reasons: ``stop`` → ``stop``; ``length`` → ``length``; ``safety`` (no safe
continuation: the answer stops at the last verified prefix or is the refusal text) →
``content_filter``; ``timeout`` (``GuardConfig.max_time``) → ``length``, because, as with a
token limit, the answer was cut short for a resource limit rather than for safety. A
complete tool call in an answer that ended normally → ``tool_calls``. The guard's own
reason is always in ``safety.finish_reason``. A malformed call, or one cut off before
``</tool_call>``, is never a tool call: it is reported in the message's (or the last
delta's) ``invalid_tool_calls``, an InferenceGuard extension, with its raw text.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..config import GuardConfig, request_overrides
from ..errors import (
    ConfigError,
    ContextLengthError,
    InferenceGuardError,
    InputError,
    ResourceError,
)
from ..reply import ContentDelta, FinalReply, ReplyEvent
from ..result import GuardResult
from ..tools import ToolCall
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
    InvalidToolCall,
    ResponseMessage,
    ToolCallDelta,
    Usage,
)
from .schemas import ToolCall as ToolCallModel

__all__ = [
    "FINISH_REASONS",
    "ChunkFormat",
    "GuardCall",
    "completion",
    "completion_id",
    "error_body",
    "error_response",
    "finish_reason",
    "guard_call",
    "safety_payload",
    "usage",
    "validation_message",
    "validation_param",
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
    def forced_tool(self) -> str | None:
        """``"required"``, the forced tool's name, or ``None`` when no call is demanded."""
        choice = self.tool_choice
        if not self.tools or choice in (None, "auto", "none"):
            return None
        if isinstance(choice, Mapping):
            return str(choice.get("function", {}).get("name"))
        return str(choice)

    @property
    def parse_tools(self) -> bool:
        """Whether tool calls are parsed out of the answer (tools given, choice not ``none``)."""
        return bool(self.tools) and self.tool_choice != "none"

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``InferenceGuard.astream``/``agenerate`` after ``messages``."""
        return {"tools": self.tools, "tool_choice": self.tool_choice, **self.overrides}


def guard_call(request: ChatCompletionRequest) -> GuardCall:
    """Translate a validated request into guard arguments.

    The sampling settings are mapped by :func:`inferenceguard.config.request_overrides`,
    like every front end's: ``temperature=0`` or ``top_p=0`` means greedy decoding,
    ``max_completion_tokens`` (or ``max_tokens``) becomes ``max_new_tokens``, a string
    ``stop`` is one stop string. Safety settings (budget, candidates, strategy) are the
    server's and cannot be changed by a client: such a field is refused, not ignored.

    Raises:
        InputError: a safety or search setting in the body (``budget``, ``n_candidates``
            …, e.g. from ``extra_body``), a ``tool`` message without ``tool_call_id``,
            or ``tool_choice="required"``/a named tool with ``stream=true``. The error's
            ``param`` attribute names the client's field.
    """
    _refuse_safety_fields(request)
    _check_tool_messages(request.messages)
    overrides = request_overrides(
        temperature=request.temperature,
        top_p=request.top_p,
        max_tokens=request.max_new_tokens,
        stop=request.stop,
        seed=request.seed,
    )
    tools = [t.model_dump(exclude_none=True) for t in request.tools] if request.tools else None
    choice = request.tool_choice
    if choice is not None and not isinstance(choice, str):
        choice = choice.model_dump()
    call = GuardCall(
        messages=request.messages,
        tools=tools,
        tool_choice=choice if tools else None,
        overrides=overrides,
        stream=bool(request.stream),
        include_usage=bool(request.stream_options and request.stream_options.include_usage),
        parallel_tool_calls=request.parallel_tool_calls is not False,
    )
    if call.stream and call.forced_tool is not None:
        raise client_error(
            "tool_choice: a stream cannot guarantee the tool call that tool_choice demands "
            "(text already sent cannot be taken back).",
            param="tool_choice",
            hint="send this request without stream=true (the answer is then checked to be "
            "that call), or use tool_choice='auto'.",
        )
    return call


def client_error(message: str, *, param: str, hint: str | None = None) -> InputError:
    """An :class:`InputError` whose ``param`` (the client's field) the error body reports."""
    exc = InputError(message, hint=hint)
    exc.param = param  # type: ignore[attr-defined]
    return exc


def _refuse_safety_fields(request: ChatCompletionRequest) -> None:
    # A field the server ignored would be a setting the client believes is in force.
    extra = sorted(request.model_extra or {})
    safety = [k for k in extra if k in GuardConfig.model_fields or k == "guard_config"]
    if safety:
        raise client_error(
            f"{safety[0]}: a client cannot set {', '.join(safety)}. The budget and the other "
            "safety and search settings are the server's, so that every client is held to "
            "the guarantee its operator chose; ignoring the field instead would let you "
            "believe it is in force.",
            param=safety[0],
            hint="remove it from the request (also from extra_body); the operator sets it "
            "with `inferenceguard serve --config`.",
        )


def _check_tool_messages(messages: Sequence[Mapping[str, Any]]) -> None:
    for i, msg in enumerate(messages):
        if isinstance(msg, Mapping) and msg.get("role") == "tool" and not msg.get("tool_call_id"):
            raise client_error(
                f"messages[{i}].tool_call_id: a tool message must say which call it answers.",
                param=f"messages[{i}].tool_call_id",
                hint="set tool_call_id to the id of the assistant's tool call.",
            )


def tool_choice_unmet(call: GuardCall, final: FinalReply) -> InputError | None:
    """The error for an answer that is not the tool call ``tool_choice`` demanded, if any.

    The guard cannot force tokens it has not verified, so a forced ``tool_choice`` is
    enforced by checking the answer: prose instead of the call is an error, never a 200.
    """
    forced = call.forced_tool
    if forced is None:
        return None
    names = [c["name"] for c in final.tool_calls]
    if names and (forced == "required" or forced in names):
        return None
    wanted = "a tool call" if forced == "required" else f"a call to {forced!r}"
    return client_error(
        f"tool_choice: the model answered without {wanted} (finish_reason="
        f"{final.finish_reason!r}); the guard returns only text it verified and does not "
        "force tokens, so the demanded call was not made.",
        param="tool_choice",
        hint="retry (another seed), use a model that follows tool instructions, or send "
        "tool_choice='auto' and handle a plain answer.",
    )


# --------------------------------------------------------------------------- output
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


def _function(call: ToolCall) -> FunctionCall:
    return FunctionCall(
        name=call["name"], arguments=json.dumps(call["arguments"], ensure_ascii=False)
    )


def _invalid(final: FinalReply) -> list[InvalidToolCall] | None:
    return [InvalidToolCall(**call) for call in final.invalid_tool_calls] or None


def completion(final: FinalReply, *, model: str, id: str | None = None) -> ChatCompletion:
    """A ``chat.completion`` body for a finished reply."""
    calls = final.tool_calls
    message = ResponseMessage(
        content=final.content if final.content or not calls else None,
        tool_calls=[ToolCallModel(id=c["id"], function=_function(c)) for c in calls] or None,
        invalid_tool_calls=_invalid(final),
    )
    reason = finish_reason(final.result, has_tool_calls=bool(calls))
    return ChatCompletion(
        id=id or completion_id(),
        model=model,
        choices=[Choice(message=message, finish_reason=reason)],
        usage=usage(final.result),
        safety=safety_payload(final.result),
    )


@dataclass(frozen=True)
class ChunkFormat:
    """Maps one stream's reply events to ``chat.completion.chunk`` objects.

    :meth:`start` gives the opening chunk (``delta.role``). A content delta is a content
    chunk. The final reply gives one chunk with all ``tool_calls`` (and the
    ``invalid_tool_calls``), the chunk with ``finish_reason`` and ``safety``, and, with
    ``include_usage``, a chunk with empty ``choices`` and the ``usage``.
    """

    model: str
    """The served model's name."""
    include_usage: bool = False
    """``stream_options.include_usage``."""
    id: str = field(default_factory=completion_id)
    created: int = field(default_factory=lambda: int(time.time()))

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

    def chunks(self, event: ReplyEvent) -> list[ChatCompletionChunk]:
        """The chunks of one reply event."""
        if isinstance(event, ContentDelta):
            return [self._chunk([ChunkChoice(delta=Delta(content=event.text))])]
        out = []
        if event.tool_calls or event.invalid_tool_calls:
            deltas = [
                ToolCallDelta(index=i, id=c["id"], function=_function(c))
                for i, c in enumerate(event.tool_calls)
            ]
            delta = Delta(tool_calls=deltas or None, invalid_tool_calls=_invalid(event))
            out.append(self._chunk([ChunkChoice(delta=delta)]))
        reason = finish_reason(event.result, has_tool_calls=bool(event.tool_calls))
        choice = ChunkChoice(delta=Delta(), finish_reason=reason)
        out.append(self._chunk([choice], safety=safety_payload(event.result)))
        if self.include_usage:
            out.append(self._chunk([], usage=usage(event.result)))
        return out


# --------------------------------------------------------------------------- errors
_PARAM_RE = re.compile(r"^((?:messages|tools|tool_choice)(?:\[\d+\])?(?:\.\w+(?:\[\d+\])?)*)")
_CONFIG_PARAM_RE = re.compile(r"^Invalid request: (\w+):")
#: GuardConfig names in core messages → the request fields a client sets.
_CLIENT_NAMES = {"max_new_tokens": "max_tokens", "do_sample": "temperature"}


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
        message = _client_names(str(exc))
        code = "context_length_exceeded" if isinstance(exc, ContextLengthError) else "invalid_value"
        return 400, error_body(
            message, type="invalid_request_error", param=_error_param(exc, message), code=code
        )
    if isinstance(exc, ResourceError):
        message = _client_names(str(exc))
        return 413, error_body(
            message, type="invalid_request_error", param=None, code="request_too_large"
        )
    if isinstance(exc, InferenceGuardError):
        return 500, error_body(str(exc), type="server_error", code=type(exc).__name__)
    return 500, error_body(
        "The server had an error while processing the request.",
        type="server_error",
        code="internal_error",
    )


def _client_names(message: str) -> str:
    """The message in the client's field names (``max_tokens``, not ``max_new_tokens``)."""
    for internal, client in _CLIENT_NAMES.items():
        message = re.sub(rf"\b{internal}\b", client, message)
    return message.replace("Invalid GuardConfig: ", "Invalid request: ", 1)


def _error_param(exc: BaseException, message: str) -> str | None:
    """The client's field an error is about: set by :func:`client_error`, else read off
    the message (``messages[0].role …``, ``Invalid request: max_tokens: …``, a
    context-length error about ``max_tokens``)."""
    param = getattr(exc, "param", None)
    if param:
        return str(param)
    match = _PARAM_RE.match(message) or _CONFIG_PARAM_RE.match(message)
    if match:
        return match.group(1)
    if isinstance(exc, ContextLengthError):
        return "messages"
    return None


def safety_header(result: GuardResult) -> str:
    """``X-InferenceGuard-Safety``: the safety report's verdict as compact JSON.

    For clients that only surface headers (LangChain's ``ChatOpenAI``, ``openai``'s
    ``with_raw_response``); the full report is the body's ``safety`` field.
    """
    report = result.safety
    summary = {
        "safe": report.safe,
        "cost": round(report.cost, 6),
        "budget": report.budget,
        "threshold": report.threshold,
        "max_prefix_cost": round(report.max_prefix_cost, 6),
        "exhausted": report.exhausted,
        "finish_reason": result.finish_reason,
        "strategy": report.strategy,
        "cost_model": report.cost_model,
    }
    return json.dumps(summary, separators=(",", ":"), ensure_ascii=True)


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
        if param is None and err.get("type") == "missing":
            # An empty body: name the field that is missing, not just "Field required".
            param = "messages"
        first_param = first_param or param
        msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        parts.append(f"{param}: {msg}" if param else msg)
    return ("Invalid request: " + "; ".join(parts) + "."), first_param, "invalid_value"
