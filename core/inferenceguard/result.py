"""What a request returns: `GuardResult`, its `SafetyReport`, and stream chunks."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["FinishReason", "GuardResult", "SafetyReport", "StreamChunk"]

FinishReason = Literal["stop", "length", "safety", "timeout"]


class SafetyReport(BaseModel):
    """How the answer was made safe, and the proof: its verified cost.

    ``safe`` is ``cost <= budget``; the library never returns text for which it is False.
    """

    model_config = ConfigDict(frozen=True)

    cost: float
    """Verified cost of the returned text, re-scored by the cost model at the end."""
    budget: float
    """The budget d the text was held to."""
    threshold: float
    """The cost model's threshold τ."""
    safe: bool
    """``cost <= budget`` (always True for returned text)."""
    max_prefix_cost: float
    """Largest cost of any committed prefix (prefix mode), the paper's "maximum cumulative cost"."""
    z_trace: list[float] = Field(default_factory=list)
    """Safety state z after each block of the returned response."""
    cost_model: str = ""
    """Id of the cost model."""
    strategy: str = "inferenceguard"
    """Which search produced the text (``inferenceguard``, ``best_of_n``, ``plain`` …)."""
    steps: int = 0
    """Search steps (blocks) run."""
    candidates_sampled: int = 0
    """Candidate blocks sampled in total, resamples included."""
    cost_evaluations: int = 0
    """Candidates whose text the search had the cost model verify, resamples included:
    ``candidates_sampled`` without ``critic_screening``, fewer with it (the critic picks
    which ones are worth verifying; the rest are never kept). Streaming checks and the
    final re-score are not counted here (``cost_model_tokens`` counts all of it)."""
    resample_rounds: int = 0
    """Logit-penalised resample rounds run in total."""
    all_unsafe_steps: int = 0
    """Steps in which every candidate was unsafe before resampling."""
    critic_used: bool = False
    """Whether a critic scored the candidates."""
    cost_model_tokens: int | None = None
    """Tokens the cost model's network read for this request (padding excluded): the
    search's verification, streaming checks and the final re-score. A prefix-reusing cost
    model counts only the tokens it actually ran (new tokens on top of its KV cache);
    ``None`` when the cost model reports no tokens (e.g. a plain Python function)."""
    exhausted: bool = False
    """The search found no safe continuation and stopped early (``finish_reason="safety"``)."""
    wall_time_s: float = 0.0
    """Seconds spent on the request."""
    time_to_first_text_s: float | None = None
    """Seconds from the request's start until its first verified text could be streamed
    (for :meth:`~inferenceguard.InferenceGuard.generate`, when a stream would have had it);
    ``None`` for an empty answer."""
    max_delta_gap_s: float | None = None
    """Largest wait in seconds between two releases of verified text, after the first
    (0.0 when the text came at once); ``None`` for an empty answer."""
    config: dict[str, Any] = Field(default_factory=dict)
    """The :class:`GuardConfig` used, as a dict."""


class GuardResult(BaseModel):
    """The answer to one request."""

    model_config = ConfigDict(frozen=True)

    text: str
    """The verified-safe response text."""
    finish_reason: FinishReason
    """``stop`` (EOS or stop string), ``length`` (max tokens), ``safety`` (no safe
    continuation), ``timeout`` (``max_time`` reached)."""
    prompt_tokens: int
    """Tokens in the rendered prompt."""
    completion_tokens: int
    """Tokens in the returned response."""
    token_ids: list[int] = Field(default_factory=list)
    """The response's token ids."""
    safety: SafetyReport
    """How the answer was made safe."""

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens


class StreamChunk(BaseModel):
    """One item of :meth:`InferenceGuard.stream`: committed text, then the final result.

    Every ``delta`` extends text that the cost model has verified within budget; the last
    chunk has ``delta == ""`` and carries ``result``. With tools (and ``tool_choice`` other
    than ``"none"``) the deltas are content only, never tool-call markup: the calls come on
    the last chunk, in ``tool_calls`` and ``invalid_tool_calls``, while ``result.text``
    keeps the raw answer.
    """

    model_config = ConfigDict(frozen=True)

    delta: str = ""
    """New committed text (may be empty)."""
    result: GuardResult | None = None
    """Set on the final chunk only."""
    tool_calls: list[dict[str, Any]] = Field(default_factory=list)
    """Final chunk, with tools: the well-formed calls, ``{"id", "name", "arguments": dict}``."""
    invalid_tool_calls: list[dict[str, Any]] = Field(default_factory=list)
    """Final chunk, with tools: malformed or cut-off calls, ``{"id", "name", "arguments"
    (raw text), "error"}``."""
