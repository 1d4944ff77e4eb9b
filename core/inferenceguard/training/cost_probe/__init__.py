"""Training the embedded cost probe (``inferenceguard train-cost``): data, splits and fit.

* :mod:`.data`: the raw prompt sets (:func:`load_sources`) and the deterministic split;
* :mod:`.texts`: the hand-written templates, kept as JSON in ``templates/``;
* :mod:`.examples`: the labelled (prompt, response) pairs (:func:`build_examples`);
* :mod:`.fit`: the logistic fits and the auxiliary heads;
* :mod:`.near_duplicates`: screening new template texts for near-copies of held-out text;
* :mod:`.train`: :func:`train_default_cost`, which runs it all and saves the probe.
"""

from .data import (
    DEFAULT_SEED,
    Example,
    Sources,
    generation_plan,
    load_eval_dir,
    load_generated,
    load_handwritten,
    load_sources,
    split_of,
)
from .examples import build_eval_sets, build_examples, drop_eval_prompts
from .fit import DEFAULT_FEATURES, DEFAULT_L2, aux_targets, fit_aux_heads, fit_logistic
from .train import HOLDOUT_FAMILIES, train_default_cost

__all__ = [
    "DEFAULT_FEATURES",
    "DEFAULT_L2",
    "DEFAULT_SEED",
    "HOLDOUT_FAMILIES",
    "Example",
    "Sources",
    "aux_targets",
    "build_eval_sets",
    "build_examples",
    "drop_eval_prompts",
    "fit_aux_heads",
    "fit_logistic",
    "generation_plan",
    "load_eval_dir",
    "load_generated",
    "load_handwritten",
    "load_sources",
    "split_of",
    "train_default_cost",
]
