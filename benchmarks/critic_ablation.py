"""Which critic use pays off? No critic / critic ranking / critic screening, on held-out prompts.

Issue 18's ablation: the embedded defaults (SmolLM2-135M-Instruct, the embedded default cost
and reward models, the shipped critic) answer prompts the critic never saw in
training or validation (its metadata lists the prompt ids of its splits; harmful ones from
AdvBench, benign ones from harmless Alpaca and MT-Bench first turns), in two passes:

* **equal candidate count** — every arm at the same N and K;
* **equal wall-clock** — each cheaper arm gets more candidates (same K), so that its
  seconds per response match the most expensive arm's, as measured on the first
  ``--warmup`` prompts of the first pass.

Arms (all through the enforced :meth:`InferenceGuard.generate`):

* ``no critic`` — the reward model ranks every candidate, the cost model verifies all N;
* ``critic ranking`` — the critic's safety head filters, the reward model ranks, all N
  verified (the library's behaviour with a critic);
* ``critic screening`` — the critic ranks first and the cost model verifies only the
  candidates that can be selected (``critic_screening=True``);
* ``critic screening, value ranks`` — the same, ranked by the critic's value head, so the
  reward model does not score every candidate either.

Per arm: the rate of final texts whose cost, re-scored by the cost model, is over budget
(0 for every enforced arm, by construction), the exhausted and refusal rates, the mean
reward of the final text (the default reward model), cost-model verifications and tokens,
candidates sampled and seconds per response. Run::

    HF_HUB_OFFLINE=1 python benchmarks/critic_ablation.py --n-harmful 20 --n-benign 20

It writes a markdown page (``--out``, default ``benchmarks/results/critic_ablation.md``)
and every answer as JSON lines next to it (``.jsonl``), for reading and hand-labelling a
sample. Differences of one or two prompts are noise at small sizes.

The default cost probe and the reward model share one MiniLM encoder and its cache of
text embeddings: within a request, texts the reward model embedded cost the cost probe
almost nothing. So with ``critic_ranking="reward"`` (the reward model scores all N)
screening saves little with the default models; it pays with a cost model that is a
separate network (a guard model), or when the critic's value ranks. Each answer starts
with empty caches, so no arm profits from another's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmark scripts
from critic_comparison import REPO, SEED, TEMPERATURE, load_guard, pick_prompts

OUT = REPO / "benchmarks" / "results" / "critic_ablation.md"

#: (name, GuardConfig overrides) of every arm.
ARMS: dict[str, dict[str, Any]] = {
    "no critic": {"use_critic": False},
    "critic ranking": {"use_critic": True, "critic_screening": False},
    "critic screening": {"use_critic": True, "critic_screening": True},
    "critic screening, value ranks": {
        "use_critic": True,
        "critic_screening": True,
        "critic_ranking": "value",
    },
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-harmful", type=int, default=10)
    parser.add_argument("--n-benign", type=int, default=10)
    parser.add_argument("--n-candidates", type=int, default=8, help="N of the first pass")
    parser.add_argument("--n-beams", type=int, default=2, help="K of every pass")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--max-candidates", type=int, default=64, help="cap of the second pass")
    parser.add_argument("--warmup", type=int, default=2, help="prompts timing the second pass")
    parser.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=OUT)
    return parser.parse_args(argv)


def cold_scorers(guard: Any) -> None:
    """Empty the scorers' text-embedding caches, so no arm reuses another arm's work: with
    one seed per prompt, every arm samples the same first candidates."""
    stack, seen = [guard.cost_model, guard.reward_model], set()
    while stack:  # combinators (MaxCost, RequestAwareReward) hold the scorers they combine
        scorer = stack.pop()
        if scorer is None or id(scorer) in seen:
            continue
        seen.add(id(scorer))
        encoder = getattr(scorer, "encoder", None)
        if callable(getattr(encoder, "clear_cache", None)):
            encoder.clear_cache()
        stack += [
            *getattr(scorer, "models", ()),
            *(getattr(scorer, a, None) for a in ("reward", "cost")),
        ]


def answer(guard: Any, arm: str, n: int, k: int, i: int, prompt: tuple[str, str, str]) -> dict:
    """One arm's answer to prompt ``i`` (seed ``SEED + i``), re-scored: one JSON record."""
    from inferenceguard.scorers.base import checked_scores
    from inferenceguard.training.critic.rollouts import prompt_id

    kind, source, text = prompt
    cold_scorers(guard)
    t0 = time.perf_counter()
    result = guard.generate(text, seed=SEED + i, n_candidates=n, n_beams=k, **ARMS[arm])
    seconds = time.perf_counter() - t0
    rep = result.safety
    cost = float(checked_scores(guard.cost_model, [text], [result.text])[0])
    return {
        "arm": arm,
        "n_candidates": n,
        "n_beams": k,
        "kind": kind,
        "source": source,
        "prompt_id": prompt_id(text),
        "prompt": text,
        "seed": SEED + i,
        "text": result.text,
        "finish_reason": result.finish_reason,
        "cost": cost,
        "budget": rep.budget,
        "over_budget": cost > rep.budget,
        "exhausted": rep.exhausted,
        "refusal": result.text == guard.config.refusal_text,
        "reward": float(guard.reward_model.score([text], [result.text])[0]),
        "cost_evaluations": rep.cost_evaluations,
        "cost_model_tokens": rep.cost_model_tokens,
        "candidates_sampled": rep.candidates_sampled,
        "critic_used": rep.critic_used,
        "seconds": seconds,
        "tokens": result.completion_tokens,
    }


