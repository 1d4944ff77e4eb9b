"""Reports of an evaluation run: a markdown table, a JSON summary, and plots.

Files written by :func:`write_report` (each one atomically: a crash never leaves half a
file):

* ``summary.json`` — the run's settings and every :class:`~.metrics.GroupSummary`,
  plus quantiles of the max prefix cost per strategy.
* ``report.md`` — tables per prompt kind (harmful first) and per prompt set, the max
  prefix cost distribution, and what the numbers mean.
* ``plots/reward_vs_safety.png`` — mean reward against safety rate per strategy (with the
  95% interval), one panel per prompt kind.
* ``plots/max_prefix_cost.png`` — distribution of the max prefix cost per strategy with
  the budget marked, like the paper's Figure 3.

The plots need ``matplotlib``, imported only here; without it they are skipped and the
report says so.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .._io import atomic_write_bytes, atomic_write_text
from .metrics import GroupSummary, prefix_cost, quantiles

__all__ = [
    "CAVEATS",
    "display_groups",
    "markdown_table",
    "plot_max_prefix_cost",
    "plot_reward_vs_safety",
    "render_markdown",
    "write_report",
]

#: What the numbers mean and what they do not; printed in every report.
CAVEATS = """\
- **Safe** means: the response's cost, as scored by the run's cost model, is within the
  budget. Nothing more. A cost model misses harms it was not trained on and flags harmless
  text; "100% safe" here is a statement about that model, not about the world.
- Baselines (`plain`, `best_of_n`, `beam`, `args`, ...) are measured on their **raw**
  output (`generate_unverified`): the library's enforcement would otherwise replace their
  unsafe answers with verified-safe text. InferenceGuard strategies are measured as users
  get them (`generate`): their verified safety is by construction, so their rows show what
  that guarantee costs in reward, refusals and time.
- **Exhausted**: the search ran out of safe continuations; a guarded strategy then
  returns the last safe prefix or the refusal text (counted in **Refusal**). Raw baselines
  keep unsafe candidates instead, so their unsafe answers are measured as given.
- **Safety 95% CI** is the exact (Clopper–Pearson) interval; **unsafe ≤** is the one-sided
  95% upper bound on the unsafe rate. With a few dozen prompts per set the intervals are
  wide: read them before reading differences between rows.
- **Prefix-safe** re-scores each response's prefixes every `prefix_stride` tokens (the same
  for every strategy): what a user watching the stream would have seen.
- **Reward** is the run's reward model (by default the prompt–response relevance of
  MiniLM embeddings), not human preference. **Refusal** is a pattern detector
  (`inferenceguard.evaluation.is_refusal`), empty responses included; on benign prompts
  it measures over-refusal.
- **s/resp** is wall time per response at batch size 1 on this run's device; **× plain**
  divides by plain decoding's time on the same prompts in the same run.
"""


def _clean(obj: Any) -> Any:
    """JSON-safe copy: NaN and infinities become ``None``."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Mapping):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


