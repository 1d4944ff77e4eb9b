"""build_guard and LazyGuard: build once, under one lock, or wrap a guard already built."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import inferenceguard
from inferenceguard import DEFAULT_LM_ID, ConfigError, GuardConfig, LazyGuard
from inferenceguard import build as build_module


def test_lazy_guard_builds_once_under_concurrent_first_use(make_guard, monkeypatch) -> None:
    guard = make_guard()
    calls: list[dict[str, Any]] = []
    inside = threading.Event()

    def slow_build(**specs: Any):
        calls.append(specs)
        inside.set()
        time.sleep(0.05)  # every other thread arrives while the build runs
        return guard

    monkeypatch.setattr(build_module, "build_guard", slow_build)
    lazy = LazyGuard(model="org/model", cost_model="my-cost", device="cpu")
    assert lazy.built is None and calls == []
    assert lazy.model_name == "org/model"  # known without building
    barrier = threading.Barrier(8)

    def first_use(_: int):
        barrier.wait()
        return lazy.get()

    with ThreadPoolExecutor(8) as pool:
        guards = list(pool.map(first_use, range(8)))
    assert all(g is guard for g in guards)
    assert calls == [{"model": "org/model", "cost_model": "my-cost", "device": "cpu"}]
    assert lazy.built is guard and lazy.model_name == guard.lm.model_id


def test_a_failed_build_is_retried_on_the_next_use(make_guard, monkeypatch) -> None:
    attempts: list[int] = []

    def flaky(**specs: Any):
        attempts.append(1)
        if len(attempts) == 1:
            raise inferenceguard.ModelLoadError("no such model")
        return make_guard()

    monkeypatch.setattr(build_module, "build_guard", flaky)
    lazy = LazyGuard(model="org/model")
    with pytest.raises(inferenceguard.ModelLoadError):
        lazy.get()
    assert lazy.get() is lazy.get() and len(attempts) == 2


def test_a_given_guard_is_shared_and_never_rebuilt(make_guard, monkeypatch) -> None:
    guard = make_guard()
    monkeypatch.setattr(build_module, "build_guard", lambda **kw: pytest.fail("built"))
    lazy = LazyGuard(guard, device="cpu")
    assert lazy.shared and lazy.built is guard and lazy.get() is guard
    assert lazy.model_name == "tiny-random-llama"


@pytest.mark.parametrize(
    "specs",
    [{"model": "org/m"}, {"cost_model": "other"}, {"reward_model": None}, {"critic": None}],
)
def test_a_given_guard_with_model_specs_is_a_config_error(make_guard, specs) -> None:
    with pytest.raises(ConfigError, match="guard= was given together with"):
        LazyGuard(make_guard(), **specs)


def test_bad_arguments_fail_at_construction() -> None:
    with pytest.raises(TypeError, match="InferenceGuard"):
        LazyGuard("not a guard")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="no_such_spec"):
        LazyGuard(no_such_spec=1)


def test_model_name_without_building() -> None:
    assert LazyGuard().model_name == DEFAULT_LM_ID
    assert LazyGuard(model="default").model_name == DEFAULT_LM_ID


def test_build_guard_is_public_and_shares_a_given_guard(make_guard) -> None:
    from inferenceguard.guard import build_guard as old_path  # still importable

    assert inferenceguard.build_guard is build_module.build_guard is old_path
    guard = make_guard()
    assert inferenceguard.build_guard(guard=guard) is guard
    other = inferenceguard.build_guard(guard=guard, config=GuardConfig(n_candidates=2, n_beams=1))
    assert other is not guard and other.lm is guard.lm and other.config.n_candidates == 2
