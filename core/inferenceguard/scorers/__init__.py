"""Cost and reward models: the runtime scorers the guard calls.

* :mod:`.base`: the ``CostModel`` / ``RewardModel`` contracts and ``checked_scores``.
* :mod:`.registry`: ``load_cost_model`` / ``load_reward_model``, a lazy ``kind → "module:attr"``
  table with architecture detection from ``config.json``.
* :mod:`.hf_classifier`, :mod:`.guard_model`, :mod:`.pku`: loaders for Hugging Face
  checkpoints; they share :mod:`._hf` (sources, truncation, the one batching loop) and never
  import the registry.
* :mod:`.embedding`, :mod:`.embedding_probe`, :mod:`.relevance`, :mod:`.defaults`: the
  embedded default scorers on all-MiniLM-L6-v2.
"""
