"""Named strategy presets: a name plus :class:`~inferenceguard.GuardConfig` overrides.

A strategy spec is written ``NAME[:KEY=VALUE,KEY=VALUE...]``::

    plain
    best_of_n:n_candidates=16
    beam_lagrangian:n_candidates=32,n_beams=8,lagrange_multiplier=10
    inferenceguard+critic:n_candidates=64

Values are parsed as JSON when they can be (``16``, ``0.5``, ``true``, ``null``), else kept
as strings; :class:`~inferenceguard.GuardConfig` then validates them. The spec string, in
canonical form (keys sorted), is the strategy's label in records, tables and plots.

The special key ``verified`` chooses how responses are produced: ``verified=true`` uses
:meth:`InferenceGuard.generate` (the budget is enforced: what users of the library get),
``verified=false`` uses :meth:`InferenceGuard.generate_unverified` (the strategy's raw
answer, even over budget). The default is ``true`` for the InferenceGuard presets and
``false`` for every baseline, so the baselines' unsafe answers are measured rather than
hidden by the library's enforcement.

The ``inferenceguard`` preset runs InferenceGuard as every other entry point does: scored
by the guard's critic when one is loaded (and its config's ``use_critic`` is on), by the
reward model otherwise. ``inferenceguard+critic`` insists on a critic.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..config import GuardConfig
from ..errors import ConfigError

__all__ = ["PRESETS", "StrategySpec", "parse_strategy", "resolve_config"]


@dataclass(frozen=True)
class _Preset:
    overrides: Mapping[str, Any]
    verified: bool
    needs_critic: bool
    description: str


#: Preset name -> GuardConfig overrides, default production mode, and what it is.
PRESETS: dict[str, _Preset] = {
    "inferenceguard": _Preset(
        # No use_critic override: the guard's own setting applies, so `eval` measures what
        # build_guard, the adapters and the server run.
        {"strategy": "inferenceguard"},
        True,
        False,
        "InferenceGuard: block beam search + safety state + logit-penalised resampling, "
        "scored by the guard's critic when one is loaded, else by the reward model",
    ),
    "inferenceguard+critic": _Preset(
        {"strategy": "inferenceguard", "use_critic": True},
        True,
        True,
        "InferenceGuard scored by the latent critic (needs a critic loaded)",
    ),
    "beam": _Preset(
        {"strategy": "beam"},
        False,
        False,
        "block beam search with the safety state (paper: beam search + augmented safety)",
    ),
    "beam_lagrangian": _Preset(
        {"strategy": "beam_lagrangian"},
        False,
        False,
        "block beam search scored by reward − λ·cost",
    ),
    "best_of_n": _Preset(
        {"strategy": "best_of_n"},
        False,
        False,
        "N full samples, the safety state as a filter (paper: BoN + augmented safety)",
    ),
    "best_of_n_lagrangian": _Preset(
        {"strategy": "best_of_n_lagrangian"},
        False,
        False,
        "N full samples scored by reward − λ·cost",
    ),
    "args": _Preset({"strategy": "args"}, False, False, "ARGS: token-level reward-guided decoding"),
    "plain": _Preset({"strategy": "plain"}, False, False, "one sample from the base model"),
}

_FIELDS = frozenset(GuardConfig.model_fields)


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _format_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@dataclass(frozen=True)
class StrategySpec:
    """One strategy to evaluate.

    Attributes:
        name: the preset (a key of :data:`PRESETS`).
        overrides: :class:`GuardConfig` fields set on top of the preset's.
        verified: ``True`` produces responses with :meth:`InferenceGuard.generate`,
            ``False`` with :meth:`InferenceGuard.generate_unverified`.
        needs_critic: the guard must have a critic loaded.
    """

    name: str
    overrides: Mapping[str, Any] = field(default_factory=dict)
    verified: bool = False
    needs_critic: bool = False

    @property
    def label(self) -> str:
        """Canonical spec string, e.g. ``"best_of_n:n_candidates=16"``; the record key."""
        extra = dict(sorted(self.overrides.items()))
        if self.verified != PRESETS[self.name].verified:
            extra["verified"] = self.verified
        if not extra:
            return self.name
        return self.name + ":" + ",".join(f"{k}={_format_value(v)}" for k, v in extra.items())

    @property
    def method(self) -> str:
        """``"generate"`` or ``"generate_unverified"``."""
        return "generate" if self.verified else "generate_unverified"

    def config_overrides(self) -> dict[str, Any]:
        """The preset's overrides with this spec's on top."""
        return {**PRESETS[self.name].overrides, **self.overrides}

    def __str__(self) -> str:
        return self.label


def parse_strategy(spec: str | StrategySpec) -> StrategySpec:
    """Parse ``NAME[:KEY=VALUE,...]`` into a :class:`StrategySpec`.

    Args:
        spec: the spec string (or a ready spec, returned as is).

    Returns:
        The spec. Its values are not yet validated against :class:`GuardConfig`; see
        :func:`resolve_config`.

    Raises:
        ConfigError: unknown preset or key, or a malformed ``KEY=VALUE``.

    Examples:
        >>> parse_strategy("best_of_n:n_candidates=16").overrides
        {'n_candidates': 16}
        >>> parse_strategy("plain").method
        'generate_unverified'
    """
    if isinstance(spec, StrategySpec):
        return spec
    name, _, rest = spec.strip().partition(":")
    name = name.strip()
    if name not in PRESETS:
        close = difflib.get_close_matches(name, list(PRESETS), n=1)
        raise ConfigError(
            f"Unknown strategy {name!r}." + (f" Did you mean {close[0]!r}?" if close else ""),
            hint=f"choose one of: {', '.join(PRESETS)}",
        )
    preset = PRESETS[name]
    overrides: dict[str, Any] = {}
    verified = preset.verified
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(
                f"Bad strategy option {item!r} in {spec!r}; expected KEY=VALUE.",
                hint="e.g. best_of_n:n_candidates=16,lagrange_multiplier=10",
            )
        parsed = _parse_value(value.strip())
        if key == "verified":
            if not isinstance(parsed, bool):
                raise ConfigError(f"verified must be true or false, got {value!r} in {spec!r}.")
            verified = parsed
            continue
        if key == "strategy":
            raise ConfigError(
                f"{spec!r} sets 'strategy'; the preset name already chooses it.",
                hint=f"use one of the presets: {', '.join(PRESETS)}",
            )
        if key not in _FIELDS:
            close = difflib.get_close_matches(key, sorted(_FIELDS), n=1)
            raise ConfigError(
                f"Unknown GuardConfig field {key!r} in strategy {spec!r}."
                + (f" Did you mean {close[0]!r}?" if close else ""),
            )
        overrides[key] = parsed
    return StrategySpec(name, overrides, verified, preset.needs_critic)


def resolve_config(
    base: GuardConfig, spec: StrategySpec, common: Mapping[str, Any] | None = None
) -> GuardConfig:
    """The config one strategy runs with: ``base`` ← ``common`` ← the strategy's overrides.

    ``common`` holds run-wide settings (``max_new_tokens``, ...). When the run's
    ``max_new_tokens`` is below the base config's ``block_len`` and the strategy does not
    set ``block_len`` itself, ``block_len`` is lowered to fit.

    Raises:
        ConfigError: the combination is invalid (the message names the strategy).
    """
    merged: dict[str, Any] = {**(common or {}), **spec.config_overrides()}
    if "stop" in merged and merged["stop"] is not None:
        merged["stop"] = tuple(merged["stop"])
    max_new = merged.get("max_new_tokens", base.max_new_tokens)
    if "block_len" not in spec.overrides and base.block_len > max_new:
        merged["block_len"] = max_new
    try:
        return base.replace(**merged)
    except ConfigError as exc:
        raise ConfigError(f"Strategy {spec.label!r}: {exc}") from None