def _pct(x: float | None, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{100 * x:.{digits}f}%"


def _num(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:.{digits}f}"


def markdown_table(summaries: Sequence[GroupSummary]) -> str:
    """One markdown table row per summary (use summaries of one group).

    Columns: strategy, method, n, safety rate with its 95% CI, unsafe-rate upper bound,
    prefix-safety rate, reward mean ± std, mean cost, mean max prefix cost, refusal rate,
    exhausted rate (the search ran out of safe continuations), seconds and tokens per
    response, seconds to the first verified text and largest gap between verified deltas
    (means), time ratio to plain.
    """
    head = (
        "| Strategy | Method | n | Safe [95% CI] | Unsafe ≤ | Prefix-safe | Reward | Cost "
        "| Max prefix cost | Refusal | Exhausted | s/resp | tok/resp | first text s "
        "| max gap s | × plain |\n"
        "|---|---|---:|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    rows = []
    for s in summaries:
        method = {"generate": "guarded", "generate_unverified": "raw"}.get(s.method, s.method)
        ratio = "–" if s.time_ratio_to_plain is None else f"{s.time_ratio_to_plain:.1f}×"
        errors = f" ({s.errors} err)" if s.errors else ""
        rows.append(
            f"| `{s.strategy}` | {method} | {s.n}{errors} | {_pct(s.safety_rate)} "
            f"[{_pct(s.safety_ci_low)}, {_pct(s.safety_ci_high)}] | {_pct(s.unsafe_rate_upper)} "
            f"| {_pct(s.prefix_safety_rate)} | {_num(s.reward_mean)} ± {_num(s.reward_std)} "
            f"| {_num(s.cost_mean)} | {_num(s.max_prefix_cost_mean)} | {_pct(s.refusal_rate)} "
            f"| {_pct(s.exhausted_rate)} "
            f"| {_num(s.seconds_mean, 2)} | {_num(s.tokens_mean, 1)} "
            f"| {_num(s.first_text_s_mean, 2)} | {_num(s.max_gap_s_mean, 2)} | {ratio} |"
        )
    return head + "\n".join(rows) + "\n"


def _group_title(group: str, meta: Mapping[str, Any]) -> str:
    sets = {p["name"]: p for p in meta.get("prompt_sets", [])}
    if group == "all":
        return "All prompts"
    kind, _, name = group.partition(":")
    if kind == "kind":
        members = [p["name"] for p in sets.values() if p.get("kind") == name]
        return f"{name.capitalize()} prompts ({', '.join(members)})"
    info = sets.get(name, {})
    details = ", ".join(str(x) for x in (info.get("kind"), info.get("source")) if x)
    return f"Prompt set `{name}`" + (f" ({details})" if details else "")


def _ordered_groups(summaries: Sequence[GroupSummary]) -> list[str]:
    groups = list(dict.fromkeys(s.group for s in summaries))

    def rank(g: str) -> tuple[int, int]:
        if g == "kind:harmful":
            return 0, 0
        if g == "kind:benign":
            return 1, 0
        if g.startswith("kind:"):
            return 2, 0
        if g == "all":
            return 3, 0
        return 4, groups.index(g)

    return sorted(groups, key=rank)


def display_groups(summaries: Sequence[GroupSummary], meta: Mapping[str, Any]) -> list[str]:
    """Groups worth a table: kinds, then ``all`` if several kinds, then sets that are not
    the only member of their kind (a lone set's table would repeat its kind's)."""
    groups = _ordered_groups(summaries)
    kinds = [g for g in groups if g.startswith("kind:")]
    sets = [g for g in groups if g.startswith("set:")]
    if not kinds:  # one prompt set: its own table says it all
        return sets or ["all"]
    kind_of = {p["name"]: p.get("kind", "unknown") for p in meta.get("prompt_sets", [])}
    members: dict[str, int] = {}
    for g in sets:
        k = kind_of.get(g[4:], "unknown")
        members[k] = members.get(k, 0) + 1
    shown = list(kinds)
    if len(kinds) > 1:
        shown.append("all")
    shown += [g for g in sets if members.get(kind_of.get(g[4:], "unknown"), 0) > 1]
    return shown


def prefix_cost_quantiles(records: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per strategy: min/quartiles/max of the max prefix cost and the share over budget."""
    out: dict[str, dict[str, Any]] = {}
    for strategy in dict.fromkeys(r["strategy"] for r in records):
        rows = [r for r in records if r["strategy"] == strategy and not r.get("error")]
        values = [prefix_cost(r) for r in rows]
        over = sum(prefix_cost(r) > float(r["budget"]) for r in rows)
        q = quantiles(values)
        out[strategy] = {
            "n": len(values),
            "min": q[0],
            "p25": q[1],
            "median": q[2],
            "p75": q[3],
            "max": q[4],
            "over_budget": over / len(values) if values else math.nan,
        }
    return out


#: Config fields that matter for each strategy, with the paper's letters.
_SAMPLER = (("temperature", "T"), ("top_p", "top_p"))
_RELEVANT: dict[str, tuple[tuple[str, str], ...]] = {
    "plain": _SAMPLER,
    "best_of_n": (("n_candidates", "N"), *_SAMPLER),
    "best_of_n_lagrangian": (("n_candidates", "N"), ("lagrange_multiplier", "λ"), *_SAMPLER),
    "beam": (("n_candidates", "N"), ("n_beams", "K"), ("block_len", "B"), *_SAMPLER),
    "beam_lagrangian": (
        ("n_candidates", "N"),
        ("n_beams", "K"),
        ("block_len", "B"),
        ("lagrange_multiplier", "λ"),
        *_SAMPLER,
    ),
    "inferenceguard": (
        ("n_candidates", "N"),
        ("n_beams", "K"),
        ("block_len", "B"),
        ("resample_rounds", "M"),
        ("logit_penalty", "logit_penalty"),
        ("use_critic", "critic"),
        ("adaptive", "adaptive"),
        *_SAMPLER,
    ),
    "args": (("args_weight", "ω"), ("args_top_k", "top_k"), *_SAMPLER),
}


def _settings(meta: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> str:
    budgets = sorted({float(r["budget"]) for r in records if r.get("budget") is not None})
    sets = ", ".join(
        f"`{p.get('name')}` ({p.get('kind', '?')}, {p.get('n', '?')})"
        for p in meta.get("prompt_sets", [])
    )
    common = meta.get("common", {})
    base = meta.get("base_config", {})
    lines = [
        f"- LM: `{meta.get('lm')}` on `{meta.get('device')}`"
        f" ({meta.get('world_size', 1)} process(es))",
        f"- Cost model: `{meta.get('cost_model')}` (threshold τ = {meta.get('cost_threshold')};"
        f" budget d = {', '.join(f'{b:g}' for b in budgets) or '–'})",
        f"- Reward model: `{meta.get('reward_model')}`; critic: `{meta.get('critic')}`",
        f"- Prompt sets: {sets}",
        f"- max_new_tokens = {common.get('max_new_tokens', base.get('max_new_tokens'))}, "
        f"seed = {meta.get('seed')}, prefix stride = {meta.get('prefix_stride')} tokens",
    ]
    for s in meta.get("strategies", []):
        c = s.get("config", {})
        shown = ", ".join(
            f"{symbol}={c.get(key)}"
            for key, symbol in _RELEVANT.get(c.get("strategy", ""), ())
            if key in c
        )
        mode = "guarded" if s["method"] == "generate" else "raw"
        lines.append(f"- `{s['label']}` ({mode}): {shown}")
    return "\n".join(lines) + "\n"


def render_markdown(
    records: Sequence[Mapping[str, Any]],
    summaries: Sequence[GroupSummary],
    meta: Mapping[str, Any],
    *,
    title: str = "InferenceGuard evaluation",
    plot_files: Mapping[str, str] | None = None,
    plot_note: str | None = None,
    caveats: bool = True,
    skip_groups: Sequence[str] = (),
) -> str:
    """The markdown report: settings, caveats, tables per group, prefix-cost quantiles.

    Args:
        records: the run's records.
        summaries: their :func:`.metrics.summarize`.
        meta: the run's settings (``run.json``).
        title: the top heading.
        plot_files: caption -> relative path of each plot to embed.
        plot_note: a line to print instead (e.g. why plots were skipped).
        caveats: include :data:`CAVEATS` ("What the numbers mean").
        skip_groups: groups whose table is shown elsewhere (``"kind:harmful"`` ...).
    """
    parts = [f"# {title}\n", "## Settings\n", _settings(meta, records)]
    if caveats:
        parts += ["## What the numbers mean\n", CAVEATS]
    for group in (g for g in display_groups(summaries, meta) if g not in skip_groups):
        rows = [s for s in summaries if s.group == group]
        parts.append(f"## {_group_title(group, meta)}\n")
        parts.append(markdown_table(rows))
    parts.append("## Max prefix cost per strategy (all prompts)\n")
    table = (
        "| Strategy | n | min | p25 | median | p75 | max | over budget |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    for strategy, q in prefix_cost_quantiles(records).items():
        table += (
            f"| `{strategy}` | {q['n']} | {_num(q['min'])} | {_num(q['p25'])} | "
            f"{_num(q['median'])} | {_num(q['p75'])} | {_num(q['max'])} | "
            f"{_pct(q['over_budget'])} |\n"
        )
    parts.append(table)
    if plot_files:
        parts.append("\n## Plots\n")
        for caption, rel in plot_files.items():
            parts.append(f"![{caption}]({rel})\n")
    if plot_note:
        parts.append(f"\n_{plot_note}_\n")
    return "\n".join(parts)


# --------------------------------------------------------------------------- plots


def _matplotlib() -> Any:
    """``matplotlib.pyplot`` with the file-only Agg backend, or ``None`` if not installed."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=130, bbox_inches="tight")
    atomic_write_bytes(path, buffer.getvalue())


def plot_reward_vs_safety(summaries: Sequence[GroupSummary], path: Path) -> bool:
    """Mean reward against safety rate per strategy, one panel per prompt kind.

    Returns:
        False when matplotlib is not installed (nothing written).
    """
    plt = _matplotlib()
    if plt is None:
        return False
    groups = [g for g in _ordered_groups(summaries) if g.startswith("kind:")] or ["all"]
    strategies = list(dict.fromkeys(s.strategy for s in summaries))
    markers = "osD^v<>pP*Xh"
    cmap = plt.get_cmap("tab10")
    style = {name: (cmap(i % 10), markers[i % len(markers)]) for i, name in enumerate(strategies)}
    fig, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups) + 2.5, 4.2), squeeze=False)
    for ax, group in zip(axes[0], groups, strict=True):
        for s in (s for s in summaries if s.group == group):
            color, marker = style[s.strategy]
            xerr = [[s.safety_rate - s.safety_ci_low], [s.safety_ci_high - s.safety_rate]]
            ax.errorbar(
                s.safety_rate,
                s.reward_mean,
                xerr=xerr,
                fmt=marker,
                color=color,
                capsize=3,
                alpha=0.85,
                label=s.strategy,
            )
        ax.set_xlabel("safety rate (95% CI)")
        ax.set_ylabel("mean reward")
        ax.set_xlim(-0.05, 1.05)
        ax.set_title(group.replace("kind:", "") + " prompts" if group != "all" else "all prompts")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8)
    _save(fig, path)
    plt.close(fig)
    return True


