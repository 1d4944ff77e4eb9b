"""The cost model's held-out evaluation sets in ``benchmarks/data/cost_eval/`` (issue 16).

These sets measure the embedded cost probe, so they must hold what their README promises
(labels, categories, counts) and must never leak into the probe's training pairs.
"""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from pathlib import Path

import pytest

from inferenceguard.training.cost_probe.data import (
    load_eval_dir,
    load_generated,
    load_sources,
    norm,
)
from inferenceguard.training.cost_probe.examples import build_examples, drop_eval_prompts

ROOT = Path(__file__).resolve().parents[2]
EVAL_DIR = ROOT / "benchmarks" / "data" / "cost_eval"
AUDIT_DIR = ROOT / "benchmarks" / "audit"
GENERATED = ROOT / "benchmarks" / "data" / "smollm2_responses.jsonl"
FIELDS = {"prompt": str, "response": str, "unsafe": int, "kind": str, "category": str}

# file -> (unsafe label every row has or None, allowed kinds or None, {category: minimum})
PROMISES: dict[str, tuple[int | None, set[str] | None, dict[str, int]]] = {
    "benign_procedural.jsonl": (
        0,
        {"procedural"},
        dict.fromkeys(
            [
                "cooking",
                "coding",
                "home",
                "health",
                "computer_security",
                "chemical_safety",
                "emotional_wellbeing",
            ],
            15,
        ),
    ),
    "refusal_named.jsonl": (
        0,
        {"refusal", "redirection"},
        dict.fromkeys(
            [
                "weapons",
                "drugs",
                "hacking",
                "fraud_phishing",
                "harassment",
                "hate",
                "self_harm",
                "violence",
                "terrorism",
                "stalking",
            ],
            9,
        ),
    ),
    "harmful_compliant.jsonl": (
        1,
        None,  # kind == category, checked below
        dict.fromkeys(
            [
                "threats",
                "harassment",
                "phishing_scams",
                "dangerous_encouragement",
                "stereotypes_slurs",
                "hedged_compliance",
                "refuse_then_comply",
            ],
            20,
        ),
    ),
    "audit_read.jsonl": (None, None, {}),
}
MIN_ROWS = {
    "benign_procedural.jsonl": 105,
    "refusal_named.jsonl": 90,
    "harmful_compliant.jsonl": 140,
    "audit_read.jsonl": 150,
}
HANDWRITTEN = ["benign_procedural.jsonl", "refusal_named.jsonl", "harmful_compliant.jsonl"]


def _rows(name: str) -> list[dict]:
    lines = (EVAL_DIR / name).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def test_the_readme_table_lists_every_file_with_its_counts() -> None:
    assert sorted(p.name for p in EVAL_DIR.glob("*.jsonl")) == sorted(PROMISES)
    readme = (EVAL_DIR / "README.md").read_text(encoding="utf-8")
    for name in PROMISES:
        rows = _rows(name)
        unsafe = sum(r["unsafe"] for r in rows)
        assert f"| `{name}` | {len(rows)} | {unsafe} |" in readme, name


@pytest.mark.parametrize("name", sorted(PROMISES))
def test_rows_have_the_five_fields_with_their_types(name: str) -> None:
    rows = _rows(name)
    assert len(rows) >= MIN_ROWS[name]
    for i, row in enumerate(rows):
        assert set(row) == set(FIELDS), (name, i)
        for field, typ in FIELDS.items():
            assert type(row[field]) is typ, (name, i, field)
        assert row["unsafe"] in (0, 1), (name, i)
        assert row["prompt"].strip() and row["response"].strip(), (name, i)


@pytest.mark.parametrize("name", sorted(PROMISES))
def test_labels_kinds_and_category_counts_are_as_promised(name: str) -> None:
    unsafe, kinds, minimum = PROMISES[name]
    rows = _rows(name)
    if unsafe is not None:
        assert {r["unsafe"] for r in rows} == {unsafe}
    if kinds is not None:
        assert {r["kind"] for r in rows} <= kinds
    if name == "harmful_compliant.jsonl":
        assert all(r["kind"] == r["category"] for r in rows)
    counts = Counter(r["category"] for r in rows)
    if minimum:
        assert set(counts) == set(minimum)
    for category, n in minimum.items():
        assert counts[category] >= n, (name, category, counts[category])


@pytest.mark.parametrize("name", sorted(PROMISES))
def test_no_pair_is_listed_twice(name: str) -> None:
    pairs = Counter((norm(r["prompt"]), norm(r["response"])) for r in _rows(name))
    assert [p for p, n in pairs.items() if n > 1] == []


def test_the_hand_written_sets_do_not_share_a_response() -> None:
    # One answer under two labels (or twice under one) would blur what each set measures.
    seen: dict[str, str] = {}
    for name in HANDWRITTEN:
        for r in _rows(name):
            key = norm(r["response"])
            assert key not in seen, (name, seen.get(key), r["response"][:60])
            seen[key] = name


def test_audit_read_matches_the_labels_it_is_made_from() -> None:
    spec = importlib.util.spec_from_file_location(
        "audit_to_cost_eval", AUDIT_DIR / "to_cost_eval.py"
    )
    assert spec is not None and spec.loader is not None
    to_cost_eval = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(to_cost_eval)
    rows = to_cost_eval.build_rows(AUDIT_DIR)
    # The committed file is what the script writes now: re-run it after relabelling.
    assert to_cost_eval.render(rows) == (EVAL_DIR / "audit_read.jsonl").read_text(encoding="utf-8")
    for r in rows:
        arm, label = r["kind"].split(":")
        assert arm and label in {"harmful", "refusal", "safe", "incoherent"}
        assert r["unsafe"] == (label == "harmful")


@pytest.fixture(scope="module")
def training_pairs() -> list[tuple[str, str]]:
    """The probe's train/val/test pairs, built offline the way ``train-cost`` builds them:
    every pair whose request is also an evaluation set's request is dropped."""
    generated, _ = load_generated(GENERATED)
    src = load_sources()
    evals, _ = load_eval_dir(EVAL_DIR)
    examples = drop_eval_prompts(build_examples(src, generated), evals)[0]
    return [(norm(e.prompt), norm(e.response)) for e in examples]


@pytest.mark.parametrize("name", sorted(PROMISES))
def test_no_response_appears_verbatim_in_the_probes_training_data(
    name: str, training_pairs: list[tuple[str, str]]
) -> None:
    responses = {resp for _, resp in training_pairs}
    # Substrings too: the trainer also learns on prefixes and fragments of answers.
    corpus = "\n".join(sorted(responses))
    leaked = [r["response"][:60] for r in _rows(name) if norm(r["response"]) in corpus]
    assert leaked == []


@pytest.mark.parametrize("name", HANDWRITTEN)
def test_no_hand_written_prompt_is_a_training_prompt(
    name: str, training_pairs: list[tuple[str, str]]
) -> None:
    prompts = {p for p, _ in training_pairs}
    assert [r["prompt"] for r in _rows(name) if norm(r["prompt"]) in prompts] == []
