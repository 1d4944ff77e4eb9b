"""Hand-made search inputs: a context with callable scorers, blocks and candidates."""

from __future__ import annotations

import pytest
import torch

from inferenceguard import CostModel, GuardConfig, RewardModel
from inferenceguard.lm import Block
from inferenceguard.search.context import SearchContext
from inferenceguard.search.steps import Candidates


def _ctx(lm=None, cost=None, reward=None, **config) -> SearchContext:
    return SearchContext(
        lm=lm,
        cost_model=cost or CostModel.from_callable(lambda p, r: 0.0, threshold=0.5),
        reward_model=reward or RewardModel.from_callable(lambda p, r: float(len(r))),
        critic=None,
        config=GuardConfig(**config),
        prompt="Hi",
        prompt_ids=[1],
        budget=0.5,
        generator=torch.Generator().manual_seed(0),
    )


def _block(lengths, finished, width=3) -> Block:
    n = len(lengths)
    return Block(
        tokens=torch.arange(n * width).reshape(n, width),
        lengths=torch.tensor(lengths),
        finished=torch.tensor(finished),
        hidden=torch.arange(n * 2, dtype=torch.float32).reshape(n, 2),
        forwards=width,
    )


def _cands(texts, parents, z=None, finished=None, lengths=None) -> Candidates:
    n = len(texts)
    block = _block(lengths or [3] * n, finished or [False] * n)
    z = torch.tensor(z if z is not None else [0.5] * n)
    return Candidates(
        parents=torch.tensor(parents),
        request=torch.zeros(n, dtype=torch.long),
        block=block,
        tokens=[[i] * 3 for i in range(n)],
        texts=list(texts),
        cost=0.5 - z,
        tracked=0.5 - z,
        z=z,
    )


@pytest.fixture
def make_ctx():
    """Factory: a SearchContext (no model unless given) with budget 0.5, reward = len(text)."""
    return _ctx


@pytest.fixture
def make_block():
    """Factory: a Block of hand-made tokens `[n, width]` and hidden states `[n, 2]`."""
    return _block


@pytest.fixture
def make_cands():
    """Factory: verified Candidates with the given texts, parents and z (cost = 0.5 − z)."""
    return _cands