def plot_max_prefix_cost(records: Sequence[Mapping[str, Any]], path: Path) -> bool:
    """Distribution of each response's max prefix cost per strategy, budget marked.

    Returns:
        False when matplotlib is not installed (nothing written).
    """
    plt = _matplotlib()
    if plt is None:
        return False
    strategies = list(dict.fromkeys(r["strategy"] for r in records))[::-1]  # first on top
    data = [
        [prefix_cost(r) for r in records if r["strategy"] == s and not r.get("error")]
        for s in strategies
    ]
    budgets = sorted({float(r["budget"]) for r in records if r.get("budget") is not None})
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(strategies) + 1.5))
    try:
        ax.boxplot(data, orientation="horizontal", showfliers=False)
    except TypeError:  # matplotlib < 3.10
        ax.boxplot(data, vert=False, showfliers=False)
    cmap = plt.get_cmap("tab10")  # same colour per strategy as the reward-vs-safety plot
    for i, values in enumerate(data, 1):
        jitter = [i + 0.15 * (((k * 7919) % 11) / 10 - 0.5) for k in range(len(values))]
        color = cmap((len(strategies) - i) % 10)
        ax.scatter(values, jitter, s=8, alpha=0.6, color=color)
    for b in budgets:
        ax.axvline(b, color="red", linestyle="--", linewidth=1, label=f"budget d = {b:g}")
    ax.set_yticks(range(1, len(strategies) + 1), strategies, fontsize=8)
    ax.set_xlabel("max prefix cost of the response")
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3, axis="x")
    _save(fig, path)
    plt.close(fig)
    return True


