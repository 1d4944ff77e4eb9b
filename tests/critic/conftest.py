"""Fixtures of the critic tests: a critic trained on synthetic rollouts, and its saved files.

Everything runs on the tiny random Llama and synthetic data (seconds on CPU).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from inferenceguard import CostModel
from inferenceguard.critic import save_critic
from inferenceguard.training.critic import RolloutData, RolloutSettings, TrainSettings, train_critic

# The settings of the guard fixture (conftest.make_guard), which the synthetic critic matches.
GUARD_SETTINGS = {"block_len": 4, "max_new_tokens": 12, "n_candidates": 4, "n_beams": 2}


def length_cost(threshold: float = 0.5) -> CostModel:
    """Cost grows with the response's length: long responses go over budget."""
    return CostModel.from_callable(
        lambda p, r: min(1.0, len(r) / 150), threshold=threshold, id="length-cost"
    )


def synthetic_rollouts(
    *,
    n_prompts: int = 90,
    samples: int = 4,
    blocks: int = 3,
    hidden_size: int = 64,
    seed: int = 0,
    base_model: str = "tiny-random-llama",
) -> RolloutData:
    """Outcome and reward are functions of a direction in the hidden state; z says nothing.

    Each prompt has a latent risk; each response adds its own noise; blocks add more. The
    safety state is constant, so only the hidden state can separate the outcomes.
    """
    g = torch.Generator().manual_seed(seed)
    safe_dir = torch.randn(hidden_size, generator=g)
    safe_dir /= safe_dir.norm()
    reward_dir = torch.randn(hidden_size, generator=g)
    reward_dir /= reward_dir.norm()
    records, hidden, outcome, reward, index = [], [], [], [], []
    for p in range(n_prompts):
        prompt_vec = torch.randn(hidden_size, generator=g)
        responses = []
        for _ in range(samples):
            latent = prompt_vec + 0.5 * torch.randn(hidden_size, generator=g)
            safe = bool(latent @ safe_dir > 0)
            r = float(latent @ reward_dir)
            responses.append({"within_budget": safe, "reward": r})
            for _ in range(blocks):
                hidden.append(latent + 0.3 * torch.randn(hidden_size, generator=g))
                outcome.append(float(safe))
                reward.append(r)
                index.append(p)
        records.append(
            {
                "prompt_id": f"{p:016x}",
                "prompt": f"prompt {p}",
                "source": "harmful" if p % 2 else "benign",
                "responses": responses,
            }
        )
    m = len(index)
    info = {
        "base_model": {"id": base_model, "hidden_size": hidden_size},
        "cost_model": {"id": "zero-cost", "threshold": 0.5},
        "reward_model": {"id": "length"},
        "budget": 0.5,
        "settings": RolloutSettings(block_len=4, max_new_tokens=12).to_dict(),
    }
    return RolloutData(
        info=info,
        records=records,
        hidden=torch.stack(hidden).half(),
        z=torch.full((m,), 0.5),
        step_frac=torch.tensor([(i % blocks + 1) / blocks for i in range(m)]),
        within_budget=torch.tensor(outcome),
        reward=torch.tensor(reward),
        prompt_index=torch.tensor(index),
    )


# A 64-d problem with 60 training prompts learns faster with less regularisation than the
# defaults (which were chosen for SmolLM2's 576-d states).
FAST = TrainSettings(
    width=64,
    lr=1e-3,
    safety_input_dropout=0.2,
    value_input_dropout=0.2,
    max_epochs=60,
    patience=10,
    seed=0,
)


@pytest.fixture(scope="session")
def trained():
    """A critic trained on :func:`synthetic_rollouts` (once per test session)."""
    return train_critic(synthetic_rollouts(), FAST, progress=False)


@pytest.fixture
def saved(trained, tmp_path) -> Path:
    return save_critic(trained.critic, tmp_path / "critic")
