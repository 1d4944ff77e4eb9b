"""Offline jobs: training the embedded cost probe and the latent critic.

Nothing in the runtime (the guard, its scorers, search, server and adapters) imports this
package: it builds artefacts that the runtime then loads (``assets/``, a saved critic).
The CLI verbs ``train-cost`` and ``train-critic`` and the benchmark scripts import it.
"""

__all__: list[str] = []
