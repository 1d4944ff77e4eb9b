"""Fixtures of the CLI tests: the guard builder replaced by a tiny guard on the CPU."""

from __future__ import annotations

from typing import Any

import pytest

import inferenceguard
from inferenceguard import InferenceGuard
from inferenceguard.testing import keyword_cost


@pytest.fixture
def built(monkeypatch, make_guard) -> dict[str, Any]:
    """Replace ``inferenceguard.build_guard``; the dict fills with the keywords it got.

    The guard it returns runs the tiny random model with the config the CLI built, a cost
    of 1 for responses containing an "e" (so raw samples are often unsafe).
    """
    seen: dict[str, Any] = {}
    base = make_guard(cost=keyword_cost(["e"]))

    def fake_build_guard(**kwargs: Any) -> InferenceGuard:
        seen.update(kwargs)
        return InferenceGuard(base.lm, base.cost_model, base.reward_model, config=kwargs["config"])

    monkeypatch.setattr(inferenceguard, "build_guard", fake_build_guard)
    return seen


@pytest.fixture
def no_build(monkeypatch) -> None:
    """``inferenceguard.build_guard`` fails the test if called (errors must come first)."""

    def fail(**kwargs: Any) -> None:
        pytest.fail(f"build_guard was called with {kwargs}")

    monkeypatch.setattr(inferenceguard, "build_guard", fail)
