"""Factories that Ray Serve replicas import by ``module:function`` in test_ray_serve.py.

Not a test module: the Ray workers get this folder on their Python path, and each
replica builds its own models by calling these.
"""

from __future__ import annotations

import time

from inferenceguard import CostModel, LocalLM, RewardModel

#: What every replica's model writes (then EOS): a tool call, so one app covers tools.
CALL = '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'


def scripted_lm() -> LocalLM:
    """The tiny random Llama with SmolLM2's tokenizer, forced to write :data:`CALL`."""
    from transformers import AutoTokenizer

    from inferenceguard._embedded import embedded_lm_dir
    from inferenceguard.testing import ScriptedLM, tiny_random_lm

    tokenizer = AutoTokenizer.from_pretrained(embedded_lm_dir())
    return ScriptedLM(tiny_random_lm(tokenizer), CALL)


def _slow_zero(prompt: str, response: str) -> float:
    time.sleep(0.03)
    return 0.0


def slow_zero_cost() -> CostModel:
    """Cost 0 after a pause: a request then lasts about a second, long enough to kill."""
    return CostModel.from_callable(_slow_zero, threshold=0.5, id="slow-zero")


def length_reward() -> RewardModel:
    """Longer is better (the scripted model writes the same text anyway)."""
    return RewardModel.from_callable(lambda p, r: float(len(r)), id="length")


def tiny_lm() -> LocalLM:
    """The tiny random Llama (seeded: the same weights in every process)."""
    from transformers import AutoTokenizer

    from inferenceguard._embedded import embedded_lm_dir
    from inferenceguard.testing import tiny_random_lm

    return tiny_random_lm(AutoTokenizer.from_pretrained(embedded_lm_dir()))


def letter_e_cost() -> CostModel:
    """Cost 1 for a response with an "e": raw samples are often unsafe."""
    from inferenceguard.testing import keyword_cost

    return keyword_cost(["e"])
