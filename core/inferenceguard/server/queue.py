"""Bounded admission: at most ``max_concurrent`` requests run, at most ``max_queue`` wait.

A request that finds every running slot taken and the waiting line full is refused at
once with :class:`QueueFullError` (the server answers 429 with ``Retry-After``) instead
of piling up: under overload, latency stays bounded and clients learn when to retry.

Usage::

    queue = AdmissionQueue(max_concurrent=4, max_queue=32)
    ticket = queue.ticket()          # raises QueueFullError when full
    async with ticket:               # waits for a running slot (cancellable)
        ...                          # run the request

Everything runs on one event loop, so the counters need no lock.
"""

from __future__ import annotations

import asyncio
import math
import time
from types import TracebackType
from typing import Any

__all__ = ["AdmissionQueue", "QueueFullError", "Ticket"]


class QueueFullError(Exception):
    """Every running slot and every waiting place is taken.

    Attributes:
        retry_after: whole seconds after which a retry is likely to be admitted.
    """

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AdmissionQueue:
    """Admission control shared by all requests of one server.

    Args:
        max_concurrent: requests run at the same time (each holds its own KV cache; the
            guard decodes their candidate rows together, one forward per token for all).
        max_queue: requests that may wait for a running slot; beyond that, refuse.
        initial_service_s: assumed seconds per request until one has been measured
            (used for ``Retry-After``).
    """

    def __init__(
        self, *, max_concurrent: int = 4, max_queue: int = 32, initial_service_s: float = 5.0
    ) -> None:
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent must be at least 1, got {max_concurrent}")
        if max_queue < 0:
            raise ValueError(f"max_queue must be 0 or more, got {max_queue}")
        self.max_concurrent = max_concurrent
        self.max_queue = max_queue
        self.running = 0
        self.waiting = 0
        self.rejected = 0
        self.completed = 0
        self._service_s = float(initial_service_s)
        self._semaphore: asyncio.Semaphore | None = None

    @property
    def semaphore(self) -> asyncio.Semaphore:
        """Created on first use, inside the running event loop."""
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.max_concurrent)
        return self._semaphore

    def ticket(self) -> Ticket:
        """Reserve a place, or refuse.

        Raises:
            QueueFullError: ``max_concurrent`` requests run and ``max_queue`` wait.
        """
        if self.running + self.waiting >= self.max_concurrent + self.max_queue:
            self.rejected += 1
            raise QueueFullError(
                f"The server is busy: {self.running} requests running and {self.waiting} "
                f"waiting (max_concurrent={self.max_concurrent}, max_queue={self.max_queue}).",
                retry_after=self.retry_after(),
            )
        self.waiting += 1
        return Ticket(self)

    def retry_after(self) -> int:
        """Seconds until the line has likely moved by one place (1 to 600)."""
        turns = (self.waiting + 1) / self.max_concurrent
        return int(min(600, max(1, math.ceil(self._service_s * turns))))

    def record(self, seconds: float) -> None:
        """Fold one request's running time into the service-time estimate."""
        self.completed += 1
        self._service_s = 0.8 * self._service_s + 0.2 * max(0.0, seconds)

    def snapshot(self) -> dict[str, Any]:
        """Counters for ``GET /health``."""
        return {
            "running": self.running,
            "waiting": self.waiting,
            "max_concurrent": self.max_concurrent,
            "max_queue": self.max_queue,
            "completed": self.completed,
            "rejected": self.rejected,
        }


class Ticket:
    """One request's place: waiting, then running, then released (each at most once)."""

    def __init__(self, queue: AdmissionQueue) -> None:
        self._queue = queue
        self._state = "waiting"
        self._started = 0.0

    async def acquire(self) -> None:
        """Wait for a running slot. Cancelling the wait gives the place back."""
        if self._state != "waiting":
            return
        try:
            await self._queue.semaphore.acquire()
        except BaseException:
            self._queue.waiting -= 1
            self._state = "released"
            raise
        self._queue.waiting -= 1
        self._queue.running += 1
        self._state = "running"
        self._started = time.perf_counter()

    def release(self) -> None:
        """Free the place (idempotent)."""
        if self._state == "waiting":
            self._queue.waiting -= 1
        elif self._state == "running":
            self._queue.running -= 1
            self._queue.semaphore.release()
            self._queue.record(time.perf_counter() - self._started)
        self._state = "released"

    async def __aenter__(self) -> Ticket:
        await self.acquire()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
