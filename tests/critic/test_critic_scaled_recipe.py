"""The scaled critic recipe: built-in prompt sets, the default mix, batched rollouts, and
training that never selects on the test split."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from inferenceguard import ConfigError
from inferenceguard._data import data_path
from inferenceguard.cli import train_critic as cli_train_critic
from inferenceguard.evaluation.tasks import BUILTIN_SETS
from inferenceguard.prompts import read_rows
from inferenceguard.training.critic import (
    RolloutSettings,
    TrainSettings,
    collect_rollouts,
    prompt_items,
    train_critic,
)
from inferenceguard.training.critic.train import VALUE_TARGET

from .conftest import length_cost, synthetic_rollouts


def test_prompt_items_read_built_in_sets_with_their_filters_and_per_set_limits():
    items = prompt_items(["xstest_safe", "advbench"], limit=[5, 2])
    assert [i.source for i in items] == ["xstest_safe"] * 5 + ["advbench"] * 2
    rows = read_rows(data_path("xstest/xstest_prompts.csv"))
    label = {row["prompt"]: row["label"] for row in rows}
    # XSTest's safe prompts only: the unsafe half would be mislabelled as benign.
    assert all(label[i.text] == "safe" for i in items[:5])
    # Spread over the set, not its first rows (XSTest's first rows are all "homonyms").
    assert len({next(r["type"] for r in rows if r["prompt"] == i.text) for i in items[:5]}) > 1
    with pytest.raises(ConfigError, match="2 limits were given for 1"):
        prompt_items(["advbench"], limit=[1, 2])


def test_default_mix_is_half_harmful_half_benign_and_about_400_prompts():
    specs, limits = cli_train_critic.default_prompt_specs()
    kinds = {"harmful": 0, "benign": 0}
    for spec, n in zip(specs, limits, strict=True):
        kinds[BUILTIN_SETS[spec].kind] += n
    assert kinds == {"harmful": 200, "benign": 200}
    items = prompt_items(specs, limit=limits)
    assert 390 <= len(items) <= 400  # a prompt shared by two sets is kept once
    assert {i.source for i in items} == set(specs)
    # --limit caps every set, for a quick run of the same mix.
    small = prompt_items(*cli_train_critic.default_prompt_specs(4))
    assert len(small) == 4 * len(specs)


def test_rollouts_refuse_a_non_positive_in_flight(tiny_lm, tmp_path):
    from inferenceguard import RewardModel

    reward = RewardModel.from_callable(lambda p, r: 0.0, id="zero")
    items = prompt_items([str(_txt(tmp_path))])
    settings = RolloutSettings(samples_per_prompt=2, block_len=4, max_new_tokens=8)
    with pytest.raises(ConfigError, match="in_flight"):
        collect_rollouts(items, tiny_lm, length_cost(), reward, settings, tmp_path / "r", in_flight=0)  # fmt: skip


def _txt(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("What is 1 plus 1?\nName a colour.\n")
    return path


def test_the_test_split_never_influences_training_or_stopping():
    data = synthetic_rollouts(n_prompts=40)
    settings = TrainSettings(width=32, max_epochs=8, patience=3, seed=1)
    first = train_critic(data, settings, progress=False)
    test_ids = set(first.split["test"])
    test_rows = torch.tensor(
        [data.records[int(i)]["prompt_id"] in test_ids for i in data.prompt_index]
    )
    assert bool(test_rows.any())
    # Scramble everything about the test prompts' blocks: labels, rewards, states.
    scrambled = dataclasses.replace(
        data,
        hidden=torch.where(test_rows[:, None], -data.hidden, data.hidden),
        within_budget=torch.where(test_rows, 1 - data.within_budget, data.within_budget),
        reward=torch.where(test_rows, -10 * data.reward, data.reward),
    )
    second = train_critic(scrambled, settings, progress=False)
    a, b = first.critic.state_dict(), second.critic.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert first.metrics["best_epoch"] == second.metrics["best_epoch"]
    assert first.metrics["val"] == second.metrics["val"]
    assert first.metrics["test"]["auc"] != second.metrics["test"]["auc"]


def test_critic_json_says_what_the_value_head_predicts(saved):
    meta = json.loads((saved / "critic.json").read_text())
    assert meta["training"]["value_target"] == VALUE_TARGET
    assert "final reward" in VALUE_TARGET
    # Calibration of the safety head on both held-out splits, for the summary and the check.
    assert all(isinstance(meta["metrics"][s]["ece"], float) for s in ("val", "test"))


def test_value_target_is_each_blocks_own_response_final_reward(tiny_lm, tmp_path):
    """The Monte-Carlo return: every block of a response carries that response's verified
    final reward, so blocks of one prompt that lead to different responses differ."""
    from safetensors.torch import load_file

    from inferenceguard import RewardModel
    from inferenceguard.training.critic import load_rollouts

    reward = RewardModel.from_callable(lambda p, r: float(len(r)), id="length-reward")
    items = prompt_items([str(_txt(tmp_path))])
    settings = RolloutSettings(samples_per_prompt=4, block_len=4, max_new_tokens=12, seed=2)
    collect_rollouts(items, tiny_lm, length_cost(), reward, settings, tmp_path / "r", progress=False, in_flight=2)  # fmt: skip
    data = load_rollouts(tmp_path / "r")
    varied = False
    for index, record in enumerate(data.records):
        sample = load_file(tmp_path / "r" / record["hidden_file"])["sample"]
        finals = torch.tensor([r["reward"] for r in record["responses"]])
        assert finals.tolist() == [float(len(r["text"])) for r in record["responses"]]
        rows = data.prompt_index == index
        assert torch.equal(data.reward[rows], finals[sample])
        varied |= len(set(data.reward[rows].tolist())) > 1
    assert varied
