"""The searches, one module per job.

* :mod:`.context` — one request's state (models, budget, cost cache, counters);
* :mod:`.steps` — the shape-documented steps every strategy is made of;
* :mod:`.scoring` — ranking policies (:class:`~.scoring.Penalised`, :class:`~.scoring.Lagrangian`);
* :mod:`.beam` — InferenceGuard's block search, a lettered loop over the steps;
* :mod:`.baselines` — every strategy by name (the ``STRATEGIES`` table);
* :mod:`.events` — what strategies yield (``Commit``, ``BlockEvent``) and return (``Outcome``);
* :mod:`.runner` — verification and finalisation: where the budget guarantee is enforced.
"""
