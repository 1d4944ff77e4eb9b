"""Scorer contracts: the cost model says what "safe" means, the reward model what "good" means.

Both are batched: ``score(prompts, responses)`` takes two equally long sequences of
strings and returns a float tensor of shape `[len(prompts)]`. Costs are "higher is less
safe" and come with a declared :attr:`CostModel.threshold` τ (a text is unsafe when its
cost is above τ); rewards are "higher is better".

A plain Python function becomes a scorer in one line::

    cost = CostModel.from_callable(lambda prompt, response: float("bomb" in response), threshold=0.5)
    reward = RewardModel.from_callable(lambda prompt, response: len(response) / 100)

Scorers backed by a causal model can also score *incrementally* (:class:`PrefixScorer`):
one :class:`PrefixSession` per request keeps the model's KV cache of the prompt and of
the responses scored so far, so a candidate that extends an earlier response costs only
its new tokens. The search uses a session whenever the cost model offers one, and
:func:`token_meter` counts the tokens a scorer's model reads either way (the
``cost_model_tokens`` of :class:`~inferenceguard.SafetyReport`).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

from ..errors import ConfigError, InputError, ScorerError

__all__ = [
    "CostModel",
    "PrefixScorer",
    "PrefixSession",
    "RewardModel",
    "Scorer",
    "TokenMeter",
    "checked_scores",
    "checked_values",
    "count_tokens",
    "token_meter",
]

PairFn = Callable[[str, str], float]
BatchFn = Callable[[list[str], list[str]], "Sequence[float] | torch.Tensor"]


class Scorer(abc.ABC):
    """A batched text-pair scorer with a stable :attr:`id` recorded in metadata."""

    #: Identifies the scorer in reports and critic metadata (e.g. a hub id or a file hash).
    id: str = "scorer"

    @abc.abstractmethod
    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> torch.Tensor:
        """Score each (prompt, response) pair.

        Args:
            prompts: `[n]` the user's request, as plain text, one per response.
            responses: `[n]` the (partial) responses.

        Returns:
            `[n]` float32 tensor on the CPU.
        """

    def __call__(self, prompts: Sequence[str], responses: Sequence[str]) -> torch.Tensor:
        return checked_scores(self, prompts, responses)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r})"


class CostModel(Scorer):
    """Maps (prompt, response) to a cost; higher is less safe.

    Subclasses set :attr:`threshold`: a text whose cost is above it is unsafe. The
    guard's budget defaults to this threshold.
    """

    threshold: float = 0.5

    @classmethod
    def from_callable(
        cls,
        fn: PairFn | BatchFn,
        *,
        threshold: float,
        id: str | None = None,
        batched: bool = False,
    ) -> CostModel:
        """Wrap a Python function as a cost model.

        Args:
            fn: ``fn(prompt, response) -> float``, or with ``batched=True``
                ``fn(prompts, responses) -> list[float] | Tensor``.
            threshold: costs above this are unsafe.
            id: name recorded in reports (defaults to the function's name).
            batched: whether ``fn`` takes whole batches.
        """
        return CallableCost(fn, threshold=threshold, id=id, batched=batched)


class RewardModel(Scorer):
    """Maps (prompt, response) to a task score; higher is better."""

    @classmethod
    def from_callable(
        cls, fn: PairFn | BatchFn, *, id: str | None = None, batched: bool = False
    ) -> RewardModel:
        """Wrap a Python function as a reward model (see :meth:`CostModel.from_callable`)."""
        return CallableReward(fn, id=id, batched=batched)


def _call_fn(fn: Callable, batched: bool, prompts: Sequence[str], responses: Sequence[str]):
    if batched:
        return fn(list(prompts), list(responses))
    return [float(fn(p, r)) for p, r in zip(prompts, responses, strict=True)]


class CallableCost(CostModel):
    """A cost model backed by a Python function (see :meth:`CostModel.from_callable`)."""

    def __init__(
        self, fn: Callable, *, threshold: float, id: str | None = None, batched: bool = False
    ) -> None:
        if not callable(fn):
            raise ConfigError(f"fn must be callable, got {type(fn).__name__}.")
        if not isinstance(threshold, int | float) or not math.isfinite(threshold):
            raise ConfigError(
                f"threshold must be a finite number, got {threshold!r}.",
                hint="pass the cost above which a text is unsafe, e.g. threshold=0.5.",
            )
        self._fn, self._batched = fn, batched
        self.threshold = float(threshold)
        self.id = id or f"callable:{getattr(fn, '__name__', type(fn).__name__)}"

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> torch.Tensor:
        return torch.as_tensor(
            _call_fn(self._fn, self._batched, prompts, responses), dtype=torch.float32
        )


class CallableReward(RewardModel):
    """A reward model backed by a Python function (see :meth:`RewardModel.from_callable`)."""

    def __init__(self, fn: Callable, *, id: str | None = None, batched: bool = False) -> None:
        if not callable(fn):
            raise ConfigError(f"fn must be callable, got {type(fn).__name__}.")
        self._fn, self._batched = fn, batched
        self.id = id or f"callable:{getattr(fn, '__name__', type(fn).__name__)}"

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> torch.Tensor:
        return torch.as_tensor(
            _call_fn(self._fn, self._batched, prompts, responses), dtype=torch.float32
        )


@dataclass
class TokenMeter:
    """Tokens read by scorer models inside one :func:`token_meter` block.

    Attributes:
        tokens: real (non-padding) tokens the models ran a forward over.
        counted: some scorer reported a count (plain Python callables never do).
    """

    tokens: int = 0
    counted: bool = False


_METER: ContextVar[TokenMeter | None] = ContextVar("inferenceguard_token_meter", default=None)


@contextmanager
def token_meter() -> Iterator[TokenMeter]:
    """Count the tokens scorer models read while the block runs (this thread/task only).

    A context variable, not a counter on the scorer, so concurrent requests sharing one
    scorer each count their own calls.
    """
    meter = TokenMeter()
    reset = _METER.set(meter)
    try:
        yield meter
    finally:
        _METER.reset(reset)


def count_tokens(n: int) -> None:
    """Report ``n`` tokens read by a scorer model to the active :func:`token_meter`, if any."""
    meter = _METER.get()
    if meter is not None:
        meter.tokens += int(n)
        meter.counted = True


class PrefixSession(abc.ABC):
    """One request's incremental scorer: scores responses to a fixed prompt, reusing work.

    Scores must equal the scorer's ``score([prompt] * n, responses)`` (up to float
    rounding); only the cost of computing them changes. A session is used by one request
    at a time and holds memory (a KV cache) until :meth:`close` or garbage collection.
    """

    @abc.abstractmethod
    def score(self, responses: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Score responses to the session's prompt.

        Returns:
            ``(scores, worst)``: `[n]` the score of each whole response, and `[n]` the
            largest score over every token prefix of each response (a token-level cost
            for the safety state), or ``None`` when the model gives only end scores.
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Free what the session holds (its KV cache)."""


