"""MaxCost, CostPenalizedReward, RequestAwareReward: stacking cost models, cost-aware rewards."""

from __future__ import annotations

import pytest
import torch

from inferenceguard import CostModel, GuardConfig, InferenceGuard, RewardModel
from inferenceguard.errors import ConfigError, ScorerError
from inferenceguard.scorers.combinators import (
    CostPenalizedReward,
    MaxCost,
    RefusalRequiredCost,
    RequestAwareReward,
)


def _word_cost(word: str, threshold: float = 0.5) -> CostModel:
    return CostModel.from_callable(
        lambda p, r: float(word in r), threshold=threshold, id=f"has-{word}"
    )


def test_max_cost_is_unsafe_when_any_model_is() -> None:
    cost = MaxCost(_word_cost("bomb"), _word_cost("password"))
    scores = cost(["q"] * 4, ["hello", "a bomb", "my password", "bomb password"])
    assert scores.tolist() == [0.0, 1.0, 1.0, 1.0]
    assert cost.threshold == 0.5
    assert cost.id == "max(has-bomb,has-password)"


def test_max_cost_measures_each_model_against_its_own_threshold() -> None:
    # b's threshold is 2.0: its cost 1.5 is safe for it, 2.5 is not.
    a = CostModel.from_callable(lambda p, r: 0.2, threshold=0.5, id="a")
    b = CostModel.from_callable(lambda p, r: float(len(r)) / 2, threshold=2.0, id="b")
    cost = MaxCost(a, b)
    safe, unsafe = cost(["q", "q"], ["abc", "abcde"]).tolist()
    assert safe <= cost.threshold < unsafe
    assert unsafe == pytest.approx(0.5 + (2.5 - 2.0))
    assert safe == pytest.approx(0.5 + max(0.2 - 0.5, 1.5 - 2.0))


def test_max_cost_rejects_bad_inputs_and_propagates_scorer_errors() -> None:
    with pytest.raises(ConfigError):
        MaxCost()
    with pytest.raises(ConfigError):
        MaxCost(RewardModel.from_callable(lambda p, r: 0.0))  # type: ignore[arg-type]
    nan = CostModel.from_callable(lambda p, r: float("nan"), threshold=0.5, id="nan")
    with pytest.raises(ScorerError):
        MaxCost(_word_cost("x"), nan)(["q"], ["r"])
    assert MaxCost(_word_cost("x"))([], []).shape == (0,)


def test_cost_penalized_reward_subtracts_the_weighted_cost() -> None:
    reward = RewardModel.from_callable(lambda p, r: len(r) / 10, id="len")
    pen = CostPenalizedReward(reward, _word_cost("bomb"), weight=2.0)
    scores = pen(["q", "q"], ["a bomb now", "cake here!"])
    assert scores.tolist() == pytest.approx([1.0 - 2.0, 1.0])
    assert pen.id == "len-2*has-bomb"
    assert CostPenalizedReward(reward, _word_cost("bomb"), weight=0)(
        ["q"], ["bomb"]
    ).item() == pytest.approx(0.4)
    for bad in (-1.0, float("inf")):
        with pytest.raises(ConfigError):
            CostPenalizedReward(reward, _word_cost("bomb"), weight=bad)


def _harm_gate(calls: list[list[str]]):
    def gate(prompts):
        calls.append(list(prompts))
        return [1.0 if "bomb" in p else 0.0 for p in prompts]

    return gate


def test_request_aware_reward_pays_relevance_on_benign_and_safety_on_harmful() -> None:
    """On a harmful request the most on-topic answer must not win: the safest one does."""
    on_topic = RewardModel.from_callable(lambda p, r: float("bomb" in r or "cake" in r), id="rel")
    cost = CostModel.from_callable(
        lambda p, r: 0.3 if "bomb" in r else 0.1, threshold=0.5, id="cost"
    )
    calls: list[list[str]] = []
    reward = RequestAwareReward(on_topic, cost, request_gate=_harm_gate(calls))
    harmful, benign = "make a bomb", "bake a cake"
    prompts = [harmful, harmful, benign, benign]
    scores = reward(prompts, ["here is a bomb", "I won't.", "a cake recipe", "I won't."])
    # Both harmful answers fit the budget; the refusal is preferred because it costs less.
    assert scores[1] > scores[0]
    assert scores.tolist() == pytest.approx([-0.3, -0.1, 1.0, 0.0])
    assert scores[2] > scores[3]  # benign: the task reward alone decides
    assert calls == [[harmful, benign]]  # the gate sees each distinct prompt once
    assert reward.id == "request-aware(rel,cost,gate)"  # the gate is part of the id


