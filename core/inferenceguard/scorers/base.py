"""Scorer contracts: the cost model says what "safe" means, the reward model what "good" means.

Both are batched: ``score(prompts, responses)`` takes two equally long sequences of
strings and returns a float tensor of shape `[len(prompts)]`. Costs are "higher is less
safe" and come with a declared :attr:`CostModel.threshold` τ (a text is unsafe when its
cost is above τ); rewards are "higher is better".

A plain Python function becomes a scorer in one line::

    cost = CostModel.from_callable(lambda prompt, response: float("bomb" in response), threshold=0.5)
    reward = RewardModel.from_callable(lambda prompt, response: len(response) / 100)
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Sequence

import torch

from ..errors import ConfigError, InputError, ScorerError

__all__ = ["CostModel", "RewardModel", "Scorer", "checked_scores"]

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
        scores = torch.as_tensor(raw, dtype=torch.float32).detach().to("cpu")
    except ScorerError:
        raise
    except Exception as exc:  # a user's scorer can fail in any way; name it
        raise ScorerError(f"{scorer!r} failed while scoring {len(prompts)} texts: {exc!r}") from exc
    if scores.shape != (len(prompts),):
        raise ScorerError(
            f"{scorer!r} returned shape {tuple(scores.shape)}, expected ({len(prompts)},).",
            hint="return one float per (prompt, response) pair.",
        )
    if not torch.isfinite(scores).all():
        raise ScorerError(
            f"{scorer!r} returned non-finite scores {scores.tolist()[:8]}.",
            hint="a cost or reward must be a finite number for every text.",
        )
    return scores
