"""critic/io.py: the critic's file format, its checks on load, and the shipped critic."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import pytest
import torch

from inferenceguard import (
    ArtifactError,
    ConfigError,
    CostModel,
    CriticMismatchError,
    GuardConfig,
    LocalLM,
)
from inferenceguard.critic import LatentCritic, load_critic, read_critic_metadata, save_critic
from inferenceguard.critic import io as critic_io

from .conftest import GUARD_SETTINGS, length_cost


def test_saved_critic_reloads_bit_identically(trained, saved, tiny_lm):
    assert sorted(p.name for p in saved.iterdir()) == ["critic.json", "critic.safetensors"]
    loaded = load_critic(
        saved,
        lm=tiny_lm,
        cost_model=CostModel.from_callable(lambda p, r: 0.0, threshold=0.5, id="zero-cost"),
        config=GuardConfig(**GUARD_SETTINGS),
    )
    original = trained.critic.state_dict()
    assert original.keys() == loaded.state_dict().keys()
    assert all(torch.equal(original[k], v) for k, v in loaded.state_dict().items())
    h, z, f = torch.randn(7, 64), torch.rand(7) - 0.2, torch.rand(7)
    for a, b in zip(trained.critic.predict(h, z, f), loaded.predict(h, z, f), strict=True):
        assert torch.equal(a, b)
    first = (saved / "critic.safetensors").read_bytes()
    save_critic(loaded, saved)  # saving again gives the same bytes (no timestamps, fixed order)
    assert (saved / "critic.safetensors").read_bytes() == first
    meta = read_critic_metadata(saved)
    assert meta["base_model"] == {"id": "tiny-random-llama", "hidden_size": 64}
    assert meta["cost_model"] == {"id": "zero-cost", "threshold": 0.5}
    assert meta["block_len"] == 4 and meta["budget"] == 0.5 and meta["z_scale"] == 0.5
    assert set(meta["data"]["split"]) == {"train", "val", "test"}
    assert meta["metrics"]["val"]["auc"] > 0.8 and meta["library_version"]


def test_no_pickle_anywhere(saved):
    for path in saved.iterdir():
        assert path.suffix in (".json", ".safetensors")
        assert not path.read_bytes().startswith(b"\x80")  # pickle protocol marker
    source = Path(critic_io.__file__).parent
    for module in source.glob("*.py"):
        text = module.read_text()
        assert "import pickle" not in text and "torch.load(" not in text
        assert "allow_pickle" not in text.replace('"allow_pickle"', "")


def _other_lm(tokenizer, hidden_size: int, model_id: str) -> LocalLM:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
    )
    return LocalLM(LlamaForCausalLM(config).eval(), tokenizer, model_id=model_id)


def test_mismatched_critic_is_rejected_with_a_clear_message(saved, tiny_lm):
    zero = CostModel.from_callable(lambda p, r: 0.0, threshold=0.5, id="zero-cost")
    with pytest.raises(CriticMismatchError) as exc:
        load_critic(saved, lm=_other_lm(tiny_lm.tokenizer, 32, "small-llama"))
    message = str(exc.value)
    assert "'tiny-random-llama'" in message and "hidden size 64" in message
    assert "'small-llama'" in message and "hidden size 32" in message
    assert "inferenceguard train-critic" in message
    with pytest.raises(CriticMismatchError, match=r"'other-llama'.*check_model_id=False"):
        load_critic(saved, lm=_other_lm(tiny_lm.tokenizer, 64, "other-llama"))
    assert load_critic(saved, lm=_other_lm(tiny_lm.tokenizer, 64, "x"), check_model_id=False)
    with pytest.raises(CriticMismatchError, match=r"'zero-cost'.*'length-cost'"):
        load_critic(saved, lm=tiny_lm, cost_model=length_cost())
    with pytest.raises(CriticMismatchError, match=r"blocks of 4 tokens.*block_len=8"):
        load_critic(saved, cost_model=zero, config=GuardConfig(block_len=8, max_new_tokens=16))


def test_search_drift_only_warns(saved, tiny_lm, caplog):
    with caplog.at_level(logging.INFO, logger="inferenceguard.critic.io"):
        load_critic(saved, lm=tiny_lm, config=GuardConfig(block_len=4, temperature=0.7))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any("temperature 1.0 vs 0.7" in w for w in warnings)
    assert any("max_new_tokens=12, the guard 128" in i for i in infos)


def test_tampered_or_truncated_files_raise_artifact_error(saved):
    weights = saved / "critic.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    weights.write_bytes(bytes(blob))
    with pytest.raises(ArtifactError, match="sha256"):
        load_critic(saved)
    weights.write_bytes(bytes(blob[: len(blob) // 2]))
    with pytest.raises(ArtifactError, match="truncated"):
        load_critic(saved)
    meta = json.loads((saved / "critic.json").read_text())
    (saved / "critic.json").write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(ArtifactError, match="version 99"):
        load_critic(saved)
    (saved / "critic.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="not JSON"):
        load_critic(saved)
    (saved / "critic.json").unlink()
    with pytest.raises(ArtifactError, match=r"critic.json is missing"):
        load_critic(saved)


def test_weights_that_do_not_fit_the_recorded_architecture_are_refused(saved):
    meta = json.loads((saved / "critic.json").read_text())
    meta["architecture"]["width"] = 32  # sha256 still matches the (unchanged) weights
    (saved / "critic.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="does not hold this critic's weights"):
        load_critic(saved)


def test_saving_an_untrained_critic_needs_metadata(tmp_path):
    from inferenceguard.critic import CriticArchitecture

    with pytest.raises(ConfigError, match="lacks"):
        save_critic(LatentCritic(CriticArchitecture(hidden_size=8)), tmp_path)


def test_default_critic_is_skipped_with_a_warning_when_absent_or_not_applicable(
    tiny_lm, saved, monkeypatch, caplog, tmp_path
):
    monkeypatch.setattr(critic_io, "default_critic_path", lambda: tmp_path / "nothing")
    with caplog.at_level(logging.WARNING, logger="inferenceguard.critic.io"):
        assert critic_io.load_default_critic(tiny_lm) is None
    assert "No shipped critic" in caplog.text
    monkeypatch.setattr(critic_io, "default_critic_path", lambda: saved)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="inferenceguard.critic.io"):
        assert critic_io.load_default_critic(tiny_lm) is None  # not the embedded SmolLM2
    assert "HuggingFaceTB/SmolLM2-135M-Instruct" in caplog.text


def test_shipped_critic_files_are_consistent():
    folder = critic_io.default_critic_path()
    meta = read_critic_metadata(folder)  # format, version and required fields
    weights = folder / critic_io.WEIGHTS_FILE
    assert weights.stat().st_size < 4 * 2**20  # ships inside the wheel
    critic = load_critic(folder)  # sha256 and shapes
    assert critic.hidden_size == meta["base_model"]["hidden_size"] == 576
    assert meta["base_model"]["id"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert meta["block_len"] == GuardConfig().block_len
    assert meta["sampler"]["temperature"] == GuardConfig().temperature
    split = meta["data"]["split"]
    assert split["test"] and split["val"] and split["train"]
    assert not set(split["train"]) & (set(split["val"]) | set(split["test"]))
    assert meta["metrics"]["test"]["auc"] > 0.8 and meta["metrics"]["val"]["auc"] > 0.8


@pytest.mark.slow
def test_shipped_critic_fits_the_default_models(default_lm):
    from inferenceguard.scorers.defaults import load_default_cost_model

    cost = load_default_cost_model()
    critic = critic_io.load_default_critic(default_lm, cost_model=cost, config=GuardConfig())
    assert critic is not None, "retrain it: python benchmarks/train_default_critic.py"
    assert critic.metadata["cost_model"]["id"] == cost.id


def test_a_critic_worse_than_the_safety_state_alone_loads_with_a_warning(saved):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the synthetic critic beats z alone: no warning
        load_critic(saved)
    meta = json.loads((saved / "critic.json").read_text())
    meta["metrics"]["test"].update(auc=0.71, auc_z_only=0.88)
    (saved / "critic.json").write_text(json.dumps(meta))  # the weights' sha256 still matches
    with pytest.warns(UserWarning, match=r"auc=0\.7100 < auc_z_only=0\.8800") as caught:
        critic = load_critic(saved)
    assert isinstance(critic, LatentCritic)  # still usable: the budget never rests on it
    message = str(caught[0].message)
    assert "worse than the safety state alone" in message and "critic=None" in message
    del meta["metrics"]["test"]
    meta["metrics"]["val"].update(auc_live=0.5, auc_live_z_only=0.9)
    (saved / "critic.json").write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match="on its val split: auc_live=0.5000"):
        load_critic(saved)


def test_the_shipped_critic_beats_the_safety_state_alone():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_critic(critic_io.default_critic_path())
