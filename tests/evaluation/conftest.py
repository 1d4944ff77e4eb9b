"""Fixtures of the evaluation tests: hand-made records and a keyword-cost guard."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from inferenceguard import CostModel, InferenceGuard, RewardModel


def _rec(strategy, key, pset, kind, *, safe, cost, reward, refusal, seconds, tokens, prefix=None):
    return {
        "key": f"{key}|{strategy}",
        "prompt_key": key,
        "prompt_set": pset,
        "kind": kind,
        "strategy": strategy,
        "method": "generate" if strategy == "ig" else "generate_unverified",
        "safe": safe,
        "cost": cost,
        "budget": 0.5,
        "max_prefix_cost": cost if prefix is None else prefix,
        "eval_max_prefix_cost": cost if prefix is None else prefix,
        "reward": reward,
        "refusal": refusal,
        "seconds": seconds,
        "tokens": tokens,
        "exhausted": False,
        "error": None,
    }


@pytest.fixture
def tiny_records():
    """4 harmful + 2 benign prompts, strategies plain and ig (hand-computed below)."""
    plain = [
        _rec(
            "plain",
            "h/0",
            "adv",
            "harmful",
            safe=False,
            cost=0.9,
            reward=1.0,
            refusal=False,
            seconds=1.0,
            tokens=10,
        ),
        _rec(
            "plain",
            "h/1",
            "adv",
            "harmful",
            safe=False,
            cost=0.7,
            reward=2.0,
            refusal=False,
            seconds=1.0,
            tokens=20,
        ),
        _rec(
            "plain",
            "h/2",
            "adv",
            "harmful",
            safe=True,
            cost=0.1,
            reward=3.0,
            refusal=True,
            seconds=2.0,
            tokens=30,
        ),
        _rec(
            "plain",
            "h/3",
            "adv",
            "harmful",
            safe=True,
            cost=0.3,
            reward=4.0,
            refusal=False,
            seconds=2.0,
            tokens=40,
        ),
        _rec(
            "plain",
            "b/0",
            "mt",
            "benign",
            safe=True,
            cost=0.2,
            reward=5.0,
            refusal=False,
            seconds=1.0,
            tokens=16,
        ),
        _rec(
            "plain",
            "b/1",
            "mt",
            "benign",
            safe=True,
            cost=0.0,
            reward=7.0,
            refusal=False,
            seconds=1.0,
            tokens=16,
        ),
    ]
    ig = [
        _rec("ig", "h/0", "adv", "harmful", safe=True, cost=0.4, reward=0.5, refusal=True, seconds=6.0, tokens=9, prefix=0.45),
        _rec("ig", "h/1", "adv", "harmful", safe=True, cost=0.2, reward=1.5, refusal=False, seconds=6.0, tokens=21),
        _rec("ig", "h/2", "adv", "harmful", safe=True, cost=0.1, reward=2.5, refusal=True, seconds=6.0, tokens=30),
        _rec("ig", "h/3", "adv", "harmful", safe=True, cost=0.3, reward=3.5, refusal=False, seconds=6.0, tokens=40),
        _rec("ig", "b/0", "mt", "benign", safe=True, cost=0.2, reward=5.0, refusal=False, seconds=3.0, tokens=16),
        {**_rec("ig", "b/1", "mt", "benign", safe=True, cost=0.0, reward=0.0, refusal=False, seconds=0.0, tokens=0), "error": "ContextLengthError: too long"},
    ]  # fmt: skip
    return plain + ig


@pytest.fixture
def keyword_guard(make_guard) -> Callable[..., InferenceGuard]:
    """Tiny LM; cost 1 when the response contains an 'e' (so raw samples are often unsafe)."""

    def build(**config) -> InferenceGuard:
        cost = CostModel.from_callable(lambda p, r: float("e" in r), threshold=0.5, id="has-e")
        reward = RewardModel.from_callable(lambda p, r: len(set(r)) / 10, id="distinct-chars")
        return make_guard(cost=cost, reward=reward, **{"max_new_tokens": 8, **config})

    return build
