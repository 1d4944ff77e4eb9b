"""Building a guard from user-facing specs: :func:`build_guard` and :class:`LazyGuard`.

:func:`build_guard` loads the models a guard needs (hub ids, local folders, the embedded
defaults or ready objects). :class:`LazyGuard` is what every front end holds: it builds
the guard on first use, once, under one lock, or wraps a guard the user already built.

Example::

    from inferenceguard import LazyGuard

    lazy = LazyGuard(model="Qwen/Qwen2.5-1.5B-Instruct")   # nothing is loaded yet
    lazy.model_name                                       # 'Qwen/Qwen2.5-1.5B-Instruct'
    guard = lazy.get()                                    # loads the models, once
"""

from __future__ import annotations

import threading
from typing import Any

from ._embedded import DEFAULT_LM_ID
from .config import GuardConfig
from .errors import ConfigError
from .guard import InferenceGuard
from .lm import LocalLM

__all__ = ["LazyGuard", "build_guard"]

# Building loads models: one build at a time in the process, whichever object asks, so
# two front ends starting together do not hold two copies of the weights in memory.
_BUILD_LOCK = threading.Lock()


def build_guard(
    *,
    guard: InferenceGuard | None = None,
    model: Any = None,
    cost_model: Any = "default",
    reward_model: Any = "default",
    critic: Any = "default",
    config: GuardConfig | None = None,
    device: str | None = None,
    dtype: str | None = None,
    device_map: Any = None,
    trust_remote_code: bool = False,
) -> InferenceGuard:
    """Build a guard from user-facing specs; the one constructor every front end calls.

    Args:
        guard: an existing guard to share (everything else is then ignored but ``config``).
        model: ``None``/``"default"`` (embedded SmolLM2), a path, a hub id, or a :class:`LocalLM`.
        cost_model: ``"default"``, a :class:`CostModel`, a path or hub id
            (see :func:`inferenceguard.scorers.registry.load_cost_model`).
        reward_model: ``"default"``, a :class:`RewardModel`, a path or hub id.
        critic: ``"default"`` (the shipped critic when ``model`` is the default, else none),
            ``None`` (no critic), a critic object, or a path to a saved critic.
        config: the :class:`GuardConfig`.
        device, dtype, device_map, trust_remote_code: how to load the models.

    Raises:
        ModelLoadError: a model could not be loaded.
    """
    if guard is not None:
        if config is not None and config != guard.config:
            return InferenceGuard(
                guard.lm, guard.cost_model, guard.reward_model, critic=guard.critic, config=config
            )
        return guard
    from .scorers.registry import load_cost_model, load_reward_model

    lm = _load_lm(model, device, dtype, device_map, trust_remote_code)
    # trust_remote_code only travels when the user turned it on.
    loader_kwargs: dict[str, Any] = {"device": device}
    if trust_remote_code:
        loader_kwargs["trust_remote_code"] = True
    cost = load_cost_model(cost_model, **loader_kwargs)
    reward = load_reward_model(reward_model, **loader_kwargs)
    loaded_critic = _load_critic(critic, model, lm, cost, config)
    return InferenceGuard(lm, cost, reward, critic=loaded_critic, config=config)


def _load_lm(
    model: Any, device: str | None, dtype: str | None, device_map: Any, trust_remote_code: bool
) -> LocalLM:
    if isinstance(model, LocalLM):
        return model
    return LocalLM.from_pretrained(
        model,
        device=device,
        dtype=dtype,
        device_map=device_map,
        trust_remote_code=trust_remote_code,
    )


def _load_critic(
    critic: Any, model: Any, lm: LocalLM, cost: Any, config: GuardConfig | None
) -> Any:
    if critic == "default":
        # The shipped critic fits only the embedded model, however it was passed in.
        if model not in (None, "default") and lm.model_id != DEFAULT_LM_ID:
            return None
        try:
            from .critic.io import load_default_critic
        except ImportError:
            return None
        return load_default_critic(lm=lm, cost_model=cost, config=config)
    if isinstance(critic, str | bytes) or hasattr(critic, "__fspath__"):
        from .critic.io import load_critic

        return load_critic(critic, lm=lm, cost_model=cost, config=config)
    return critic


class LazyGuard:
    """A guard built on first use, once, under one lock; or a guard the user already built.

    Front ends hold one so that constructing them loads nothing and cheap questions
    (:attr:`model_name`) need no model.

    Args:
        guard: an existing guard to use (and share). Then no model spec may be given.
        **specs: the keyword arguments of :func:`build_guard` but ``guard``.

    Raises:
        TypeError: ``guard`` is not an :class:`InferenceGuard`.
        ConfigError: ``guard`` together with model specs, or an unknown spec name.
    """

    def __init__(self, guard: InferenceGuard | None = None, /, **specs: Any) -> None:
        if guard is not None and not isinstance(guard, InferenceGuard):
            # A programming error, like a wrong argument type anywhere in Python.
            raise TypeError(f"guard must be an InferenceGuard, got {type(guard).__name__}.")
        _check_specs(guard, specs)
        self._guard = guard
        self._specs = specs
        self.shared = guard is not None
        """Whether the guard was given rather than built here."""

    @property
    def built(self) -> InferenceGuard | None:
        """The guard if it exists already, else ``None``; never builds."""
        return self._guard

    def get(self) -> InferenceGuard:
        """The guard, built (models loaded) on the first call only, however many threads ask.

        Raises:
            ModelLoadError: a model could not be loaded; the next call tries again.
        """
        if self._guard is None:
            with _BUILD_LOCK:
                if self._guard is None:
                    self._guard = build_guard(**self._specs)
        return self._guard

    @property
    def model_name(self) -> str:
        """The base model's id, without building: from the guard if built, else the spec."""
        if self._guard is not None:
            return self._guard.lm.model_id
        model = self._specs.get("model")
        if model in (None, "default"):
            return DEFAULT_LM_ID
        if isinstance(model, LocalLM):
            return model.model_id
        return str(getattr(model, "model_id", None) or model)


def _check_specs(guard: InferenceGuard | None, specs: dict[str, Any]) -> None:
    unknown = sorted(set(specs) - _BUILD_ARGS)
    if unknown:
        raise ConfigError(
            f"LazyGuard got unknown argument(s): {', '.join(unknown)}.",
            hint=f"use the arguments of build_guard: {', '.join(sorted(_BUILD_ARGS))}.",
        )
    if guard is None:
        return
    clash = [
        name
        for name, unset in _UNSET_SPECS.items()
        if name in specs and not _is_unset(specs[name], unset)
    ]
    if clash:
        raise ConfigError(
            f"guard= was given together with {', '.join(clash)}; the guard already holds its "
            "models.",
            hint="pass either guard= or the model settings, not both.",
        )


# What "not given" looks like for each model spec of build_guard.
_UNSET_SPECS: dict[str, tuple[Any, ...]] = {
    "model": (None, "default"),
    "cost_model": ("default",),
    "reward_model": ("default",),
    "critic": ("default",),
}


def _is_unset(value: Any, unset: tuple[Any, ...]) -> bool:
    # Strings by value, everything else by identity: a model object is never "unset".
    return any(value is u or (isinstance(value, str) and value == u) for u in unset)


_BUILD_ARGS = frozenset(
    {
        "model",
        "cost_model",
        "reward_model",
        "critic",
        "config",
        "device",
        "dtype",
        "device_map",
        "trust_remote_code",
    }
)
