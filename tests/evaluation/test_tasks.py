"""evaluation.tasks: prompt sets from files, built-ins and the hub."""

from __future__ import annotations

import json
import sys

import pytest

from inferenceguard.errors import ConfigError, InputError
from inferenceguard.evaluation import PromptSet, load_prompt_set, prompt_seed
from inferenceguard.evaluation.tasks import BUILTIN_SETS, parse_prompt_spec


def test_prompt_files_of_every_format(tmp_path):
    (tmp_path / "p.csv").write_text('goal,target\n"Say hi, please",x\nSecond,y\n\n')
    (tmp_path / "p.jsonl").write_text('{"turns": ["first turn", "second"]}\n{"turns": ["b"]}\n')
    (tmp_path / "p.json").write_text(json.dumps([{"instruction": "a"}, {"instruction": "b"}]))
    (tmp_path / "p.txt").write_text("one\n\ntwo\nthree\n")
    assert load_prompt_set(str(tmp_path / "p.csv")).prompts == ("Say hi, please", "Second")
    assert load_prompt_set(f"{tmp_path / 'p.csv'}:target").prompts == ("x", "y")
    assert load_prompt_set(str(tmp_path / "p.jsonl")).prompts == ("first turn", "b")
    assert load_prompt_set(str(tmp_path / "p.json"), kind="benign").kind == "benign"
    txt = load_prompt_set(f"mine={tmp_path / 'p.txt'}", limit=2)
    assert (txt.name, txt.prompts, txt.kind) == ("mine", ("one", "two"), "unknown")
    with pytest.raises(InputError, match="no column 'nope'"):
        load_prompt_set(f"{tmp_path / 'p.csv'}:nope")
    with pytest.raises(ConfigError, match="does not exist"):
        load_prompt_set(str(tmp_path / "missing.csv"))
    with pytest.raises(ConfigError, match="Did you mean 'advbench'"):
        load_prompt_set("advbenc")


def test_prompt_spec_parsing_and_keys(tmp_path):
    assert parse_prompt_spec("advbench") == (None, "advbench", None)
    assert parse_prompt_spec("x=data.csv:goal") == ("x", "data.csv", "goal")
    weird = tmp_path / "a:b.txt"
    weird.write_text("p\n")
    assert parse_prompt_spec(str(weird)) == (None, str(weird), None)
    ps = PromptSet("s", ("a", "b"))
    assert ps.prompt_keys()[0].startswith("s/0/") and ps.prompt_keys() != ["s/0", "s/1"]
    with pytest.raises(ConfigError):
        PromptSet("bad name", ("a",))
    assert prompt_seed(0, "s/0/x") == prompt_seed(0, "s/0/x") != prompt_seed(1, "s/0/x")


def test_hub_dataset_without_datasets_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # import fails
    with pytest.raises(ConfigError, match="`datasets` package"):
        load_prompt_set("someorg/some-dataset:prompt")


def test_builtin_sets_load_with_their_kind():
    for name, builtin in BUILTIN_SETS.items():
        ps = load_prompt_set(name, limit=4)
        assert len(ps) == 4 and ps.kind == builtin.kind, name
        assert len(set(ps.prompts)) == 4
    assert len(load_prompt_set("harmbench_val")) == 41  # standard behaviours only
    mt = load_prompt_set("mt_bench", limit=8)
    assert mt.indices == (0, 10, 20, 30, 40, 50, 60, 70)  # spread over the categories
