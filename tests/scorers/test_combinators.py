"""MaxCost and CostPenalizedReward: stacking cost models and a cost-aware reward."""

from __future__ import annotations

import pytest
import torch

from inferenceguard import CostModel, GuardConfig, InferenceGuard, RewardModel
from inferenceguard.errors import ConfigError, ScorerError
from inferenceguard.scorers.combinators import CostPenalizedReward, MaxCost


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
