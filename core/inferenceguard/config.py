"""`GuardConfig`: every knob of the search in one frozen, validated object.

The paper's letters map to our names once, here:

==============  =====================  ==========================================
paper           ``GuardConfig``         meaning
==============  =====================  ==========================================
N               ``n_candidates``        candidate blocks scored per step
K               ``n_beams``             beams kept after each step (paper: N/4)
B (width)       ``block_len``           tokens per block
D               ``max_new_tokens``      maximum response length
M               ``resample_rounds``     logit-penalised resampling rounds
λ               ``logit_penalty``       strength of the unsafe-token logit penalty
n               ``penalty``             gap between safe and unsafe score tiers
d               ``budget``              safety budget (default: cost threshold τ)
==============  =====================  ==========================================

Usage::

    config = GuardConfig(n_candidates=16, n_beams=4, block_len=16, max_new_tokens=128)
    cheaper = config.replace(n_candidates=8, n_beams=2)
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import ConfigError

__all__ = [
    "MAX_BUDGET",
    "REQUEST_SETTINGS",
    "GuardConfig",
    "check_init_kwargs",
    "config_reference_markdown",
    "request_overrides",
    "resolve_budget",
    "settings_error",
]

#: Above this magnitude a budget can only mean "no limit": it needs ``allow_unbounded_budget``.
MAX_BUDGET = 1e6


class GuardConfig(BaseModel):
    """Configuration of the InferenceGuard search (and of the baselines that share it)."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", validate_default=True, use_attribute_docstrings=True
    )

    strategy: Literal[
        "inferenceguard",
        "beam",
        "beam_lagrangian",
        "best_of_n",
        "best_of_n_lagrangian",
        "plain",
        "args",
    ] = "inferenceguard"
    """The search. ``inferenceguard`` (the default) is the paper's method; the others are
    the baselines the evaluation compares it with: ``beam`` (block beam search with the
    safety state, no resampling, no critic), ``beam_lagrangian`` (beam search scored by
    ``reward − λ·cost``), ``best_of_n`` (N full samples, the safety state as filter),
    ``best_of_n_lagrangian``, ``plain`` (one sample) and ``args`` (ARGS token-level
    reward-guided decoding). Every strategy's output is verified the same way."""

    n_candidates: int = Field(16, ge=1, le=4096)
    """N: candidate blocks sampled and scored per step, across all beams."""

    n_beams: int = Field(4, ge=1, le=1024)
    """K: beams kept after each step; each proposes ``n_candidates // n_beams`` blocks."""

    block_len: int = Field(16, ge=1, le=1024)
    """B: tokens per block. Cost, reward and critic are evaluated once per block."""

    max_new_tokens: int = Field(128, ge=1, le=32768)
    """D: maximum number of tokens in the response."""

    resample_rounds: int = Field(2, ge=0, le=64)
    """M: when every candidate of a step is unsafe, resample up to this many times with
    the offending tokens' logits penalised."""

    logit_penalty: float = Field(5.0, ge=0.0, le=1e4)
    """λ: per resample round, a token's logit is lowered by ``λ × (its frequency among the
    unsafe candidates' new tokens, normalised to the most frequent one)``."""

    penalty: float = Field(1.0, ge=1.0, le=1e9)
    """n: gap between the score tiers (safe / doubted by the critic / unsafe); any value
    ≥ 1 ranks every unsafe candidate below every safe one."""

    do_sample: bool = True
    """Sample candidates; ``False`` takes the greedy token (useful with ``n_candidates=1``)."""

    temperature: float = Field(1.0, gt=0.0, le=100.0)
    """Sampling temperature of the base model (ignored when ``do_sample=False``)."""

    top_p: float = Field(1.0, gt=0.0, le=1.0)
    """Nucleus sampling: keep the smallest token set with this much probability."""

    top_k: int | None = Field(None, ge=1)
    """Keep only the ``top_k`` most likely tokens before sampling (``None``: all)."""

    budget: float | None = None
    """d: safety budget. ``None`` uses the cost model's threshold τ. A budget that no cost
    can exceed (at or above 1 for a cost model scoring probabilities with a threshold
    below 1, or above 1e6 for any cost model) turns the guard off and is refused unless
    ``allow_unbounded_budget=True``."""

    allow_unbounded_budget: bool = False
    """Allow a ``budget`` that turns the guard off (every text passes); the safety report's
    ``config`` then records ``allow_unbounded_budget: true``. For measuring only."""

    safety_mode: Literal["prefix", "final"] = "prefix"
    """``"prefix"``: every emitted prefix must be within budget (needed for streaming);
    ``"final"``: only the finished response is constrained (streaming then emits nothing
    until the end)."""

    use_critic: bool = True
    """Use the critic when one is loaded; ``False`` scores with the reward model."""

    critic_threshold: float = Field(0.5, ge=0.0, le=1.0)
    """Candidates whose critic probability of ending safe is below this rank below every
    candidate the critic trusts (they remain above verified-unsafe ones)."""

    critic_ranking: Literal["reward", "value"] = "reward"
    """With a critic: rank the candidates it trusts by the reward model (``"reward"``) or by
    its own value head (``"value"``, the paper's choice). The shipped critic's value head
    predicts reward poorly (test R² 0.05), so its safety head filters and the reward model
    ranks by default."""

    critic_screening: bool = False
    """Critic-first verification (beyond the paper): each step ranks its candidates by the
    critic (predicted ``p_safe ≥ critic_threshold`` first, then by the ``critic_ranking``
    score) and the cost model verifies only the best ``n_beams``, then the next ones in
    rank order for the slots whose candidates failed, until ``n_beams`` are within budget
    or every candidate is verified. An unverified candidate is never kept, committed or
    returned, so the guarantee is unchanged; only the number of cost-model calls drops
    (``SafetyReport.cost_evaluations``). With ``critic_ranking="reward"`` the reward model
    still scores every candidate; ``"value"`` ranks by the critic alone. Needs a critic in
    use: without one loaded (or with ``use_critic=False``, or for the baselines, which use
    no critic) every candidate is verified as usual, and the first such request of a
    process without a critic logs a warning. Works in both ``safety_mode`` values."""

    adaptive: bool = False
    """Compute that adapts to risk: while every candidate is at least ``adaptive_margin``
    inside the budget, the next step samples only ``adaptive_min_candidates``."""

    adaptive_margin: float = Field(0.25, ge=0.0)
    """Safety-state margin (in cost units) above which a step counts as low-risk."""

    adaptive_min_candidates: int = Field(2, ge=1)
    """Candidates per step while the search is narrowed."""

    on_exhausted: Literal["stop", "refuse", "raise"] = "stop"
    """What to return when no safe continuation exists after the resample rounds:
    ``"stop"`` the last safe prefix (the refusal text if it is empty), ``"refuse"`` the
    refusal text instead of a partial answer, ``"raise"`` :class:`SafetyExhaustedError`.
    A stream cannot take back what it already sent: with ``"refuse"``, a streamed answer
    that was cut short keeps its verified prefix."""

    refusal_text: str = "I'm sorry, but I can't help with that."
    """Returned when nothing safe could be generated. It is verified by the cost model
    like any other text; if even it is over budget, the empty string is returned."""

    stop: tuple[str, ...] = ()
    """Stop strings: generation ends right before the first occurrence. A string is one
    stop string, ``None`` means none; an empty stop string is refused."""

    commit_horizon: int | None = Field(1, ge=0, le=1024)
    """H: once the oldest uncommitted block is more than ``H`` blocks behind the search
    front, the best-scoring live beam's next block (already verified) is committed and
    streamed, and the beams and finished answers that do not start with it are dropped.
    Bounds how long a stream waits for text; ``None`` commits only the prefix shared by
    every beam and finished answer (often nothing before the end with several beams).
    The default 1 came first in ``benchmarks/bench_streaming.py`` on time to first text
    and the largest gap, with no loss of safety, reward or exhaustion (README, Streaming)."""

    commit_first_block: bool = False
    """Commit the best beam's first verified block right away (time to first text ≈ one
    block), then follow ``commit_horizon``."""

    stream_deltas: Literal["token", "block"] = "token"
    """Granularity of streamed deltas: ``"token"`` releases committed (verified) text as
    one delta per token, never splitting a character or a held-back stop string;
    ``"block"`` sends each commit as one delta."""

    seed: int | None = None
    """Seed for reproducible sampling; ``None`` draws a fresh seed per request."""

    max_time: float | None = Field(None, gt=0.0)
    """Wall-time limit per request in seconds; the safe text so far is returned with
    ``finish_reason="timeout"``."""

    lagrange_multiplier: float = Field(5.0, ge=0.0)
    """λ of the Lagrangian baselines' score ``reward − λ·cost`` (paper: 5)."""

    args_weight: float = Field(2.5, ge=0.0)
    """ARGS: weight ω of the reward in ``logit + ω·reward`` (paper: 2.5)."""

    args_top_k: int = Field(10, ge=1)
    """ARGS: tokens scored by the reward model at each step."""

    max_batch_tokens: int = Field(2_000_000, ge=1)
    """Memory bound: ``n_candidates × (prompt tokens + max_new_tokens)`` may not exceed
    this; a larger request fails with :class:`ResourceError` before allocating."""

    @field_validator("stop", mode="before")
    @classmethod
    def _one_stop_rule(cls, value: Any) -> Any:
        # The rule of the OpenAI API and LangChain: a string is one stop string.
        if value is None:
            return ()
        if isinstance(value, str):
            return (value,)
        return value

    @field_validator("stop")
    @classmethod
    def _no_empty_stop(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(s == "" for s in value):
            raise ValueError(
                "an empty stop string would end every answer before it starts; "
                "remove it (stop=None means no stop strings)"
            )
        return value

    @model_validator(mode="before")
    @classmethod
    def _fit_default_block_len(cls, data: Any) -> Any:
        # A short max_new_tokens with the default block length should just work.
        if isinstance(data, dict) and "block_len" not in data and "max_new_tokens" in data:
            max_new = data["max_new_tokens"]
            default = cls.model_fields["block_len"].default
            if isinstance(max_new, int) and 0 < max_new < default:
                data = {**data, "block_len": max_new}
        return data

    @model_validator(mode="after")
    def _check_cross_field(self) -> GuardConfig:
        if self.n_beams > self.n_candidates:
            raise ValueError(
                f"n_beams (K={self.n_beams}) cannot exceed n_candidates (N={self.n_candidates}); "
                "set n_beams <= n_candidates (the paper uses K = N/4)"
            )
        if self.block_len > self.max_new_tokens:
            raise ValueError(
                f"block_len ({self.block_len}) cannot exceed max_new_tokens ({self.max_new_tokens}); "
                "lower block_len or raise max_new_tokens"
            )
        if self.budget is not None and not math.isfinite(self.budget):
            raise ValueError(f"budget must be a finite number, got {self.budget!r}")
        unbounded = self.budget is not None and abs(self.budget) > MAX_BUDGET
        if unbounded and not self.allow_unbounded_budget:
            raise ValueError(
                f"budget={self.budget:g} is beyond any cost and would turn the guard off; "
                "use a budget near the cost model's threshold (budget=None uses it), or "
                "set allow_unbounded_budget=True if an unguarded run is what you want"
            )
        if self.adaptive and self.adaptive_min_candidates > self.n_candidates:
            raise ValueError(
                f"adaptive_min_candidates ({self.adaptive_min_candidates}) cannot exceed "
                f"n_candidates ({self.n_candidates})"
            )
        return self

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ConfigError(_explain(exc)) from None

    @property
    def width(self) -> int:
        """Children per beam: ``n_candidates // n_beams`` (at least 1)."""
        return max(1, self.n_candidates // self.n_beams)

    def replace(self, **changes: Any) -> GuardConfig:
        """A validated copy with ``changes`` applied (unknown names are an error).

        Lowering ``max_new_tokens`` below ``block_len`` (without setting ``block_len``)
        shortens the block to fit.
        """
        data = {**self.to_dict(), **changes}
        if "max_new_tokens" in changes and "block_len" not in changes:
            data["block_len"] = min(self.block_len, data["max_new_tokens"])
        return GuardConfig(**data)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict that :meth:`from_dict` turns back into an equal config."""
        data = self.model_dump()
        data["stop"] = list(self.stop)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GuardConfig:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


#: The request settings every front end takes, in the names users know from OpenAI-style APIs.
REQUEST_SETTINGS = ("temperature", "top_p", "max_tokens", "stop", "seed", "timeout")


def request_overrides(
    *,
    temperature: float | None = None,
    top_p: float | None = None,
    max_tokens: int | None = None,
    stop: str | Sequence[str] | None = None,
    seed: int | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Map OpenAI-style request settings to :class:`GuardConfig` overrides: the one mapping.

    ``temperature=0`` or ``top_p=0`` means greedy decoding (``do_sample=False``), as in
    OpenAI-style APIs; ``max_tokens`` is ``max_new_tokens``; ``stop`` is one stop string
    when it is a string and several when it is a list; ``timeout`` is ``max_time``.
    ``None`` leaves a setting alone. Values are not validated here: :meth:`GuardConfig.replace`
    rejects a bad one with a :class:`~inferenceguard.ConfigError` naming the field.
    """
    out: dict[str, Any] = {}
    if temperature == 0 or top_p == 0:
        out["do_sample"] = False
    else:
        if temperature is not None:
            out["temperature"] = temperature
        if top_p is not None:
            out["top_p"] = top_p
    if max_tokens is not None:
        out["max_new_tokens"] = max_tokens
    if stop is not None:
        out["stop"] = [stop] if isinstance(stop, str) else list(stop)
    if seed is not None:
        out["seed"] = seed
    if timeout is not None:
        out["max_time"] = timeout
    return out


def resolve_budget(config: GuardConfig, threshold: float) -> float:
    """The budget a request runs with: ``config.budget``, or the cost model's threshold τ.

    Raises:
        ConfigError: a budget below zero while τ is not (nothing could pass), or a budget
            that turns the guard off for this cost model without ``allow_unbounded_budget``.
    """
    if config.budget is None:
        return float(threshold)
    budget = float(config.budget)
    if budget < 0 <= threshold:
        raise ConfigError(
            f"budget is {budget}, below zero while the cost model's threshold is "
            f"{threshold}: nothing could be within budget.",
            hint="use a budget between 0 and the threshold, or leave budget=None.",
        )
    # A threshold inside (0, 1) marks a probability scale: no cost exceeds 1.
    if 0 < threshold < 1 <= budget and not config.allow_unbounded_budget:
        raise ConfigError(
            f"budget={budget:g} is at or above 1, the top of this cost model's probability "
            f"scale (threshold {threshold}): no text could exceed it, so the guard would be off.",
            hint="use a budget below 1 (budget=None uses the threshold), or set "
            "allow_unbounded_budget=True if an unguarded run is what you want.",
        )
    return budget


#: Settings known under another name in :class:`GuardConfig`.
_CONFIG_NAMES = {"max_tokens": "max_new_tokens", "timeout": "max_time"}


def check_init_kwargs(
    owner: str,
    given: Iterable[str],
    known: Collection[str],
    *,
    renamed: Mapping[str, str] | None = None,
) -> None:
    """The one rule for front-end constructors: a setting is applied or refused, never dropped.

    Every name in ``given`` that is not in ``known`` (the front end's own arguments) is
    refused, with the fix: the front end's own name for it (``renamed``, e.g. LlamaIndex's
    ``max_tokens`` is ``max_new_tokens``), ``guard_config={...}`` for a
    :class:`GuardConfig` field (or a request setting such as ``timeout``, which is
    ``max_time`` there), or the closest known name for a typo.

    Raises:
        ConfigError: naming every refused argument and its fix.
    """
    renamed = renamed or {}
    problems, fixes = [], []
    for name in sorted(set(given) - set(known)):
        problems.append(name)
        field = _CONFIG_NAMES.get(name, name)
        if renamed.get(name) in known:
            fixes.append(f"pass {renamed[name]}=... instead of {name}")
        elif field in GuardConfig.model_fields:
            fixes.append(f"{name} is a GuardConfig setting: pass guard_config={{{field!r}: ...}}")
        else:
            close = difflib.get_close_matches(name, [*known, *GuardConfig.model_fields], n=1)
            fixes.append(
                f"{name} is not an argument of {owner}"
                + (f" (did you mean {close[0]!r}?)" if close else "")
            )
    if problems:
        raise ConfigError(
            f"{owner} does not take {', '.join(problems)}: an argument it ignored could be "
            "a setting (a budget, a seed) you believe is in force.",
            hint="; ".join(fixes) + ".",
        )


def settings_error(exc: ValidationError, owner: str) -> Exception:
    """The typed error for a front end's pydantic ``ValidationError`` (its constructor's).

    An error of ours raised inside a validator (a :class:`ConfigError` naming the fix, a
    ``TypeError``) comes back as it was; anything else becomes a :class:`ConfigError`
    naming each field the user set, so ``except ConfigError`` catches every bad setting.
    """
    for err in exc.errors():
        original = (err.get("ctx") or {}).get("error")
        if isinstance(original, ConfigError | TypeError):
            return original
    return ConfigError(_explain(exc, owner))


def _explain(exc: ValidationError, owner: str = "GuardConfig") -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or owner
        got = err.get("input")
        got_text = "" if isinstance(got, dict) else f" (got {got!r})"
        parts.append(f"{where}: {err['msg']}{got_text}")
    return f"Invalid {owner}: " + "; ".join(parts) + "."


def config_reference_markdown() -> str:
    """The configuration reference table (README), generated from the field docstrings."""
    rows = ["| option | default | meaning |", "|---|---|---|"]
    for name, field in GuardConfig.model_fields.items():
        default = field.default
        shown = "()" if default == () else repr(default)
        meaning = " ".join((field.description or "").split()).replace("``", "`").replace("|", "\\|")
        rows.append(f"| `{name}` | `{shown}` | {meaning} |")
    return "\n".join(rows)
