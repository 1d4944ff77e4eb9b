"""``inferenceguard train-cost``: the options reach the trainer, the metrics are printed."""

from __future__ import annotations

from typing import Any

import pytest

from inferenceguard.cli import main
from inferenceguard.cli.train_cost import DEFAULT_EVAL_DIR, DEFAULT_GENERATED, DEFAULT_HANDWRITTEN


@pytest.fixture
def trainer(monkeypatch) -> dict[str, Any]:
    """Replace the (minutes-long) training; the dict fills with what it was called with."""
    from inferenceguard.scorers import embedding
    from inferenceguard.training import cost_probe

    seen: dict[str, Any] = {}
    metric = {"n": 10, "n_unsafe": 4, "roc_auc": 0.9, "precision": 0.8, "recall": 0.75}

    def fake_train(**kwargs: Any) -> dict[str, Any]:
        seen.update(kwargs)
        return {"metrics": {"val": {**metric, "fpr": 0.1}, "per_source": {}}}

    monkeypatch.setattr(cost_probe, "train_default_cost", fake_train)
    monkeypatch.setattr(embedding, "get_default_encoder", lambda device=None: f"encoder@{device}")
    return seen


def test_train_cost_passes_its_options_and_prints_metrics(trainer, tmp_path, capsys):
    out = tmp_path / "probe"
    data = tmp_path / "data"
    argv = ["train-cost", "--out", str(out), "--data-dir", str(data), "--no-generated"]
    assert main([*argv, "--seed", "7", "--device", "cpu", "--eval-dir", str(data)]) == 0
    assert trainer["eval_dir"] == data
    assert trainer["out_dir"] == str(out) and trainer["data_dir"] == data
    assert trainer["generated_path"] is None and trainer["seed"] == 7
    assert trainer["encoder"] == "encoder@cpu"
    printed = capsys.readouterr().out
    assert "roc_auc" in printed and "0.900" in printed and f"saved {out}" in printed


def test_train_cost_defaults_to_the_data_folders_and_the_checkout_files(trainer, tmp_path):
    assert main(["train-cost", "--out", str(tmp_path / "p")]) == 0
    assert "data_dir" not in trainer  # the trainer looks in the data folders itself
    expected = DEFAULT_GENERATED if DEFAULT_GENERATED.is_file() else None
    assert trainer["generated_path"] == expected
    expected = DEFAULT_HANDWRITTEN if DEFAULT_HANDWRITTEN.is_file() else None
    assert trainer["handwritten_path"] == expected
    expected = DEFAULT_EVAL_DIR if DEFAULT_EVAL_DIR.is_dir() else None
    assert trainer["eval_dir"] == expected


def test_train_cost_gate_trains_the_request_gate_with_the_same_data_options(
    monkeypatch, tmp_path, capsys
):
    from inferenceguard.scorers import embedding
    from inferenceguard.training.cost_probe import gate as gate_training

    seen: dict[str, Any] = {}
    metric = {"n": 8, "harmful": 3, "roc_auc": 0.97, "fpr@0.5": 0.1, "recall@0.5": 0.9}

    class FakeGate:
        id = "request-gate:fake:0123"

    def fake_train(encoder: Any, **kwargs: Any) -> dict[str, Any]:
        seen.update(kwargs, encoder=encoder)
        row = {**metric, "fpr@0.9": 0.0, "recall@0.9": 0.6}
        return {"gate": FakeGate(), "metrics": {"xstest": row}}

    monkeypatch.setattr(gate_training, "train_default_gate", fake_train)
    monkeypatch.setattr(embedding, "get_default_encoder", lambda device=None: f"encoder@{device}")
    out = tmp_path / "gate"
    assert main(["train-cost", "--gate", "--out", str(out), "--seed", "3", "--no-generated"]) == 0
    assert seen["out_dir"] == str(out) and seen["settings"].seed == 3
    assert seen["generated_path"] is None and seen["encoder"] == "encoder@None"
    printed = capsys.readouterr().out
    assert "xstest" in printed and "0.970" in printed and "request-gate:fake:0123" in printed


def test_train_cost_judge_trains_the_response_judge_with_the_same_data_options(
    monkeypatch, tmp_path, capsys
):
    from inferenceguard.scorers import embedding
    from inferenceguard.training.cost_probe import judge as judge_training

    seen: dict[str, Any] = {}
    row = {"n": 12, "positive": 5, "roc_auc": 0.96, "fpr@0.5": 0.05, "recall@0.5": 0.9}

    class FakeJudge:
        id = "response-judge:fake:4567"

    def fake_train(encoder: Any, **kwargs: Any) -> dict[str, Any]:
        seen.update(kwargs, encoder=encoder)
        return {"judge": FakeJudge(), "metrics": {"test": {"complies": row, "toxic": row}}}

    monkeypatch.setattr(judge_training, "train_default_judge", fake_train)
    monkeypatch.setattr(embedding, "get_default_encoder", lambda device=None: f"encoder@{device}")
    out = tmp_path / "judge"
    assert main(["train-cost", "--judge", "--out", str(out), "--seed", "4"]) == 0
    assert seen["out_dir"] == str(out) and seen["settings"].seed == 4
    printed = capsys.readouterr().out
    assert "complies" in printed and "0.960" in printed and "response-judge:fake:4567" in printed


def test_train_cost_takes_gate_or_judge_not_both(capsys):
    with pytest.raises(SystemExit):
        main(["train-cost", "--gate", "--judge"])
    assert "not allowed with" in capsys.readouterr().err
