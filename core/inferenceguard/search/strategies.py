"""The searches: InferenceGuard and the baselines it is compared with.

Each strategy is a generator over one :class:`SearchContext`. It yields :class:`Commit`
events (text that every possible final answer starts with, at a block boundary whose
cost was verified) and returns an :class:`Outcome`. :mod:`.runner` turns that into
stream chunks and a verified :class:`~inferenceguard.GuardResult`.

InferenceGuard, one step (DESIGN.md §4):

(a) expand the live beams to ``width`` candidates each (KV cache reordered, not recomputed);
(b) sample one block for every candidate, one batched forward per token;
(c) score the candidates' responses with the cost model in one batched call and update
    the safety state; if every candidate is unsafe, roll the block back, penalise the
    offending tokens' logits and resample, at most ``resample_rounds`` times;
(d) score with the critic (value + safety probability) or the reward model;
(e) keep the top ``n_beams`` by the penalised objective; finished ones go to the pool;
(f) commit the block-aligned prefix shared by every surviving beam and pooled answer.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field

import torch

from ..processors import unsafe_token_bias
from ..result import FinishReason
from ..safety import advance_max_cost, lagrangian_scores, penalised_scores
from .context import SearchContext

__all__ = ["STRATEGIES", "Commit", "Outcome", "args_search", "block_search"]


@dataclass(frozen=True)
class Commit:
    """``text`` (the full committed response so far) will start every final answer."""

    text: str


@dataclass
class Outcome:
    """What a strategy found, before the runner's final verification."""

    tokens: list[int]
    text: str
    finish_reason: FinishReason
    exhausted: bool = False
    z_trace: list[float] = field(default_factory=list)
    max_prefix_cost: float = float("-inf")


@dataclass
class _Beam:
    tokens: list[int]
    boundaries: list[int]
    tracked_cost: float
    z_trace: list[float]
    text: str
    score: float = 0.0
    finish: FinishReason | None = None


Search = Generator[Commit, None, Outcome]


