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
