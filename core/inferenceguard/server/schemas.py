"""Request and response bodies of the server, in the OpenAI Chat Completions shape.

Only the request fields the guard can honour are accepted at non-neutral values; the
others fail with a 400 that names the field (``n=2``, ``logprobs=true``,
``response_format={"type": "json_object"}`` …). A safety or search setting (``budget``,
``n_candidates`` … any :class:`~inferenceguard.GuardConfig` field, e.g. sent through
``extra_body``) is refused with a 400 as well: those are the server's. Other unknown
fields are ignored, so newer clients that send extra metadata keep working.

Responses add one field to OpenAI's shape: ``safety``, the request's
:class:`~inferenceguard.SafetyReport` as a dict (plus ``finish_reason``, the guard's own
reason: ``stop``, ``length``, ``safety`` or ``timeout``).
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_serializer,
)

__all__ = [
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionRequest",
    "Choice",
    "ChunkChoice",
    "Delta",
    "ErrorDetail",
    "ErrorResponse",
    "FunctionCall",
    "FunctionDefinition",
    "InvalidToolCall",
    "ModelCard",
    "ModelList",
    "NamedToolChoice",
    "ResponseMessage",
    "StreamOptions",
    "ToolCall",
    "ToolCallDelta",
    "ToolDefinition",
    "Usage",
]


# --------------------------------------------------------------------------- request
class FunctionDefinition(BaseModel):
    """A function the model may call."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1, max_length=64)
    """The function's name."""
    description: str | None = None
    """What it does, shown to the model."""
    parameters: dict[str, Any] | None = None
    """JSON schema of its arguments (an object schema)."""
    strict: bool | None = None
    """Accepted and ignored: arguments are not schema-constrained."""


