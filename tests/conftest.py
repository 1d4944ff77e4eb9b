"""Run-wide fixtures: tiny random models built locally (no hub), and the real defaults.

Fast tests use ``tiny_lm``: a 2-layer random Llama with the SmolLM2 tokenizer and chat
template, so rendering and decoding are real while a forward takes about a millisecond.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest
import torch
from hypothesis import HealthCheck, settings

from inferenceguard import CostModel, GuardConfig, InferenceGuard, LocalLM, RewardModel
from inferenceguard.testing import tiny_random_lm

# CPU timing on shared 2-core machines is noisy: no per-example deadline.
settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
settings.load_profile("default")


@pytest.fixture(autouse=True)
def _torch_threads(request):
    """One thread for tiny models (thread start-up dominates their ~1 ms forwards: 20x
    faster here); all cores for the few slow tests on the real default models."""
    previous = torch.get_num_threads()
    slow = request.node.get_closest_marker("slow") is not None
    torch.set_num_threads((os.cpu_count() or 1) if slow else 1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def smollm2_dir():
    """Folder of the embedded default model (converted once per machine)."""
    from inferenceguard._embedded import embedded_lm_dir

    return embedded_lm_dir()


@pytest.fixture(scope="session")
def smollm2_tokenizer(smollm2_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2_dir)


@pytest.fixture(scope="session")
def tiny_lm(smollm2_tokenizer) -> LocalLM:
    """Random tiny Llama + the real SmolLM2 tokenizer and chat template (2048-token window)."""
    return tiny_random_lm(smollm2_tokenizer, max_position_embeddings=2048)


@pytest.fixture
def make_guard(tiny_lm):
    """Factory: a guard on the tiny model with callable cost/reward models."""

    def factory(cost=None, reward=None, critic=None, **config) -> InferenceGuard:
        cost = cost or CostModel.from_callable(lambda p, r: 0.0, threshold=0.5, id="zero-cost")
        reward = reward or RewardModel.from_callable(lambda p, r: float(len(r)), id="length")
        defaults = {
            "n_candidates": 4,
            "n_beams": 2,
            "block_len": 4,
            "max_new_tokens": 12,
            "seed": 0,
        }
        return InferenceGuard(
            tiny_lm, cost, reward, critic=critic, config=GuardConfig(**{**defaults, **config})
        )

    return factory


@pytest.fixture(scope="session")
def default_lm(smollm2_dir) -> LocalLM:
    """The real embedded SmolLM2-135M-Instruct (slow tests only)."""
    return LocalLM.from_pretrained()
