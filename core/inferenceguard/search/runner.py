"""Turns a strategy's events into verified stream chunks and a verified result.

This is where the guarantee is enforced, for every strategy: a delta is streamed only if
the whole text streamed so far was scored by the cost model and is within budget, and
the final text is re-scored by the cost model; if it is over budget, the already
verified streamed text (or the verified refusal, or the empty string) is returned instead.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

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


def run_search(ctx: SearchContext, *, stream: bool = True) -> Iterator[StreamChunk]:
    """Run ``ctx.config.strategy`` and yield committed deltas, then the final result.

    Args:
        ctx: the request. With ``ctx.enforce_budget`` false the strategy's raw text is
            returned even when over budget: only the evaluation harness does that, to
            measure unguarded baselines; the public API always enforces the budget.
        stream: emit committed text as the search goes; ``False`` sends everything at
            the end (so ``on_exhausted="refuse"`` can still replace a partial answer).
    """
    enforce_budget = ctx.enforce_budget
    search = STRATEGIES[ctx.config.strategy](ctx)
    emitted = ""
    streaming = stream and enforce_budget and ctx.config.safety_mode == "prefix"
    try:
        while True:
            try:
                event = next(search)
            except StopIteration as stop:
                outcome: Outcome = stop.value
                break
            if streaming and isinstance(event, Commit):
                text = _streamable(ctx, event.text)
                if (
                    len(text) > len(emitted)
                    and text.startswith(emitted)
                    and ctx.is_within_budget(text)
                ):
                    yield StreamChunk(delta=text[len(emitted) :])
                    emitted = text
    finally:
        search.close()
    result = _finalise(ctx, outcome, emitted, enforce_budget)
    if len(result.text) > len(emitted):
        yield StreamChunk(delta=result.text[len(emitted) :])
    yield StreamChunk(result=result)


def _finalise(ctx: SearchContext, outcome: Outcome, emitted: str, enforce: bool) -> GuardResult:
    cfg = ctx.config
    text, reason, exhausted = outcome.text, outcome.finish_reason, outcome.exhausted
    tokens = list(outcome.tokens)
    if enforce:
        if not text.startswith(emitted):
            text, tokens = emitted, []
        if exhausted and not emitted and (cfg.on_exhausted == "refuse" or not text):
            text, tokens = cfg.refusal_text, []
    # The final text is always re-scored, never taken from the search's cache.
    cost = float(ctx.scores(ctx.cost_model, [text])[0])
    if enforce and cost > ctx.budget:
        # Fall back to verified text: what was streamed, else the refusal, else nothing.
        reason, exhausted, tokens = "safety", True, []
        text = emitted
        if not text and ctx.is_within_budget(cfg.refusal_text):
            text = cfg.refusal_text
        cost = float(ctx.scores(ctx.cost_model, [text])[0])
        if cost > ctx.budget and text:
            # Nothing non-empty is verified: return nothing (the report keeps the true
            # cost of the empty string, which a strange scorer may put over budget).
            text, cost = "", float(ctx.scores(ctx.cost_model, [""])[0])
    if not tokens and text:
        tokens = ctx.lm.encode(text)
    max_prefix = max(outcome.max_prefix_cost, cost) if cfg.safety_mode == "prefix" else cost
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
