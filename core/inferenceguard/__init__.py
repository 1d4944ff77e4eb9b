"""InferenceGuard: almost surely safe decoding for local Hugging Face LLMs.

"Almost surely" is with respect to the cost model: the library never returns or streams
text whose verified cost exceeds the budget. See README.md for what that does and does
not promise.

The names below are the public API; every other module path may change (submodules such
as :mod:`inferenceguard.evaluation` or :mod:`inferenceguard.testing` pin their own
``__all__``). ``tests/core/test_public_api.py`` keeps this list and the module in step.
"""

from ._embedded import DEFAULT_LM_ID, embedded_lm_dir
from ._version import __version__
from .build import LazyGuard, build_guard
from .config import GuardConfig
from .errors import (
    ArtifactError,
    ConfigError,
    ContextLengthError,
    CriticMismatchError,
    InferenceGuardError,
    InputError,
    ModelLoadError,
    ResourceError,
    SafetyExhaustedError,
    ScorerError,
)
from .guard import InferenceGuard
from .lm import LocalLM, SamplerSettings
from .result import GuardResult, SafetyReport, StreamChunk
from .scorers.base import CostModel, RewardModel
from .search.scheduler import BatchingConfig

__all__ = [
    "DEFAULT_LM_ID",
    "ArtifactError",
    "BatchingConfig",
    "ConfigError",
    "ContextLengthError",
    "CostModel",
    "CriticMismatchError",
    "GuardConfig",
    "GuardResult",
    "InferenceGuard",
    "InferenceGuardError",
    "InputError",
    "LazyGuard",
    "LocalLM",
    "ModelLoadError",
    "ResourceError",
    "RewardModel",
    "SafetyExhaustedError",
    "SafetyReport",
    "SamplerSettings",
    "ScorerError",
    "StreamChunk",
    "__version__",
    "build_guard",
    "embedded_lm_dir",
    "load_default_cost_model",
    "load_default_reward_model",
]


def load_default_cost_model(device: str | None = None) -> CostModel:
    """The guard's embedded default cost, offline: ``max(g * c, t)`` of the MiniLM request
    gate (g, P(harmful request)) and response judge (c, P(complies); t, P(toxic)), and a
    refusal required where the gate is confident the request is harmful."""
    from .scorers.defaults import load_default_cost_model as _load

    return _load(device=device)


def load_default_reward_model(device: str | None = None) -> RewardModel:
    """The embedded default reward, offline: relevance (MiniLM cosine) on benign requests,
    refusal and a low cost on harmful ones."""
    from .scorers.defaults import load_default_reward_model as _load

    return _load(device=device)
