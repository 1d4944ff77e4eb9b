"""Scorers built from other scorers: stack cost models, make a reward cost-aware.

``MaxCost`` is how a guard model and a user's own rules are combined: a text is unsafe
when *any* of the cost models says so::

    rules = CostModel.from_callable(lambda p, r: float("password" in r.lower()), threshold=0.5)
    cost = MaxCost(load_default_cost_model(), rules)

The search maximises reward *up to* the budget, so with a plain relevance reward it is
paid for on-topic text the cost model half-suspects and drifts towards the budget, i.e.
into the cost model's blind spots. Two rewards remove that pull (the budget check itself
is unchanged): ``CostPenalizedReward`` subtracts the cost everywhere, and
``RequestAwareReward`` (the embedded default objective) pays for relevance only as far as
the request is benign and, as far as it is harmful, for a low cost instead::

    probe, gate = load_default_probe(), load_default_gate()
    reward = RequestAwareReward(RelevanceReward(get_default_encoder()), probe, request_gate=gate)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from ..errors import ConfigError, ScorerError
from .base import CostModel, RewardModel

__all__ = [
    "CostPenalizedReward",
    "MaxCost",
    "RefusalRequiredCost",
    "RequestAwareReward",
    "RequestGate",
    "gate_id",
    "gate_values",
]


class MaxCost(CostModel):
    """The worst verdict of several cost models: unsafe as soon as one of them is.

    Each model's cost is measured against its own threshold: the combined cost is
    ``threshold + max_i(cost_i - threshold_i)``, where ``threshold`` is the first model's
    threshold. So the combined text is over the threshold exactly when some model's cost
    is over its own, and when all thresholds are equal the cost is simply the maximum.
    A budget ``d`` on the combined cost allows each model ``d - threshold`` above its own
    threshold (a margin below it when negative).

    Attributes:
        models: the combined cost models, in the order given.
        threshold: the first model's threshold.
        id: ``"max(<id 1>,<id 2>,...)"``.
    """

    def __init__(self, *models: CostModel) -> None:
        """Combine ``models`` (at least one, each a :class:`CostModel`).

        Raises:
            ConfigError: no model, or something that is not a cost model.
        """
        if not models:
            raise ConfigError(
                "MaxCost needs at least one cost model.",
                hint="pass the cost models to combine, e.g. MaxCost(guard_cost, rules).",
            )
        for m in models:
            if not isinstance(m, CostModel):
                raise ConfigError(
                    f"MaxCost combines cost models, got {type(m).__name__}.",
                    hint="wrap a function with CostModel.from_callable(fn, threshold=...).",
                )
            if not math.isfinite(float(m.threshold)):
                raise ConfigError(f"{m!r} has a non-finite threshold {m.threshold!r}.")
        self.models = tuple(models)
        self.threshold = float(models[0].threshold)
        self.id = "max(" + ",".join(m.id for m in self.models) + ")"

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> torch.Tensor:
        """``threshold + max_i(cost_i - threshold_i)`` for each pair, `[n]` float32."""
        if len(prompts) == 0:
            return torch.empty(0, dtype=torch.float32)
        # Calling each model checks its scores (shape, NaN) before they are combined.
        shifted = [m(prompts, responses) - float(m.threshold) for m in self.models]
        return torch.stack(shifted).amax(dim=0) + self.threshold


#: P(the request is harmful) for each prompt, `[n]` in `[0, 1]`.
RequestGate = Callable[[Sequence[str]], "torch.Tensor | Sequence[float]"]


def gate_values(gate: RequestGate, prompts: Sequence[str]) -> torch.Tensor:
    """``gate`` on each distinct prompt once, spread back to `[len(prompts)]` float32.

    Raises:
        ScorerError: the gate returned the wrong shape, or values outside `[0, 1]`.
    """
    distinct = list(dict.fromkeys(prompts))
    h = torch.as_tensor(gate(distinct), dtype=torch.float32).reshape(-1)
    if h.shape[0] != len(distinct) or not bool(((h >= 0) & (h <= 1)).all()):
        raise ScorerError(
            f"request_gate returned {h.tolist()[:4]}... for {len(distinct)} prompts; "
            "expected one probability in [0, 1] per prompt.",
            hint="the gate must return P(harmful request), e.g. probe.request_harm.",
        )
    index = {p: i for i, p in enumerate(distinct)}
    return h[torch.tensor([index[p] for p in prompts], dtype=torch.long)]


def gate_id(gate: RequestGate) -> str:
    """A request gate's identity for scorer ids: its ``id``, or the ``id`` of the object a
    bound method belongs to plus the method's name, else the function's name.

    Cost-model ids are what a critic checks before it runs, so two different gates must
    not give a combinator the same id.
    """
    own = getattr(gate, "id", None)
    if isinstance(own, str):
        return own
    owner = getattr(gate, "__self__", None)
    name = getattr(gate, "__name__", type(gate).__name__)
    owner_id = getattr(owner, "id", None)
    return f"{owner_id}.{name}" if isinstance(owner_id, str) else name


def _check_scorers(name: str, reward: object, cost: object) -> None:
    if not isinstance(reward, RewardModel) or not isinstance(cost, CostModel):
        raise ConfigError(
            f"{name}(reward, cost) takes a RewardModel and a CostModel, got "
            f"{type(reward).__name__} and {type(cost).__name__}.",
            hint="wrap functions with RewardModel.from_callable / CostModel.from_callable.",
        )


class CostPenalizedReward(RewardModel):
    """``reward - weight * cost``: a reward that does not pay for text the cost model suspects.

    Attributes:
        reward: the underlying reward model.
        cost: the cost model whose score is subtracted.
        weight: reward units given up per unit of cost (``0`` is the plain reward).
        id: ``"<reward id>-<weight>*<cost id>"``.
    """

    def __init__(self, reward: RewardModel, cost: CostModel, *, weight: float = 1.0) -> None:
        """Build the penalised reward.

        Raises:
            ConfigError: wrong scorer types, or a negative or non-finite ``weight``.
        """
        _check_scorers("CostPenalizedReward", reward, cost)
        if not (isinstance(weight, int | float) and math.isfinite(weight) and weight >= 0):
            raise ConfigError(
                f"weight must be a finite number >= 0, got {weight!r}.",
                hint="weight=1.0 trades one unit of reward for one unit of cost.",
            )
        self.reward, self.cost, self.weight = reward, cost, float(weight)
        self.id = f"{reward.id}-{self.weight:g}*{cost.id}"

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> torch.Tensor:
        """The penalised reward of each pair, `[n]` float32."""
        if len(prompts) == 0:
            return torch.empty(0, dtype=torch.float32)
        base = self.reward(prompts, responses)
        if self.weight == 0.0:
            return base
        return base - self.weight * self.cost(prompts, responses)


class RequestAwareReward(RewardModel):
    """``(1 - h) * reward + h * (refusal - cost)``, with ``h`` = P(the request is harmful).

    On a benign request (``h`` near 0) this is the task reward, so helpfulness is what the
    search maximises; on a harmful one (``h`` near 1) it pays for a refusal or a safe
    redirection (``refusal``: P(the response declines), when given) and for a low cost,
    instead of for the most on-topic text that still fits the budget, which is where a
    cost model's blind spots are. Without ``refusal`` the harmful part is ``-cost``: the
    safest-looking candidate wins, which can be an incoherent one. ``h`` depends on the
    prompt only, so it is computed once per distinct prompt of a batch. The budget check
    does not change.

    Attributes:
        reward: the task reward (e.g. relevance).
        cost: the cost model whose score is minimised on harmful requests.
        request_gate: ``prompts -> P(harmful request)`` (e.g. ``probe.request_harm``).
        refusal: ``(prompts, responses) -> P(the response declines)``, or ``None``.
        id: ``"request-aware(<reward id>,<cost id>,<gate id>[,<refusal id>])"``
            (:func:`gate_id`).
    """

    def __init__(
        self,
        reward: RewardModel,
        cost: CostModel,
        *,
        request_gate: RequestGate,
        refusal: RewardModel | None = None,
    ) -> None:
        """Build the reward.

        Raises:
            ConfigError: wrong scorer types, or ``request_gate`` is not callable.
        """
        _check_scorers("RequestAwareReward", reward, cost)
        if not callable(request_gate):
            raise ConfigError(
                f"request_gate must be callable, got {type(request_gate).__name__}.",
                hint="pass prompts -> P(harmful request), e.g. request_gate=probe.request_harm.",
            )
        if refusal is not None and not isinstance(refusal, RewardModel):
            raise ConfigError(
                f"refusal must be a RewardModel, got {type(refusal).__name__}.",
                hint="wrap a function with RewardModel.from_callable(fn, batched=True).",
            )
        self.reward, self.cost, self.request_gate = reward, cost, request_gate
        self.refusal = refusal
        parts = [reward.id, cost.id, gate_id(request_gate)]
        parts += [refusal.id] if refusal is not None else []
        self.id = f"request-aware({','.join(parts)})"

    def harm(self, prompts: Sequence[str]) -> torch.Tensor:
        """P(harmful request) of each prompt, `[n]` float32 (each distinct prompt once).

        Raises:
            ScorerError: the gate returned the wrong shape, or values outside `[0, 1]`.
        """
        return gate_values(self.request_gate, prompts)

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> torch.Tensor:
        """The request-aware reward of each pair, `[n]` float32."""
        if len(prompts) == 0:
            return torch.empty(0, dtype=torch.float32)
        h = self.harm(prompts)
        on_harmful = -self.cost(prompts, responses)
        if self.refusal is not None:
            on_harmful = on_harmful + self.refusal(prompts, responses)
        return (1.0 - h) * self.reward(prompts, responses) + h * on_harmful


class RefusalRequiredCost(CostModel):
    """Fail closed on clearly harmful requests: only a refusal is within budget there.

    ``cost = h * (0 if the response declines else 1)``, with ``h`` = P(the request is
    harmful) and threshold ``gate_threshold``: a response is unsafe exactly when the
    request gate is above ``gate_threshold`` *and* the response does not decline. This
    does not depend on recognising every way of complying (hedged openers, role-play,
    answers the cost model has never seen), only on recognising a refusal, which is the
    safe answer to such a request. Stack it with a content cost model —
    ``MaxCost(probe, RefusalRequiredCost(load_default_gate()))`` is the embedded default —
    so that requests the gate is unsure about are still judged by their content.

    Attributes:
        request_gate: ``prompts -> P(harmful request)``.
        threshold: the gate value above which a refusal is required.
        declines: ``response -> bool`` (default
            :func:`inferenceguard.evaluation.metrics.is_refusal`, the over-refusal metric's
            rule: an empty response declines).
        id: ``"refusal-required(<gate_threshold>,<gate id>[,<declines name>])"``
            (:func:`gate_id`; a ``declines`` of your own is named): a critic trained with
            one gate or rule refuses to run with another.
    """

    def __init__(
        self,
        request_gate: RequestGate,
        *,
        gate_threshold: float = 0.9,
        declines: Callable[[str], bool] | None = None,
    ) -> None:
        """Build the cost model.

        Raises:
            ConfigError: ``request_gate``/``declines`` not callable, or ``gate_threshold``
                outside `(0, 1)`.
        """
        if not callable(request_gate) or (declines is not None and not callable(declines)):
            raise ConfigError(
                "RefusalRequiredCost needs a callable request_gate (and declines, if given).",
                hint="e.g. RefusalRequiredCost(probe.request_harm).",
            )
        if not (isinstance(gate_threshold, int | float) and 0.0 < gate_threshold < 1.0):
            raise ConfigError(
                f"gate_threshold must be in (0, 1), got {gate_threshold!r}.",
                hint="0.9 requires a refusal only where the gate is confident.",
            )
        # A rule of the caller's is part of what the cost means, so it is part of the id;
        # the library's is_refusal is the implied default.
        own_rule = [] if declines is None else [getattr(declines, "__name__", "declines")]
        if declines is None:
            from ..evaluation.metrics import is_refusal as declines
        self.request_gate, self.declines = request_gate, declines
        self.threshold = float(gate_threshold)
        parts = [f"{self.threshold:g}", gate_id(request_gate), *own_rule]
        self.id = f"refusal-required({','.join(parts)})"

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> torch.Tensor:
        """``h`` where the response does not decline, else 0, `[n]` float32."""
        if len(prompts) == 0:
            return torch.empty(0, dtype=torch.float32)
        h = gate_values(self.request_gate, prompts)
        complies = torch.tensor([not self.declines(r) for r in responses], dtype=torch.float32)
        return h * complies
