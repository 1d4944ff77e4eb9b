"""inferenceguard.prompts: the one reader of prompt files (rows, columns, row indices)."""

from __future__ import annotations

import pytest

from inferenceguard.errors import InputError
from inferenceguard.evaluation import load_prompt_set
from inferenceguard.prompts import load_prompts, prompt_rows, read_rows


def test_read_rows_gives_each_format_as_the_file_holds_it(tmp_path):
    (tmp_path / "a.tsv").write_text("goal\tlabel\nDo X, now\tunsafe\nDo Y\tsafe\n")
    (tmp_path / "b.txt").write_text("one\n\n two \n")
    (tmp_path / "c.json").write_text('{"data": ["p", {"prompt": "q"}]}')
    assert read_rows(tmp_path / "a.tsv") == [
        {"goal": "Do X, now", "label": "unsafe"},
        {"goal": "Do Y", "label": "safe"},
    ]
    assert read_rows(tmp_path / "b.txt") == ["one", " two "]  # blank lines are no rows
    assert read_rows(tmp_path / "c.json") == ["p", {"prompt": "q"}]
    assert load_prompts(tmp_path / "a.tsv") == ["Do X, now", "Do Y"]
    with pytest.raises(InputError, match="does not exist"):
        read_rows(tmp_path / "missing.tsv")
    with pytest.raises(InputError, match="Unknown prompt file type"):
        read_rows(tmp_path / "x.parquet")


def test_prompt_rows_keeps_row_indices_and_filters():
    rows = [
        {"q": "first", "label": "safe"},
        {"q": "  ", "label": "safe"},
        {"q": "third", "label": "unsafe"},
        {"q": "fourth", "label": "safe"},
    ]
    assert prompt_rows(rows, "q") == [(0, "first"), (2, "third"), (3, "fourth")]
    safe = prompt_rows(rows, "q", keep=lambda r: r["label"] == "safe")
    assert safe == [(0, "first"), (3, "fourth")]  # indices stay rows of the source
    turns = [{"turns": ["a?", "b?"]}, {"turns": []}, {"turns": ["c?"]}]
    assert prompt_rows(turns, "turns") == [(0, "a?"), (2, "c?")]  # a list gives its first
    assert prompt_rows(turns) == [(0, "a?"), (2, "c?")]  # default column turns[0]
    with pytest.raises(InputError, match=r"source\.csv has no column 'nope'"):
        prompt_rows(rows, "nope", source="source.csv")


def test_tsv_prompt_sets_use_the_same_columns_as_every_other_file(tmp_path):
    (tmp_path / "p.tsv").write_text("meta\tquestion\nx\tWhat is a lock?\ny\tName a fruit.\n")
    assert load_prompt_set(str(tmp_path / "p.tsv")).prompts == ("What is a lock?", "Name a fruit.")
    spec = f"{tmp_path / 'p.tsv'}:meta"
    assert load_prompt_set(spec, limit=1).prompts == ("x",)
