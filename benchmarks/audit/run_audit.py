"""Produce the audit's answers: plain decoding and the default guard on ``prompts.jsonl``.

    HF_HUB_OFFLINE=1 python benchmarks/audit/run_audit.py --arm plain --label plain
    HF_HUB_OFFLINE=1 python benchmarks/audit/run_audit.py --arm guard --label guard_v1 \
        --categories group_stereotypes,hate_harassment_threats  # default reward (relevance)
    HF_HUB_OFFLINE=1 python benchmarks/audit/run_audit.py --arm guard --penalized-reward \
        --label guard_v2                                     # relevance - P(unsafe)
    # issue 16, the retrained probe with a refusal required, and the request-aware reward:
    HF_HUB_OFFLINE=1 python benchmarks/audit/run_audit.py --arm guard --no-critic \
        --label guard_v3_nocritic
    HF_HUB_OFFLINE=1 python benchmarks/audit/run_audit.py --arm guard --label guard_v3
    # the fine-tuned request gate in the default cost and reward, and its critic:
    HF_HUB_OFFLINE=1 python benchmarks/audit/run_audit.py --arm guard --no-critic \
        --label guard_v4_nocritic
    HF_HUB_OFFLINE=1 python benchmarks/audit/run_audit.py --arm guard --label guard_v4
    # the response judge: max(g * c, t) + refusal required, and its critic (the default):
    HF_HUB_OFFLINE=1 python benchmarks/audit/run_audit.py --arm guard --label guard_v5

guard_v1 and guard_v2 ran with the old probe (2e9ba22f) and the old defaults, guard_v3
with the probe's own request gate (and the critic trained for it), guard_v4 with the
probe and the request gate (a refusal required above 0.9); the library's
defaults have changed since, so re-running those commands now does not reproduce them.

Each answer is one JSON line in ``answers_<label>.jsonl`` (resumable: prompts already
answered are skipped). The cost and reward recorded next to each answer are the embedded
probe's P(unsafe) and the MiniLM relevance of the final text (``guard_cost`` is the
guard's own verified cost), for comparing with the labels read by hand
(``labels.jsonl``); they play no part in the labels.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent


def _load(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _interleaved(prompts: list[dict]) -> list[dict]:
    """Round-robin over categories, so that a run stopped early still covers every one."""
    by_cat: dict[str, list[dict]] = {}
    for p in prompts:
        by_cat.setdefault(p["category"], []).append(p)
    out: list[dict] = []
    for i in range(max(len(v) for v in by_cat.values())):
        out += [v[i] for v in by_cat.values() if i < len(v)]
    return out


def _reward(objective: str, cost, relevance):
    """The guard's reward model for ``--objective``, from the probe and relevance."""
    from inferenceguard.scorers.combinators import CostPenalizedReward, RequestAwareReward

    if objective == "penalized":
        return CostPenalizedReward(relevance, cost, weight=1.0)
    if objective == "request-aware":
        return RequestAwareReward(relevance, cost, request_gate=cost.request_harm)
    if objective == "request-aware-refusal":
        from inferenceguard import RewardModel

        refusal = RewardModel.from_callable(cost.refusal_scores, batched=True, id="refusal")
        return RequestAwareReward(relevance, cost, request_gate=cost.request_harm, refusal=refusal)
    return relevance


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arm", choices=["plain", "guard"], required=True)
    ap.add_argument("--label", required=True, help="names the output file answers_<label>.jsonl")
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument(
        "--objective",
        choices=["default", "relevance", "penalized", "request-aware", "request-aware-refusal"],
        default="default",
        help="the guard's reward: the library default, plain relevance, relevance - P(unsafe) "
        "(CostPenalizedReward), (1-h)*relevance - h*P(unsafe) (RequestAwareReward), or "
        "(1-h)*relevance + h*(P(refusal) - P(unsafe)) (RequestAwareReward with refusal)",
    )
    ap.add_argument("--penalized-reward", action="store_true", help="same as --objective penalized")
    ap.add_argument("--no-critic", action="store_true", help="the guard without its critic")
    ap.add_argument("--budget", type=float, default=None, help="the guard's budget (default: τ)")
    ap.add_argument("--categories", default=None, help="comma-separated categories only")
    ap.add_argument("--start", type=int, default=0, help="skip this many prompts of the list")
    ap.add_argument(
        "--reverse", action="store_true", help="walk the list backwards (a second worker)"
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from inferenceguard import InferenceGuard
    from inferenceguard.scorers.defaults import load_default_probe
    from inferenceguard.scorers.relevance import RelevanceReward

    overrides = {"max_new_tokens": args.max_new_tokens, "seed": args.seed}
    if args.arm == "plain":
        overrides["strategy"] = "plain"
    if args.budget is not None:
        overrides["budget"] = args.budget
    use_critic = args.arm == "guard" and not args.no_critic
    guard = InferenceGuard.from_defaults(critic=use_critic, **overrides)
    # Always the embedded probe and relevance, whatever the guard's default objective is,
    # so that every arm's numbers are on one scale.
    cost = load_default_probe()
    reward = RelevanceReward(cost.encoder)
    objective = "penalized" if args.penalized_reward else args.objective
    if objective != "default":
        guard = InferenceGuard(
            guard.lm,
            guard.cost_model,
            _reward(objective, cost, reward),
            critic=guard.critic,
            config=guard.config,
        )
    out = HERE / f"answers_{args.label}.jsonl"
    done = {r["id"] for r in _load(out)}
    prompts = [p for p in _interleaved(_load(HERE / "prompts.jsonl")) if p["id"] not in done]
    if args.categories:
        prompts = [p for p in prompts if p["category"] in args.categories.split(",")]
    prompts = (prompts[::-1] if args.reverse else prompts)[args.start :][: args.limit]
    with out.open("a", encoding="utf-8") as fh:
        for p in prompts:
            if p["id"] in {r["id"] for r in _load(out)}:
                continue  # another worker answered it meanwhile
            t0 = time.perf_counter()
            msgs = [{"role": "user", "content": p["prompt"]}]
            # plain decoding is measured unguarded (the evaluation harness does the same).
            res = guard.generate_unverified(msgs) if args.arm == "plain" else guard.generate(msgs)
            secs = time.perf_counter() - t0
            row = {
                **p,
                "arm": args.arm,
                "label": args.label,
                "text": res.text,
                "finish_reason": res.finish_reason,
                "cost": float(cost([p["prompt"]], [res.text])[0]),
                "reward": float(reward([p["prompt"]], [res.text])[0]),
                "guard_cost": float(res.safety.cost),
                "critic": guard.critic is not None,
                "reward_model": guard.reward_model.id,
                "budget": args.budget,
                "seconds": round(secs, 2),
            }
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            fh.flush()
            print(
                f"{p['id']:28s} {secs:6.1f}s cost={row['cost']:.2f} {res.text[:60]!r}", flush=True
            )


if __name__ == "__main__":
    main()
