"""The steps of the block search, each a small function with a shape contract.

:func:`~inferenceguard.search.beam.block_search` is a loop of these calls; the baselines
and the critic's rollouts (:mod:`inferenceguard.training.critic.rollouts`) use the same
ones, so every strategy samples, verifies and featurises candidates identically.

Shapes: ``b`` live beams, ``n`` candidates (rows of the decode state), ``B`` block length,
``V`` vocabulary, ``H`` hidden width. Rows carry the request they belong to
(``request`` `[n]`), so nothing here assumes one prompt per batch; today every row
belongs to request 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from ..lm import Block, RowState
from ..processors import unsafe_token_bias
from ..result import FinishReason
from ..safety import advance_max_cost, is_safe, penalised_scores, safety_state
from .context import SearchContext
from .events import BlockEvent

__all__ = [
    "Beam",
    "Candidates",
    "candidate_width",
    "commit_horizon",
    "critic_features",
    "expand",
    "extend_beams",
    "finished_rows",
    "next_target",
    "penalised",
    "sample_candidates",
    "sample_verified",
    "screen",
    "screening_order",
    "select_top_k",
    "shared_prefix",
    "task_scores",
    "verify",
]


@dataclass
class Beam:
    """One partial (live) or finished (pooled) answer.

    Attributes:
        tokens: response token ids so far.
        boundaries: token counts at its block boundaries (0 first).
        tracked_cost: the cost the safety state tracks (``-inf`` before any block).
        z_trace: safety state after each block.
        text: the response text of ``tokens``.
        score: its selection score in the step that kept it.
        finish: why it ended (pooled answers), ``None`` while live.
        request: the request it answers.
    """

    tokens: list[int] = field(default_factory=list)
    boundaries: list[int] = field(default_factory=lambda: [0])
    tracked_cost: float = float("-inf")
    z_trace: list[float] = field(default_factory=list)
    text: str = ""
    score: float = 0.0
    finish: FinishReason | None = None
    request: int = 0


@dataclass
class Candidates:
    """One step's candidates: a block sampled for each, then verified by the cost model.

    Attributes:
        parents: `[n]` index of each candidate's beam.
        request: `[n]` the request each candidate belongs to.
        block: the sampled :class:`~inferenceguard.lm.Block` (`[n, B']` tokens).
        tokens: per candidate, the full response tokens (parent's + the block's).
        texts: per candidate, the response text.
        cost: `[n]` verified cost of each text (filled by :func:`verify` or :func:`screen`).
        tracked: `[n]` tracked cost after the block.
        z: `[n]` safety state after the block.
        rounds: resample rounds it took to find these candidates.
        verified: `[n]` bool, the rows the cost model scored; ``None`` when every row was.
            :func:`screen` leaves the others unscored: their cost and tracked cost are
            ``+inf`` and their z ``-inf`` (over budget), and they are never selectable.
        ranking: ``(task, p_safe)`` `[n]` each, the scores :func:`screen` already computed
            (reused for the selection instead of asking the critic and reward model again).
    """

    parents: torch.Tensor
    request: torch.Tensor
    block: Block
    tokens: list[list[int]]
    texts: list[str]
    cost: torch.Tensor = field(default_factory=lambda: torch.zeros(0))
    tracked: torch.Tensor = field(default_factory=lambda: torch.zeros(0))
    z: torch.Tensor = field(default_factory=lambda: torch.zeros(0))
    rounds: int = 0
    verified: torch.Tensor | None = None
    ranking: tuple[torch.Tensor, torch.Tensor] | None = None

    @property
    def n(self) -> int:
        """Number of candidates."""
        return len(self.texts)

    @property
    def checked(self) -> torch.Tensor:
        """`[n]` bool: the cost model scored the row (only such rows may be selected)."""
        if self.verified is None:
            return torch.ones(self.n, dtype=torch.bool)
        return self.verified

    @property
    def safe(self) -> torch.Tensor:
        """`[n]` bool: verified within budget (scored, and ``z ≥ 0``)."""
        return is_safe(self.z) & self.checked


def candidate_width(n_target: int, n_live: int) -> int:
    """Candidates per live beam so that about ``n_target`` are sampled (at least one each)."""
    return max(1, n_target // n_live)


def expand(n_beams: int, width: int | torch.Tensor) -> torch.Tensor:
    """Parent index of every candidate, `[b]` beams -> `[n]` with ``n = Σ width``.

    Args:
        n_beams: b.
        width: candidates per beam, one number or `[b]` (e.g. per request).

    Returns:
        `[n]` long, beam ``i`` repeated ``width[i]`` times, in beam order.
    """
    return torch.arange(n_beams).repeat_interleave(
        torch.as_tensor(width, dtype=torch.long).expand(n_beams)
    )


def sample_candidates(
    ctx: SearchContext,
    state: RowState,
    beams: Sequence[Beam],
    parents: torch.Tensor,
    block_len: int,
    bias: torch.Tensor | None = None,
) -> Candidates:
    """Sample one block for each of the ``n`` rows of ``state`` (already expanded to ``parents``).

    Args:
        state: `n` rows, row i continuing ``beams[parents[i]]``; advanced in place.
        block_len: tokens to sample (fewer when every row ends).
        bias: `[V]` or `[n, V]` additive logit bias (the unsafe-token penalty).

    Returns:
        Unverified :class:`Candidates` (tokens and texts, no costs yet).
    """
    cfg = ctx.config
    parent_of = parents.tolist()
    history = [beams[p].tokens for p in parent_of]
    block = ctx.lm.sample_block(
        state,
        block_len,
        sampler=ctx.sampler,
        bias=bias,
        generator=ctx.generator,
        stop=cfg.stop,
        history=history if cfg.stop else None,
    )
    ctx.stats.forwards += block.forwards
    ctx.stats.candidates_sampled += len(parent_of)
    lengths = block.lengths.tolist()
    tokens = [h + block.tokens[i, : lengths[i]].tolist() for i, h in enumerate(history)]
    request = torch.tensor([beams[p].request for p in parent_of], dtype=torch.long)
    return Candidates(parents, request, block, tokens, [ctx.response_text(t) for t in tokens])


def verify(ctx: SearchContext, cands: Candidates, parent_cost: torch.Tensor) -> Candidates:
    """Score every candidate's text with the cost model (one batched call) and fold the cost
    into the safety state.

    In prefix mode the state folds in the worst cost over every *token* prefix of the
    text when the cost model gives it (PKU score models, from the same pass), so
    ``z = budget − max over all token prefixes so far``; otherwise the text's cost, so
    ``z = budget − max over block ends``.

    Args:
        parent_cost: `[n]` tracked cost of each candidate's beam.

    Returns:
        ``cands`` with ``cost``, ``tracked`` and ``z`` `[n]` filled in.
    """
    _unverified(cands)
    _verify_rows(ctx, cands, parent_cost, torch.arange(cands.n))
    cands.verified = None  # every row
    return cands


def _unverified(cands: Candidates) -> None:
    """Mark every row as not scored yet: cost ``+inf``, z ``-inf`` (over budget)."""
    cands.cost = torch.full((cands.n,), float("inf"))
    cands.tracked = cands.cost.clone()
    cands.z = torch.full((cands.n,), float("-inf"))
    cands.verified = torch.zeros(cands.n, dtype=torch.bool)


def _verify_rows(
    ctx: SearchContext, cands: Candidates, parent_cost: torch.Tensor, rows: torch.Tensor
) -> None:
    """Score candidates ``rows`` `[m]` (one batched cost-model call) and fill in their
    ``cost``, ``tracked`` and ``z``; the one place a candidate gets a verified cost."""
    if rows.numel() == 0:
        return
    mode = ctx.config.safety_mode
    cost, worst = ctx.cost_and_worst([cands.texts[i] for i in rows.tolist()])
    tracked = advance_max_cost(parent_cost[rows], worst if mode == "prefix" else cost, mode)
    cands.cost[rows], cands.tracked[rows] = cost, tracked
    cands.z[rows] = safety_state(ctx.budget, tracked)
    assert cands.verified is not None
    cands.verified[rows] = True
    ctx.stats.cost_evaluations += rows.numel()


def screening_order(cands: Candidates, scores: torch.Tensor) -> torch.Tensor:
    """Rows `[n]` best first by ``scores`` `[n]`, grouped by request (ties keep row order)."""
    order = scores.argsort(descending=True, stable=True)
    return order[cands.request[order].argsort(stable=True)]


def screen(
    ctx: SearchContext,
    cands: Candidates,
    parent_cost: torch.Tensor,
    slots: int,
    tokens_budgeted: int,
) -> Candidates:
    """Critic-first verification: rank the candidates by the critic, then let the cost
    model score them in that order only until each request has ``slots`` within budget.

    The rank is the penalised objective (:func:`~inferenceguard.safety.penalised_scores`)
    with each candidate's safety state *before* its block (its own is not known yet):
    predicted ``p_safe ≥ critic_threshold`` first, by the task score of
    ``critic_ranking``. The top ``slots`` are verified in one call; each later round
    verifies the next ones in rank order, one per slot still empty. A request with fewer
    than ``slots`` safe candidates ends with every row verified, exactly as :func:`verify`.
    Rows left unscored stay over budget (``z = -inf``, ``checked`` false): nothing can
    select them. Finally the critic is asked again with the verified safety states, so
    selection sees the inputs it sees without screening.

    Args:
        parent_cost: `[n]` tracked cost of each candidate's beam.
        slots: beams each request keeps (K).
        tokens_budgeted: tokens before this block plus its length (the critic's step).
    """
    before = safety_state(ctx.budget, parent_cost)
    max_new = ctx.config.max_new_tokens
    task, p_safe = task_scores(
        ctx, cands, critic_features(cands.block, before, tokens_budgeted, max_new), rank_single=True
    )
    order = screening_order(cands, penalised(ctx, task, before, p_safe))
    _unverified(cands)
    n_requests = int(cands.request.max()) + 1 if cands.n else 0
    while True:
        have = torch.bincount(cands.request[cands.safe], minlength=n_requests)
        need = (slots - have).clamp_min(0)
        pending = order[~cands.checked[order]]
        grouped = cands.request[pending]
        rank = torch.arange(pending.numel()) - torch.searchsorted(grouped, grouped)
        rows = pending[rank < need[grouped]]
        if rows.numel() == 0:
            break
        _verify_rows(ctx, cands, parent_cost, rows.sort().values)
    z_known = torch.where(cands.checked, cands.z, before)
    refreshed = critic_features(cands.block, z_known, tokens_budgeted, max_new)
    p_safe, value = ctx.predict(refreshed.hidden, refreshed.z, refreshed.step_frac)
    cands.ranking = (value if ctx.config.critic_ranking == "value" else task, p_safe)
    return cands


def penalised(
    ctx: SearchContext, task: torch.Tensor, z: torch.Tensor, p_safe: torch.Tensor | None
) -> torch.Tensor:
    """The penalised objective with the guard's ``critic_threshold`` and ``penalty``."""
    cfg = ctx.config
    return penalised_scores(
        task, z, p_safe=p_safe, critic_threshold=cfg.critic_threshold, penalty=cfg.penalty
    )


def sample_verified(
    ctx: SearchContext,
    state: RowState,
    beams: Sequence[Beam],
    parents: torch.Tensor,
    block_len: int,
    resample_rounds: int,
    *,
    screen_slots: int | None = None,
) -> Candidates:
    """Sample and verify one block; while every candidate is unsafe, roll the block back,
    penalise the offending tokens' logits and resample (at most ``resample_rounds`` times).

    Args:
        state: `n` rows expanded to ``parents`` `[n]`; left after the returned block.
        screen_slots: verify critic-first (:func:`screen`) until this many per request
            are within budget; ``None`` verifies every candidate (:func:`verify`). An
            all-unsafe block is verified in full either way, so the penalty is the same.

    Returns:
        The verified :class:`Candidates`; all unsafe when the rounds ran out.
    """
    parent_cost = torch.tensor([beams[p].tracked_cost for p in parents.tolist()])
    budgeted = len(beams[0].tokens) + block_len if beams else block_len
    checkpoint = state.checkpoint()
    bias: torch.Tensor | None = None
    rounds = 0
    while True:
        cands = sample_candidates(ctx, state, beams, parents, block_len, bias)
        if screen_slots is None:
            verify(ctx, cands, parent_cost)
        else:
            screen(ctx, cands, parent_cost, screen_slots, budgeted)
        if bool(cands.safe.any()) or rounds >= resample_rounds:
            cands.rounds = rounds
            return cands
        if rounds == 0:
            ctx.stats.all_unsafe_steps += 1
        rounds += 1
        ctx.stats.resample_rounds += 1
        block = cands.block
        penalty = unsafe_token_bias(
            block.tokens, block.lengths, ctx.lm.vocab_size, ctx.config.logit_penalty
        )
        bias = penalty if bias is None else bias + penalty
        state.rollback(checkpoint)


def critic_features(
    block: Block, z: torch.Tensor, tokens_budgeted: int, max_new: int
) -> BlockEvent:
    """The critic's inputs for one block: hidden `[n, H]`, z `[n]`, step fraction `[n]`.

    Args:
        tokens_budgeted: tokens before this block plus the block's length B, for every row
            (rows that ended early included): the step fraction is ``tokens_budgeted / D``.
        max_new: D, ``max_new_tokens``.
    """
    step_frac = torch.full((z.shape[0],), tokens_budgeted / max_new)
    return BlockEvent(hidden=block.hidden, z=z, step_frac=step_frac)


def task_scores(
    ctx: SearchContext, cands: Candidates, features: BlockEvent | None, *, rank_single: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Task score `[n]` (higher is better) and the critic's ``p_safe`` `[n]` (or ``None``).

    Args:
        features: the block's critic inputs; ``None`` scores with the reward model.
        rank_single: score a lone candidate too (otherwise it gets 0: nothing to rank).
    """
    if cands.ranking is not None:  # computed while screening
        return cands.ranking
    if features is not None and ctx.critic is not None:
        p_safe, value = ctx.predict(features.hidden, features.z, features.step_frac)
        ctx.stats.critic_used = True
        task = value if ctx.config.critic_ranking == "value" else ctx.reward(cands.texts)
        return task, p_safe
    if cands.n > 1 or rank_single:
        return ctx.reward(cands.texts), None
    return torch.zeros(1), None


def finished_rows(cands: Candidates, used: int, max_new: int) -> torch.Tensor:
    """`[n]` bool: the candidate's answer is complete (ended, or reached ``max_new`` tokens).

    Args:
        used: response tokens before this block (the same for every row).
    """
    return cands.block.finished.cpu() | (used + cands.block.lengths.cpu() >= max_new)


def select_top_k(
    scores: torch.Tensor,
    eligible: torch.Tensor,
    finished: torch.Tensor,
    k: int,
    request: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The best ``k`` eligible candidates of each request, split into live and finished ones.

    Ties keep row order (a stable sort rather than ``topk``, whose order among equal scores
    is unspecified), so a seeded search is reproducible across devices.

    Args:
        scores: `[n]` higher is better.
        eligible: `[n]` bool, may be kept at all.
        finished: `[n]` bool, the answer is complete.
        k: slots per request.
        request: `[n]` long request of each row (default: all one request).

    Returns:
        ``(live, done)``: row indices `[≤k]` each (per request), best first, grouped by request.
    """
    request = torch.zeros_like(scores, dtype=torch.long) if request is None else request
    ranked = scores.masked_fill(~eligible, float("-inf"))
    order = ranked.argsort(descending=True, stable=True)
    order = order[eligible[order]]  # an eligible row scored -inf still beats ineligible ones
    order = order[request[order].argsort(stable=True)]  # group by request, best first within
    grouped = request[order]
    first = torch.searchsorted(grouped, grouped, side="left")
    top = order[torch.arange(order.numel()) - first < k]
    return top[~finished[top]], top[finished[top]]


def extend_beams(
    beams: Sequence[Beam],
    cands: Candidates,
    rows: torch.Tensor,
    scores: torch.Tensor,
    *,
    finished: bool,
) -> list[Beam]:
    """The beams that candidates ``rows`` `[m]` make: parent's history plus the new block.

    Args:
        finished: the rows are complete answers (they get a finish reason) or live beams.
    """
    out = []
    for i in rows.tolist():
        parent = beams[int(cands.parents[i])]
        total = len(cands.tokens[i])
        finish: FinishReason | None = None
        if finished:
            finish = "stop" if bool(cands.block.finished[i]) else "length"
        out.append(
            Beam(
                tokens=cands.tokens[i],
                boundaries=[*parent.boundaries, total],
                tracked_cost=float(cands.tracked[i]),
                z_trace=[*parent.z_trace, float(cands.z[i])],
                text=cands.texts[i],
                score=float(scores[i]),
                finish=finish,
                request=parent.request,
            )
        )
    return out


def next_target(ctx: SearchContext, current: int, z_live: torch.Tensor, rounds: int) -> int:
    """Candidates to sample next step (adaptive narrowing): ``adaptive_min_candidates``
    while every live beam is at least ``adaptive_margin`` inside the budget.

    Args:
        current: the number sampled this step; kept when the step tells nothing new.
        z_live: `[b]` safety state of the beams kept.
        rounds: resample rounds this step needed (a step that resampled keeps ``current``).
    """
    cfg = ctx.config
    if not cfg.adaptive or z_live.numel() == 0 or rounds > 0:
        return current
    low_risk = bool((z_live >= cfg.adaptive_margin).all())
    return cfg.adaptive_min_candidates if low_risk else cfg.n_candidates


def shared_prefix(beams: Sequence[Beam]) -> int:
    """Longest block boundary at which every beam has the same tokens (0 when none)."""
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


def commit_horizon(
    beams: Sequence[Beam],
    pool: Sequence[Beam],
    committed: int,
    horizon: int | None,
    *,
    first_block: bool = False,
) -> tuple[list[int], list[Beam], int]:
    """Force commits so the committed text is at most ``horizon`` blocks behind the front.

    While the live beams are more than ``horizon`` blocks past the committed prefix, the
    best-scoring live beam's next block is committed and every live beam and pooled
    answer that does not start with it is dropped. Only blocks that were verified (and
    kept, so within budget) are ever committed; nothing committed is taken back.

    Args:
        beams: the live beams, all with the same number of blocks (the search front).
        pool: the finished answers.
        committed: tokens already committed, a block boundary of every beam and answer.
        horizon: H; ``None`` forces nothing.
        first_block: commit the first block at once (``H = 0`` until something is committed).

    Returns:
        ``(keep, pool, committed)``: indices `[≤b]` of the live beams kept (in order), the
        pooled answers kept, and the tokens now committed.
    """
    keep, kept_pool = list(range(len(beams))), list(pool)
    while keep:
        limit = 0 if first_block and committed == 0 else horizon
        front = beams[keep[0]].boundaries
        if limit is None or committed not in front:
            break
        if len(front) - 1 - front.index(committed) <= limit:
            break
        best = beams[max(keep, key=lambda i: beams[i].score)]  # first of equals: best-ranked
        nxt = best.boundaries[best.boundaries.index(committed) + 1]
        head = best.tokens[:nxt]

        def starts_with_head(b: Beam, nxt: int = nxt, head: list[int] = head) -> bool:
            return nxt in b.boundaries and b.tokens[:nxt] == head

        keep = [i for i in keep if starts_with_head(beams[i])]
        kept_pool = [b for b in kept_pool if starts_with_head(b)]
        committed = nxt
    return keep, kept_pool, committed
