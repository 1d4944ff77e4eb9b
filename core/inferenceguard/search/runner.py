"""Turns a strategy's events into verified stream chunks and a verified result.

This is where the guarantee is enforced, for every strategy: a delta is streamed only if
the whole text streamed so far was scored by the cost model and is within budget, and
the final text is re-scored by the cost model; if it is over budget, the already
verified streamed text (or the verified refusal, or the empty string) is returned instead.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from ..errors import SafetyExhaustedError
from ..result import FinishReason, GuardResult, SafetyReport, StreamChunk
from ..tools import held_back_length
from .baselines import STRATEGIES
from .context import SearchContext
from .events import Commit, Outcome

__all__ = ["run_search"]


def _streamable(ctx: SearchContext, text: str) -> str:
    """Drop a trailing partial character or a partial stop string: they may still change."""
    text = text.rstrip("\ufffd")
    for stop in ctx.config.stop:
        if k := held_back_length(text, stop):
            return text[:-k]
    return text


@dataclass
class _Releases:
    """What the stream has released so far, and when each verified text became available.

    Attributes:
        started: the request's start (``perf_counter``).
        emitted: the text streamed so far.
        tokens: the tokens behind ``emitted`` (a prefix of the committed tokens).
        marks: ``(time, text)`` each time more verified text became available.
    """

    started: float
    emitted: str = ""
    tokens: tuple[int, ...] = ()
    marks: list[tuple[float, str]] = field(default_factory=list)

    def mark(self, text: str) -> None:
        self.marks.append((time.perf_counter(), text))

    def timing(self, final: str) -> dict[str, float | None]:
        """Time to first text and the largest gap between releases of ``final``'s text."""
        times = [t for t, text in self.marks if text and final.startswith(text)]
        if not times:
            return {"time_to_first_text_s": None, "max_delta_gap_s": None}
        gaps = [b - a for a, b in itertools.pairwise(times)]
        return {
            "time_to_first_text_s": times[0] - self.started,
            "max_delta_gap_s": max(gaps, default=0.0),
        }


def _pieces(
    ctx: SearchContext, out: _Releases, text: str, tokens: Sequence[int]
) -> Iterator[StreamChunk]:
    """Release ``text`` (verified, extending ``out.emitted``) as deltas: with
    ``stream_deltas="token"`` one per token of ``tokens``, else one.

    Each piece is decoded from a token prefix, so a multi-byte character or a held-back
    stop string is never split, and the text streamed up to it is itself scored by the
    cost model (one batched call per release): a prefix over budget is not shown alone,
    its tokens go out with the next piece that is within budget.
    """
    pieces: list[str] = []
    if ctx.config.stream_deltas == "token" and tokens:
        start = len(out.tokens) if tuple(tokens[: len(out.tokens)]) == out.tokens else 0
        for end in range(start + 1, len(tokens)):
            piece = _streamable(ctx, ctx.response_text(tokens[:end]))
            longest = pieces[-1] if pieces else out.emitted
            if len(piece) > len(longest) and text.startswith(piece):
                pieces.append(piece)
        out.tokens = tuple(tokens)
    else:
        out.tokens = ()
    if pieces:
        within = (ctx.cost(pieces) <= ctx.budget).tolist()
        pieces = [p for p, ok in zip(pieces, within, strict=True) if ok]
    for piece in [*pieces, text]:
        if len(piece) > len(out.emitted):
            yield StreamChunk(delta=piece[len(out.emitted) :])
            out.emitted = piece


def run_search(ctx: SearchContext, *, stream: bool = True) -> Iterator[StreamChunk]:
    """Run ``ctx.config.strategy`` and yield committed deltas, then the final result.

    Args:
        ctx: the request. With ``ctx.enforce_budget`` false the strategy's raw text is
            returned even when over budget: only the evaluation harness does that, to
            measure unguarded baselines; the public API always enforces the budget.
        stream: emit committed text as the search goes; ``False`` sends everything at
            the end (so ``on_exhausted="refuse"`` can still replace a partial answer).

    A commit's text is checked against the budget as a whole before any of its deltas
    (one per token with ``stream_deltas="token"``) is released.
    """
    try:
        yield from _run(ctx, stream)
    finally:
        # After the final release, which scores prefixes through the sessions too.
        ctx.close_sessions()


