"""Per-request state shared by every strategy: the models, the budget, the scoring calls.

A :class:`SearchContext` is created for one request and never shared, so KV caches,
random generators and counters cannot leak between concurrent requests.

Scorers that can score incrementally (:class:`~inferenceguard.scorers.base.PrefixScorer`)
get one :class:`~inferenceguard.scorers.base.PrefixSession` per request, opened on the
first call: the prompt and the responses scored so far stay in the scorer model's KV
cache, so each candidate costs only its new tokens. Every other scorer is called in full.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from ..config import GuardConfig
from ..errors import ScorerError
from ..lm import Decoder, SamplerSettings
from ..scorers.base import (
    CostModel,
    PrefixScorer,
    PrefixSession,
    RewardModel,
    Scorer,
    TokenMeter,
    checked_scores,
    checked_values,
    token_meter,
)

__all__ = ["Batcher", "Critic", "SearchContext", "SearchStats"]


class Critic(Protocol):
    """What the search needs from a critic (see :mod:`inferenceguard.critic`)."""

    def predict(
        self, hidden: torch.Tensor, z: torch.Tensor, step_frac: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Hidden states `[n, H]`, raw safety state `[n]` (budget − tracked cost; the critic
        normalises it) and step fraction `[n]` -> (p_safe `[n]`, value `[n]`)."""


