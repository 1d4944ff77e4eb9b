"""Every strategy by name: InferenceGuard and the baselines it is compared with.

Each is a named generator function over one :class:`~.context.SearchContext`, built from
the same steps (:mod:`.steps`) as InferenceGuard, so a change to a step changes every
strategy alike. None of them changes the request's configuration: a strategy that needs
other settings (``plain``) declares them in :func:`strategy_config`, which the guard
applies before the request starts.
"""

from __future__ import annotations

import logging

import torch

from ..config import GuardConfig
from ..result import FinishReason
from .beam import block_search
from .context import SearchContext
from .events import Outcome, Search
from .scoring import Lagrangian, Penalised

logger = logging.getLogger(__name__)

_warned_no_critic = False

__all__ = [
    "STRATEGIES",
    "args_search",
    "beam",
    "beam_lagrangian",
    "best_of_n",
    "best_of_n_lagrangian",
    "inferenceguard",
    "plain",
    "strategy_config",
]


def inferenceguard(ctx: SearchContext) -> Search:
    """The paper's method: blocks, K beams, penalise-and-resample, the critic when loaded."""
    c = ctx.config
    if c.critic_screening and ctx.critic is None:
        _warn_no_critic()
    return block_search(
        ctx,
        block_len=c.block_len,
        n_beams=c.n_beams,
        resample_rounds=c.resample_rounds,
        use_critic=ctx.use_critic,
        policy=Penalised(),
    )


def _warn_no_critic() -> None:
    """Screening without a critic verifies every candidate: say so, once per process."""
    global _warned_no_critic
    if not _warned_no_critic:
        _warned_no_critic = True
        logger.warning(
            "critic_screening=True has no effect without a critic: every candidate is "
            "verified by the cost model. Load one (critic=...) or set critic_screening=False."
        )


def beam(ctx: SearchContext) -> Search:
    """Block-wise beam search ranked by the penalised reward: no resampling, no critic."""
    return _plain_blocks(ctx, Penalised())


def beam_lagrangian(ctx: SearchContext) -> Search:
    """Block-wise beam search ranked by ``reward − λ·cost``, unsafe candidates kept."""
    return _plain_blocks(ctx, Lagrangian())


def best_of_n(ctx: SearchContext) -> Search:
    """``n_candidates`` whole responses; the best safe one by reward."""
    return _whole_responses(ctx, Penalised())


def best_of_n_lagrangian(ctx: SearchContext) -> Search:
    """``n_candidates`` whole responses; the best by ``reward − λ·cost``."""
    return _whole_responses(ctx, Lagrangian())


def plain(ctx: SearchContext) -> Search:
    """One sampled response, verified at the end (settings from :func:`strategy_config`)."""
    return _whole_responses(ctx, Penalised())


def _plain_blocks(ctx: SearchContext, policy: Penalised | Lagrangian) -> Search:
    """The configured blocks and beams without the paper's additions (resampling, critic)."""
    c = ctx.config
    return block_search(
        ctx,
        block_len=c.block_len,
        n_beams=c.n_beams,
        resample_rounds=0,
        use_critic=False,
        policy=policy,
    )


def _whole_responses(ctx: SearchContext, policy: Penalised | Lagrangian) -> Search:
    """One block of ``max_new_tokens``: best-of-N (and plain decoding with N = 1)."""
    return block_search(
        ctx,
        block_len=ctx.config.max_new_tokens,
        n_beams=1,
        resample_rounds=0,
        use_critic=False,
        policy=policy,
    )


def args_search(ctx: SearchContext) -> Search:
    """ARGS (Khanov et al., 2024): at each token, ``logit + ω·reward`` over the top-k tokens.

    One forward per token for the chosen token (:meth:`LocalLM.step`); the reward model
    scores the ``args_top_k`` extended texts in one batched call per token. Greedy in the
    combined score. It commits nothing while it runs: the answer comes at the end.
    """
    yield from ()  # a strategy is a generator; ARGS has no events before its outcome
    cfg, lm = ctx.config, ctx.lm
    state = lm.prefill(ctx.prompt_ids)
    ctx.stats.forwards += 1
    tokens: list[int] = []
    finish: FinishReason = "length"
    for _ in range(cfg.max_new_tokens):
        if ctx.should_stop():
            finish = "timeout"
            break
        ctx.stats.steps += 1
        token, text = _args_choice(ctx, state.next_logits[0], tokens)
        if token in lm.eos_token_ids:
            finish = "stop"
            break
        tokens.append(token)
        if cfg.stop and any(s in text for s in cfg.stop):
            finish = "stop"
            break
        lm.step(state, torch.tensor([token]))
        ctx.stats.forwards += 1
    text = ctx.response_text(tokens)
    cost = float(ctx.cost([text])[0])
    ctx.stats.cost_evaluations += 1  # its one candidate, the answer
    return Outcome(
        tokens=tokens,
        text=text,
        finish_reason=finish,
        z_trace=[ctx.budget - cost],
        max_prefix_cost=cost,
    )


def _args_choice(ctx: SearchContext, logits: torch.Tensor, tokens: list[int]) -> tuple[int, str]:
    """ARGS' next token `[V]` logits -> (token, response text with it)."""
    cfg = ctx.config
    top = torch.topk(logits.float(), min(cfg.args_top_k, logits.shape[-1]))
    ids = top.indices.tolist()
    texts = [ctx.response_text([*tokens, t]) for t in ids]
    reward = ctx.reward(texts)
    ctx.stats.candidates_sampled += len(ids)
    choice = int(torch.argmax(top.values.cpu() + cfg.args_weight * reward))
    return ids[choice], texts[choice]


def strategy_config(config: GuardConfig) -> GuardConfig:
    """The settings ``config.strategy`` runs with (and reports): ``plain`` is one whole
    response, so one candidate, one beam, one block, no adaptive narrowing."""
    if config.strategy == "plain":
        return config.replace(
            n_candidates=1, n_beams=1, block_len=config.max_new_tokens, adaptive=False
        )
    return config


#: Strategy name -> generator function over a SearchContext.
STRATEGIES = {
    "inferenceguard": inferenceguard,
    "beam": beam,
    "beam_lagrangian": beam_lagrangian,
    "best_of_n": best_of_n,
    "best_of_n_lagrangian": best_of_n_lagrangian,
    "plain": plain,
    "args": args_search,
}
