"""``inferenceguard train-critic``: rollouts of a local model, then a critic that loads back."""

from __future__ import annotations

import pytest

from inferenceguard import CostModel, LocalLM, RewardModel
from inferenceguard.cli import main
from inferenceguard.critic import load_critic


def test_cli_help_has_examples(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train-critic", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--samples-per-prompt" in out and "examples:" in out and "accelerate launch" in out
    assert "-m inferenceguard.cli train-critic" in out
    # The default mix and batching are visible where a user looks for them.
    assert "--in-flight" in out and "xstest_safe" in out and "200 harmful" in " ".join(out.split())


def test_cli_trains_and_saves_a_loadable_critic(tiny_lm, tmp_path, monkeypatch, capsys):
    from inferenceguard.scorers import registry

    model_dir = tmp_path / "tiny"
    tiny_lm.model.save_pretrained(model_dir)
    tiny_lm.tokenizer.save_pretrained(model_dir)
    # Long responses go over budget: the tiny model's rollouts get both outcomes.
    cost = CostModel.from_callable(lambda p, r: min(1.0, len(r) / 150), threshold=0.5)
    reward = RewardModel.from_callable(lambda p, r: float(len(set(r.split()))), id="words")
    monkeypatch.setattr(registry, "load_cost_model", lambda spec, **kw: cost)
    monkeypatch.setattr(registry, "load_reward_model", lambda spec, **kw: reward)
    prompts = tmp_path / "p.txt"
    prompts.write_text("\n".join(f"Question {i}: what is {i} plus {i}?" for i in range(14)))
    args = [
        "train-critic", "--model", str(model_dir), "--prompts", f"{prompts}", "--limit", "12",
        "--samples-per-prompt", "3", "--block-len", "4", "--max-new-tokens", "12",
        "--max-epochs", "3", "--rollouts", str(tmp_path / "r"), "--out", str(tmp_path / "c"),
        "--device", "cpu", "--no-progress",
    ]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "safety AUC" in out and "saved" in out
    lm = LocalLM.from_pretrained(model_dir, device="cpu")
    critic = load_critic(tmp_path / "c", lm=lm, cost_model=cost)
    meta = critic.metadata
    assert (
        meta["data"]["prompts"]["train"]
        + meta["data"]["prompts"]["val"]
        + meta["data"]["prompts"]["test"]
        == 12
    )
    assert meta["data"]["samples_per_prompt"] == 3 and meta["max_new_tokens"] == 12
    # Enough to rebuild the run: each prompt spec with its limit.
    assert meta["data"]["prompt_specs"] == [[str(prompts), 12]]


def test_cli_missing_model_folder_fails_before_loading(tmp_path, capsys):
    code = main(["train-critic", "--model", str(tmp_path / "none"), "--out", str(tmp_path / "c")])
    assert code == 2
    assert "model folder" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()