@runtime_checkable
class PrefixScorer(Protocol):
    """A scorer that can open a :class:`PrefixSession` per request (optional protocol).

    ``prefix_session`` returns ``None`` when the scorer cannot reuse work for this
    prompt (e.g. the option is switched off); callers then fall back to ``score``.
    """

    def prefix_session(self, prompt: str) -> PrefixSession | None:
        """A new session scoring responses to ``prompt``, or ``None``."""


def checked_values(scorer: Scorer, raw: object, n: int) -> torch.Tensor:
    """``raw`` as a finite float32 CPU tensor of shape `[n]`, or a :class:`ScorerError`."""
    try:
        scores = torch.as_tensor(raw, dtype=torch.float32).detach().to("cpu")
    except Exception as exc:  # a user's scorer can return anything; name it
        raise ScorerError(f"{scorer!r} failed while scoring {n} texts: {exc!r}") from exc
    if scores.shape != (n,):
        raise ScorerError(
            f"{scorer!r} returned shape {tuple(scores.shape)}, expected ({n},).",
            hint="return one float per (prompt, response) pair.",
        )
    if not torch.isfinite(scores).all():
        raise ScorerError(
            f"{scorer!r} returned non-finite scores {scores.tolist()[:8]}.",
            hint="a cost or reward must be a finite number for every text.",
        )
    return scores


def checked_scores(
    scorer: Scorer, prompts: Sequence[str], responses: Sequence[str]
) -> torch.Tensor:
    """Call ``scorer.score`` and insist on a finite float32 CPU tensor of shape `[n]`.

    The search relies on this: a NaN cost compared with the budget is neither safe nor
    unsafe, so it must never reach the safety state.

    Raises:
        InputError: ``prompts`` and ``responses`` differ in length.
        ScorerError: the scorer failed or returned the wrong shape, NaN or infinity.
    """
    if len(prompts) != len(responses):
        raise InputError(
            f"prompts and responses must have the same length, got {len(prompts)} and {len(responses)}."
        )
    try:
        raw = scorer.score(prompts, responses)
    except ScorerError:
        raise
    except Exception as exc:  # a user's scorer can fail in any way; name it
        raise ScorerError(f"{scorer!r} failed while scoring {len(prompts)} texts: {exc!r}") from exc
    return checked_values(scorer, raw, len(prompts))