def test_request_aware_reward_with_refusal_prefers_declining_over_incoherent() -> None:
    """With a refusal term, a harmful request's refusal beats cheap gibberish."""
    rel = RewardModel.from_callable(lambda p, r: 0.5, id="rel")
    cost = CostModel.from_callable(lambda p, r: 0.05 if "xq" in r else 0.1, threshold=0.5)
    refusal = RewardModel.from_callable(lambda p, r: float("won't" in r), id="declines")
    gate = _harm_gate([])
    plain = RequestAwareReward(rel, cost, request_gate=gate)
    aware = RequestAwareReward(rel, cost, request_gate=gate, refusal=refusal)
    prompts, responses = ["make a bomb"] * 2, ["xq zz", "I won't help with a bomb."]
    gibberish, declines = plain(prompts, responses).tolist()
    assert gibberish > declines  # -cost alone: the gibberish is cheaper
    gibberish, declines = aware(prompts, responses).tolist()
    assert declines > gibberish
    assert declines == pytest.approx(1.0 - 0.1)
    assert aware(["bake a cake"], ["I won't."]).item() == pytest.approx(0.5)  # benign: reward
    assert aware.id.endswith(",declines)")
    with pytest.raises(ConfigError, match="refusal"):
        RequestAwareReward(rel, cost, request_gate=gate, refusal=cost)  # type: ignore[arg-type]


def test_request_aware_reward_rejects_bad_gates() -> None:
    reward = RewardModel.from_callable(lambda p, r: 0.0)
    with pytest.raises(ConfigError, match="request_gate"):
        RequestAwareReward(reward, _word_cost("x"), request_gate=0.5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        RequestAwareReward(_word_cost("x"), _word_cost("x"), request_gate=lambda p: [0.0])  # type: ignore[arg-type]
    for bad in ([1.5], [0.1, 0.2]):
        out_of_range = RequestAwareReward(reward, _word_cost("x"), request_gate=lambda p, b=bad: b)
        with pytest.raises(ScorerError, match="request_gate"):
            out_of_range(["q"], ["r"])


def test_refusal_required_cost_accepts_only_refusals_where_the_gate_is_confident() -> None:
    cost = RefusalRequiredCost(lambda ps: [0.95 if "bomb" in p else 0.5 for p in ps])
    assert cost.threshold == 0.9 and cost.id == "refusal-required(0.9,<lambda>)"
    # Another refusal rule changes what the cost means, and so its id.

    def says_no(text: str) -> bool:
        return text.startswith("No")

    strict = RefusalRequiredCost(cost.request_gate, declines=says_no)
    assert strict.id == "refusal-required(0.9,<lambda>,says_no)"
    assert strict(["make a bomb"], ["I can't help with making a bomb."]).item() > 0.9
    prompts = ["make a bomb", "make a bomb", "make a bomb", "bake a cake"]
    responses = ["Sure, step 1: ...", "I can't help with making a bomb.", "", "Sure, step 1: ..."]
    scores = cost(prompts, responses).tolist()
    assert scores == pytest.approx([0.95, 0.0, 0.0, 0.5])
    unsafe = [s > cost.threshold for s in scores]
    assert unsafe == [True, False, False, False]  # an unsure gate (0.5) never forces one
    custom = RefusalRequiredCost(lambda ps: [1.0] * len(ps), declines=lambda r: "no" in r)
    assert custom(["q", "q"], ["no way", "yes"]).tolist() == [0.0, 1.0]
    for bad in (0.0, 1.0, "0.9"):
        with pytest.raises(ConfigError, match="gate_threshold"):
            RefusalRequiredCost(lambda ps: [0.0], gate_threshold=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        RefusalRequiredCost(0.9)  # type: ignore[arg-type]


def test_guard_with_refusal_required_cost_returns_only_declines_to_gated_requests(tiny_lm) -> None:
    """Whatever the LM samples, a gated request gets a refusal (the refusal text) or nothing."""
    gate = RefusalRequiredCost(lambda ps: [1.0] * len(ps), gate_threshold=0.5)
    reward = RewardModel.from_callable(lambda p, r: len(r) / 50.0)
    config = GuardConfig(n_candidates=4, n_beams=2, block_len=4, max_new_tokens=8, seed=0)
    result = InferenceGuard(tiny_lm, gate, reward, config=config).generate("Build a bomb.")
    assert gate(["Build a bomb."], [result.text]).item() <= result.safety.budget
    from inferenceguard.evaluation.metrics import is_refusal

    assert is_refusal(result.text)


def test_guard_with_max_cost_never_returns_text_either_model_rejects(tiny_lm) -> None:
    """The combined cost is enforced like any cost: no returned text trips a model."""
    banned = ("e", "a")
    models = [
        CostModel.from_callable(lambda p, r, ch=ch: float(r.count(ch) > 3), threshold=0.5, id=ch)
        for ch in banned
    ]
    reward = RewardModel.from_callable(lambda p, r: len(r) / 50.0)
    config = GuardConfig(n_candidates=4, n_beams=2, block_len=4, max_new_tokens=12, seed=0)
    guard = InferenceGuard(tiny_lm, MaxCost(*models), reward, config=config)
    result = guard.generate("Tell me a story.")
    assert result.safety.cost <= result.safety.budget
    for m in models:
        assert m(["Tell me a story."], [result.text]).item() <= m.threshold
    assert torch.isfinite(torch.tensor(result.safety.cost))
