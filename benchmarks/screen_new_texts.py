"""Screen a batch of new training texts for the request gate or the response judge.

Before new texts join ``templates/gate_prompts.json`` or ``templates/judge_responses.json``,
drop every text that is a near-copy of held-out text (MiniLM cosine >= 0.8 by default, see
:mod:`inferenceguard.training.cost_probe.near_duplicates`), a copy of a text already in
the template file, or of an unknown kind::

    HF_HUB_OFFLINE=1 python benchmarks/screen_new_texts.py new_judge.json --for judge
    HF_HUB_OFFLINE=1 python benchmarks/screen_new_texts.py new_gate.json --for gate --append

``new_judge.json`` holds ``{"texts": [{"request", "response", "kind", ...}]}`` (or the bare
list); ``new_gate.json`` holds ``{"benign": [{"prompt", "type"}], "harmful": [...]}``. Every
dropped text is printed with its reason. The kept texts are written to
``<batch>.kept.json``; ``--append`` adds them to the shipped template file instead (one
atomic write). Retrain afterwards (``train_request_gate.py`` / ``train_response_judge.py``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "core") not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(REPO / "core"))

import torch  # noqa: E402

from inferenceguard._io import atomic_write_text  # noqa: E402
from inferenceguard.scorers.embedding import get_default_encoder  # noqa: E402
from inferenceguard.training.cost_probe.data import DEFAULT_SEED, norm  # noqa: E402
from inferenceguard.training.cost_probe.gate import GATE_TEMPLATES  # noqa: E402
from inferenceguard.training.cost_probe.judge import JUDGE_TEMPLATES, KIND_TARGETS  # noqa: E402
from inferenceguard.training.cost_probe.near_duplicates import (  # noqa: E402
    DEFAULT_NEAR_DUPLICATE_COSINE,
    held_out_texts,
    screen_gate_prompts,
    screen_judge_texts,
)
from inferenceguard.training.cost_probe.train import _load_examples  # noqa: E402

DATA = REPO / "benchmarks" / "data"
GATE_GROUPS = ("benign", "harmful")


def _dump(obj: Any) -> str:
    """The template files' own layout, so an append diffs as an append."""
    return json.dumps(obj, indent=1, ensure_ascii=False) + "\n"


def _batch_items(batch: Any, target: str) -> list[tuple[str, dict]]:
    """``(group, item)`` for every text of the batch (group: the gate's benign/harmful)."""
    if target == "judge":
        texts = batch["texts"] if isinstance(batch, dict) else batch
        if not isinstance(texts, list):
            raise SystemExit('a judge batch is {"texts": [...]} or a list of texts')
        return [("texts", item) for item in texts]
    if not isinstance(batch, dict) or not any(g in batch for g in GATE_GROUPS):
        raise SystemExit('a gate batch is {"benign": [...], "harmful": [...]}')
    return [(g, item) for g in GATE_GROUPS for item in batch.get(g, [])]


def _own_rule_drops(pairs: list[tuple[str, dict]], target: str, shipped: Any) -> dict[int, str]:
    """Texts dropped before the embedding check: malformed, unknown kind, already shipped."""
    if target == "judge":
        have = {norm(t["response"]) for t in shipped["texts"]}
        fields = ("request", "response", "kind")
    else:
        have = {norm(t["prompt"]) for g in GATE_GROUPS for t in shipped[g]}
        fields = ("prompt", "type")
    drops: dict[int, str] = {}
    seen: set[str] = set()
    for i, (_group, item) in enumerate(pairs):
        missing = [f for f in fields if not isinstance(item.get(f), str) or not item[f].strip()]
        if missing:
            drops[i] = f"missing {', '.join(missing)}"
            continue
        if target == "judge" and item["kind"] not in KIND_TARGETS:
            drops[i] = f"unknown kind {item['kind']!r} (known: {', '.join(sorted(KIND_TARGETS))})"
            continue
        key = norm(item["response" if target == "judge" else "prompt"])
        if key in have or key in seen:
            drops[i] = "already in the template file or earlier in the batch"
        seen.add(key)
    return drops


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("batch", type=Path, help="JSON file of new texts")
    parser.add_argument("--for", dest="target", choices=("gate", "judge"), required=True)
    parser.add_argument("--threshold", type=float, default=DEFAULT_NEAR_DUPLICATE_COSINE)
    parser.add_argument(
        "--append", action="store_true", help="append kept texts to the shipped file"
    )
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    template = JUDGE_TEMPLATES if args.target == "judge" else GATE_TEMPLATES
    shipped = json.loads(template.read_text(encoding="utf-8"))
    pairs = _batch_items(json.loads(args.batch.read_text(encoding="utf-8")), args.target)
    drops = _own_rule_drops(pairs, args.target, shipped)

    examples, evals, _ = _load_examples(
        None,
        DATA / "smollm2_responses.jsonl",
        DATA / "handwritten_eval.jsonl",
        DATA / "cost_eval",
        DEFAULT_SEED,  # the trainers' seed: it decides which probe pairs are val/test
        lambda _m: None,
    )
    held_out = held_out_texts(examples, evals)
    live = [i for i in range(len(pairs)) if i not in drops]
    screen = screen_judge_texts if args.target == "judge" else screen_gate_prompts
    for near in screen(
        [pairs[i][1] for i in live], held_out, get_default_encoder(), threshold=args.threshold
    ):
        drops[live[near.index]] = (
            f"{near.field} at cosine {near.cosine:.2f} of held-out {near.held_out[:80]!r}"
        )

    for i in sorted(drops):
        item = pairs[i][1]
        text = item.get("response" if args.target == "judge" else "prompt", "")
        print(f"drop [{i}] {str(text)[:70]!r}: {drops[i]}")
    kept = [pair for i, pair in enumerate(pairs) if i not in drops]
    print(f"kept {len(kept)} of {len(pairs)} (threshold {args.threshold:g})")
    if args.append:
        for group, item in kept:
            shipped[group].append(item)
        atomic_write_text(template, _dump(shipped))
        print(f"appended to {template}")
    else:
        out = args.batch.with_suffix(".kept.json")
        if args.target == "judge":
            atomic_write_text(out, _dump({"texts": [item for _g, item in kept]}))
        else:
            atomic_write_text(
                out, _dump({g: [it for gg, it in kept if gg == g] for g in GATE_GROUPS})
            )
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
