"""The latent critic: prompt loading, rollouts, training, and use by the guard.

Everything runs on the tiny random Llama and synthetic data (seconds on CPU).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from inferenceguard import (
    ArtifactError,
    ConfigError,
    CostModel,
    InputError,
    LocalLM,
    RewardModel,
)
from inferenceguard._data import data_path
from inferenceguard.critic import LatentCritic
from inferenceguard.critic import io as critic_io
from inferenceguard.prompts import PromptSpec, load_prompts
from inferenceguard.training.critic import (
    RolloutSettings,
    TrainSettings,
    collect_rollouts,
    load_rollouts,
    prompt_items,
    train_critic,
)
from inferenceguard.training.critic import rollouts as rollouts_mod
from inferenceguard.training.critic.train import split_by_prompt

from .conftest import FAST, length_cost, synthetic_rollouts


def word_reward() -> RewardModel:
    return RewardModel.from_callable(lambda p, r: float(len(set(r.split()))), id="distinct-words")


# ----------------------------------------------------------------------------- prompts


def test_load_prompts_reads_every_format(tmp_path):
    (tmp_path / "a.csv").write_text(
        'goal,target\n"Do X, now",Sure\n\nDo Y,Sure\n', encoding="utf-8"
    )
    (tmp_path / "b.json").write_text(
        json.dumps([{"instruction": "Explain A", "category": None}, {"instruction": " "}]),
        encoding="utf-8",
    )
    (tmp_path / "c.jsonl").write_text(
        '{"question_id": 1, "turns": ["First?", "Second?"]}\n\n{"turns": ["Third?"]}\n',
        encoding="utf-8",
    )
    (tmp_path / "d.txt").write_text("one\n\n two \nthree", encoding="utf-8")
    assert load_prompts(tmp_path / "a.csv") == ["Do X, now", "Do Y"]
    assert load_prompts(tmp_path / "a.csv", column="target") == ["Sure", "Sure"]
    assert load_prompts(tmp_path / "b.json") == ["Explain A"]
    assert load_prompts(tmp_path / "c.jsonl") == ["First?", "Third?"]
    assert load_prompts(tmp_path / "c.jsonl", column="turns[1]") == ["Second?"]
    assert load_prompts(tmp_path / "d.txt", limit=2) == ["one", "two"]
    with pytest.raises(InputError, match="no column"):
        load_prompts(tmp_path / "a.csv", column="nope")
    with pytest.raises(InputError, match="does not exist"):
        load_prompts(tmp_path / "missing.csv")
    with pytest.raises(InputError, match="Unknown prompt file type"):
        (tmp_path / "e.xml").write_text("<x/>")
        load_prompts(tmp_path / "e.xml")


def test_prompt_spec_splits_file_and_column(tmp_path):
    spec = PromptSpec.parse(f"{tmp_path}/q.jsonl:turns[0]")
    assert spec.path == tmp_path / "q.jsonl" and spec.column == "turns[0]"
    assert PromptSpec.parse("plain.csv") == PromptSpec(Path("plain.csv"))
    odd = tmp_path / "we:ird.txt"
    odd.write_text("hi\n")
    assert PromptSpec.parse(str(odd)).path == odd  # an existing path keeps its colon


def test_load_prompts_on_the_shared_data():
    advbench = load_prompts(data_path("advbench/harmful_behaviors.csv"), limit=3)
    assert advbench[0].startswith("Write a script that can exploit vulnerabilities")
    alpaca = load_prompts(data_path("alpaca_harmless/harmless_test.json"), limit=2)
    assert alpaca[0] == "Compare and contrast the views of Aristotle and Socrates."
    mt = load_prompts(data_path("mt_bench/mt_bench_question.jsonl"), limit=1)
    assert mt[0].startswith("Compose an engaging travel blog post about a recent trip to Hawaii")
    assert len(load_prompts(data_path("malicious_instruct/MaliciousInstruct.txt"))) == 100


# ----------------------------------------------------------------------------- training


def test_training_learns_a_synthetic_problem(trained):
    val, test = trained.metrics["val"], trained.metrics["test"]
    assert val["auc"] > 0.85 and test["auc"] > 0.85
    assert val["auc_z_only"] == 0.5  # z is constant: everything comes from the hidden state
    assert val["reward_r2"] > 0.3
    assert val["ece"] < 0.15
    assert all(1 <= e <= trained.metrics["epochs"] for e in trained.metrics["best_epoch"].values())


def test_split_is_by_prompt_and_stratified(trained):
    split = trained.split
    sets = [set(split[s]) for s in ("train", "val", "test")]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert sum(len(s) for s in sets) == 90
    assert len(split["test"]) == len(split["val"]) == 14  # round(45 · 0.15) per source × 2
    meta = trained.critic.metadata["data"]
    assert meta["split"] == split
    assert meta["sources"]["harmful"] == {"train": 31, "val": 7, "test": 7}
    # The split of a prompt does not depend on which other prompts exist.
    again = split_by_prompt(
        split["train"][:10] + split["test"][:3],
        ["s"] * 13,
        val_fraction=0.0,
        test_fraction=0.5,
        seed=0,
    )
    assert set(again["test"]) | set(again["train"]) == set(split["train"][:10] + split["test"][:3])


def test_training_is_deterministic_with_a_seed():
    data = synthetic_rollouts(n_prompts=30)
    settings = TrainSettings(width=32, max_epochs=5, seed=3)
    a = train_critic(data, settings, progress=False).critic.state_dict()
    b = train_critic(data, settings, progress=False).critic.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_training_refuses_a_single_outcome_class():
    data = synthetic_rollouts(n_prompts=12)
    data.within_budget.fill_(1.0)
    with pytest.raises(ConfigError, match="nothing to learn"):
        train_critic(data, FAST, progress=False)


# ----------------------------------------------------------------------------- the guard


class RecordingCritic(LatentCritic):
    """Remembers what the search asked and answered.

    It standardises hidden states with the statistics of the first batch it sees (call
    :meth:`reset` per request), so that one random direction splits that batch.
    """

    calls: list
    centred: bool = False

    def reset(self) -> None:
        self.calls, self.centred = [], False

    def predict(self, hidden, z, step_frac):
        if not self.centred:
            with torch.no_grad():
                self.h_mean.copy_(hidden.float().mean(0))
                self.h_std.copy_(hidden.float().std(0).clamp_min(1e-4))
            self.centred = True
        p_safe, value = super().predict(hidden, z, step_frac)
        self.calls.append((hidden.detach().clone(), p_safe, value))
        return p_safe, value


def adversarial_critic(hidden_size: int) -> RecordingCritic:
    """p_safe and value pull in opposite directions along one hidden direction.

    Without the safety head the candidate with the highest value (the least safe by the
    critic) would win, so the choice shows whether the safety head filters.
    """
    from inferenceguard.critic import CriticArchitecture

    torch.manual_seed(0)
    critic = RecordingCritic(
        CriticArchitecture(
            hidden_size=hidden_size,
            width=1,
            depth=1,
            dropout=0.0,
            safety_input_dropout=0.0,
            value_input_dropout=0.0,
            skip=False,
        )
    )
    critic.reset()
    direction = torch.randn(hidden_size)
    with torch.no_grad():
        for trunk in (critic.safety_trunk, critic.value_trunk):
            lin = trunk[1]  # after the input dropout
            lin.weight.zero_()
            lin.weight[0, :hidden_size] = direction
            lin.bias.zero_()
        critic.safety_head.weight.fill_(50.0)
        critic.safety_head.bias.fill_(-0.1)
        critic.value_head.weight.fill_(-50.0)
        critic.value_head.bias.zero_()
    return critic.eval()


def _final_hidden(lm: LocalLM, prompt: str, tokens: list[int]) -> torch.Tensor:
    state = lm.prefill(lm.encode(lm.render(prompt)) + tokens)
    return state.hidden[0]


def test_guard_uses_the_critic_and_filters_by_its_safety_head(make_guard, tiny_lm):
    critic = adversarial_critic(tiny_lm.hidden_size)
    config = {"n_candidates": 8, "n_beams": 1, "block_len": 6, "max_new_tokens": 6}
    chosen_p = []
    for seed in range(4):
        critic.reset()
        result = make_guard(critic=critic, seed=seed, **config).generate("Hi")
        assert result.safety.critic_used
        hidden, p_safe, _ = critic.calls[-1]
        assert bool((p_safe >= 0.5).any()) and bool((p_safe < 0.5).any()), "need both kinds"
        mine = _final_hidden(tiny_lm, "Hi", result.token_ids)
        row = int(torch.cdist(mine[None], hidden).argmin())
        chosen_p.append(float(p_safe[row]))
    assert all(p >= 0.5 for p in chosen_p)
    # With the threshold at 0 the safety head is ignored, and when ranking by the value
    # head (the paper's choice) the value (anti-safe) wins.
    critic.reset()
    result = make_guard(
        critic=critic, seed=0, critic_threshold=0.0, critic_ranking="value", **config
    ).generate("Hi")
    hidden, p_safe, value = critic.calls[-1]
    row = int(torch.cdist(_final_hidden(tiny_lm, "Hi", result.token_ids)[None], hidden).argmin())
    assert row == int(value.argmax()) and float(p_safe[row]) < 0.5


def test_guard_without_critic_or_with_use_critic_false_reports_it(make_guard, trained):
    assert not make_guard().generate("Hi").safety.critic_used
    result = make_guard(critic=trained.critic, use_critic=False).generate("Hi")
    assert not result.safety.critic_used
    assert make_guard(critic=trained.critic).generate("Hi").safety.critic_used


# ----------------------------------------------------------------------------- rollouts

SETTINGS = RolloutSettings(samples_per_prompt=3, block_len=4, max_new_tokens=12, seed=1)


def _items(n: int = 4):
    from inferenceguard.training.critic.rollouts import PromptItem, prompt_id

    texts = [f"Tell me about topic number {i}." for i in range(n)]
    return [PromptItem(prompt_id(t), t, "synthetic") for t in texts]


def test_rollout_records_follow_the_search(tiny_lm, tmp_path):
    collect_rollouts(
        _items(), tiny_lm, length_cost(), word_reward(), SETTINGS, tmp_path, progress=False
    )
    data = load_rollouts(tmp_path)
    assert len(data.records) == 4 and data.hidden.dtype == torch.float16
    assert data.hidden.shape == (len(data), tiny_lm.hidden_size)
    files = {p.suffix for p in tmp_path.rglob("*") if p.is_file()}
    assert files <= {".json", ".jsonl", ".safetensors"}
    from safetensors.torch import load_file

    for record in data.records:
        t = load_file(tmp_path / record["hidden_file"])
        prompt_ids = tiny_lm.encode(tiny_lm.render(record["prompt"]))
        for s, response in enumerate(record["responses"]):
            rows = (t["sample"] == s).nonzero().flatten()
            z = t["z"][rows]
            assert torch.all(z[1:] <= z[:-1])  # z never rises in prefix mode
            assert torch.allclose(t["step_frac"][rows], (t["block"][rows] + 1) * 4 / 12)
            assert response["within_budget"] == bool(z[-1] >= 0)
            assert response["finish"] in {"stop", "length", "unsafe"}
            assert (response["finish"] == "unsafe") == (not response["within_budget"])
            assert response["final_cost"] == pytest.approx(min(1.0, len(response["text"]) / 150))
            assert response["reward"] == len(set(response["text"].split()))
            # The recorded hidden state is the model's state at each block's last token.
            ids = response["token_ids"]
            for row, b in zip(rows.tolist(), t["block"][rows].tolist(), strict=True):
                upto = min((b + 1) * 4, len(ids))
                want = _final_hidden_ids(tiny_lm, prompt_ids + ids[:upto])
                assert torch.allclose(t["hidden"][row].float(), want, atol=2e-2, rtol=1e-2)
    assert 0 < float(data.within_budget.mean()) < 1


def _final_hidden_ids(lm: LocalLM, ids: list[int]) -> torch.Tensor:
    return lm.prefill(ids).hidden[0]


def test_rollouts_resume_without_redoing_finished_prompts(tiny_lm, tmp_path, monkeypatch):
    items = _items(5)

    class Interrupt(Exception):
        pass

    def stop_after_two(item):
        if item.id == items[1].id:
            raise Interrupt

    with pytest.raises(Interrupt):
        collect_rollouts(
            items,
            tiny_lm,
            length_cost(),
            word_reward(),
            SETTINGS,
            tmp_path / "a",
            progress=False,
            on_prompt=stop_after_two,
        )
    assert not (tmp_path / "a" / "index.jsonl").exists()
    done: list[str] = []
    real = rollouts_mod.rollout_prompt

    def counting(lm, cost, reward, item, settings):
        done.append(item.id)
        return real(lm, cost, reward, item, settings)

    monkeypatch.setattr(rollouts_mod, "rollout_prompt", counting)
    collect_rollouts(
        items, tiny_lm, length_cost(), word_reward(), SETTINGS, tmp_path / "a", progress=False
    )
    assert done == [i.id for i in items[2:]]
    collect_rollouts(
        items, tiny_lm, length_cost(), word_reward(), SETTINGS, tmp_path / "b", progress=False
    )
    # Per-prompt seeds: the resumed run's records equal an uninterrupted run's.
    index_a = (tmp_path / "a" / "index.jsonl").read_text()
    assert index_a == (tmp_path / "b" / "index.jsonl").read_text()
    assert [json.loads(line)["prompt_id"] for line in index_a.splitlines()] == [i.id for i in items]
    assert not list((tmp_path / "a" / "parts").glob("*.jsonl"))


def test_rollouts_refuse_a_folder_made_with_other_settings(tiny_lm, tmp_path):
    collect_rollouts(
        _items(1), tiny_lm, length_cost(), word_reward(), SETTINGS, tmp_path, progress=False
    )
    other = RolloutSettings(samples_per_prompt=3, block_len=2, max_new_tokens=12, seed=1)
    with pytest.raises(ConfigError, match=r"other settings.*settings"):
        collect_rollouts(
            _items(1), tiny_lm, length_cost(), word_reward(), other, tmp_path, progress=False
        )


def test_corrupted_rollout_file_is_detected(tiny_lm, tmp_path):
    collect_rollouts(
        _items(2), tiny_lm, length_cost(), word_reward(), SETTINGS, tmp_path, progress=False
    )
    file = next((tmp_path / "hidden").glob("*.safetensors"))
    file.write_bytes(file.read_bytes()[:-8])
    with pytest.raises(ArtifactError, match="sha256"):
        load_rollouts(tmp_path)


def test_prompt_items_dedupe_across_files(tmp_path):
    (tmp_path / "a.txt").write_text("same\nfirst\n")
    (tmp_path / "b.txt").write_text("same\nsecond\n")
    items = prompt_items([str(tmp_path / "a.txt"), str(tmp_path / "b.txt")])
    assert [(i.text, i.source) for i in items] == [("same", "a"), ("first", "a"), ("second", "b")]


def test_build_guard_loads_the_shipped_critic_only_for_the_embedded_model(tiny_lm, monkeypatch):
    from inferenceguard import LocalLM, RewardModel
    from inferenceguard._embedded import DEFAULT_LM_ID
    from inferenceguard.guard import build_guard

    sentinel = object()
    monkeypatch.setattr(critic_io, "load_default_critic", lambda **kw: sentinel)
    cost = CostModel.from_callable(lambda p, r: 0.0, threshold=0.5)
    reward = RewardModel.from_callable(lambda p, r: 0.0)
    other = build_guard(model=tiny_lm, cost_model=cost, reward_model=reward)
    assert other.critic is None
    embedded = LocalLM(tiny_lm.model, tiny_lm.tokenizer, model_id=DEFAULT_LM_ID)
    assert build_guard(model=embedded, cost_model=cost, reward_model=reward).critic is sentinel


# ----------------------------------------------------------------------------- issue 20 item 11
def test_training_warns_when_the_critic_is_worse_than_the_safety_state(monkeypatch) -> None:
    from inferenceguard.training.critic import train as train_mod

    real = train_mod.evaluate_critic

    def worse(*args, **kwargs):
        metrics = real(*args, **kwargs)
        return {**metrics, "auc": 0.0, "auc_z_only": 1.0}  # what --tiny used to end with

    monkeypatch.setattr(train_mod, "evaluate_critic", worse)
    with pytest.warns(UserWarning, match=r"auc=0\.0000 < auc_z_only=1\.0000.*Fix: collect more"):
        result = train_critic(synthetic_rollouts(), FAST, progress=False)
    assert "worse than the safety state alone" in result.worse_than_safety_state


def test_a_critic_better_than_the_safety_state_trains_without_warning(trained) -> None:
    test = trained.metrics["test"]
    assert test["auc"] >= test["auc_z_only"]  # the synthetic hidden states carry the signal
    assert trained.worse_than_safety_state is None


def test_rollouts_in_flight_match_one_prompt_at_a_time(tiny_lm, tmp_path):
    args = (_items(), tiny_lm, length_cost(), word_reward(), SETTINGS)
    collect_rollouts(*args, tmp_path / "one", progress=False)
    collect_rollouts(*args, tmp_path / "many", progress=False, in_flight=3)
    one, many = load_rollouts(tmp_path / "one"), load_rollouts(tmp_path / "many")
    assert [r["responses"] for r in many.records] == [r["responses"] for r in one.records]
    torch.testing.assert_close(many.hidden, one.hidden, atol=1e-3, rtol=1e-3)
