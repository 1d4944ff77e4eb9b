"""Turn whatever the user passed (a scorer, a function, ``"default"``, a path or hub id) into a scorer.

Usage::

    cost = load_cost_model("PKU-Alignment/beaver-7b-v1.0-cost")          # picks the PKU loader
    cost = load_cost_model("./my-toxicity-classifier", unsafe_labels=["toxic"])
    cost = load_cost_model("meta-llama/Llama-Guard-3-1B", kind="guard", device="cuda")
    cost = load_cost_model(lambda prompt, response: float("bomb" in response), threshold=0.5)
    reward = load_reward_model("OpenAssistant/reward-model-deberta-v3-large-v2")

For a path or hub id the loader is chosen from ``config.json``'s ``architectures``:
``*ForScore`` (Safe-RLHF score models) → ``"pku"``, ``*ForSequenceClassification`` →
``"classifier"``, ``*ForCausalLM`` → ``"guard"`` (cost only). ``kind=`` overrides it.

This module is only the registry: the lazy tables :data:`COST_LOADERS` and
:data:`REWARD_LOADERS` (``kind → "module:attr"``, imported only when chosen, as
lm-evaluation-harness's ``MODEL_MAPPING``), architecture detection and "did you mean".
The loaders share their Hugging Face plumbing through :mod:`._hf` and never import this
module, so the imports run one way: registry → loaders → ``_hf``.
"""

from __future__ import annotations

import difflib
import importlib
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import ConfigError
from ._hf import check_source, read_config
from .base import CostModel, RewardModel

__all__ = [
    "COST_KINDS",
    "COST_LOADERS",
    "DEFAULT_LOADERS",
    "REWARD_KINDS",
    "REWARD_LOADERS",
    "load_cost_model",
    "load_reward_model",
    "resolve",
]

#: Cost model loaders by the name ``kind=`` accepts: ``"module:attr"`` of a class with
#: ``from_pretrained(source, **kwargs)``.
COST_LOADERS: Mapping[str, str] = {
    "classifier": "inferenceguard.scorers.hf_classifier:SequenceClassifierCost",
    "guard": "inferenceguard.scorers.guard_model:GenerativeGuardCost",
    "pku": "inferenceguard.scorers.pku:PKUCost",
}
#: Reward model loaders (a generative guard only yields a cost).
REWARD_LOADERS: Mapping[str, str] = {
    "classifier": "inferenceguard.scorers.hf_classifier:SequenceClassifierReward",
    "pku": "inferenceguard.scorers.pku:PKUReward",
}
#: The embedded defaults (``"default"``), by role: ``"module:attr"`` of a loader function.
DEFAULT_LOADERS: Mapping[str, str] = {
    "cost": "inferenceguard.scorers.defaults:load_default_cost_model",
    "reward": "inferenceguard.scorers.defaults:load_default_reward_model",
}
#: Loader families for cost models, by the name ``kind=`` accepts.
COST_KINDS: tuple[str, ...] = tuple(COST_LOADERS)
#: Loader families for reward models.
REWARD_KINDS: tuple[str, ...] = tuple(REWARD_LOADERS)

# Substrings of config.json "architectures" → kind, tried in this order.
_ARCHITECTURE_KINDS: tuple[tuple[str, str], ...] = (
    ("ForScore", "pku"),
    ("ForSequenceClassification", "classifier"),
    ("ForCausalLM", "guard"),
)

Spec = CostModel | RewardModel | Callable[..., Any] | str | os.PathLike


def resolve(target: str) -> Any:
    """Import ``"package.module:attr"`` and return the attribute."""
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def load_cost_model(
    spec: Spec, *, kind: str | None = None, threshold: float | None = None, **kwargs: Any
) -> CostModel:
    """Build a cost model from a scorer, a function, ``"default"``, a folder or a hub id.

    Args:
        spec: a :class:`CostModel` (returned as is); a function ``fn(prompt, response)``
            (needs ``threshold``; ``batched=True`` and ``id=`` go to
            :meth:`CostModel.from_callable`); ``"default"`` for the embedded cost model;
            or a local folder / hub id of a Hugging Face checkpoint.
        kind: force the loader (one of :data:`COST_KINDS`) instead of reading
            ``config.json``.
        threshold: costs above it are unsafe. Required for a function; for checkpoints
            it overrides the loader's default (0.5 for probabilities, 0.0 for PKU).
        **kwargs: passed to the loader's ``from_pretrained`` (``device``, ``dtype``,
            ``batch_size``, ``max_length``, ``trust_remote_code``, …).

    Returns:
        The cost model.

    Raises:
        ConfigError: unknown ``kind``, a reward model where a cost model is needed, or a
            function without ``threshold``.
        ModelLoadError: the checkpoint cannot be found or loaded.
    """
    if isinstance(spec, CostModel):
        return spec
    if isinstance(spec, RewardModel):
        raise ConfigError(
            f"load_cost_model got a reward model ({spec!r}).",
            hint="pass it as the reward model, or pass a CostModel here.",
        )
    if kind is not None:
        _check_kind(kind, COST_KINDS, role="cost")
    if _is_default(spec):
        model = resolve(DEFAULT_LOADERS["cost"])(device=kwargs.get("device"))
        if threshold is not None:
            model.threshold = float(threshold)
        return model
    if callable(spec) and not isinstance(spec, str | os.PathLike):
        if threshold is None:
            raise ConfigError(
                "A function used as a cost model needs a threshold.",
                hint="pass threshold=…, the cost above which a text is unsafe (e.g. 0.5).",
            )
        return CostModel.from_callable(spec, threshold=threshold, **_callable_kwargs(kwargs))
    if threshold is not None:
        kwargs["threshold"] = threshold
    return _load_checkpoint(spec, kind, COST_LOADERS, role="cost", kwargs=kwargs)


