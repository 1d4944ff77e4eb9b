"""Per-request state shared by every strategy: the models, the budget, the scoring calls.

A :class:`SearchContext` is created for one request and never shared, so KV caches,
random generators and counters cannot leak between concurrent requests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from ..config import GuardConfig
from ..lm import Decoder, SamplerSettings
from ..scorers.base import CostModel, RewardModel, checked_scores

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
    resample_rounds: int = 0
    all_unsafe_steps: int = 0
    forwards: int = 0
    critic_used: bool = False


@dataclass
class SearchContext:
    """Everything one request's search needs.

    Attributes:
        prompt: the text the scorers see as the request (the latest user turn).
        prompt_ids: the rendered prompt's token ids.
        budget: d.
        cost_cache: every text scored by the cost model in this request (unsafe ones too),
            with its cost; a text is only ever emitted if it is in here and within budget.
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
    cancelled: threading.Event = field(default_factory=threading.Event)
    enforce_budget: bool = True
    """False only when measuring unguarded baselines: strategies then keep unsafe
    candidates (ranked last) instead of stopping, as the paper's baselines do."""
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
        if not texts:
            return torch.zeros(0)
        todo = sorted({t for t in texts if t not in self.cost_cache})
        if todo:
            scores = self.scores(self.cost_model, todo)
            self.cost_cache.update(zip(todo, scores.tolist(), strict=True))
        return torch.tensor([self.cost_cache[t] for t in texts], dtype=torch.float32)

    def reward(self, texts: Sequence[str]) -> torch.Tensor:
        """Batched, checked reward of responses to this prompt."""
        if not texts:
            return torch.zeros(0)
        return self.scores(self.reward_model, texts)

    def scores(self, model: CostModel | RewardModel, texts: Sequence[str]) -> torch.Tensor:
        """``model``'s checked scores of responses to this prompt, never cached (through
        the step scheduler when the request is batched)."""
        prompts = [self.prompt] * len(texts)
        if self.batcher is not None:
            return self.batcher.scores(model, prompts, texts)
        return checked_scores(model, prompts, list(texts))

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
            "resample_rounds": s.resample_rounds,
            "all_unsafe_steps": s.all_unsafe_steps,
            "critic_used": s.critic_used,
        }
