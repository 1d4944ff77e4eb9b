"""The sampler's logits filters and the unsafe-token penalty on hand-made logits."""

from __future__ import annotations

import pytest
import torch

from inferenceguard.processors import apply_top_k, apply_top_p, sample_next, unsafe_token_bias

NEG = float("-inf")


def test_top_k_keeps_the_k_largest_logits_per_row():
    scores = torch.tensor([[1.0, 3.0, 2.0, 0.0], [0.0, 0.0, 5.0, 4.0]])
    kept = apply_top_k(scores, 2)
    assert kept.tolist() == [[NEG, 3.0, 2.0, NEG], [NEG, NEG, 5.0, 4.0]]
    assert torch.equal(apply_top_k(scores, None), scores)


def test_top_p_keeps_the_smallest_set_reaching_p_and_always_the_top_token():
    scores = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.isfinite(apply_top_p(scores, 0.8)).tolist() == [[True, True, False, False]]
    assert torch.isfinite(apply_top_p(scores, 0.1)).tolist() == [[True, False, False, False]]


def test_unsafe_token_bias_penalises_the_commonest_offending_token_most():
    tokens = torch.tensor([[3, 3, 1], [3, 2, 9]])
    bias = unsafe_token_bias(tokens, torch.tensor([3, 2]), vocab_size=5, strength=4.0)
    assert bias.tolist() == pytest.approx([0.0, -4 / 3, -4 / 3, -4.0, 0.0])  # 9: padding
    assert unsafe_token_bias(tokens, torch.tensor([3, 2]), 5, 0.0).abs().sum() == 0


def test_greedy_sampling_follows_the_bias():
    logits = torch.tensor([[2.0, 1.0, 0.0]])
    assert sample_next(
        logits, do_sample=False, temperature=1.0, top_p=1.0, top_k=None, bias=None, generator=None
    ).tolist() == [0]
    bias = torch.tensor([[-5.0, 0.0, 0.0]])
    assert sample_next(
        logits, do_sample=False, temperature=1.0, top_p=1.0, top_k=None, bias=bias, generator=None
    ).tolist() == [1]