def block_search(
    ctx: SearchContext,
    *,
    block_len: int,
    n_beams: int,
    resample_rounds: int,
    use_critic: bool,
    lagrangian: bool,
) -> Search:
    """Block-wise beam search with the safety state; InferenceGuard and its baselines.

    Args:
        block_len: tokens per block (``max_new_tokens`` gives best-of-N).
        n_beams: K.
        resample_rounds: M (0 for the plain beam-search and best-of-N baselines).
        use_critic: score with the critic when one is loaded.
        lagrangian: score by ``reward − λ·cost`` and keep unsafe candidates (baseline).
    """
    cfg, lm = ctx.config, ctx.lm
    # Unguarded baselines (evaluation only) keep unsafe candidates, ranked last.
    keep_unsafe = lagrangian or not ctx.enforce
    state = lm.prefill(ctx.prompt_ids)
    ctx.stats.forwards += 1
    beams = [_Beam([], [0], float("-inf"), [], "")]
    pool: list[_Beam] = []
    n_target = cfg.n_candidates
    exhausted = False
    timed_out = False
    while beams:
        if ctx.timed_out():
            timed_out = True
            break
        used = len(beams[0].tokens)
        this_block = min(block_len, cfg.max_new_tokens - used)
        width = max(1, n_target // len(beams))
        parents = torch.arange(len(beams)).repeat_interleave(width)
        state.select(parents)
        parent_cost = torch.tensor([beams[p].tracked_cost for p in parents.tolist()])
        history = [beams[p].tokens for p in parents.tolist()]
        checkpoint = state.checkpoint()
        bias: torch.Tensor | None = None
        rounds = 0
        ctx.stats.steps += 1
        while True:  # (b)-(c): sample, verify, maybe resample
            block = lm.sample_block(
                state,
                this_block,
                sampler=ctx.sampler,
                bias=bias,
                generator=ctx.generator,
                stop=cfg.stop,
                history=history if cfg.stop else None,
            )
            ctx.stats.forwards += block.forwards
            ctx.stats.candidates_sampled += len(parents)
            lengths = block.lengths.tolist()
            cand_tokens = [
                history[i] + block.tokens[i, : lengths[i]].tolist() for i in range(len(parents))
            ]
            texts = [
                ctx.response_text(t, k) for t, k in zip(cand_tokens, block.finish_kind, strict=True)
            ]
            cost = ctx.cost(texts)
            tracked = advance_max_cost(parent_cost, cost, cfg.safety_mode)
            z = ctx.budget - tracked
            safe = z >= 0
            if lagrangian or bool(safe.any()) or rounds >= resample_rounds:
                break
            if rounds == 0:
                ctx.stats.all_unsafe_steps += 1
            rounds += 1
            ctx.stats.resample_rounds += 1
            penalty = unsafe_token_bias(
                block.tokens, block.lengths, lm.vocab_size, cfg.logit_penalty
            )
            bias = penalty if bias is None else bias + penalty
            state.rollback(checkpoint)
        if not bool(safe.any()) and not lagrangian:
            exhausted = True
            if not keep_unsafe:
                break
        # (d) task scores
        p_safe = None
        if use_critic and ctx.critic is not None:
            step_frac = torch.full((len(parents),), (used + this_block) / cfg.max_new_tokens)
            p_safe, value = ctx.critic.predict(block.hidden, z, step_frac)
            task = value if cfg.critic_ranking == "value" else ctx.reward(texts)
            ctx.stats.critic_used = True
        elif len(parents) > 1 or lagrangian:
            task = ctx.reward(texts)
        else:
            task = torch.zeros(1)  # one candidate: nothing to rank
        if lagrangian:
            scores = lagrangian_scores(task, tracked, multiplier=cfg.lagrange_multiplier)
            eligible = torch.ones_like(safe)
        else:
            scores = penalised_scores(
                task, z, p_safe=p_safe, critic_threshold=cfg.critic_threshold, penalty=cfg.penalty
            )
            # prefix mode: an unsafe candidate can never become safe again, so it is dropped.
            strict = cfg.safety_mode == "prefix" and not keep_unsafe
            eligible = safe if strict else torch.ones_like(safe)
        # (e) top-K selection; finished candidates move to the pool
        slots = min(n_beams, n_target)
        taken = 0
        kept_rows: list[int] = []
        new_beams: list[_Beam] = []
        parent_of = parents.tolist()
        for i in torch.argsort(scores, descending=True, stable=True).tolist():
            if taken >= slots:
                break
            if not eligible[i]:
                continue
            taken += 1
            parent = beams[parent_of[i]]
            total = len(cand_tokens[i])
            finish: FinishReason | None = None
            if block.finished[i]:
                finish = "stop"
            elif total >= cfg.max_new_tokens:
                finish = "length"
            beam = _Beam(
                cand_tokens[i],
                [*parent.boundaries, total],
                float(tracked[i]),
                [*parent.z_trace, float(z[i])],
                texts[i],
                float(scores[i]),
                finish,
            )
            if finish is None:
                kept_rows.append(i)
                new_beams.append(beam)
            elif keep_unsafe or bool(safe[i]):
                pool.append(beam)
        beams = new_beams
        if len(pool) >= n_beams:
            beams = []
        if beams:
            state.select(torch.tensor(kept_rows))
        if cfg.adaptive and beams and rounds == 0:
            kept_z = z[torch.tensor(kept_rows)]
            low_risk = bool((kept_z >= cfg.adaptive_margin).all())
            n_target = cfg.adaptive_min_candidates if low_risk else cfg.n_candidates
        # (f) commit what every possible answer shares
        if cfg.safety_mode == "prefix" and not keep_unsafe:
            committed = _shared_boundary(beams + pool)
            if committed > 0:
                yield Commit(ctx.response_text((beams + pool)[0].tokens[:committed], None))
    del state  # free the KV cache before final scoring
    return _outcome(
        ctx, beams, pool, exhausted=exhausted, timed_out=timed_out, lagrangian=lagrangian
    )


def _shared_boundary(beams: list[_Beam]) -> int:
    """Longest block boundary at which every beam has the same tokens."""
    if not beams:
        return 0
    common = set(beams[0].boundaries)
    for b in beams[1:]:
        common &= set(b.boundaries)
    first = beams[0].tokens
    for length in sorted(common, reverse=True):
        if all(b.tokens[:length] == first[:length] for b in beams[1:]):
            return length
    return 0


def _outcome(
    ctx: SearchContext,
    beams: list[_Beam],
    pool: list[_Beam],
    *,
    exhausted: bool,
    timed_out: bool,
    lagrangian: bool,
) -> Outcome:
    if pool and not lagrangian:
        # Safe answers first; unsafe ones are only in the pool of unguarded baselines.
        safe_pool = [b for b in pool if b.tracked_cost <= ctx.budget]
        pool = safe_pool or pool
    if pool:
        if len(pool) > 1:
            # The answer is the finished candidate with the best verified final reward.
            reward = ctx.reward([b.text for b in pool])
            if lagrangian:
                costs = torch.tensor([b.tracked_cost for b in pool])
                reward = lagrangian_scores(reward, costs, multiplier=ctx.config.lagrange_multiplier)
            best = pool[int(torch.argmax(reward))]
        else:
            best = pool[0]
        return _to_outcome(best, best.finish or "stop", exhausted=False)
    if beams:
        best = max(beams, key=lambda b: b.score)
        reason: FinishReason = "timeout" if timed_out else ("safety" if exhausted else "length")
        return _to_outcome(best, reason, exhausted=exhausted)
    return Outcome([], "", "timeout" if timed_out else "safety", exhausted=not timed_out)


def _to_outcome(beam: _Beam, reason: FinishReason, *, exhausted: bool) -> Outcome:
    return Outcome(beam.tokens, beam.text, reason, exhausted, beam.z_trace, beam.tracked_cost)


def args_search(ctx: SearchContext) -> Search:
    """ARGS (Khanov et al., 2024): at each token, ``logit + ω·reward`` over the top-k tokens.

    One forward per token for the chosen token; the reward model scores the ``args_top_k``
    extended texts in one batched call per token. Greedy in the combined score.
    """
    cfg, lm = ctx.config, ctx.lm
    state = lm.prefill(ctx.prompt_ids)
    ctx.stats.forwards += 1
    tokens: list[int] = []
    eos = set(lm.eos_token_ids)
    finish: FinishReason = "length"
    for _ in range(cfg.max_new_tokens):
        if ctx.timed_out():
            finish = "timeout"
            break
        ctx.stats.steps += 1
        logits = state.next_logits[0].float()
        top = torch.topk(logits, min(cfg.args_top_k, logits.shape[-1]))
        ids = top.indices.tolist()
        texts = [ctx.response_text([*tokens, t], None) for t in ids]
        reward = ctx.reward(texts)
        ctx.stats.candidates_sampled += len(ids)
        choice = int(torch.argmax(top.values.cpu() + cfg.args_weight * reward))
        token = ids[choice]
        if token in eos:
            finish = "stop"
            break
        tokens.append(token)
        if cfg.stop and any(s in texts[choice] for s in cfg.stop):
            finish = "stop"
            break
        logits_, hidden, state.cache = lm._forward(
            torch.tensor([[token]], device=lm.device), state.cache
        )
        ctx.stats.forwards += 1
        state.next_logits, state.hidden = logits_, hidden
        state.length += 1
    text = ctx.response_text(tokens, "stop" if finish == "stop" else None)
    cost = float(ctx.cost([text])[0])
    return Outcome(tokens, text, finish, False, [ctx.budget - cost], cost)
    yield  # pragma: no cover  (makes this a generator like the other strategies)


def _inferenceguard(ctx: SearchContext) -> Search:
    c = ctx.config
    return block_search(
        ctx,
        block_len=c.block_len,
        n_beams=c.n_beams,
        resample_rounds=c.resample_rounds,
        use_critic=c.use_critic,
        lagrangian=False,
    )


def _beam(lagrangian: bool):
    def run(ctx: SearchContext) -> Search:
        c = ctx.config
        return block_search(
            ctx,
            block_len=c.block_len,
            n_beams=c.n_beams,
            resample_rounds=0,
            use_critic=False,
            lagrangian=lagrangian,
        )

    return run


def _best_of_n(lagrangian: bool, n: int | None = None):
    def run(ctx: SearchContext) -> Search:
        c = ctx.config
        if n is not None:
            ctx.config = c = c.replace(
                n_candidates=n, n_beams=1, block_len=c.max_new_tokens, adaptive=False
            )
        return block_search(
            ctx,
            block_len=c.max_new_tokens,
            n_beams=1,
            resample_rounds=0,
            use_critic=False,
            lagrangian=lagrangian,
        )

    return run


#: Strategy name -> generator function over a SearchContext.
STRATEGIES = {
    "inferenceguard": _inferenceguard,
    "beam": _beam(lagrangian=False),
    "beam_lagrangian": _beam(lagrangian=True),
    "best_of_n": _best_of_n(lagrangian=False),
    "best_of_n_lagrangian": _best_of_n(lagrangian=True),
    "plain": _best_of_n(lagrangian=False, n=1),
    "args": args_search,
}
