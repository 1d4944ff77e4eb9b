"""evaluation.report: summary.json, report.md and plots."""

from __future__ import annotations

import json
import sys

import pytest

from inferenceguard.evaluation import summarize
from inferenceguard.evaluation.report import render_markdown, write_report


def test_report_files_are_written_atomically(tiny_records, tmp_path, monkeypatch):
    meta = {"prompt_sets": [{"name": "adv", "kind": "harmful"}, {"name": "mt", "kind": "benign"}]}
    summaries = summarize(tiny_records)
    files = write_report(tmp_path, tiny_records, summaries, meta, plots=False)
    assert set(files) == {"summary", "report"}
    good = {p: p.read_bytes() for p in files.values()}
    assert json.loads(files["summary"].read_text())["summaries"]

    import inferenceguard._io as io_mod

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(io_mod.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_report(tmp_path, tiny_records[:3], summarize(tiny_records[:3]), meta, plots=False)
    for path, content in good.items():  # the old files are whole, no temp files remain
        assert path.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.md", "summary.json"]


def test_markdown_report_content(tiny_records):
    meta = {"prompt_sets": [{"name": "adv", "kind": "harmful"}, {"name": "mt", "kind": "benign"}]}
    text = render_markdown(tiny_records, summarize(tiny_records), meta)
    assert "## Harmful prompts (adv)" in text and "## Benign prompts (mt)" in text
    assert "| `plain` | raw | 4 | 50.0% [6.8%, 93.2%]" in text
    assert "| `ig` | guarded | 1 (1 err) |" in text
    assert "4.0×" in text  # ig time over plain on harmful prompts
    assert "not about the world" in text  # the caveats travel with every report
    assert "Prompt set `adv`" not in text  # a lone set per kind is not repeated


def test_plots_when_matplotlib_is_installed(tiny_records, tmp_path):
    pytest.importorskip("matplotlib")
    meta = {"prompt_sets": [{"name": "adv", "kind": "harmful"}, {"name": "mt", "kind": "benign"}]}
    files = write_report(tmp_path, tiny_records, summarize(tiny_records), meta)
    for role in ("plot_reward_vs_safety", "plot_max_prefix_cost"):
        assert files[role].read_bytes()[:4] == b"\x89PNG"
    assert "plots/max_prefix_cost.png" in files["report"].read_text()


def test_plots_skipped_with_a_message_without_matplotlib(tiny_records, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    files = write_report(tmp_path, tiny_records, summarize(tiny_records), {"prompt_sets": []})
    assert "plot_reward_vs_safety" not in files
    assert "matplotlib is not installed" in files["report"].read_text()