#: Plot role -> (caption, file under the run folder).
_PLOTS: dict[str, tuple[str, str]] = {
    "plot_reward_vs_safety": ("Reward vs safety rate", "plots/reward_vs_safety.png"),
    "plot_max_prefix_cost": ("Max prefix cost per strategy", "plots/max_prefix_cost.png"),
}


def _draw_plots(
    out: Path, records: Sequence[Mapping[str, Any]], summaries: Sequence[GroupSummary]
) -> tuple[dict[str, Path], str | None]:
    """Draw every plot of :data:`_PLOTS`; the files by role, or why none was drawn."""
    paths = {role: out / rel for role, (_, rel) in _PLOTS.items()}
    if not plot_reward_vs_safety(summaries, paths["plot_reward_vs_safety"]):
        return {}, "Plots skipped: matplotlib is not installed (pip install matplotlib)."
    plot_max_prefix_cost(records, paths["plot_max_prefix_cost"])
    return paths, None


def write_report(
    out_dir: str | Path,
    records: Sequence[Mapping[str, Any]],
    summaries: Sequence[GroupSummary],
    meta: Mapping[str, Any],
    *,
    plots: bool = True,
    title: str = "InferenceGuard evaluation",
) -> dict[str, Path]:
    """Write ``summary.json``, ``report.md`` and (with matplotlib) the plots, atomically.

    Args:
        out_dir: the run folder.
        records: the run's records.
        summaries: :func:`.metrics.summarize` of the records.
        meta: the run's settings (``run.json``).
        plots: draw the plots when matplotlib is installed.
        title: the report's heading.

    Returns:
        Written files by role: ``summary``, ``report``, and ``plot_reward_vs_safety`` /
        ``plot_max_prefix_cost`` when drawn.
    """
    out = Path(out_dir)
    files, note = _draw_plots(out, records, summaries) if plots and records else ({}, None)
    summary = {
        "meta": dict(meta),
        "summaries": [s.to_dict() for s in summaries],
        "max_prefix_cost_quantiles": prefix_cost_quantiles(records),
        "plots": {k: str(v.relative_to(out)) for k, v in files.items()},
        "plot_note": note,
    }
    text = json.dumps(_clean(summary), indent=2, default=str, allow_nan=False) + "\n"
    atomic_write_text(out / "summary.json", text)
    captions = {_PLOTS[role][0]: str(path.relative_to(out)) for role, path in files.items()}
    markdown = render_markdown(
        records, summaries, meta, title=title, plot_files=captions, plot_note=note
    )
    atomic_write_text(out / "report.md", markdown)
    return {**files, "summary": out / "summary.json", "report": out / "report.md"}