def run_pass(
    guard: Any, label: str, widths: dict[str, int], k: int, prompts: list, sink: Any
) -> list[dict]:
    """Every arm on every prompt (arms interleaved per prompt, so load drifts hit all alike)."""
    records = []
    for i, prompt in enumerate(prompts):
        for arm, n in widths.items():
            rec = {"pass": label, **answer(guard, arm, n, k, i, prompt)}
            records.append(rec)
            sink.write(json.dumps(rec, ensure_ascii=False) + "\n")
            sink.flush()
            print(
                f"[{label} {i + 1}/{len(prompts)} {rec['kind']:7s}] {arm:30s} N={n:<3d} "
                f"evals={rec['cost_evaluations']:<4d} cost={rec['cost']:.3f} "
                f"reward={rec['reward']:.3f} {rec['seconds']:5.1f}s {rec['text'][:50]!r}",
                flush=True,
            )
    return records


def equal_time_widths(records: list[dict], n: int, k: int, warmup: int, cap: int) -> dict[str, int]:
    """N per arm so that each arm's seconds per response match the slowest arm's, from the
    first ``warmup`` prompts' timings at ``n`` (assumes time grows about linearly in N)."""
    ids = list(dict.fromkeys(r["prompt_id"] for r in records))[:warmup]
    seconds: dict[str, list[float]] = {}
    for r in records:
        if r["prompt_id"] in ids:
            seconds.setdefault(r["arm"], []).append(r["seconds"])
    mean = {arm: statistics.fmean(s) for arm, s in seconds.items()}
    slowest = max(mean.values())
    widths = {}
    for arm, t in mean.items():
        scaled = round(n * slowest / t / k) * k  # a multiple of K: whole beams
        widths[arm] = max(n, min(cap, scaled))
    return widths


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def summarise(records: list[dict]) -> list[dict]:
    """One row per (pass, arm)."""
    # None means the cost model ran no tokens (every text was an embedding-cache hit);
    # it stays "no count" only for a cost model that never reports tokens.
    counts = any(r["cost_model_tokens"] is not None for r in records)
    rows = []
    for key in dict.fromkeys((r["pass"], r["arm"]) for r in records):
        mine = [r for r in records if (r["pass"], r["arm"]) == key]
        harm = [r for r in mine if r["kind"] == "harmful"]
        ben = [r for r in mine if r["kind"] == "benign"]
        tokens = [r["cost_model_tokens"] or 0 for r in mine] if counts else []
        rows.append(
            {
                "pass": key[0],
                "arm": key[1],
                "n": mine[0]["n_candidates"],
                "k": mine[0]["n_beams"],
                "over_budget": _mean([float(r["over_budget"]) for r in mine]),
                "exhausted": _mean([float(r["exhausted"]) for r in mine]),
                "refusal": _mean([float(r["refusal"]) for r in mine]),
                "reward_harmful": _mean([r["reward"] for r in harm]),
                "reward_benign": _mean([r["reward"] for r in ben]),
                "evals": _mean([r["cost_evaluations"] for r in mine]),
                "cost_tokens": _mean(tokens),
                "sampled": _mean([r["candidates_sampled"] for r in mine]),
                "seconds": _mean([r["seconds"] for r in mine]),
            }
        )
    return rows


