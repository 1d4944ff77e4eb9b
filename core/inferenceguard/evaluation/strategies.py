"""Deprecated alias of :mod:`inferenceguard.evaluation.presets` (renamed: the presets are
not the search algorithms of :mod:`inferenceguard.search`). Import from ``presets``.
"""

from __future__ import annotations

import warnings

from .presets import PRESETS, StrategySpec, parse_strategy, resolve_config

__all__ = ["PRESETS", "StrategySpec", "parse_strategy", "resolve_config"]

warnings.warn(
    "inferenceguard.evaluation.strategies was renamed inferenceguard.evaluation.presets; "
    "the old name goes away in the next minor release.",
    DeprecationWarning,
    stacklevel=2,
)