class ToolDefinition(BaseModel):
    """One entry of ``tools``."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["function"] = "function"
    """Only function tools exist."""
    function: FunctionDefinition
    """The function."""


class _FunctionName(BaseModel):
    name: str


class NamedToolChoice(BaseModel):
    """``{"type": "function", "function": {"name": ...}}``: the model must call that tool."""

    type: Literal["function"] = "function"
    function: _FunctionName


class StreamOptions(BaseModel):
    """Options of a streamed response."""

    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False
    """Send one more chunk before ``[DONE]`` with empty ``choices`` and the ``usage``."""


class ChatCompletionRequest(BaseModel):
    """Body of ``POST /v1/chat/completions``.

    ``messages`` are checked by the core (:func:`inferenceguard.messages.normalize_messages`),
    so the server accepts exactly what the library accepts: roles ``system``/``developer``,
    ``user``, ``assistant`` (with ``tool_calls``) and ``tool``; text content only.
    """

    # Extra fields are kept so that the safety settings among them can be refused.
    model_config = ConfigDict(extra="allow")

    model: str | None = None
    """The served model's name (``GET /v1/models``); another name is a 404."""
    messages: list[dict[str, Any]]
    """The conversation, OpenAI style."""
    max_completion_tokens: int | None = Field(None, ge=1)
    """Maximum tokens in the answer (wins over ``max_tokens``)."""
    max_tokens: int | None = Field(None, ge=1)
    """Maximum tokens in the answer (the older name)."""
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    """Sampling temperature; 0 means greedy decoding."""
    top_p: float | None = Field(None, ge=0.0, le=1.0)
    """Nucleus sampling; 0 means greedy decoding."""
    seed: int | None = None
    """Seed for reproducible sampling."""
    stop: str | list[str] | None = None
    """Up to 4 stop strings; the answer ends right before the first one."""
    tools: list[ToolDefinition] | None = None
    """Functions the model may call."""
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    """``auto`` (default with tools), ``none``, ``required`` or a named function."""
    parallel_tool_calls: bool | None = None
    """``false`` keeps only the first tool call of an answer."""
    n: int | None = None
    """Number of choices; only 1 is supported."""
    stream: bool | None = False
    """Stream server-sent events of ``chat.completion.chunk`` objects."""
    stream_options: StreamOptions | None = None
    """Streaming options (``include_usage``)."""

    # Known OpenAI fields the guard cannot honour: accepted only at their neutral values.
    presence_penalty: float | None = None
    """Only 0 (or absent) is supported."""
    frequency_penalty: float | None = None
    """Only 0 (or absent) is supported."""
    logit_bias: dict[str, float] | None = None
    """Only an empty map (or absent) is supported."""
    logprobs: bool | None = None
    """Only ``false`` (or absent) is supported."""
    top_logprobs: int | None = None
    """Not supported."""
    response_format: dict[str, Any] | None = None
    """Only ``{"type": "text"}`` (or absent) is supported; for structured output use a
    tool (LangChain: ``with_structured_output(Model, method="function_calling")``)."""
    functions: list[dict[str, Any]] | None = None
    """The legacy function-calling API is not supported: use ``tools``."""
    function_call: Any = None
    """The legacy function-calling API is not supported: use ``tool_choice``."""
    user: str | None = None
    """Accepted and ignored."""

    @field_validator("n")
    @classmethod
    def _only_one_choice(cls, value: int | None) -> int | None:
        if value not in (None, 1):
            raise ValueError(f"only n=1 is supported, got n={value}")
        return value

    @field_validator("stop")
    @classmethod
    def _few_stops(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list):
            if len(value) > 4:
                raise ValueError(f"at most 4 stop sequences are supported, got {len(value)}")
            if any(not s for s in value):
                raise ValueError("stop sequences must be non-empty strings")
        elif value == "":
            raise ValueError("stop sequences must be non-empty strings")
        return value

    @field_validator("presence_penalty", "frequency_penalty")
    @classmethod
    def _no_penalty(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value not in (None, 0, 0.0):
            raise ValueError(f"{info.field_name} is not supported (only 0), got {value}")
        return value

    @field_validator("logit_bias")
    @classmethod
    def _no_logit_bias(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value:
            raise ValueError("logit_bias is not supported")
        return value

    @field_validator("logprobs")
    @classmethod
    def _no_logprobs(cls, value: bool | None) -> bool | None:
        if value:
            raise ValueError("logprobs is not supported")
        return value

    @field_validator("top_logprobs")
    @classmethod
    def _no_top_logprobs(cls, value: int | None) -> int | None:
        if value:
            raise ValueError("top_logprobs is not supported")
        return value

    @field_validator("response_format")
    @classmethod
    def _text_only(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and value.get("type", "text") != "text":
            raise ValueError(
                f"response_format type {value.get('type')!r} is not supported (only 'text'): "
                "the answer is not constrained to a schema; ask for a tool call instead "
                "(LangChain: with_structured_output(Model, method='function_calling'))"
            )
        return value

    @field_validator("functions", "function_call")
    @classmethod
    def _no_legacy_functions(cls, value: Any, info: ValidationInfo) -> Any:
        if value:
            raise ValueError(
                f"{info.field_name} (legacy function calling) is not supported; "
                "use tools and tool_choice"
            )
        return value

    @field_validator("tool_choice")
    @classmethod
    def _choice_needs_tools(
        cls, value: str | NamedToolChoice | None, info: ValidationInfo
    ) -> str | NamedToolChoice | None:
        tools = info.data.get("tools") or []
        if isinstance(value, NamedToolChoice):
            names = [t.function.name for t in tools]
            if value.function.name not in names:
                raise ValueError(
                    f"tool_choice names {value.function.name!r}, which is not in tools "
                    f"({', '.join(names) or 'none given'})"
                )
        elif value == "required" and not tools:
            raise ValueError("tool_choice 'required' needs tools")
        return value

    @property
    def max_new_tokens(self) -> int | None:
        """The answer-length limit asked for, if any."""
        return self.max_completion_tokens or self.max_tokens


# --------------------------------------------------------------------------- response
class Usage(BaseModel):
    """Token counts of one request."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class FunctionCall(BaseModel):
    """A function call: its name and its arguments as a JSON string."""

    name: str
    arguments: str


class ToolCall(BaseModel):
    """A tool call in a message."""

    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class InvalidToolCall(BaseModel):
    """A malformed or cut-off tool call (an InferenceGuard extension; never run as a call)."""

    id: str
    name: str | None = None
    """The tool name, when one could be read."""
    arguments: str
    """The raw generated text of the call, ``<tool_call>`` tags included."""
    error: str
    """Why it is not a call (bad JSON, no name, cut off before ``</tool_call>`` …)."""


class ResponseMessage(BaseModel):
    """The assistant message of a choice."""

    role: Literal["assistant"] = "assistant"
    content: str | None
    """The verified-safe text (``null`` when the answer is only tool calls)."""
    refusal: str | None = None
    """Always ``null``: a guard refusal is ordinary content, flagged by ``finish_reason``."""
    tool_calls: list[ToolCall] | None = None
    """Tool calls, when the model called tools."""
    invalid_tool_calls: list[InvalidToolCall] | None = None
    """Malformed or cut-off calls, as text (an InferenceGuard extension)."""

    @model_serializer(mode="wrap")
    def _drop_empty_tool_calls(self, handler: Any) -> dict[str, Any]:
        data = handler(self)
        for key in ("tool_calls", "invalid_tool_calls"):
            if data.get(key) is None:
                data.pop(key, None)
        return data


FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]


class Choice(BaseModel):
    """The one choice of a completion."""

    index: int = 0
    message: ResponseMessage
    logprobs: None = None
    finish_reason: FinishReason


class ChatCompletion(BaseModel):
    """Body of a non-streamed ``POST /v1/chat/completions`` response."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    system_fingerprint: str | None = None
    choices: list[Choice]
    usage: Usage
    safety: dict[str, Any]
    """The :class:`~inferenceguard.SafetyReport` of the answer (an InferenceGuard extension)."""


class ToolCallDelta(BaseModel):
    """A tool call in a stream chunk (sent whole, once the call is complete and verified)."""

    index: int
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class Delta(BaseModel):
    """The change a stream chunk carries; absent fields are left out of the JSON."""

    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[ToolCallDelta] | None = None
    invalid_tool_calls: list[InvalidToolCall] | None = None
    """Malformed or cut-off calls, sent once at the end (an InferenceGuard extension)."""

    @model_serializer(mode="wrap")
    def _drop_none(self, handler: Any) -> dict[str, Any]:
        return {k: v for k, v in handler(self).items() if v is not None}


class ChunkChoice(BaseModel):
    """The one choice of a stream chunk."""

    index: int = 0
    delta: Delta
    logprobs: None = None
    finish_reason: FinishReason | None = None


class ChatCompletionChunk(BaseModel):
    """One server-sent event of a streamed response (``data: {chunk}``).

    ``usage`` is sent (as ``null`` until the last chunk) only with
    ``stream_options.include_usage``; ``safety`` only on the chunk carrying
    ``finish_reason``.
    """

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    system_fingerprint: str | None = None
    choices: list[ChunkChoice]
    usage: Usage | None = None
    safety: dict[str, Any] | None = None
    include_usage: bool = Field(default=False, exclude=True)
    """Whether ``usage`` is part of the JSON (an internal switch, never sent)."""

    @model_serializer(mode="wrap")
    def _optional_fields(self, handler: Any) -> dict[str, Any]:
        data = handler(self)
        if data.get("safety") is None:
            data.pop("safety", None)
        if not self.include_usage:
            data.pop("usage", None)
        return data


class ModelCard(BaseModel):
    """One entry of ``GET /v1/models``."""

    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "inferenceguard"


class ModelList(BaseModel):
    """Body of ``GET /v1/models``."""

    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorDetail(BaseModel):
    """OpenAI's error object."""

    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """Body of every 4xx/5xx response: ``{"error": {"message", "type", "param", "code"}}``."""

    error: ErrorDetail