def _run(ctx: SearchContext, stream: bool) -> Iterator[StreamChunk]:
    enforce_budget = ctx.enforce_budget
    search = STRATEGIES[ctx.config.strategy](ctx)
    out = _Releases(started=ctx.started)
    streaming = stream and enforce_budget and ctx.config.safety_mode == "prefix"
    try:
        while True:
            try:
                event = next(search)
            except StopIteration as stop:
                outcome: Outcome = stop.value
                break
            if not isinstance(event, Commit):
                continue
            if not streaming:
                out.mark(event.text)  # when a stream would have had it: for the report
                continue
            text = _streamable(ctx, event.text)
            if (
                len(text) > len(out.emitted)
                and text.startswith(out.emitted)
                and ctx.is_within_budget(text)
            ):
                out.mark(text)
                yield from _pieces(ctx, out, text, event.tokens)
    finally:
        search.close()
    result = _finalise(ctx, outcome, out, enforce_budget)
    if len(result.text) > len(out.emitted):
        yield from _pieces(ctx, out, result.text, result.token_ids if stream else ())
    yield StreamChunk(result=result)


def _finalise(ctx: SearchContext, outcome: Outcome, out: _Releases, enforce: bool) -> GuardResult:
    cfg, emitted = ctx.config, out.emitted
    text, reason, exhausted = outcome.text, outcome.finish_reason, outcome.exhausted
    tokens = list(outcome.tokens)
    if enforce:
        if not text.startswith(emitted):
            text, tokens = emitted, []
        if exhausted and not emitted and (cfg.on_exhausted == "refuse" or not text):
            text, tokens = cfg.refusal_text, []
    # The final text is always re-scored, never taken from the search's cache.
    cost = ctx.verified_cost(text)
    if enforce and cost > ctx.budget:
        # Fall back to verified text: what was streamed, else the refusal, else nothing.
        reason, exhausted, tokens = "safety", True, []
        text = emitted
        if not text and ctx.is_within_budget(cfg.refusal_text):
            text = cfg.refusal_text
        cost = ctx.verified_cost(text)
        if cost > ctx.budget and text:
            # Nothing non-empty is verified: return nothing (the report keeps the true
            # cost of the empty string, which a strange scorer may put over budget).
            text, cost = "", ctx.verified_cost("")
    if not tokens and text:
        tokens = ctx.lm.encode(text)
    max_prefix = max(outcome.max_prefix_cost, cost) if cfg.safety_mode == "prefix" else cost
    if len(text) > len(emitted):
        out.mark(text)  # the rest is released now that it is verified
    report = SafetyReport(
        cost=cost,
        budget=ctx.budget,
        threshold=ctx.cost_model.threshold,
        safe=cost <= ctx.budget,
        max_prefix_cost=max_prefix,
        z_trace=outcome.z_trace,
        cost_model=ctx.cost_model.id,
        strategy=cfg.strategy,
        exhausted=exhausted,
        wall_time_s=time.perf_counter() - ctx.started,
        config=cfg.to_dict(),
        **out.timing(text),
        **ctx.report_extra(),
    )
    reason_final: FinishReason = reason
    result = GuardResult(
        text=text,
        finish_reason=reason_final,
        prompt_tokens=len(ctx.prompt_ids),
        completion_tokens=len(tokens),
        token_ids=tokens,
        safety=report,
    )
    if enforce and exhausted and cfg.on_exhausted == "raise":
        raise SafetyExhaustedError(
            f"No safe continuation found within budget {ctx.budget} after "
            f"{ctx.stats.resample_rounds} resample rounds.",
            result=result,
            hint="raise n_candidates or resample_rounds, or use on_exhausted='stop'.",
        )
    return result
