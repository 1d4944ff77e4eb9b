"""The registry: loader tables, detection from config.json, callables, defaults, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

import inferenceguard
from inferenceguard.errors import ConfigError, ModelLoadError
from inferenceguard.scorers.base import CostModel, RewardModel
from inferenceguard.scorers.guard_model import GenerativeGuardCost
from inferenceguard.scorers.hf_classifier import SequenceClassifierCost, SequenceClassifierReward
from inferenceguard.scorers.pku import PKUCost, PKUReward
from inferenceguard.scorers.registry import (
    COST_KINDS,
    COST_LOADERS,
    DEFAULT_LOADERS,
    REWARD_KINDS,
    REWARD_LOADERS,
    load_cost_model,
    load_reward_model,
    resolve,
)


def test_registry_picks_the_loader_from_config_json(bert_dir, deberta_dir, guard_dir, beaver):
    assert isinstance(load_cost_model(bert_dir), SequenceClassifierCost)
    assert isinstance(load_cost_model(str(guard_dir)), GenerativeGuardCost)
    pku = load_cost_model(beaver[0], threshold=-1.0)
    assert isinstance(pku, PKUCost) and pku.threshold == -1.0 and pku.id == str(beaver[0])
    assert isinstance(load_reward_model(deberta_dir), SequenceClassifierReward)
    assert isinstance(load_reward_model(beaver[0]), PKUReward)
    # kind= overrides the guess: a classifier folder read as a guard is a load error,
    # a guard LM cannot be a reward model.
    with pytest.raises(ModelLoadError):
        load_cost_model(bert_dir, kind="pku")
    with pytest.raises(ConfigError, match="cannot be a reward model"):
        load_reward_model(guard_dir)


def test_registry_objects_callables_and_kinds():
    fn_cost = load_cost_model(lambda p, r: float("bomb" in r), threshold=0.5, id="bomb")
    assert fn_cost.threshold == 0.5 and fn_cost.id == "bomb"
    assert load_cost_model(fn_cost) is fn_cost
    reward = load_reward_model(lambda p, r: float(len(r)))
    assert load_reward_model(reward) is reward
    assert reward(["q"], ["abc"]).tolist() == [3.0]
    with pytest.raises(ConfigError, match="needs a threshold"):
        load_cost_model(lambda p, r: 0.0)
    with pytest.raises(ConfigError, match="got a reward model"):
        load_cost_model(reward)
    with pytest.raises(ConfigError, match="got a cost model"):
        load_reward_model(fn_cost)
    with pytest.raises(ConfigError, match="Did you mean 'guard'") as err:
        load_cost_model("anything", kind="gaurd")
    assert "'classifier', 'guard', 'pku'" in str(err.value)
    with pytest.raises(ConfigError, match="only yields costs"):
        load_reward_model("anything", kind="guard")


def test_registry_default_is_imported_lazily(monkeypatch):
    calls = []
    fake = types.ModuleType("inferenceguard.scorers.defaults")
    fake.load_default_cost_model = lambda **kw: (
        calls.append(("cost", kw))
        or CostModel.from_callable(lambda p, r: 0.0, threshold=kw.get("threshold", 0.5))
    )
    fake.load_default_reward_model = lambda **kw: (
        calls.append(("reward", kw)) or RewardModel.from_callable(lambda p, r: 0.0)
    )
    monkeypatch.setitem(sys.modules, "inferenceguard.scorers.defaults", fake)
    assert load_cost_model("default", threshold=0.3).threshold == 0.3
    load_reward_model("default", device="cpu")
    assert calls == [("cost", {"device": None}), ("reward", {"device": "cpu"})]


def test_registry_missing_paths_and_offline_hub(monkeypatch, tmp_path):
    with pytest.raises(ModelLoadError, match=r"cost model folder .* does not exist"):
        load_cost_model(tmp_path / "missing")
    with pytest.raises(ModelLoadError, match="No folder"):
        load_cost_model("not a hub id!")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ModelLoadError, match="is a file"):
        load_cost_model(tmp_path / "file.txt")
    with pytest.raises(ModelLoadError, match=r"no config\.json"):
        load_cost_model(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="offline") as err:
        load_cost_model("inferenceguard-tests/no-such-model")
    assert "hf download" in str(err.value)
    unknown = tmp_path / "unknown"
    unknown.mkdir()
    (unknown / "config.json").write_text(json.dumps({"architectures": ["BertModel"]}))
    with pytest.raises(ConfigError, match="pass kind="):
        load_cost_model(unknown)


# ---------------------------------------------------------------- the lazy tables ----


@pytest.mark.parametrize(
    ("table", "base"),
    [(COST_LOADERS, CostModel), (REWARD_LOADERS, RewardModel)],
    ids=["cost", "reward"],
)
def test_every_loader_entry_resolves_to_a_scorer_class(table, base):
    assert table, "a registry table is empty"
    for kind, target in table.items():
        loader = resolve(target)
        assert isinstance(loader, type) and issubclass(loader, base), (kind, target)
        assert callable(getattr(loader, "from_pretrained", None)), (kind, target)
    assert (tuple(COST_LOADERS), tuple(REWARD_LOADERS)) == (COST_KINDS, REWARD_KINDS)


def test_every_default_entry_resolves_to_a_loader_function():
    assert set(DEFAULT_LOADERS) == {"cost", "reward"}
    for role, target in DEFAULT_LOADERS.items():
        assert callable(resolve(target)), (role, target)


def test_resolve_names_what_is_missing():
    with pytest.raises(ModuleNotFoundError):
        resolve("inferenceguard.scorers.no_such_module:Thing")
    with pytest.raises(AttributeError):
        resolve("inferenceguard.scorers.pku:NoSuchLoader")


@pytest.mark.parametrize("module", ["hf_classifier", "guard_model", "pku", "defaults"])
def test_loaders_import_without_the_registry(module):
    """No import cycle: a loader imported first, in a fresh interpreter, pulls in no registry."""
    package_root = Path(inferenceguard.__file__).resolve().parents[1]
    code = (
        "import sys\n"
        f"import inferenceguard.scorers.{module}\n"
        "assert 'inferenceguard.scorers.registry' not in sys.modules, 'registry imported'\n"
        "from inferenceguard.scorers.registry import load_cost_model\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(package_root), *sys.path])}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]


# ----------------------------------------------------------- missing local folders ----


def test_a_missing_local_folder_is_reported_as_missing():
    with pytest.raises(
        ModelLoadError, match="cost model folder '/nonexistent/model' does not exist"
    ):
        load_cost_model("/nonexistent/model")
    with pytest.raises(ModelLoadError, match="reward model folder '/nonexistent/model' does not"):
        load_reward_model("/nonexistent/model")
    for kind in COST_KINDS:  # kind= skips detection: the check still comes first
        with pytest.raises(ModelLoadError, match="does not exist"):
            load_cost_model("./nonexistent/model", kind=kind)
    for kind in REWARD_KINDS:
        with pytest.raises(ModelLoadError, match="does not exist"):
            load_reward_model("../nonexistent/model", kind=kind)


@pytest.mark.parametrize("target", sorted({*COST_LOADERS.values(), *REWARD_LOADERS.values()}))
def test_each_loader_reports_a_missing_local_folder(target):
    with pytest.raises(ModelLoadError, match="folder '/nonexistent/model' does not exist"):
        resolve(target).from_pretrained("/nonexistent/model")
