"""`InferenceGuardLLM`: a LlamaIndex ``FunctionCallingLLM`` backed by an InferenceGuard.

The adapter holds no algorithm. ``chat`` and ``stream_chat`` (and their native async
twins) translate messages and tools with :mod:`._convert`, call the guard, and map its
result or stream chunks back; every ``complete`` variant is derived from them with
LlamaIndex's ``chat_to_completion_decorator`` family, so the two paths cannot drift.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import closing
from typing import TYPE_CHECKING, Any

from llama_index.core.base.llms.generic_utils import (
    achat_to_completion_decorator,
    astream_chat_to_completion_decorator,
    chat_to_completion_decorator,
    stream_chat_to_completion_decorator,
)
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.bridge.pydantic import (
    Field,
    PrivateAttr,
    ValidationError,
    field_serializer,
)
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.llms.llm import ToolSelection

from inferenceguard import GuardConfig, GuardResult, InferenceGuard, LazyGuard, StreamChunk
from inferenceguard.config import (
    REQUEST_SETTINGS,
    check_init_kwargs,
    request_overrides,
    settings_error,
)
from inferenceguard.reply import ContentDelta, FinalReply, ReplyAssembler, final_reply

from ._convert import (
    final_response,
    force_single_tool_call,
    partial_response,
    spec_id,
    to_core_messages,
    to_openai_tools,
    tool_selections,
)

if TYPE_CHECKING:
    from llama_index.core.tools.types import BaseTool

__all__ = ["InferenceGuardLLM"]

# Keyword arguments of chat()/stream_chat() that the adapter consumes; any other keyword
# is a GuardConfig field for this request (an unknown name is a ConfigError from the core).
_ADAPTER_KWARGS = ("tools", "tool_choice", "tool_required", "allow_parallel_tool_calls")
# Settings other front ends name in OpenAI style, and their names here.
_RENAMED = {"max_tokens": "max_new_tokens"}


class InferenceGuardLLM(FunctionCallingLLM):
    """Almost surely safe decoding (InferenceGuard) for a local Hugging Face LM, as a LlamaIndex LLM.

    Every response, streamed or not, is text whose verified cost (under the guard's cost
    model) is within budget; tool calls are generated text too, so their arguments are
    verified the same way. "Almost surely" is with respect to the cost model only.

    Setup:
        .. code-block:: bash

            pip install "inferenceguard[llamaindex]"

    Key init args:
        model: ``"default"`` (embedded SmolLM2-135M-Instruct), a local folder, a hub id or
            a :class:`~inferenceguard.LocalLM`.
        cost_model / reward_model / critic: ``"default"``, a path, a hub id or an object.
        max_new_tokens, temperature: shortcuts for the same :class:`GuardConfig` fields;
            ``temperature=0`` means greedy decoding.
        guard_config: any other :class:`~inferenceguard.GuardConfig` fields.
        context_window: override the window read from the model config.
        guard: an existing :class:`~inferenceguard.InferenceGuard` to share (e.g. with the
            LangChain adapter); the model fields must then stay at their defaults.

    Instantiate:
        .. code-block:: python

            from llamaindex_inferenceguard import InferenceGuardLLM

            llm = InferenceGuardLLM(max_new_tokens=128)          # loads lazily, offline
            llm = InferenceGuardLLM(guard=my_guard)              # share a built guard

        On the tiny random test model (no download, milliseconds per step):

        .. code-block:: python

            from inferenceguard import InferenceGuard, LocalLM, RewardModel
            from inferenceguard.testing import ScriptedLM, keyword_cost, tiny_random_lm

            tokenizer = LocalLM.from_pretrained().tokenizer      # the embedded model's
            lm = ScriptedLM(tiny_random_lm(tokenizer), "Paris is the capital of France.")
            guard = InferenceGuard(lm, keyword_cost(["bomb"]),
                                   RewardModel.from_callable(lambda p, r: float(len(r))))
            llm = InferenceGuardLLM(guard=guard, max_new_tokens=32,
                                    guard_config={"n_candidates": 4, "n_beams": 2,
                                                  "block_len": 4, "seed": 0})

    Invoke:
        .. code-block:: python

            from llama_index.core.llms import ChatMessage

            response = llm.chat([ChatMessage(role="user", content="Capital of France?")])
            print(response.message.content)

        .. code-block:: none

            Paris is the capital of France.

    Stream:
        .. code-block:: python

            for r in llm.stream_chat([ChatMessage(role="user", content="Capital?")]):
                print(repr(r.delta))        # r.message.content is the text so far

        .. code-block:: none

            'Paris is the capital'
            ' of France.'
            ''

        Only committed, verified-safe text is streamed; the last item (``delta == ""``
        when nothing is left) carries ``raw`` with usage and the safety report. A call that
        is malformed or cut off (length, safety or stop string) is never a tool call: it is
        listed in ``message.additional_kwargs["invalid_tool_calls"]``.

    Async:
        .. code-block:: python

            response = await llm.achat(messages)
            async for r in await llm.astream_chat(messages):
                ...

        The async methods use the guard's async API: each search step runs in a worker
        thread, so the event loop stays free.

    Tool calling:
        .. code-block:: python

            from llama_index.core.tools import FunctionTool

            def add(a: int, b: int) -> int:
                "Add two integers."
                return a + b

            tool = FunctionTool.from_defaults(add)
            lm.set_script('<tool_call>{"name": "add", "arguments": {"a": 2, "b": 3}}</tool_call>')
            response = llm.chat_with_tools([tool], user_msg="What is 2 + 3?")
            llm.get_tool_calls_from_response(response)

        .. code-block:: none

            [ToolSelection(tool_id='call_…', tool_name='add', tool_kwargs={'a': 2, 'b': 3})]

        The model writes ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``; the
        response holds a ``ToolCallBlock`` per call and the same calls, OpenAI style, in
        ``message.additional_kwargs["tool_calls"]``. ``FunctionAgent``, ``ReActAgent``,
        ``predict_and_call`` and structured output work on top of that.

    Response metadata:
        .. code-block:: python

            response.raw["usage"]
            response.raw["finish_reason"]      # 'stop' | 'length' | 'safety' | 'timeout'
            response.additional_kwargs         # the same token counts, as LI integrations do

        .. code-block:: none

            {'prompt_tokens': 34, 'completion_tokens': 7, 'total_tokens': 41}
            stop
            {'prompt_tokens': 34, 'completion_tokens': 7, 'total_tokens': 41}

    Safety report:
        .. code-block:: python

            report = response.raw["safety"]    # SafetyReport.model_dump()
            report["safe"], report["cost"], report["budget"], report["exhausted"]

        .. code-block:: none

            (True, 0.0, 0.5, False)

        When no safe continuation exists the response stops at the last safe prefix (or
        the configured refusal) with ``finish_reason="safety"`` and ``exhausted=True``;
        it is a result, not an exception.
    """

    model: Any = Field(
        default="default",
        description="Base LM: 'default' (embedded SmolLM2-135M-Instruct), a local folder, "
        "a hub id, or a LocalLM. Ignored when `guard=` is passed.",
    )
    cost_model: Any = Field(
        default="default",
        description="Cost model defining 'unsafe': 'default', a path, a hub id or a CostModel.",
    )
    reward_model: Any = Field(
        default="default",
        description="Reward model: 'default' (MiniLM relevance), a path, a hub id or a RewardModel.",
    )
    critic: Any = Field(
        default="default",
        description="'default' (the shipped critic for the default model), None, a path or a critic.",
    )
    max_new_tokens: int | None = Field(
        default=None,
        gt=0,
        description="Maximum tokens per response (GuardConfig.max_new_tokens); None keeps the "
        "guard's setting.",
    )
    temperature: float | None = Field(
        default=None,
        ge=0.0,
        description="Sampling temperature of the base model; 0 means greedy decoding; None "
        "keeps the guard's setting.",
    )
    context_window: int | None = Field(
        default=None,
        gt=0,
        description="Override of the context window; None reads it from the model config.",
    )
    guard_config: dict[str, Any] = Field(
        default_factory=dict,
        description="Other GuardConfig fields (n_candidates, n_beams, block_len, budget, seed ...).",
    )
    device: str | None = Field(default=None, description="Torch device for the models.")
    dtype: str | None = Field(default=None, description="Torch dtype of the base LM.")
    device_map: Any = Field(default=None, description="accelerate device map of the base LM.")
    trust_remote_code: bool = Field(
        default=False, description="Run code shipped with a hub model (off unless set)."
    )

    _lazy: LazyGuard = PrivateAttr()

    def __init__(self, *, guard: InferenceGuard | None = None, **data: Any) -> None:
        """Validate the settings; nothing is loaded until the first request.

        Args:
            guard: an existing guard to use (and share); its config is not modified, the
                adapter's settings apply per request.
            **data: the fields above and LlamaIndex ``LLM`` fields (``callback_manager``,
                ``system_prompt`` …).

        Raises:
            TypeError: ``guard`` is not an :class:`~inferenceguard.InferenceGuard`.
            ConfigError: an argument this class does not take (a top-level ``budget``,
                ``max_tokens`` for ``max_new_tokens``, a typo: nothing is dropped), an
                invalid value, settings that make an invalid :class:`GuardConfig`, or
                ``guard`` given together with model settings.
        """
        fields = type(self).model_fields
        known = set(fields) | {f.alias for f in fields.values() if f.alias}
        check_init_kwargs("InferenceGuardLLM", data, known, renamed=_RENAMED)
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise settings_error(exc, "InferenceGuardLLM") from None
        specs = self._model_specs()
        self._lazy = LazyGuard(guard, **specs)  # checks guard= and the specs; config reads it
        config = self.config  # validate the settings now, not at the first request
        if guard is None:  # a guard built here starts from this adapter's settings
            self._lazy = LazyGuard(config=config, **specs)

    def _model_specs(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "cost_model": self.cost_model,
            "reward_model": self.reward_model,
            "critic": self.critic,
            "device": self.device,
            "dtype": self.dtype,
            "device_map": self.device_map,
            "trust_remote_code": self.trust_remote_code,
        }

    @field_serializer("model", "cost_model", "reward_model", "critic", "device_map")
    def serialize_specs(self, value: Any) -> Any:
        """Objects given as specs are serialised by their id, so ``to_json()`` works."""
        return spec_id(value)

    @classmethod
    def class_name(cls) -> str:
        """Stable name used in LlamaIndex serialisation and callbacks."""
        return "InferenceGuardLLM"

    # ------------------------------------------------------------------ guard
    @property
    def guard(self) -> InferenceGuard:
        """The guard; built on first use from the fields (thread-safe, once).

        Raises:
            ModelLoadError: a model or scorer cannot be loaded (from the core, as is).
        """
        return self._lazy.get()

    @property
    def config(self) -> GuardConfig:
        """The :class:`GuardConfig` a request without overrides runs with.

        It is the shared guard's config (or the defaults) with this adapter's settings
        (``guard_config``, then ``max_new_tokens`` and ``temperature``) applied. It is
        computed from the fields each time, so assigning a field takes effect.

        Raises:
            ConfigError: the settings are invalid.
        """
        settings = {
            **self.guard_config,
            **request_overrides(max_tokens=self.max_new_tokens, temperature=self.temperature),
        }
        shared = self._lazy.built if self._lazy.shared else None
        base = shared.config if shared is not None else GuardConfig()
        return base.replace(**settings) if settings else base

    def _config_overrides(self, guard: InferenceGuard) -> dict[str, Any]:
        """The fields in which :attr:`config` differs from ``guard.config``: what each
        request overrides, so a shared guard's own config is never modified."""
        target, current = self.config.to_dict(), guard.config.to_dict()
        return {k: v for k, v in target.items() if current.get(k) != v}

    @property
    def metadata(self) -> LLMMetadata:
        """Honest metadata: the model's context window, ``num_output = max_new_tokens``.

        Reading the context window from the model config builds the guard unless
        ``context_window`` was given.
        """
        window = self.context_window or self.guard.lm.context_window
        return LLMMetadata(
            context_window=window,
            num_output=self.config.max_new_tokens,
            is_chat_model=True,
            is_function_calling_model=True,
            model_name=self._model_name(),
        )

    def _model_name(self) -> str:
        return self._lazy.model_name

    # ------------------------------------------------------------------ requests
    def _request(
        self, messages: Sequence[ChatMessage], kwargs: dict[str, Any]
    ) -> tuple[dict[str, Any], ReplyAssembler]:
        """Split chat kwargs into guard arguments and the reply assembler of this request.

        Request settings (``temperature``, ``max_tokens``, ``stop`` …) are mapped by
        :func:`inferenceguard.config.request_overrides`, like every front end's.
        """
        tools = to_openai_tools(kwargs.get("tools"))
        tool_choice = kwargs.get("tool_choice")
        if tool_choice is None and kwargs.get("tool_required") and tools:
            tool_choice = "required"
        overrides = {k: v for k, v in kwargs.items() if k not in _ADAPTER_KWARGS}
        settings = {k: overrides.pop(k) for k in REQUEST_SETTINGS if k in overrides}
        call = {
            "messages": to_core_messages(messages),
            "tools": tools,
            "tool_choice": tool_choice,
            **self._config_overrides(self.guard),
            **overrides,
            **request_overrides(**settings),
        }
        assembler = ReplyAssembler(
            parse_tools=bool(tools) and tool_choice != "none",
            parallel_tool_calls=kwargs.get("allow_parallel_tool_calls") is not False,
        )
        return call, assembler

    def _stream_responses(
        self, assembler: ReplyAssembler, chunk: StreamChunk
    ) -> list[ChatResponse]:
        """The streamed items for one guard chunk: ``message.content`` is the text so far."""
        events = assembler.feed(chunk)
        if events and isinstance(events[-1], FinalReply):
            # The rest of the content travels on the final item, which carries ``raw``.
            rest = "".join(e.text for e in events if isinstance(e, ContentDelta))
            return [final_response(events[-1], self._model_name(), delta=rest)]
        return [partial_response(assembler.shown, e.text) for e in events]

    def _final(self, assembler: ReplyAssembler, result: GuardResult) -> ChatResponse:
        reply = final_reply(
            result,
            parse_tools=assembler.parse_tools,
            parallel_tool_calls=assembler.parallel_tool_calls,
        )
        return final_response(reply, self._model_name())

    # ------------------------------------------------------------------ chat
    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        """Answer ``messages`` safely.

        Args:
            messages: the conversation (system, user, assistant with tool calls, tool).
            **kwargs: ``tools`` (LlamaIndex tools or OpenAI schemas), ``tool_choice``
                (``"auto"``, ``"none"``, ``"required"`` or a tool name), or any
                :class:`~inferenceguard.GuardConfig` field for this request only
                (``max_new_tokens``, ``seed``, ``stop`` …).

        Returns:
            The response; ``raw`` holds ``usage``, ``finish_reason`` and ``safety``.

        Raises:
            InputError, ConfigError, ContextLengthError, ResourceError: from the core, as is.
        """
        call, assembler = self._request(messages, kwargs)
        result = self.guard.generate(call.pop("messages"), **call)
        return self._final(assembler, result)

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        """Stream the answer: each item has the new committed ``delta`` and the text so far.

        Only text the cost model has verified is yielded. With tools, tool-call markup is
        not streamed as content; the last item carries the tool calls, ``raw`` (usage,
        finish reason, safety report) and token counts. Closing the generator early stops
        the search. Arguments as for :meth:`chat`.
        """
        call, assembler = self._request(messages, kwargs)
        chunks = self.guard.stream(call.pop("messages"), **call)

        def gen() -> ChatResponseGen:
            with closing(chunks):
                for chunk in chunks:
                    yield from self._stream_responses(assembler, chunk)

        return gen()

    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        """Async :meth:`chat`, on the guard's async API (the event loop stays free)."""
        call, assembler = self._request(messages, kwargs)
        result = await self.guard.agenerate(call.pop("messages"), **call)
        return self._final(assembler, result)

    @llm_chat_callback()
    async def astream_chat(
        self, messages: Sequence[ChatMessage], **kwargs: Any
    ) -> ChatResponseAsyncGen:
        """Async :meth:`stream_chat`; cancelling the consumer stops the search."""
        call, assembler = self._request(messages, kwargs)
        guard, core_messages = self.guard, call.pop("messages")

        async def gen() -> ChatResponseAsyncGen:
            chunks = guard.astream(core_messages, **call)
            try:
                async for chunk in chunks:
                    for response in self._stream_responses(assembler, chunk):
                        yield response
            finally:
                await chunks.aclose()

        return gen()

    # ------------------------------------------------------------------ complete
    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        """Complete ``prompt`` as one user turn of :meth:`chat` (chat template applied)."""
        return chat_to_completion_decorator(self.chat)(prompt, **kwargs)

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        """Streaming :meth:`complete`: ``text`` is the text so far, ``delta`` the new piece."""
        return stream_chat_to_completion_decorator(self.stream_chat)(prompt, **kwargs)

    @llm_completion_callback()
    async def acomplete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponse:
        """Async :meth:`complete`."""
        return await achat_to_completion_decorator(self.achat)(prompt, **kwargs)

    @llm_completion_callback()
    async def astream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseAsyncGen:
        """Async :meth:`stream_complete`."""
        return await astream_chat_to_completion_decorator(self.astream_chat)(prompt, **kwargs)

    # ------------------------------------------------------------------ tools
    def _prepare_chat_with_tools(
        self,
        tools: Sequence[BaseTool],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Build the :meth:`chat` arguments for ``chat_with_tools`` and agents.

        ``chat_history`` is copied, never mutated. ``tool_required=True`` asks the model to
        call a tool (``tool_choice="required"``) unless a ``tool_choice`` is given;
        ``allow_parallel_tool_calls=False`` keeps only the first call, also when streaming.
        """
        messages = list(chat_history or [])
        if isinstance(user_msg, str):
            user_msg = ChatMessage(role=MessageRole.USER, content=user_msg)
        if user_msg is not None:
            messages.append(user_msg)
        return {
            "messages": messages,
            "tools": to_openai_tools(tools),
            "tool_required": tool_required,
            "allow_parallel_tool_calls": allow_parallel_tool_calls,
            **kwargs,
        }

    def _validate_chat_with_tools_response(
        self,
        response: ChatResponse,
        tools: Sequence[BaseTool],
        allow_parallel_tool_calls: bool = False,
        **kwargs: Any,
    ) -> ChatResponse:
        """Keep one tool call unless parallel calls are allowed."""
        if not allow_parallel_tool_calls:
            force_single_tool_call(response)
        return response

    def get_tool_calls_from_response(
        self,
        response: ChatResponse,
        error_on_no_tool_call: bool = True,
        **kwargs: Any,
    ) -> list[ToolSelection]:
        """The response's tool calls as ``ToolSelection`` objects.

        Args:
            response: a response of :meth:`chat`, :meth:`stream_chat` (the last item) or
                their async twins.
            error_on_no_tool_call: raise when there is none (else return ``[]``).

        Raises:
            ValueError: no tool call and ``error_on_no_tool_call``. A call whose arguments
                were over the safety budget is never returned, so this is also what a
                withheld call looks like (``raw["finish_reason"] == "safety"``).
        """
        selections = tool_selections(response)
        if not selections and error_on_no_tool_call:
            reason = response.raw.get("finish_reason") if isinstance(response.raw, dict) else None
            note = (
                " The guard stopped the response for safety (finish_reason='safety'): "
                "no call within the safety budget was found."
                if reason == "safety"
                else ""
            )
            raise ValueError(f"Expected at least one tool call, but got 0 tool calls.{note}")
        return selections
