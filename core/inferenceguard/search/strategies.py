"""Former home of the searches, kept so old imports work for one minor release.

The search now lives in :mod:`.beam` (the block search), :mod:`.steps` (its steps),
:mod:`.scoring` (the ranking policies), :mod:`.baselines` (every strategy by name) and
:mod:`.events` (what strategies yield and return).
"""

from __future__ import annotations

import warnings

from .baselines import STRATEGIES, args_search
from .beam import block_search
from .events import Commit, Outcome

__all__ = ["STRATEGIES", "Commit", "Outcome", "args_search", "block_search"]

warnings.warn(
    "inferenceguard.search.strategies is deprecated: import from inferenceguard.search.baselines "
    "(STRATEGIES, args_search), .beam (block_search) or .events (Commit, Outcome).",
    DeprecationWarning,
    stacklevel=2,
)
