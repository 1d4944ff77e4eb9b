"""InferenceGuard's block search (DESIGN.md §4) as a loop of named steps.

One step, each line a call into :mod:`.steps` or the :mod:`scoring policy <.scoring>`:

(a) expand the live beams to about ``n_candidates`` candidates (KV cache reordered, not
    recomputed);
(b) sample one block for every candidate, one batched forward per token;
(c) verify: score the candidates with the cost model in one batched call and update the
    safety state — or, with ``critic_screening``, only the critic's best ones until
    ``n_beams`` are within budget (:func:`~.steps.screen`; the rest are never kept);
    if every candidate is unsafe, roll the block back, penalise the offending tokens'
    logits and resample, at most ``resample_rounds`` times;
(d) score with the critic (value + safety probability) or the reward model;
(e) keep the top ``n_beams`` eligible candidates;
(f) finished ones move to the pool, the rest stay live (their rows reordered);
(g) commit: the best beam's next block once the committed text is more than
    ``commit_horizon`` blocks behind (:func:`~.steps.commit_horizon`), and the
    block-aligned prefix shared by every live beam and pooled answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..lm import RowState
from ..result import FinishReason
from .context import SearchContext
from .events import BlockEvent, Commit, Outcome, Search
from .scoring import ScoringPolicy
from .steps import (
    Beam,
    Candidates,
    candidate_width,
    commit_horizon,
    critic_features,
    expand,
    extend_beams,
    finished_rows,
    next_target,
    sample_verified,
    select_top_k,
    shared_prefix,
    task_scores,
)

__all__ = ["block_search"]


@dataclass
class _Progress:
    """The search's state between steps: live beams, finished answers, why it stopped."""

    beams: list[Beam] = field(default_factory=lambda: [Beam()])
    pool: list[Beam] = field(default_factory=list)
    n_target: int = 1
    exhausted: bool = False
    stopped: bool = False
    committed: int = 0

    def keep(
        self,
        cands: Candidates,
        live: torch.Tensor,
        done: torch.Tensor,
        scores: torch.Tensor,
        n_beams: int,
    ) -> None:
        """Rows ``live`` become the beams, rows ``done`` join the pool; a full pool ends it."""
        self.pool += extend_beams(self.beams, cands, done, scores, finished=True)
        self.beams = extend_beams(self.beams, cands, live, scores, finished=False)
        if len(self.pool) >= n_beams:
            self.beams = []

    def commit(self, ctx: SearchContext, state: RowState) -> Commit | None:
        """Step (g): the horizon's forced commit, then the shared prefix; ``None`` when
        the committed text did not grow. Dropped beams leave ``state`` too."""
        cfg = ctx.config
        keep, self.pool, forced = commit_horizon(
            self.beams,
            self.pool,
            self.committed,
            cfg.commit_horizon,
            first_block=cfg.commit_first_block,
        )
        if len(keep) < len(self.beams):
            self.beams = [self.beams[i] for i in keep]
            state.select(torch.tensor(keep, dtype=torch.long))
        answers = self.beams + self.pool
        committed = max(forced, shared_prefix(answers))
        if committed <= self.committed:
            return None
        self.committed = committed
        tokens = answers[0].tokens[:committed]
        return Commit(ctx.response_text(tokens), tokens=tuple(tokens))


