"""``inferenceguard serve``: config file, options to the app, and the exposure warning."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")

from inferenceguard import GuardConfig  # noqa: E402
from inferenceguard.cli import main  # noqa: E402
from inferenceguard.cli.serve import load_config  # noqa: E402


def test_load_config_reads_json_and_rejects_a_non_mapping(tmp_path):
    config_file = tmp_path / "guard.json"
    config_file.write_text(json.dumps({"n_candidates": 8, "max_new_tokens": 32}))
    assert load_config(config_file).n_candidates == 8
    assert load_config(None) == GuardConfig()
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(ValueError, match="mapping"):
        load_config(bad)


def test_cli_serve(tmp_path, monkeypatch, built, capsys):
    config_file = tmp_path / "guard.json"
    config_file.write_text(json.dumps({"n_candidates": 8, "max_new_tokens": 32}))
    served: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.update(app=app, **kw))
    argv = ["serve", "--config", str(config_file), "--critic", "none", "--api-key", "k"]
    argv += ["--max-queue", "3", "--port", "8123"]
    assert main(argv) == 0
    assert built["config"].n_candidates == 8 and built["critic"] is None
    assert (served["host"], served["port"]) == ("127.0.0.1", 8123)
    assert served["app"].state.queue.max_queue == 3


def test_cli_serve_bad_config_is_a_one_line_error(tmp_path, no_build, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    assert main(["serve", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("inferenceguard: error: ") and "mapping" in err
    bad.write_text('{"n_candidates": 0}')
    assert main(["serve", "--config", str(bad)]) == 2
    assert "n_candidates" in capsys.readouterr().err


def test_cli_serve_rejects_an_empty_pool_before_loading(no_build, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["serve", "--max-concurrent", "0"])
    assert exc.value.code == 2
    assert "argument --max-concurrent: must be at least 1, got 0" in capsys.readouterr().err


def test_cli_warns_when_exposed_without_key(monkeypatch, built, capsys):
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: None)
    monkeypatch.delenv("INFERENCEGUARD_API_KEY", raising=False)
    assert main(["serve", "--host", "0.0.0.0"]) == 0
    assert "without --api-key" in capsys.readouterr().err
