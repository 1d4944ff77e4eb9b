"""The step scheduler: every request in flight on one guard shares each forward and scorer call.

Each request still runs its own search (the same steps, its own KV cache and its own
``torch.Generator``), in its own thread. Whenever it needs the model — one decode token
for its candidate rows, a cost or reward call, a critic call — it hands the work to the
scheduler and blocks. Once no admitted request is computing (every one is waiting on the
scheduler, or paused between stream chunks), the last one to arrive runs **everything
pending as one call per kind**: one forward for the rows of every request
(:meth:`~inferenceguard.lm.LocalLM.step_many`: caches stacked left-padded, with an
attention mask and per-row position ids), one cost-model call, one reward-model call,
one critic call. Requests therefore advance in lock step, token by token, and join or
leave between any two of these calls — in particular at block boundaries.

Because sampling stays in each request's thread with its own generator, and each row's
forward sees only its own positions, a request's answer does not depend on what else is
in flight (up to float rounding of a larger matrix product).

Admission is bounded (:class:`BatchingConfig`): a request that would push the rows or
tokens in flight past the limits waits for others to finish instead of running out of
memory. A cancelled or timed-out request leaves at its next step, freeing its rows.

Example::

    scheduler = StepScheduler(BatchingConfig(max_rows=64))
    ticket = scheduler.admit(rows=16, tokens=16 * 300)
    with ticket.active():
        ...                       # run the search; lm.step / ctx.cost go through the ticket
    ticket.release()
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field

from ..scorers.base import checked_scores, count_tokens, token_meter

__all__ = ["BatchingConfig", "SchedulerStats", "StepScheduler", "Ticket"]


class BatchingConfig(BaseModel):
    """Guard-level limits of cross-request batching (``InferenceGuard(batching=...)``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    """Share forwards and scorer calls across requests in flight. ``False`` runs one
    request step at a time, each with its own forwards (the behaviour before batching)."""

    max_rows: int | None = Field(None, ge=1)
    """Candidate rows in flight: the sum of ``n_candidates`` over admitted requests.
    Default 64 on CPU, where a forward costs about its rows (measured on 2 cores: 130 rows
    per forward was slower per request than 16), and 512 on an accelerator."""

    max_tokens: int = Field(4_000_000, ge=1)
    """KV positions in flight: the sum of ``n_candidates × (prompt + max_new_tokens)``
    over admitted requests (compare ``GuardConfig.max_batch_tokens`` for one request)."""

    max_requests: int = Field(64, ge=1)
    """Requests in flight; also the worker threads that run async requests."""


@dataclass
class SchedulerStats:
    """Counters of batched calls, for benchmarks (``rows_per_forward``)."""

    forwards: int = 0
    rows: int = 0
    score_calls: int = 0
    critic_calls: int = 0

    @property
    def rows_per_forward(self) -> float:
        return self.rows / self.forwards if self.forwards else 0.0


@dataclass
class _Entry:
    item: Any
    done: bool = False
    result: Any = None
    error: BaseException | None = None


@dataclass
class _Batch:
    """Pending work of one kind: ``run(items) -> results`` is called once for all entries."""

    run: Callable[[list[Any]], list[Any]]
    entries: list[_Entry] = field(default_factory=list)

    def execute(self) -> None:
        try:
            results = self.run([e.item for e in self.entries])
        except BaseException as exc:  # every waiting request sees the failure
            for entry in self.entries:
                entry.error, entry.done = exc, True
            return
        for entry, result in zip(self.entries, results, strict=True):
            entry.result, entry.done = result, True


class StepScheduler:
    """Admission and lock-step batching for the requests of one guard (thread-safe).

    Args:
        config: the limits; see :class:`BatchingConfig`.
        device: where the model runs (chooses the default ``max_rows``).
    """

    def __init__(
        self, config: BatchingConfig | None = None, device: torch.device | str | None = None
    ) -> None:
        self.config = config or BatchingConfig()
        on_cpu = device is None or torch.device(device).type == "cpu"
        self.max_rows = self.config.max_rows or (64 if on_cpu else 512)
        self.stats = SchedulerStats()
        self._cond = threading.Condition(threading.Lock())
        self._pending: dict[Hashable, _Batch] = {}
        self._running = 0  # admitted requests computing (not waiting here, not paused)
        self._executing = False
        self._rows = self._tokens = self._requests = 0
        #: Held while batched calls run. Code that calls the guard's models directly from
        #: another thread (e.g. the evaluator re-scoring answers) holds it too, so no scorer
        #: (whose tokenizer may not be thread-safe) is ever called from two threads at once.
        self.model_lock = threading.RLock()

    @property
    def in_flight(self) -> tuple[int, int, int]:
        """``(requests, rows, tokens)`` admitted now."""
        return self._requests, self._rows, self._tokens

    def admit(self, rows: int, tokens: int, should_stop: Callable[[], bool] = bool) -> Ticket:
        """Wait until a request of ``rows`` candidates and ``tokens`` KV positions fits.

        A request always fits when nothing else is in flight; one whose ``should_stop``
        turns true while waiting is admitted at once (its search ends at its first step).
        """
        cfg = self.config
        with self._cond:
            while self._requests and not should_stop():
                fits = (
                    self._requests < cfg.max_requests
                    and self._rows + rows <= self.max_rows
                    and self._tokens + tokens <= cfg.max_tokens
                )
                if fits:
                    break
                self._cond.wait(timeout=0.05)
            self._requests += 1
            self._rows += rows
            self._tokens += tokens
        return Ticket(self, rows, tokens)

    def _release(self, rows: int, tokens: int) -> None:
        with self._cond:
            self._requests -= 1
            self._rows -= rows
            self._tokens -= tokens
            self._cond.notify_all()

    def _resume(self) -> None:
        with self._cond:
            self._running += 1

    def _pause(self) -> None:
        with self._cond:
            self._running -= 1
            self._cond.notify_all()  # a waiter may now run the pending batches

    def submit(self, key: Hashable, run: Callable[[list[Any]], list[Any]], item: Any) -> Any:
        """Queue ``item`` with the pending work of kind ``key`` and wait for its result.

        ``run`` turns the items of every request into their results in one call; the
        first caller's ``run`` is used for the whole batch (callers of one key agree).
        """
        entry = _Entry(item)
        with self._cond:
            self._pending.setdefault(key, _Batch(run)).entries.append(entry)
            self._running -= 1
            try:
                while not entry.done:
                    if self._running <= 0 and not self._executing and self._pending:
                        self._execute_locked()
                    else:
                        self._cond.wait()
            finally:
                self._running += 1
        if entry.error is not None:
            raise entry.error
        return entry.result

    def _execute_locked(self) -> None:
        """Run every pending batch (called holding the lock, which it drops meanwhile)."""
        batches = list(self._pending.values())
        self._pending = {}
        self._executing = True
        self._cond.release()
        try:
            with self.model_lock:
                for batch in batches:
                    batch.execute()
        finally:
            self._cond.acquire()
            self._executing = False
            self._cond.notify_all()


class Ticket:
    """One admitted request's handle: its model calls join the scheduler's batches."""

    def __init__(self, scheduler: StepScheduler, rows: int, tokens: int) -> None:
        self._scheduler = scheduler
        self._size = (rows, tokens)
        self._released = False

    @contextmanager
    def active(self) -> Iterator[None]:
        """While inside, the request is computing: batches wait for it to submit its work.
        Outside (e.g. a stream waiting for its reader), it holds no one up."""
        self._scheduler._resume()
        try:
            yield
        finally:
            self._scheduler._pause()

    def release(self) -> None:
        """Give the request's rows back (idempotent)."""
        if not self._released:
            self._released = True
            self._scheduler._release(*self._size)

    def step(self, lm: Any, state: Any, next_tokens: torch.Tensor) -> None:
        """The stepper of a decode state: one token, in the forward shared by all requests."""
        stats = self._scheduler.stats

        def run(items: list[tuple[Any, torch.Tensor]]) -> list[None]:
            stats.forwards += 1
            stats.rows += sum(s.n for s, _ in items)
            lm.step_many([s for s, _ in items], [t for _, t in items])
            return [None] * len(items)

        self._scheduler.submit(("step", id(lm)), run, (state, next_tokens))

    def scores(self, model: Any, prompts: Sequence[str], texts: Sequence[str]) -> torch.Tensor:
        """``checked_scores(model, prompts, texts)``, in one call with every other request's."""
        stats = self._scheduler.stats

        def run(items: list[tuple[Sequence[str], Sequence[str]]]) -> list[Any]:
            stats.score_calls += 1
            all_prompts = [p for ps, _ in items for p in ps]
            all_texts = [t for _, ts in items for t in ts]
            with token_meter() as meter:
                scores = checked_scores(model, all_prompts, all_texts)
            # Each request's share of the tokens the shared call read, by its text length.
            sizes = [sum(len(p) + len(t) for p, t in zip(*item, strict=True)) for item in items]
            shares = [meter.tokens * n // max(1, sum(sizes)) for n in sizes]
            parts = scores.split([len(ts) for _, ts in items])
            return [
                (part, share if meter.counted else None)
                for part, share in zip(parts, shares, strict=True)
            ]

        result, share = self._scheduler.submit(
            ("score", id(model)), run, (list(prompts), list(texts))
        )
        if share is not None:
            count_tokens(share)  # into the requesting thread's meter, as an unbatched call
        return result

    @property
    def model_lock(self) -> Any:
        """The scheduler's model lock: held by anything that runs a model outside a batch."""
        return self._scheduler.model_lock

    def predict(
        self, critic: Any, hidden: torch.Tensor, z: torch.Tensor, step_frac: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``critic.predict(hidden, z, step_frac)``, in one call with every other request's."""
        stats = self._scheduler.stats

        def run(items: list[tuple[torch.Tensor, ...]]) -> list[tuple[torch.Tensor, ...]]:
            stats.critic_calls += 1
            sizes = [h.shape[0] for h, _, _ in items]
            p_safe, value = critic.predict(
                torch.cat([h for h, _, _ in items]),
                torch.cat([zz for _, zz, _ in items]),
                torch.cat([f for _, _, f in items]),
            )
            return list(zip(p_safe.split(sizes), value.split(sizes), strict=True))

        return self._scheduler.submit(("critic", id(critic)), run, (hidden, z, step_frac))

    def attach(self, lm: Any) -> Any:
        """``lm`` as this request sees it: the decode states it prefills use this ticket."""
        return _ScheduledDecoder(lm, self)


class _ScheduledDecoder:
    """A request's view of the shared LM: everything delegated, prefilled states attached."""

    def __init__(self, lm: Any, ticket: Ticket) -> None:
        self._lm = lm
        self._ticket = ticket

    def __getattr__(self, name: str) -> Any:
        return getattr(self._lm, name)

    def prefill(self, prompt_ids: Sequence[int]) -> Any:
        state = self._lm.prefill(prompt_ids)
        if hasattr(state, "stepper"):  # a DecodeState (test doubles decode alone)
            state.stepper = self._ticket.step
        return state
