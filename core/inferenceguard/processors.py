"""Logits processing for block sampling.

Two kinds of unit, on `[n, vocab]` float logits:

* the sampler's filters (:func:`apply_top_k`, :func:`apply_top_p`), composed in a fixed
  order by :func:`sample_next` with the temperature and the per-row bias;
* :class:`LogitsHook` s, given to :class:`~inferenceguard.lm.LocalLM`, which rewrite the
  model's logits after every forward, before any bias or sampling. They are the public way
  to steer a model in tests (:class:`ForcedScript`) without touching its forward.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch

__all__ = [
    "ForcedScript",
    "LogitsHook",
    "apply_top_k",
    "apply_top_p",
    "sample_next",
    "unsafe_token_bias",
]


class LogitsHook(Protocol):
    """Rewrites next-token logits after a forward.

    Args:
        logits: `[n, V]` the model's next-token logits.
        generated: `[n]` long, tokens each row has generated so far (0 right after the prefill).

    Returns:
        `[n, V]` logits.
    """

    def __call__(self, logits: torch.Tensor, generated: torch.Tensor) -> torch.Tensor: ...


class ForcedScript:
    """A :class:`LogitsHook` that makes every row write ``script``: row i's next token is
    ``script[generated[i]]`` (the last id once the script is used up).

    Args:
        script: token ids, usually ending in EOS.
    """

    def __init__(self, script: Sequence[int]) -> None:
        if not script:
            raise ValueError("ForcedScript needs at least one token id.")
        self.script = torch.tensor(list(script), dtype=torch.long)

    def __call__(self, logits: torch.Tensor, generated: torch.Tensor) -> torch.Tensor:
        script = self.script.to(logits.device)
        token = script[generated.to(logits.device).clamp(max=len(script) - 1)]
        forced = torch.full_like(logits, -1e4)
        return forced.scatter(-1, token[:, None], 0.0)


def apply_top_k(scores: torch.Tensor, top_k: int | None) -> torch.Tensor:
    """Keep the ``top_k`` largest logits per row, `[n, V]` -> `[n, V]`."""
    if top_k is None or top_k >= scores.shape[-1]:
        return scores
    kth = torch.topk(scores, top_k, dim=-1).values[..., -1:]
    return scores.masked_fill(scores < kth, float("-inf"))


def apply_top_p(scores: torch.Tensor, top_p: float) -> torch.Tensor:
    """Nucleus filtering: keep the smallest set of tokens with cumulative probability ≥ ``top_p``."""
    if top_p >= 1.0:
        return scores
    sorted_scores, order = torch.sort(scores, descending=True, dim=-1)
    cum = sorted_scores.softmax(dim=-1).cumsum(dim=-1)
    # Drop a token when the mass *before* it already reaches top_p (the top token always stays).
    drop_sorted = (cum - sorted_scores.softmax(dim=-1)) >= top_p
    drop = drop_sorted.scatter(-1, order, drop_sorted)
    return scores.masked_fill(drop, float("-inf"))


def sample_next(
    logits: torch.Tensor,
    *,
    do_sample: bool,
    temperature: float,
    top_p: float,
    top_k: int | None,
    bias: torch.Tensor | None,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """Choose one token per row.

    Args:
        logits: `[n, V]` next-token logits.
        bias: `[n, V]` additive per-candidate logit bias (the unsafe-token penalty), or None.

    Returns:
        `[n]` token ids.
    """
    scores = logits.float()
    if bias is not None:
        scores = scores + bias
    if not do_sample:
        return scores.argmax(dim=-1)
    scores = apply_top_p(apply_top_k(scores / temperature, top_k), top_p)
    probs = scores.softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def unsafe_token_bias(
    unsafe_tokens: torch.Tensor, unsafe_lengths: torch.Tensor, vocab_size: int, strength: float
) -> torch.Tensor:
    """The paper's "penalise the logits of unsafe tokens": a bias from token frequencies.

    Each token's frequency among the unsafe candidates' new tokens is normalised by the
    most frequent one, so the commonest offending token loses ``strength`` logits.

    Args:
        unsafe_tokens: `[m, B]` new tokens of the unsafe candidates (padding past the length).
        unsafe_lengths: `[m]` how many of each row's tokens are real.
        vocab_size: V.
        strength: λ.

    Returns:
        `[V]` non-positive bias (zeros when there is nothing to penalise).
    """
    bias = torch.zeros(vocab_size, dtype=torch.float32, device=unsafe_tokens.device)
    if unsafe_tokens.numel() == 0 or strength == 0:
        return bias
    positions = torch.arange(unsafe_tokens.shape[1], device=unsafe_tokens.device)
    real = positions[None, :] < unsafe_lengths[:, None]
    counts = torch.bincount(unsafe_tokens[real], minlength=vocab_size).float()[:vocab_size]
    if counts.max() > 0:
        bias -= strength * counts / counts.max()
    return bias