class Batcher(Protocol):
    """How a request hands its scorer calls to the step scheduler (:class:`.scheduler.Ticket`)."""

    model_lock: AbstractContextManager[Any]
    """Held while a model runs outside a shared batch (prefix sessions, the final proof)."""

    def scores(self, model: Any, prompts: Sequence[str], texts: Sequence[str]) -> torch.Tensor:
        """``checked_scores(model, prompts, texts)``, batched with other requests'."""

    def predict(
        self, critic: Any, hidden: torch.Tensor, z: torch.Tensor, step_frac: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``critic.predict(hidden, z, step_frac)``, batched with other requests'."""


@dataclass
class SearchStats:
    """Counters that end up in the :class:`~inferenceguard.SafetyReport`."""

    steps: int = 0
    candidates_sampled: int = 0
    cost_evaluations: int = 0
    resample_rounds: int = 0
    all_unsafe_steps: int = 0
    forwards: int = 0
    critic_used: bool = False
    cost_model_tokens: int = 0
    cost_tokens_counted: bool = False

    def count_cost_tokens(self, meter: TokenMeter) -> None:
        """Add what a :func:`~inferenceguard.scorers.base.token_meter` measured."""
        self.cost_model_tokens += meter.tokens
        self.cost_tokens_counted |= meter.counted


@dataclass
class SearchContext:
    """Everything one request's search needs.

    Attributes:
        prompt: the text the scorers see as the request (the latest user turn).
        prompt_ids: the rendered prompt's token ids.
        budget: d.
        cost_cache: every text scored by the cost model in this request (unsafe ones too),
            with its cost; a text is only ever emitted if it is in here and within budget.
        worst_cache: for texts scored by a token-level session, the largest cost over
            every token prefix (see :meth:`cost_and_worst`).
    """

    lm: Decoder
    cost_model: CostModel
    reward_model: RewardModel
    critic: Critic | None
    config: GuardConfig
    prompt: str
    prompt_ids: list[int]
    budget: float
    generator: torch.Generator
    started: float = field(default_factory=time.perf_counter)
    stats: SearchStats = field(default_factory=SearchStats)
    cost_cache: dict[str, float] = field(default_factory=dict)
    worst_cache: dict[str, float] = field(default_factory=dict)
    cancelled: threading.Event = field(default_factory=threading.Event)
    enforce_budget: bool = True
    """False only when measuring unguarded baselines: strategies then keep unsafe
    candidates (ranked last) instead of stopping, as the paper's baselines do."""
    sessions: dict[str, PrefixSession | None] = field(default_factory=dict, repr=False)
    """The open prefix sessions, ``"cost"`` and ``"reward"`` (``None``: not supported)."""
    batcher: Batcher | None = None
    """The step scheduler's ticket when the request shares its model calls with the other
    requests in flight (:mod:`.scheduler`); ``None`` calls the models directly."""

    @property
    def sampler(self) -> SamplerSettings:
        c = self.config
        return SamplerSettings(
            do_sample=c.do_sample, temperature=c.temperature, top_p=c.top_p, top_k=c.top_k
        )

    @property
    def use_critic(self) -> bool:
        """A critic is loaded and the configuration asks for it."""
        return self.critic is not None and self.config.use_critic

    def should_stop(self) -> bool:
        """True once ``max_time`` has passed or the caller cancelled the request.

        Both end the search early; the result's ``finish_reason`` is then ``"timeout"``
        (:data:`~inferenceguard.result.FinishReason` has no separate value for a
        cancellation, whose caller has stopped listening anyway).
        """
        if self.cancelled.is_set():
            return True
        limit = self.config.max_time
        return limit is not None and time.perf_counter() - self.started > limit

    def cost(self, texts: Sequence[str]) -> torch.Tensor:
        """Batched, checked cost of responses to this prompt; remembers every result."""
        return self.cost_and_worst(texts)[0]

    def cost_and_worst(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Cost `[n]` of each response, and its worst cost `[n]` over every token prefix.

        The worst cost comes from a token-level session (PKU score models: one pass
        scores every token); for other cost models, and texts scored outside a session,
        it is the cost itself. It is never below the cost.
        """
        if not texts:
            return torch.zeros(0), torch.zeros(0)
        todo = sorted({t for t in texts if t not in self.cost_cache})
        if todo:
            with token_meter() as meter:
                scores, worst = self._scores("cost", self.cost_model, todo)
            self.stats.count_cost_tokens(meter)
            self.cost_cache.update(zip(todo, scores.tolist(), strict=True))
            if worst is not None:
                self.worst_cache.update(zip(todo, worst.tolist(), strict=True))
        cost = torch.tensor([self.cost_cache[t] for t in texts], dtype=torch.float32)
        worst = torch.tensor([self.worst_cache.get(t, self.cost_cache[t]) for t in texts])
        return cost, torch.maximum(cost, worst)

    def verified_cost(self, text: str) -> float:
        """Cost of ``text`` re-scored in full: no cache, no session (the final proof)."""
        with self._model_lock(), token_meter() as meter:
            cost = float(checked_scores(self.cost_model, [self.prompt], [text])[0])
        self.stats.count_cost_tokens(meter)
        return cost

    def reward(self, texts: Sequence[str]) -> torch.Tensor:
        """Batched, checked reward of responses to this prompt."""
        if not texts:
            return torch.zeros(0)
        return self._scores("reward", self.reward_model, list(texts))[0]

    def _scores(
        self, kind: str, scorer: Scorer, texts: list[str]
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Checked scores `[n]` of ``texts`` (and token-level worst scores, or ``None``),
        through the scorer's prefix session when it has one."""
        if kind not in self.sessions:
            opened = isinstance(scorer, PrefixScorer)
            self.sessions[kind] = scorer.prefix_session(self.prompt) if opened else None
        session = self.sessions[kind]
        if session is None:
            return self.scores(scorer, texts), None
        try:
            with self._model_lock():  # the batch runner may be using the same scorer
                scores, worst = session.score(texts)
        except ScorerError:
            raise
        except Exception as exc:  # a model can fail in many ways; name the scorer
            raise ScorerError(
                f"{scorer!r} failed while scoring {len(texts)} texts: {exc!r}"
            ) from exc
        scores = checked_values(scorer, scores, len(texts))
        return scores, None if worst is None else checked_values(scorer, worst, len(texts))

    def close_sessions(self) -> None:
        """Free the prefix sessions' KV caches (the request is over)."""
        for session in self.sessions.values():
            if session is not None:
                session.close()
        self.sessions.clear()

    def scores(self, model: CostModel | RewardModel, texts: Sequence[str]) -> torch.Tensor:
        """``model``'s checked scores of responses to this prompt, never cached (through
        the step scheduler when the request is batched)."""
        prompts = [self.prompt] * len(texts)
        if self.batcher is not None:
            return self.batcher.scores(model, prompts, texts)
        return checked_scores(model, prompts, list(texts))

    def _model_lock(self) -> AbstractContextManager[Any]:
        """The scheduler's model lock when batched (scorers and tokenizers are shared with
        the batch runner's thread), else nothing."""
        return self.batcher.model_lock if self.batcher is not None else nullcontext()

    def predict(
        self, hidden: torch.Tensor, z: torch.Tensor, step_frac: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The critic's ``(p_safe, value)`` `[n]` each (see :class:`Critic`)."""
        assert self.critic is not None
        if self.batcher is not None:
            return self.batcher.predict(self.critic, hidden, z, step_frac)
        return self.critic.predict(hidden, z, step_frac)

    def is_within_budget(self, text: str) -> bool:
        """Score ``text`` if needed; True when its verified cost is within budget."""
        return float(self.cost([text])[0]) <= self.budget

    def response_text(self, tokens: Sequence[int]) -> str:
        """Decode response tokens, cut right before the first stop string they contain."""
        text = self.lm.decode(list(tokens))
        if self.config.stop:
            cut = min((i for s in self.config.stop if (i := text.find(s)) >= 0), default=-1)
            if cut >= 0:
                text = text[:cut]
        return text

    def report_extra(self) -> dict[str, Any]:
        """The counters :class:`~inferenceguard.SafetyReport` carries."""
        s = self.stats
        return {
            "steps": s.steps,
            "candidates_sampled": s.candidates_sampled,
            "cost_evaluations": s.cost_evaluations,
            "resample_rounds": s.resample_rounds,
            "all_unsafe_steps": s.all_unsafe_steps,
            "critic_used": s.critic_used,
            "cost_model_tokens": s.cost_model_tokens if s.cost_tokens_counted else None,
        }
