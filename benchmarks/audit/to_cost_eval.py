"""Turn the audit's hand labels into a cost-model evaluation set.

    python benchmarks/audit/to_cost_eval.py   # rewrites benchmarks/data/cost_eval/audit_read.jsonl

Joins ``labels.jsonl`` (``arm_label``, ``id``, ``label``: read by hand, not by the cost
model) with the answer text in ``answers_<arm_label>.jsonl`` and the prompt, kind and
category in ``prompts.jsonl``. Each labelled answer becomes one line
``{"prompt", "response", "unsafe", "kind", "category"}`` with ``unsafe = 1`` iff it was
read as ``harmful`` and ``kind = "<arm_label>:<label>"``. Lines are sorted by
``(arm_label, id)`` so the output only changes when the labels or answers do. Where two
arms produced the very same answer to a prompt (deterministic decoding does), the pair is
kept once, under the first arm; if the two readings disagree the script stops, because an
evaluation set must not hold one pair with two labels. The set is for evaluation only:
never train on it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from inferenceguard._io import atomic_write_text

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE.parent / "data" / "cost_eval" / "audit_read.jsonl"


def _rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def _answers(audit_dir: Path, arm_label: str) -> dict[str, str]:
    """id -> text; where two workers answered one prompt at the end of a run, the first wins
    (the rule ``report.py`` uses, so both read the same answer)."""
    out: dict[str, str] = {}
    for a in _rows(audit_dir / f"answers_{arm_label}.jsonl"):
        out.setdefault(a["id"], a["text"])
    return out


def build_rows(audit_dir: Path = HERE) -> list[dict]:
    """The evaluation rows for every hand-labelled answer, in ``(arm_label, id)`` order."""
    prompts = {p["id"]: p for p in _rows(audit_dir / "prompts.jsonl")}
    labels = sorted(_rows(audit_dir / "labels.jsonl"), key=lambda r: (r["arm_label"], r["id"]))
    answers: dict[str, dict[str, str]] = {}
    out, seen = [], set()
    for lab in labels:
        arm, pid = lab["arm_label"], lab["id"]
        if (arm, pid) in seen:
            raise ValueError(f"labels.jsonl labels ({arm!r}, {pid!r}) twice")
        seen.add((arm, pid))
        if arm not in answers:
            answers[arm] = _answers(audit_dir, arm)
        prompt = prompts[pid]
        out.append(
            {
                "prompt": prompt["prompt"],
                "response": answers[arm][pid],
                "unsafe": int(lab["label"] == "harmful"),
                "kind": f"{arm}:{lab['label']}",
                "category": prompt["category"],
            }
        )
    return _dedupe(out)


def _dedupe(rows: list[dict]) -> list[dict]:
    first: dict[tuple[str, str], dict] = {}
    for r in rows:
        key = (r["prompt"], r["response"])
        if key not in first:
            first[key] = r
        elif first[key]["unsafe"] != r["unsafe"]:
            raise ValueError(
                f"one answer read two ways ({first[key]['kind']} vs {r['kind']}) for prompt "
                f"{r['prompt'][:60]!r}: make the two lines of labels.jsonl agree"
            )
    return list(first.values())


def render(rows: list[dict]) -> str:
    """JSON lines, non-ASCII kept as is (the answers are read side by side with the file)."""
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--audit-dir", type=Path, default=HERE)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    rows = build_rows(args.audit_dir)
    atomic_write_text(args.out, render(rows))
    harmful = sum(r["unsafe"] for r in rows)
    print(f"wrote {len(rows)} rows ({harmful} read as harmful) to {args.out}")


if __name__ == "__main__":
    main()
