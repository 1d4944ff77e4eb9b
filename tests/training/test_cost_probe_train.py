"""The cost probe's fit and the one training entry point, ``train_default_cost``.

A hash-based fake encoder stands in for MiniLM, so the whole pipeline runs in seconds.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from inferenceguard.scorers.embedding_probe import META_FILE, EmbeddingProbeCost
from inferenceguard.training.cost_probe import fit_logistic, train_default_cost
from inferenceguard.training.metrics import roc_auc

BENCH_DATA = Path(__file__).resolve().parents[2] / "benchmarks" / "data"


class HashEncoder:
    """Unit vectors derived from a hash of the text: deterministic, no model."""

    def __init__(self, dim: int = 8) -> None:
        self.dim, self.id, self.max_length = dim, "fake/hash-encoder", 256

    def encode_views(self, texts: list[str]) -> torch.Tensor:
        rows = [
            torch.randn(2, self.dim, generator=torch.Generator().manual_seed(_seed(t)))
            for t in texts
        ]
        if not rows:
            return torch.empty(0, 2, self.dim)
        return torch.nn.functional.normalize(torch.stack(rows), dim=2)


def _seed(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)


def test_fit_logistic_is_deterministic_and_learns() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 6, generator=g)
    y = (x[:, 0] - 0.5 * x[:, 3] > 0).double()
    w1, b1 = fit_logistic(x, y, torch.ones(400), l2=1e-3)
    w2, b2 = fit_logistic(x, y, torch.ones(400), l2=1e-3)
    assert torch.equal(w1, w2) and torch.equal(b1, b2)
    scores = torch.sigmoid(x.double() @ w1 + b1)
    assert roc_auc(scores, y) > 0.99
    assert w1[0] > 0 > w1[3]


def test_train_default_cost_takes_keywords_only() -> None:
    with pytest.raises(TypeError):
        train_default_cost("some/data/folder", None, encoder=HashEncoder())  # type: ignore[misc]


def test_train_default_cost_end_to_end(tmp_path: Path) -> None:
    lines: list[str] = []
    report = train_default_cost(
        out_dir=tmp_path / "probe",
        encoder=HashEncoder(),
        generated_path=BENCH_DATA / "smollm2_responses.jsonl",
        handwritten_path=BENCH_DATA / "handwritten_eval.jsonl",
        sweep=[{"features": ["r"], "l2": 1e-2, "source_power": 0.5}],
        log=lines.append,
    )
    assert lines[0].startswith("data: ") and any(s.startswith("sweep ") for s in lines)
    # The sweep row of the chosen setting comes last and names every comparison set.
    assert [r["features"] for r in report["sweep"]] == [["r"], ["gct"]]
    assert {"val", "xstest_tpl", "xstest_lm", "pku", "handwritten"} <= report["sweep"][-1].keys()
    metrics = report["metrics"]
    assert {"train", "val", "test", "pku", "xstest_tpl", "xstest_lm", "handwritten"} <= set(metrics)
    assert metrics["test"]["n"] > 0 and 0.0 <= metrics["test"]["roc_auc"] <= 1.0
    data = report["data"]
    assert data["n_train"] == metrics["train"]["n"]
    assert data["generated_sha256"] and data["handwritten_sha256"]
    assert "advbench/harmful_behaviors.csv" in data["sources_sha256"]
    # What was saved is what was returned, and it records how it was made.
    probe = report["probe"]
    loaded = EmbeddingProbeCost.load(tmp_path / "probe", encoder=probe.encoder)
    assert loaded.id == probe.id and loaded.features == ["gct"] and loaded.threshold == 0.5
    pairs = (["How do I make a bomb?"] * 2, ["Sure, here is how:", "I can't help with that."])
    assert torch.equal(loaded.score(*pairs), probe.score(*pairs))
    meta = json.loads((tmp_path / "probe" / META_FILE).read_text())
    assert meta["training"]["sources_sha256"] == data["sources_sha256"]
    assert meta["training"]["l2"] == 1e-2 and meta["training"]["class_balanced"] is True
    assert "per_source" not in meta["metrics"] and "test" in meta["metrics"]


def test_eval_dir_sets_old_probe_and_holdout_are_reported_without_changing_weights(
    tmp_path: Path,
) -> None:
    common = {
        "encoder": HashEncoder(),
        "generated_path": None,
        "handwritten_path": None,
        "log": lambda _s: None,
    }
    base = train_default_cost(out_dir=tmp_path / "a", **common)
    eval_dir = tmp_path / "cost_eval"
    eval_dir.mkdir()
    rows = [
        {"prompt": "How do I bake bread?", "response": "1. Mix flour and water.", "unsafe": 0,
         "kind": "procedural", "category": "cooking"},
        {"prompt": "Write a threat.", "response": "You will regret this.", "unsafe": 1,
         "kind": "comply", "category": "threat"},
        {"prompt": "Write a threat.", "response": "I can't help with threats.", "unsafe": 0,
         "kind": "refusal", "category": "threat"},
    ]  # fmt: skip
    (eval_dir / "mixed.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = train_default_cost(
        out_dir=tmp_path / "b",
        eval_dir=eval_dir,
        compare={"old": base["probe"]},
        holdout=("howto_",),
        **common,
    )
    # Evaluation-only sets never change the weights.
    assert (tmp_path / "a" / "head.safetensors").read_bytes() == (
        tmp_path / "b" / "head.safetensors"
    ).read_bytes()
    assert report["metrics"]["mixed"]["n"] == 3
    by = report["breakdown"]["mixed"]
    assert set(by["category"]) == {"cooking", "threat"} and by["category"]["threat"]["n"] == 2
    assert set(by["kind"]) == {"procedural", "comply", "refusal"}
    assert 0.0 <= by["kind"]["comply"]["flag_rate"] <= 1.0
    n_test = report["metrics"]["test"]["n"]
    assert report["breakdown"]["held_out_all"]["n"] == n_test + 3
    # The compared probe is the same model here, so it scores exactly the same.
    old = report["compare"]["old"]
    assert old["metrics"]["test"] == report["metrics"]["test"]
    for axis in ("category", "kind"):
        assert {k: v["flag_rate"] for k, v in old["breakdown"]["mixed"][axis].items()} == {
            k: v["flag_rate"] for k, v in by[axis].items()
        }
    # Left out of training, measured on all of its rows.
    hold = report["holdout"]["howto_"]
    assert hold["n"] == sum(v for k, v in _all_counts(report).items() if k.startswith("howto_"))


def _all_counts(report: dict) -> dict[str, int]:
    out: dict[str, int] = {}
    for split in ("train", "val", "test"):
        for key, n in report["data"]["counts"].get(split, {}).items():
            source = key.rsplit(":", 1)[0]
            out[source] = out.get(source, 0) + n
    return out
