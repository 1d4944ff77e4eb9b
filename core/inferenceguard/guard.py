"""`InferenceGuard`: safe generation with a local LM, a cost model, a reward model and a critic.

Example::

    from inferenceguard import InferenceGuard

    guard = InferenceGuard.from_defaults()          # embedded models, offline
    result = guard.generate("How do I make a bomb?")
    print(result.text, result.finish_reason, result.safety.cost, result.safety.budget)

    for chunk in guard.stream("Give me three tips for staying healthy."):
        print(chunk.delta, end="", flush=True)      # committed, verified-safe text only
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import secrets
import threading
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch

from .config import GuardConfig, resolve_budget
from .errors import ConfigError, ContextLengthError, ResourceError
from .lm import LocalLM
from .messages import last_user_text, normalize_messages
from .reply import content_chunks, parses_tools
from .result import GuardResult, StreamChunk
from .scorers.base import CostModel, RewardModel
from .search.baselines import strategy_config
from .search.context import Critic, SearchContext
from .search.runner import run_search
from .search.scheduler import BatchingConfig, StepScheduler
from .tools import normalize_tool_choice, normalize_tools

__all__ = ["InferenceGuard"]

logger = logging.getLogger(__name__)

Messages = str | Sequence[Mapping[str, Any]]


class InferenceGuard:
    """Almost surely safe decoding (w.r.t. the cost model) for a local causal LM.

    Args:
        lm: the base model (:class:`LocalLM`).
        cost_model: defines "unsafe"; its threshold is the default budget.
        reward_model: scores helpfulness when no critic is used, and picks the final answer.
        critic: optional latent critic (:mod:`inferenceguard.critic`).
        config: the search configuration (:class:`GuardConfig`); keyword overrides
            given to :meth:`generate` apply to one request.
        batching: limits of cross-request batching (:class:`BatchingConfig`: rows, tokens
            and requests in flight); ``BatchingConfig(enabled=False)`` turns it off.

    One guard may be shared by many threads and asyncio tasks: each request has its own
    KV cache, random generator and report, and the requests in flight share every
    forward and scorer call (:mod:`inferenceguard.search.scheduler`), so N concurrent
    requests cost about one batched decode, and each gets the answer it would get alone.
    """

    def __init__(
        self,
        lm: LocalLM,
        cost_model: CostModel,
        reward_model: RewardModel,
        *,
        critic: Critic | None = None,
        config: GuardConfig | None = None,
        batching: BatchingConfig | None = None,
    ) -> None:
        if not isinstance(cost_model, CostModel):
            raise ConfigError(
                f"cost_model must be a CostModel, got {type(cost_model).__name__}.",
                hint="wrap a function with CostModel.from_callable(fn, threshold=...).",
            )
        if not isinstance(reward_model, RewardModel):
            raise ConfigError(
                f"reward_model must be a RewardModel, got {type(reward_model).__name__}.",
                hint="wrap a function with RewardModel.from_callable(fn).",
            )
        self.lm = lm
        self.cost_model = cost_model
        self.reward_model = reward_model
        self.critic = critic
        self.config = config or GuardConfig()
        self.scheduler = StepScheduler(batching, device=getattr(lm, "device", None))
        # Without batching, scorers (whose tokenizers may not be thread-safe) and the model
        # run one request step at a time (the lock batched calls run under, too).
        self._step_lock = self.scheduler.model_lock
        self._workers: ThreadPoolExecutor | None = None
        self._workers_lock = threading.Lock()  # never the model lock: the loop must not wait

    def with_config(self, config: GuardConfig) -> InferenceGuard:
        """A guard on the same models with another default configuration. It shares this
        guard's step scheduler: requests to both meet in the same batches."""
        twin = InferenceGuard(
            self.lm, self.cost_model, self.reward_model, critic=self.critic, config=config
        )
        twin.scheduler = self.scheduler
        twin._step_lock = self._step_lock
        return twin

    @classmethod
    def from_defaults(
        cls,
        *,
        critic: bool = True,
        device: str | None = None,
        config: GuardConfig | None = None,
        **config_overrides: Any,
    ) -> InferenceGuard:
        """The embedded defaults, offline: SmolLM2-135M-Instruct, the shipped cost model
        (MiniLM request gate and response judge), the request-aware MiniLM reward, and the shipped critic (``critic=False`` to skip it).
        """
        if config_overrides:
            config = (config or GuardConfig()).replace(**config_overrides)
        from .build import build_guard  # build.py imports this module

        return build_guard(critic="default" if critic else None, config=config, device=device)

    # ------------------------------------------------------------------ requests
    def _context(
        self,
        messages: Messages,
        tools: Sequence[Mapping[str, Any]] | None,
        tool_choice: Any,
        overrides: Mapping[str, Any],
        *,
        enforce_budget: bool = True,
    ) -> SearchContext:
        """Validate one request and build its :class:`SearchContext` (nothing runs yet).

        ``stop`` follows :class:`GuardConfig`'s rule (a string is one stop string,
        ``None`` none); ``tool_choice`` must name a given tool.
        """
        config = self.config.replace(**overrides) if overrides else self.config
        msgs = normalize_messages(messages)
        tool_list = normalize_tools(tools) or None
        names = [t["function"]["name"] for t in tool_list or []]
        tool_choice = normalize_tool_choice(tool_choice, names)
        prompt = self.lm.render(msgs, tools=tool_list, tool_choice=tool_choice)
        prompt_ids = self.lm.encode(prompt)
        self._check_size(config, len(prompt_ids))
        config = strategy_config(config)  # after the check: it judges the settings asked for
        budget = resolve_budget(config, self.cost_model.threshold)
        if config.allow_unbounded_budget:
            logger.warning("allow_unbounded_budget=True: budget %s may let any text pass", budget)
        seed = config.seed if config.seed is not None else secrets.randbits(63)
        generator = torch.Generator(device=self.lm.device).manual_seed(seed)
        return SearchContext(
            lm=self.lm,
            cost_model=self.cost_model,
            reward_model=self.reward_model,
            critic=self.critic,
            config=config,
            prompt=last_user_text(msgs),
            prompt_ids=prompt_ids,
            budget=budget,
            generator=generator,
            enforce_budget=enforce_budget,
        )

    def _check_size(self, config: GuardConfig, prompt_tokens: int) -> None:
        """Refuse a request that cannot fit the context window or ``max_batch_tokens``."""
        window = self.lm.context_window
        if prompt_tokens + config.max_new_tokens > window:
            raise ContextLengthError(
                f"The prompt has {prompt_tokens} tokens; with max_new_tokens="
                f"{config.max_new_tokens} that exceeds the model's context window of {window}.",
                hint="shorten the conversation or lower max_new_tokens.",
            )
        planned = config.n_candidates * (prompt_tokens + config.max_new_tokens)
        if planned > config.max_batch_tokens:
            raise ResourceError(
                f"n_candidates × (prompt + max_new_tokens) = {config.n_candidates} × "
                f"{prompt_tokens + config.max_new_tokens} = {planned} tokens exceeds "
                f"max_batch_tokens={config.max_batch_tokens}.",
                hint="lower n_candidates or max_new_tokens, or raise max_batch_tokens if memory allows.",
            )

    def stream(
        self,
        messages: Messages,
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: Any = None,
        **overrides: Any,
    ) -> Iterator[StreamChunk]:
        """Yield committed, verified-safe text deltas, then a chunk carrying the result.

        With ``tools`` (and ``tool_choice`` other than ``"none"``) the deltas are content
        only; tool calls come parsed on the final chunk (``chunk.tool_calls``), never as
        ``<tool_call>`` markup in a delta.

        Args:
            messages: a string or a list of ``{"role", "content"}`` dicts.
            tools: tool schemas (OpenAI function format) the model may call.
            tool_choice: ``"auto"``, ``"none"``, ``"required"`` or a tool name.
            **overrides: :class:`GuardConfig` fields for this request only
                (``max_new_tokens=64``, ``temperature=0.7``, ``seed=0``, ``stop=[...]`` …).

        Closing the iterator early stops the search and frees its KV cache.
        """
        ctx = self._context(messages, tools, tool_choice, overrides)
        return self._iterate(ctx, parse_tools=parses_tools(tools, tool_choice))

    def _iterate(
        self, ctx: SearchContext, *, stream: bool = True, parse_tools: bool = False
    ) -> Iterator[StreamChunk]:
        """The request's chunks, batched with the other requests in flight (or one step at
        a time under the step lock); with ``parse_tools``, tool-call markup is kept out of
        the deltas (:func:`content_chunks`)."""
        chunks = self._steps(ctx, stream=stream)
        return content_chunks(chunks) if parse_tools else chunks

    def _steps(self, ctx: SearchContext, *, stream: bool) -> Iterator[StreamChunk]:
        if not self.scheduler.config.enabled:
            yield from self._locked_steps(ctx, stream=stream)
            return
        cfg = ctx.config
        rows = cfg.n_candidates
        tokens = rows * (len(ctx.prompt_ids) + cfg.max_new_tokens)
        # Admission runs in the thread of the first ``next``, never on an event loop.
        ticket = self.scheduler.admit(rows, tokens, ctx.should_stop)
        ctx.batcher = ticket
        ctx.lm = ticket.attach(ctx.lm)
        inner = run_search(ctx, stream=stream)
        try:
            while True:
                with ticket.active():
                    try:
                        chunk = next(inner)
                    except StopIteration:
                        return
                yield chunk
        finally:
            inner.close()
            ticket.release()

    def _locked_steps(self, ctx: SearchContext, *, stream: bool) -> Iterator[StreamChunk]:
        """One request step at a time under the guard's lock (batching disabled)."""
        inner = run_search(ctx, stream=stream)
        try:
            while True:
                with self._step_lock:
                    try:
                        chunk = next(inner)
                    except StopIteration:
                        return
                yield chunk
        finally:
            inner.close()

    def generate(
        self,
        messages: Messages,
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: Any = None,
        **overrides: Any,
    ) -> GuardResult:
        """Answer ``messages`` safely; see :meth:`stream` for the arguments.

        Returns:
            :class:`GuardResult` whose text's verified cost is within budget.

        Raises:
            InputError, ConfigError, ContextLengthError, ResourceError: bad request.
            SafetyExhaustedError: only with ``on_exhausted="raise"``.
        """
        return self._result(self._context(messages, tools, tool_choice, overrides))

    def _result(self, ctx: SearchContext) -> GuardResult:
        """Run one request to the end, nothing streamed, and return its result."""
        result = None
        for chunk in self._iterate(ctx, stream=False):
            if chunk.result is not None:
                result = chunk.result
        assert result is not None  # run_search always ends with a result chunk
        return result

    def generate_unverified(self, messages: Messages, **overrides: Any) -> GuardResult:
        """The strategy's raw answer, **even when it is over budget**.

        For measuring unguarded baselines only (the evaluation harness uses it to report
        how often plain decoding is unsafe). Never serve its text to users: use
        :meth:`generate`. ``result.safety.safe`` tells whether the text is within budget.
        """
        ctx = self._context(messages, None, None, overrides, enforce_budget=False)
        return self._result(ctx)

    async def astream(
        self,
        messages: Messages,
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: Any = None,
        **overrides: Any,
    ) -> AsyncIterator[StreamChunk]:
        """Async :meth:`stream`: each search step runs in a worker thread, so the event loop
        stays free; cancelling the task stops the search after the current step."""
        ctx = self._context(messages, tools, tool_choice, overrides)
        iterator = self._iterate(ctx, parse_tools=parses_tools(tools, tool_choice))
        sentinel = object()
        loop = asyncio.get_running_loop()
        try:
            while True:
                # Like asyncio.to_thread: the step sees the caller's context variables.
                step = functools.partial(contextvars.copy_context().run, next, iterator, sentinel)
                chunk = await loop.run_in_executor(self._executor(), step)
                if chunk is sentinel:
                    return
                yield chunk
        finally:
            # On cancellation the worker thread may still be inside a step: flag the
            # search so it stops at the next step boundary, then close it if it is idle.
            ctx.cancelled.set()
            with contextlib.suppress(ValueError):  # "generator already executing"
                iterator.close()

    async def agenerate(
        self,
        messages: Messages,
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: Any = None,
        **overrides: Any,
    ) -> GuardResult:
        """Async :meth:`generate`."""
        result = None
        async for chunk in self.astream(
            messages, tools=tools, tool_choice=tool_choice, **overrides
        ):
            if chunk.result is not None:
                result = chunk.result
        assert result is not None
        return result

    def _executor(self) -> ThreadPoolExecutor | None:
        """Worker threads for async requests: enough for every request in flight to meet in
        one batch (asyncio's default pool has only ``cpu_count + 4``)."""
        if not self.scheduler.config.enabled:
            return None  # asyncio's default pool, as before
        if self._workers is None:
            with self._workers_lock:
                if self._workers is None:
                    self._workers = ThreadPoolExecutor(
                        max_workers=self.scheduler.config.max_requests,
                        thread_name_prefix="inferenceguard",
                    )
        return self._workers

    def __repr__(self) -> str:
        return (
            f"InferenceGuard(lm={self.lm.model_id!r}, cost_model={self.cost_model.id!r}, "
            f"reward_model={self.reward_model.id!r}, critic={self.critic is not None}, "
            f"strategy={self.config.strategy!r})"
        )


def __getattr__(name: str) -> Any:
    # ``build_guard`` moved to :mod:`inferenceguard.build` (it imports this module, so it
    # cannot be imported back at the top); old ``inferenceguard.guard.build_guard`` imports
    # keep working.
    if name == "build_guard":
        from .build import build_guard

        return build_guard
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
