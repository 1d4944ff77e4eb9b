"""Training the embedded cost probe (``inferenceguard train-cost``): data, splits and fit."""

from .train import DEFAULT_SEED, build_examples, load_sources, train_default_cost

__all__ = ["DEFAULT_SEED", "build_examples", "load_sources", "train_default_cost"]