def block_search(
    ctx: SearchContext,
    *,
    block_len: int,
    n_beams: int,
    resample_rounds: int,
    use_critic: bool,
    policy: ScoringPolicy,
) -> Search:
    """Block-wise beam search with the safety state; InferenceGuard and its baselines.

    Args:
        block_len: tokens per block (``max_new_tokens`` gives best-of-N).
        n_beams: K.
        resample_rounds: M (used only by a policy that resamples).
        use_critic: score with the critic when one is loaded (and, with
            ``critic_screening``, let it choose which candidates the cost model verifies).
        policy: :class:`~.scoring.Penalised` or :class:`~.scoring.Lagrangian`.

    Yields :class:`~.events.BlockEvent` after every verified block and
    :class:`~.events.Commit` whenever the shared prefix grows; returns the
    :class:`~.events.Outcome`.
    """
    cfg = ctx.config
    state = ctx.lm.prefill(ctx.prompt_ids)
    ctx.stats.forwards += 1
    run = _Progress(n_target=cfg.n_candidates)
    rounds = resample_rounds if policy.resamples else 0
    while run.beams:
        if ctx.should_stop():
            run.stopped = True
            break
        used = len(run.beams[0].tokens)
        this_block = min(block_len, cfg.max_new_tokens - used)
        ctx.stats.steps += 1
        parents = expand(len(run.beams), candidate_width(run.n_target, len(run.beams)))  # (a)
        state.select(parents)
        slots = min(n_beams, run.n_target)
        screen = slots if use_critic and cfg.critic_screening else None
        cands = sample_verified(
            ctx, state, run.beams, parents, this_block, rounds, screen_slots=screen
        )  # (b)-(c)
        features = critic_features(cands.block, cands.z, used + this_block, cfg.max_new_tokens)
        yield features
        if policy.exhausts(ctx, cands):
            run.exhausted = True
            if not policy.keeps_unsafe(ctx):
                break
        critic_in = features if use_critic else None
        live, done, scores = _select(ctx, policy, cands, critic_in, used, slots)  # (d)-(e)
        run.keep(cands, live, policy.admit(ctx, cands, done), scores, n_beams)  # (f)
        if run.beams:
            state.select(live)
            run.n_target = next_target(ctx, run.n_target, cands.z[live], cands.rounds)
        if policy.commits(ctx) and (commit := run.commit(ctx, state)):  # (g)
            yield commit
    del state  # free the KV cache before final scoring
    return _outcome(ctx, policy, run)


def _select(
    ctx: SearchContext,
    policy: ScoringPolicy,
    cands: Candidates,
    features: BlockEvent | None,
    used: int,
    slots: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Steps (d)-(e): score the candidates, keep the best ``slots`` eligible ones.

    Only rows the cost model scored can be kept: with screening, the others were never
    verified and are not eligible whatever the policy says.

    Returns:
        ``(live, done, scores)``: the rows that stay live `[≤slots]`, the finished rows
        `[≤slots]` and every row's selection score `[n]`.
    """
    task, p_safe = task_scores(ctx, cands, features, rank_single=policy.rank_single)
    scores, eligible = policy.score(ctx, cands, task, p_safe)
    eligible = eligible & cands.checked
    finished = finished_rows(cands, used, ctx.config.max_new_tokens)
    live, done = select_top_k(scores, eligible, finished, slots, cands.request)
    return live, done, scores


def _outcome(ctx: SearchContext, policy: ScoringPolicy, run: _Progress) -> Outcome:
    """The answer: the policy's pick among finished candidates, else the best live beam."""
    if run.pool:
        best = policy.pick(ctx, run.pool)
        return _to_outcome(best, best.finish or "stop", exhausted=False)
    if run.beams:
        best = max(run.beams, key=lambda b: b.score)
        reason: FinishReason = (
            "timeout" if run.stopped else ("safety" if run.exhausted else "length")
        )
        return _to_outcome(best, reason, exhausted=run.exhausted)
    return Outcome(
        tokens=[],
        text="",
        finish_reason="timeout" if run.stopped else "safety",
        exhausted=not run.stopped,
    )


def _to_outcome(beam: Beam, reason: FinishReason, *, exhausted: bool) -> Outcome:
    return Outcome(
        tokens=beam.tokens,
        text=beam.text,
        finish_reason=reason,
        exhausted=exhausted,
        z_trace=beam.z_trace,
        max_prefix_cost=beam.tracked_cost,
    )
