"""Offline jobs: training the embedded cost probe and the latent critic.

Nothing in the runtime (the guard, its scorers, search, server and adapters) imports this
package: it builds artefacts that the runtime then loads (``assets/``, a saved critic).
The CLI verbs ``train-cost`` and ``train-critic`` and the benchmark scripts import it;
``tests/training/test_runtime_imports.py`` keeps it that way.

* :mod:`.cost_probe`: the embedded cost probe (:func:`~.cost_probe.train_default_cost`);
* :mod:`.critic`: rollouts of the base model and the critic fit;
* :mod:`.metrics`: ROC-AUC, calibration and R², one copy for both.
"""

__all__: list[str] = []
