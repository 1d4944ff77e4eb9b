"""Fixtures for the LangChain adapter tests: chat models on the tiny random model.

Every model here runs the real guarded search on the 2-layer random Llama of the root
``tiny_lm`` fixture. ``ScriptedLM`` makes that model write a fixed text (a tool call, a
phrase the cost model flags) so outcomes are deterministic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from inferenceguard import CostModel, InferenceGuard, LocalLM, RewardModel
from inferenceguard.testing import ScriptedLM
from langchain_inferenceguard import ChatInferenceGuard

#: Small search settings: a request takes tens of milliseconds on the tiny model.
FAST = {"n_candidates": 2, "n_beams": 1, "block_len": 4, "seed": 0}


def zero_cost() -> CostModel:
    """Nothing is unsafe."""
    return CostModel.from_callable(lambda prompt, response: 0.0, threshold=0.5, id="zero-cost")


def length_reward() -> RewardModel:
    """Longer is better (a deterministic tie-break for the random model)."""
    return RewardModel.from_callable(lambda prompt, response: float(len(response)), id="length")


@pytest.fixture
def make_llm(tiny_lm: LocalLM) -> Callable[..., ChatInferenceGuard]:
    """Factory: ``make_llm(script=None, cost=None, **fields)`` → a ChatInferenceGuard.

    ``script`` makes the model write that text (then EOS); ``cost`` defaults to zero.
    """

    def factory(script: str | None = None, cost: CostModel | None = None, **fields: Any):
        lm = tiny_lm if script is None else ScriptedLM(tiny_lm, script)
        guard = InferenceGuard(lm, cost or zero_cost(), length_reward())
        params = {**FAST, "max_tokens": 8 if script is None else 96, **fields}
        return ChatInferenceGuard(guard=guard, **params)

    return factory