def load_reward_model(spec: Spec, *, kind: str | None = None, **kwargs: Any) -> RewardModel:
    """Build a reward model from a scorer, a function, ``"default"``, a folder or a hub id.

    Args:
        spec: a :class:`RewardModel` (returned as is); a function ``fn(prompt, response)``;
            ``"default"`` for the embedded relevance reward; or a local folder / hub id.
        kind: force the loader (one of :data:`REWARD_KINDS`).
        **kwargs: passed to the loader (see :func:`load_cost_model`).

    Returns:
        The reward model.

    Raises:
        ConfigError: unknown ``kind`` or a cost model where a reward model is needed.
        ModelLoadError: the checkpoint cannot be found or loaded.
    """
    if isinstance(spec, RewardModel):
        return spec
    if isinstance(spec, CostModel):
        raise ConfigError(
            f"load_reward_model got a cost model ({spec!r}).",
            hint="pass it as the cost model, or pass a RewardModel here.",
        )
    if kind is not None:
        _check_kind(kind, REWARD_KINDS, role="reward")
    if _is_default(spec):
        return resolve(DEFAULT_LOADERS["reward"])(device=kwargs.get("device"))
    if callable(spec) and not isinstance(spec, str | os.PathLike):
        return RewardModel.from_callable(spec, **_callable_kwargs(kwargs))
    return _load_checkpoint(spec, kind, REWARD_LOADERS, role="reward", kwargs=kwargs)


def _load_checkpoint(
    spec: Any, kind: str | None, loaders: Mapping[str, str], *, role: str, kwargs: dict[str, Any]
) -> Any:
    """Load a folder or hub id with the loader ``kind`` names, or the one config.json implies."""
    source = check_source(spec, what=f"{role} model")
    kind = kind or _detect_kind(source, kwargs.get("revision"), tuple(loaders), role=role)
    return resolve(loaders[kind]).from_pretrained(source, **kwargs)


def _callable_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The options a wrapped function takes; loader options (device, …) do not apply."""
    return {k: v for k, v in kwargs.items() if k in ("id", "batched")}


def _is_default(spec: Any) -> bool:
    return isinstance(spec, str) and spec == "default"


def _check_kind(kind: str, valid: Sequence[str], *, role: str) -> None:
    if kind in valid:
        return
    close = difflib.get_close_matches(str(kind), valid, n=1)
    guess = f" Did you mean {close[0]!r}?" if close else ""
    extra = (
        " (a generative guard only yields costs)" if role == "reward" and kind == "guard" else ""
    )
    raise ConfigError(
        f"Unknown {role} model kind {kind!r}{extra}.{guess}",
        hint=f"use one of {', '.join(repr(k) for k in valid)}.",
    )


def _detect_kind(source: str, revision: str | None, valid: Sequence[str], *, role: str) -> str:
    config = read_config(source, revision=revision)
    architectures = config.get("architectures") or []
    for marker, kind in _ARCHITECTURE_KINDS:
        if any(marker in str(arch) for arch in architectures):
            if kind not in valid:
                raise ConfigError(
                    f"{source} is a {architectures} checkpoint, which cannot be a {role} model.",
                    hint=f"pass kind= one of {', '.join(repr(k) for k in valid)} if you are sure.",
                )
            return kind
    raise ConfigError(
        f"Cannot tell which loader fits {source}: config.json lists architectures "
        f"{architectures or 'none'}.",
        hint=f"pass kind= one of {', '.join(repr(k) for k in valid)}.",
    )
