"""Does the critic help? Plain decoding vs beam search vs InferenceGuard without / with critic.

On AdvBench prompts that the shipped critic never saw in training or validation, and on
benign prompts (harmless Alpaca instructions and MT-Bench first turns, likewise unseen),
at the same N, K, B, D and seeds, with the embedded defaults (SmolLM2-135M-Instruct, the
shipped cost probe, MiniLM relevance reward, the shipped critic)::

    HF_HUB_OFFLINE=1 python benchmarks/critic_comparison.py            # ~15 min on 2 CPU cores

It prints a markdown table and writes ``benchmarks/results/critic_comparison.md`` (and the
per-response records as ``critic_comparison.json``).

How each method is measured:

* ``plain`` — one sample, with :meth:`InferenceGuard.generate_unverified`, so over-budget
  answers are returned and counted as unsafe (the honest unguarded baseline);
* ``beam`` — block beam search with the safety state (no resampling, no critic);
* ``inferenceguard`` — with ``use_critic=False`` (reward model scores candidates);
* ``inferenceguard + critic`` — the shipped critic's safety head filters candidates, and
  either the reward model (the library default) or the critic's value head (the paper's
  choice) ranks them.

The last four use the enforced :meth:`InferenceGuard.generate`, whose text is within budget
by construction; for them "exhausted" counts answers where no safe continuation was found
(the refusal text, or a cut-off safe prefix), which is where they pay for safety.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "core") not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(REPO / "core"))

# ----------------------------------------------------------------------------- settings
N_HARMFUL = 10  # AdvBench prompts outside the critic's train/val split
N_BENIGN = 10  # half harmless Alpaca, half MT-Bench first turns, also unseen
N_CANDIDATES = 8  # N: CPU-sized (the paper: 128)
N_BEAMS = 2  # K = N/4 as in the paper
BLOCK_LEN = 16  # B: must equal the critic's block length
MAX_NEW_TOKENS = 64  # D: the critic's rollout length
TEMPERATURE = 1.0  # the critic's rollout sampler
SEED = 0  # prompt i uses seed SEED + i for every method
THREADS = 1  # torch threads: on a busy 2-core machine one thread is fastest
OUT = REPO / "benchmarks" / "results" / "critic_comparison.md"

METHODS: list[tuple[str, dict[str, Any], bool]] = [
    # (name, config overrides, enforced?)
    ("plain (unverified)", {"strategy": "plain"}, False),
    ("beam + safety state", {"strategy": "beam"}, True),
    ("InferenceGuard, no critic", {"strategy": "inferenceguard", "use_critic": False}, True),
    (
        "InferenceGuard + critic (filters; reward ranks)",
        {"strategy": "inferenceguard", "use_critic": True, "critic_ranking": "reward"},
        True,
    ),
    (
        "InferenceGuard + critic (value ranks, paper)",
        {"strategy": "inferenceguard", "use_critic": True, "critic_ranking": "value"},
        True,
    ),
]


def pick_prompts(n_harmful: int, n_benign: int, exclude: set[str]) -> list[tuple[str, str, str]]:
    """``(kind, source, text)`` for unseen prompts, in file order."""
    from inferenceguard._data import data_path
    from inferenceguard.prompts import load_prompts
    from inferenceguard.training.critic.rollouts import prompt_id

    def unseen(path: Path, column: str, n: int) -> list[str]:
        texts = [t for t in load_prompts(path, column) if prompt_id(t) not in exclude]
        return texts[:n]

    harmful = unseen(data_path("advbench/harmful_behaviors.csv"), "goal", n_harmful)
    alpaca = unseen(data_path("alpaca_harmless/harmless_test.json"), "instruction", n_benign // 2)
    mt = unseen(data_path("mt_bench/mt_bench_question.jsonl"), "turns[0]", n_benign - n_benign // 2)
    return (
        [("harmful", "advbench", t) for t in harmful]
        + [("benign", "alpaca_harmless", t) for t in alpaca]
        + [("benign", "mt_bench", t) for t in mt]
    )


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def summarise(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per method: safety rates, exhaustion, reward, cost, latency, tokens."""
    rows = []
    for name, _, _ in METHODS:
        mine = [r for r in records if r["method"] == name]
        harm = [r for r in mine if r["kind"] == "harmful"]
        ben = [r for r in mine if r["kind"] == "benign"]
        rows.append(
            {
                "method": name,
                "safe_harmful": _mean([float(r["safe"]) for r in harm]),
                "safe_benign": _mean([float(r["safe"]) for r in ben]),
                "exhausted": _mean([float(r["exhausted"]) for r in mine]),
                "reward_harmful": _mean([r["reward"] for r in harm]),
                "reward_benign": _mean([r["reward"] for r in ben]),
                "cost": _mean([r["cost"] for r in mine]),
                "seconds": _mean([r["seconds"] for r in mine]),
                "tokens": _mean([r["tokens"] for r in mine]),
            }
        )
    return rows


def markdown(rows: list[dict[str, Any]], n_harmful: int, n_benign: int) -> str:
    """The comparison table."""
    head = (
        f"| method | safety rate, harmful (n={n_harmful}) | safety rate, benign (n={n_benign}) "
        "| exhausted | mean reward, harmful | mean reward, benign | mean cost "
        "| s / response | tokens |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['safe_harmful']:.0%} | {r['safe_benign']:.0%} "
            f"| {r['exhausted']:.0%} | {r['reward_harmful']:.3f} | {r['reward_benign']:.3f} "
            f"| {r['cost']:.3f} | {r['seconds']:.1f} | {r['tokens']:.0f} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-harmful", type=int, default=N_HARMFUL)
    parser.add_argument("--n-benign", type=int, default=N_BENIGN)
    parser.add_argument("--n-candidates", type=int, default=N_CANDIDATES)
    parser.add_argument("--n-beams", type=int, default=N_BEAMS)
    parser.add_argument("--max-new-tokens", type=int, default=MAX_NEW_TOKENS)
    parser.add_argument("--threads", type=int, default=THREADS)
    parser.add_argument("--out", type=Path, default=OUT)
    return parser.parse_args(argv)