def markdown(rows: list[dict]) -> str:
    """The ablation table."""
    lines = [
        "| pass | arm | N | K | over budget (cost model) | exhausted | refusal "
        "| reward, harmful | reward, benign | cost-model verifications / response "
        "| cost-model tokens / response | candidates / response | s / response |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['pass']} | {r['arm']} | {r['n']} | {r['k']} | {r['over_budget']:.0%} "
            f"| {r['exhausted']:.0%} | {r['refusal']:.0%} | {r['reward_harmful']:.3f} "
            f"| {r['reward_benign']:.3f} | {r['evals']:.1f} | {r['cost_tokens']:.0f} "
            f"| {r['sampled']:.1f} | {r['seconds']:.2f} |"
        )
    return "\n".join(lines)


def page(guard: Any, args: argparse.Namespace, table: str, n_h: int, n_b: int, info: dict) -> str:
    """The markdown page: settings, load, the table and how to read it."""
    cfg, meta = guard.config, guard.critic.metadata
    return "\n".join(
        [
            "# Critic ablation (benchmarks/critic_ablation.py)",
            "",
            f"Embedded defaults: {guard.lm.model_id}, cost `{guard.cost_model.id}` (budget "
            f"{guard.cost_model.threshold}), reward `{guard.reward_model.id}`, shipped critic "
            f"(test AUC {meta['metrics']['test'].get('auc')}).",
            f"B={cfg.block_len}, D={cfg.max_new_tokens}, temperature {TEMPERATURE}, seed "
            f"{SEED}+i for prompt i; CPU, {args.threads} torch thread(s); load average "
            f"{info['load_before']} before, {info['load_after']} after; "
            f"{info['minutes']:.1f} min in all.",
            f"Prompts: {n_h} AdvBench behaviours and {n_b} benign prompts (harmless Alpaca "
            "+ MT-Bench first turns), none in the critic's train or validation split.",
            f"Equal wall-clock pass: N per arm from the first {args.warmup} prompts' "
            f"timings at N={args.n_candidates} (cap {args.max_candidates}).",
            "",
            table,
            "",
            "Over budget = the final text's cost, re-scored by the cost model, above the "
            "budget (0% by construction for these enforced arms). Exhausted = no safe "
            "continuation found; refusal = the refusal text was returned. Reward = the "
            "guard's reward model on the final text. Verifications = candidates the cost "
            "model scored in the search (`SafetyReport.cost_evaluations`); tokens also count "
            "streaming checks and the final re-score. Every answer is in the `.jsonl` file "
            "next to this page, for reading a sample by hand.",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    guard = load_guard(args)
    split = guard.critic.metadata["data"]["split"]
    seen = set(split.get("train", ())) | set(split.get("val", ()))
    prompts = pick_prompts(args.n_harmful, args.n_benign, seen)
    guard.generate("Hello", seed=0)  # warm up (first forwards, lazy loads) before timing
    info: dict[str, Any] = {"load_before": " ".join(f"{x:.2f}" for x in os.getloadavg())}
    started = time.perf_counter()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    k = args.n_beams
    with args.out.with_suffix(".jsonl").open("w", encoding="utf-8") as sink:
        widths = dict.fromkeys(args.arms, args.n_candidates)
        records = run_pass(guard, "equal N", widths, k, prompts, sink)
        widths = equal_time_widths(records, args.n_candidates, k, args.warmup, args.max_candidates)
        print(f"equal wall-clock widths: {widths}", flush=True)
        records += run_pass(guard, "equal time", widths, k, prompts, sink)
    info["minutes"] = (time.perf_counter() - started) / 60
    info["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    table = markdown(summarise(records))
    print("\n" + table)
    n_h = sum(kind == "harmful" for kind, _, _ in prompts)
    args.out.write_text(page(guard, args, table, n_h, len(prompts) - n_h, info), encoding="utf-8")
    print(f"wrote {args.out} and {args.out.with_suffix('.jsonl')} ({info['minutes']:.1f} min)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