def load_guard(args: argparse.Namespace) -> Any:
    """The embedded defaults with the shipped critic, at the critic's own settings
    (``args``: ``n_candidates``, ``n_beams``, ``max_new_tokens``)."""
    from inferenceguard import GuardConfig, InferenceGuard, LocalLM
    from inferenceguard.critic import load_default_critic
    from inferenceguard.scorers.defaults import (
        load_default_cost_model,
        load_default_reward_model,
    )

    config = GuardConfig(
        block_len=min(BLOCK_LEN, args.max_new_tokens),
        n_candidates=args.n_candidates,
        n_beams=args.n_beams,
        max_new_tokens=args.max_new_tokens,
        temperature=TEMPERATURE,
    )
    lm = LocalLM.from_pretrained(device="cpu")
    cost, reward = load_default_cost_model(), load_default_reward_model()
    critic = load_default_critic(lm, cost_model=cost, config=config)
    if critic is None:
        raise SystemExit("The shipped critic is missing or does not fit; see the log above.")
    return InferenceGuard(lm, cost, reward, critic=critic, config=config)


def measure(guard: Any, i: int, n: int, kind: str, source: str, text: str) -> list[dict[str, Any]]:
    """Every method on prompt ``i`` of ``n``, at seed ``SEED + i``: one record each."""
    records = []
    for name, overrides, enforced in METHODS:
        run = guard.generate if enforced else guard.generate_unverified
        t0 = time.perf_counter()
        result = run(text, seed=SEED + i, **overrides)
        seconds = time.perf_counter() - t0
        rep = result.safety
        score = float(guard.reward_model.score([text], [result.text])[0])
        records.append(
            {
                "method": name,
                "kind": kind,
                "source": source,
                "prompt": text,
                "text": result.text,
                "finish_reason": result.finish_reason,
                "safe": rep.safe,
                "exhausted": rep.exhausted,
                "cost": rep.cost,
                "reward": score,
                "seconds": seconds,
                "tokens": result.completion_tokens,
                "critic_used": rep.critic_used,
            }
        )
        print(
            f"[{i + 1}/{n} {kind:7s}] {name:26s} safe={rep.safe!s:5s} "
            f"exhausted={rep.exhausted!s:5s} cost={rep.cost:.3f} reward={score:.3f} "
            f"{seconds:5.1f}s  {result.text[:60]!r}",
            flush=True,
        )
    return records


def page(guard: Any, table: str, n_h: int, n_b: int, threads: int, total: float) -> str:
    """The markdown page: settings, the table and how to read it."""
    config, cost, meta = guard.config, guard.cost_model, guard.critic.metadata
    return "\n".join(
        [
            "# Critic comparison (benchmarks/critic_comparison.py)",
            "",
            f"Embedded defaults: {guard.lm.model_id}, cost `{cost.id}` (budget "
            f"{cost.threshold}), reward `{guard.reward_model.id}`, shipped critic (val AUC "
            f"{meta['metrics']['val'].get('auc')}, test AUC {meta['metrics']['test'].get('auc')}).",
            f"Same settings for every method: N={config.n_candidates}, K={config.n_beams}, "
            f"B={config.block_len}, D={config.max_new_tokens}, temperature "
            f"{config.temperature}, seed {SEED}+i for prompt i; CPU, {threads} torch "
            f"thread(s); {total / 60:.1f} min in all.",
            f"Prompts: {n_h} AdvBench behaviours and {n_b} benign prompts "
            "(harmless Alpaca + MT-Bench first turns), none in the critic's train/val split.",
            "",
            table,
            "",
            "Safety rate = verified cost within budget. `plain` is measured unverified (its "
            "over-budget answers count); the other rows are the enforced API, so their text "
            "is within budget by construction and `exhausted` shows how often no safe "
            "continuation was found (refusal text or a cut-off prefix). Reward = MiniLM "
            "relevance of the final text to the prompt. Small N and few prompts: differences "
            "of one or two prompts are noise.",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    guard = load_guard(args)
    config, critic = guard.config, guard.critic
    split = critic.metadata["data"]["split"]
    prompts = pick_prompts(args.n_harmful, args.n_benign, set(split["train"]) | set(split["val"]))
    print(
        f"{len(prompts)} prompts × {len(METHODS)} methods; N={config.n_candidates} "
        f"K={config.n_beams} B={config.block_len} D={config.max_new_tokens} "
        f"T={config.temperature}; cost {guard.cost_model.id} (budget "
        f"{guard.cost_model.threshold}); critic test AUC "
        f"{critic.metadata['metrics']['test'].get('auc')}",
        flush=True,
    )
    started = time.perf_counter()
    n = len(prompts)
    records = [r for i, prompt in enumerate(prompts) for r in measure(guard, i, n, *prompt)]
    total = time.perf_counter() - started
    n_h = sum(k == "harmful" for k, _, _ in prompts)
    table = markdown(summarise(records), n_h, len(prompts) - n_h)
    print("\n" + table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    body = page(guard, table, n_h, len(prompts) - n_h, args.threads, total)
    args.out.write_text(body, encoding="utf-8")
    args.out.with_suffix(".json").write_text(
        json.dumps(records, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    print(f"wrote {args.out} ({total / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
