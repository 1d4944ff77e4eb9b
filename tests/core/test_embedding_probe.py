"""Fast tests of the embedding-probe cost model and its file format.

A deterministic fake encoder stands in for MiniLM, so nothing here loads a real model.
The probe's training code is tested in ``tests/training/test_cost_probe_*.py``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import pytest
import torch

from inferenceguard.errors import ArtifactError, ConfigError
from inferenceguard.scorers.base import CostModel
from inferenceguard.scorers.defaults import default_cost_path
from inferenceguard.scorers.embedding import DEFAULT_ENCODER_ID
from inferenceguard.scorers.embedding_probe import (
    FORMAT_VERSION,
    META_FILE,
    WEIGHTS_FILE,
    EmbeddingProbeCost,
    aux_shapes,
    comply_scores,
    gate_scores,
    pair_features,
    tox_scores,
)


class FakeEncoder:
    """Unit vectors derived from a hash of the text: deterministic, no model."""

    def __init__(self, dim: int = 8, id: str = "fake/encoder") -> None:
        self.dim, self.id, self.max_length = dim, id, 256
        self.calls: list[list[str]] = []

    def encode_views(self, texts: list[str]) -> torch.Tensor:
        self.calls.append(list(texts))
        rows = []
        for t in texts:
            seed = int(hashlib.sha256(t.encode()).hexdigest()[:8], 16)
            rows.append(torch.randn(2, self.dim, generator=torch.Generator().manual_seed(seed)))
        if not rows:
            return torch.empty(0, 2, self.dim)
        return torch.nn.functional.normalize(torch.stack(rows), dim=2)

    def encode(self, texts: list[str]) -> torch.Tensor:
        return self.encode_views(texts)[:, 0]


def make_aux(dim: int = 8) -> dict[str, torch.Tensor]:
    return {name: torch.linspace(-0.5, 0.7, shape[0]) for name, shape in aux_shapes(dim).items()}


def make_probe(
    encoder: FakeEncoder | None = None, features=("r", "rh", "pr", "gct"), threshold=0.5
) -> EmbeddingProbeCost:
    enc = encoder or FakeEncoder()
    width = sum({"cos": 1, "gc": 3, "gct": 4}.get(f, enc.dim) for f in features)
    w = torch.linspace(-1.0, 1.0, width)
    return EmbeddingProbeCost(
        enc,
        w,
        torch.tensor([0.25]),
        features=features,
        aux=make_aux(enc.dim) if {"gc", "gct"} & set(features) else None,
        threshold=threshold,
        metadata={"note": "t"},
    )


PROMPTS = ["How do I bake bread?", "Tell me a joke.", "What is 2+2?"]
RESPONSES = ["Mix flour, water, yeast; knead; bake.", "Why did the chicken cross the road?", ""]


# ----------------------------------------------------------------------------- features & scoring


def test_pair_features_blocks_and_widths() -> None:
    P, R = torch.randn(3, 2, 4), torch.randn(3, 2, 4)
    p, r, rh = P[:, 0], R[:, 0], R[:, 1]
    x = pair_features(P, R, ["r", "rh", "p", "pr", "prh", "absdiff", "cos"])
    assert x.shape == (3, 6 * 4 + 1)
    assert torch.equal(x[:, :4], r)
    assert torch.equal(x[:, 4:8], rh)
    assert torch.equal(x[:, 8:12], p)
    assert torch.equal(x[:, 12:16], p * r)
    assert torch.equal(x[:, 16:20], p * rh)
    assert torch.equal(x[:, 20:24], (p - r).abs())
    assert torch.allclose(x[:, 24], (p * r).sum(1))
    with pytest.raises(ConfigError):
        pair_features(P, R, ["nope"])
    with pytest.raises(ConfigError):
        pair_features(P, R[:2], ["r"])
    with pytest.raises(ConfigError):
        pair_features(p, r, ["r"])  # plain embeddings, not views
    with pytest.raises(ConfigError, match="gc"):
        pair_features(P, R, ["gc"])  # needs the auxiliary heads
    gc = pair_features(P, R, ["gc"], make_aux(4))
    assert gc.shape == (3, 3) and torch.allclose(gc[:, 2], gc[:, 0] * gc[:, 1])
    gct = pair_features(P, R, ["gct"], make_aux(4))
    assert gct.shape == (3, 4) and torch.equal(gct[:, :3], gc)
    assert torch.allclose(gct[:, 3], tox_scores(R, make_aux(4)))


def test_score_is_sigmoid_of_linear_head_and_empty_response_costs_zero() -> None:
    probe = make_probe()
    scores = probe(PROMPTS, RESPONSES)  # CostModel.__call__ checks shape and finiteness
    assert isinstance(probe, CostModel)
    assert scores.shape == (3,) and scores.dtype == torch.float32
    enc = probe.encoder
    P, R = enc.encode_views(PROMPTS[:2]), enc.encode_views(RESPONSES[:2])
    aux = probe.aux
    g = torch.sigmoid(P[:, 0] @ aux["gate.weight"] + aux["gate.bias"])
    c = torch.sigmoid(torch.cat([R[:, 0], R[:, 1]], 1) @ aux["comply.weight"] + aux["comply.bias"])
    t = torch.sigmoid(torch.cat([R[:, 0], R[:, 1]], 1) @ aux["tox.weight"] + aux["tox.bias"])
    x = torch.cat([R[:, 0], R[:, 1], P[:, 0] * R[:, 0], torch.stack([g, c, g * c, t], 1)], 1)
    expected = torch.sigmoid(x @ probe.weight + probe.bias)
    assert torch.allclose(gate_scores(P, aux), g) and torch.allclose(comply_scores(R, aux), c)
    parts = probe.explain(PROMPTS[:2], RESPONSES[:2])
    assert torch.allclose(parts["harmful_request"], g) and torch.allclose(parts["complies"], c)
    assert torch.allclose(parts["toxic"], t) and torch.allclose(parts["cost"], scores[:2])
    assert torch.allclose(scores[:2], expected, atol=1e-6)
    assert scores[2].item() == 0.0  # empty response
    assert ((scores >= 0) & (scores <= 1)).all()
    assert probe([], []).shape == (0,)


def test_one_encoder_call_per_batch() -> None:
    enc = FakeEncoder()
    make_probe(enc).score(PROMPTS, RESPONSES)
    assert len(enc.calls) == 1 and enc.calls[0] == PROMPTS + RESPONSES


def test_constructor_validates() -> None:
    enc = FakeEncoder()
    with pytest.raises(ConfigError, match="need 16"):
        EmbeddingProbeCost(enc, torch.zeros(8), 0.0, features=["r", "pr"])
    EmbeddingProbeCost(enc, torch.zeros(17), 0.0, features=["r", "pr", "cos"])  # cos is 1 wide
    with pytest.raises(ConfigError, match=r"gate\.weight"):
        EmbeddingProbeCost(enc, torch.zeros(11), 0.0, features=["r", "gc"])  # gc needs aux
    bad = {**make_aux(), "comply.weight": torch.zeros(8)}
    with pytest.raises(ConfigError, match=r"comply\.weight"):
        EmbeddingProbeCost(enc, torch.zeros(11), 0.0, features=["r", "gc"], aux=bad)
    with pytest.raises(ConfigError, match="neither"):
        EmbeddingProbeCost(enc, torch.zeros(8), 0.0, features=["r"], aux=make_aux())
    with pytest.raises(ConfigError, match="threshold"):
        EmbeddingProbeCost(enc, torch.zeros(8), 0.0, features=["r"], threshold=1.5)
    with pytest.raises(ConfigError, match="unknown"):
        EmbeddingProbeCost(enc, torch.zeros(8), 0.0, features=["q"])
    with pytest.raises(ConfigError, match="NaN"):
        EmbeddingProbeCost(enc, torch.full((8,), math.nan), 0.0, features=["r"])


def test_id_names_encoder_and_weights() -> None:
    a, b = make_probe(), make_probe(threshold=0.4)
    assert a.id.startswith("embedding-probe:encoder:") and a.id == b.id  # same weights
    c = EmbeddingProbeCost(a.encoder, a.weight + 1, a.bias, features=a.features, aux=a.aux)
    assert c.id != a.id


# ----------------------------------------------------------------------------- file format


def test_save_load_round_trip_is_bit_identical(tmp_path: Path) -> None:
    probe = make_probe(threshold=0.42)
    probe.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [WEIGHTS_FILE, META_FILE]  # no temp files
    assert all((tmp_path / f).stat().st_mode & 0o044 for f in (WEIGHTS_FILE, META_FILE))
    loaded = EmbeddingProbeCost.load(tmp_path, encoder=probe.encoder)
    assert torch.equal(loaded.weight, probe.weight) and torch.equal(loaded.bias, probe.bias)
    assert loaded.aux.keys() == probe.aux.keys()
    assert all(torch.equal(loaded.aux[k], probe.aux[k]) for k in probe.aux)
    assert loaded.features == probe.features and loaded.threshold == 0.42
    assert loaded.id == probe.id
    assert torch.equal(loaded.score(PROMPTS, RESPONSES), probe.score(PROMPTS, RESPONSES))
    meta = json.loads((tmp_path / META_FILE).read_text())
    assert meta["format_version"] == FORMAT_VERSION and meta["note"] == "t"
    assert (
        meta["weights_sha256"] == hashlib.sha256((tmp_path / WEIGHTS_FILE).read_bytes()).hexdigest()
    )
    assert meta["library_version"] and meta["encoder"]["id"] == "fake/encoder"
    # Saving again writes the very same bytes.
    before = (tmp_path / WEIGHTS_FILE).read_bytes()
    loaded.save(tmp_path)
    assert (tmp_path / WEIGHTS_FILE).read_bytes() == before


def _saved(tmp_path: Path) -> tuple[EmbeddingProbeCost, Path]:
    probe = make_probe()
    probe.save(tmp_path)
    return probe, tmp_path


def test_tampered_weights_raise(tmp_path: Path) -> None:
    probe, d = _saved(tmp_path)
    blob = bytearray((d / WEIGHTS_FILE).read_bytes())
    blob[-3] ^= 0x01  # flip one bit in a weight
    (d / WEIGHTS_FILE).write_bytes(bytes(blob))
    with pytest.raises(ArtifactError, match="sha256"):
        EmbeddingProbeCost.load(d, encoder=probe.encoder)


def test_truncated_weights_raise(tmp_path: Path) -> None:
    probe, d = _saved(tmp_path)
    (d / WEIGHTS_FILE).write_bytes((d / WEIGHTS_FILE).read_bytes()[:40])
    with pytest.raises(ArtifactError):
        EmbeddingProbeCost.load(d, encoder=probe.encoder)


def test_truncated_weights_with_matching_hash_still_raise(tmp_path: Path) -> None:
    # Someone "fixes" the hash: the safetensors parser or the shape check must still refuse.
    probe, d = _saved(tmp_path)
    blob = (d / WEIGHTS_FILE).read_bytes()[:60]
    (d / WEIGHTS_FILE).write_bytes(blob)
    meta = json.loads((d / META_FILE).read_text())
    meta["weights_sha256"] = hashlib.sha256(blob).hexdigest()
    (d / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="not a valid"):
        EmbeddingProbeCost.load(d, encoder=probe.encoder)


def test_wrong_shape_with_matching_hash_raises(tmp_path: Path) -> None:
    probe, d = _saved(tmp_path)
    meta = json.loads((d / META_FILE).read_text())
    meta["input_dim"] = 99
    (d / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="expected"):
        EmbeddingProbeCost.load(d, encoder=probe.encoder)


@pytest.mark.parametrize("victim", [WEIGHTS_FILE, META_FILE])
def test_missing_file_raises(tmp_path: Path, victim: str) -> None:
    probe, d = _saved(tmp_path)
    (d / victim).unlink()
    with pytest.raises(ArtifactError, match=r"missing|No metadata"):
        EmbeddingProbeCost.load(d, encoder=probe.encoder)


def test_truncated_or_foreign_metadata_raises(tmp_path: Path) -> None:
    probe, d = _saved(tmp_path)
    text = (d / META_FILE).read_text()
    (d / META_FILE).write_text(text[: len(text) // 2])
    with pytest.raises(ArtifactError, match="truncated"):
        EmbeddingProbeCost.load(d, encoder=probe.encoder)
    meta = json.loads(text)
    for key, value, match in [
        ("format_version", 999, "format_version"),
        ("format", "something.else", "format"),
        ("features", ["r", "zz"], "unknown feature"),
    ]:
        (d / META_FILE).write_text(json.dumps({**meta, key: value}))
        with pytest.raises(ArtifactError, match=match):
            EmbeddingProbeCost.load(d, encoder=probe.encoder)
    (d / META_FILE).write_text(json.dumps({k: v for k, v in meta.items() if k != "threshold"}))
    with pytest.raises(ArtifactError, match="lacks"):
        EmbeddingProbeCost.load(d, encoder=probe.encoder)


def test_encoder_width_mismatch_is_config_error(tmp_path: Path) -> None:
    _probe, d = _saved(tmp_path)
    with pytest.raises(ConfigError, match="8-d"):
        EmbeddingProbeCost.load(d, encoder=FakeEncoder(dim=16))


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_saved_files_follow_the_umask(tmp_path: Path, umask: int) -> None:
    # Like every other artefact the library writes (inferenceguard._io), not a fixed 0644.
    old = os.umask(umask)
    try:
        make_probe().save(tmp_path)
    finally:
        os.umask(old)
    for name in (WEIGHTS_FILE, META_FILE):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask


def test_failed_save_leaves_old_files_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    probe, d = _saved(tmp_path)
    before = {p.name: p.read_bytes() for p in d.iterdir()}

    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    other = EmbeddingProbeCost(
        probe.encoder, probe.weight * 2, probe.bias, features=probe.features, aux=probe.aux
    )
    with pytest.raises(OSError, match="disk full"):
        other.save(d)
    assert {p.name: p.read_bytes() for p in d.iterdir()} == before


def test_shipped_default_assets_are_consistent() -> None:
    # Checks the files in the package without loading MiniLM (a 384-d stand-in encoder).
    d = default_cost_path()
    probe = EmbeddingProbeCost.load(d, encoder=FakeEncoder(dim=384, id=DEFAULT_ENCODER_ID))
    meta = probe.metadata
    assert meta["encoder"]["id"] == DEFAULT_ENCODER_ID
    assert 0 < probe.threshold < 1
    assert probe.id.startswith("embedding-probe:all-MiniLM-L6-v2:")
    train = meta["training"]
    assert train["counts"]["train"] and train["sources_sha256"] and train["generated_sha256"]
    assert meta["metrics"]["test"]["roc_auc"] > 0.9
    assert (d / WEIGHTS_FILE).stat().st_size < 5_000_000  # ships in the wheel


def test_default_encoder_loads_once_under_concurrency(monkeypatch: pytest.MonkeyPatch) -> None:
    """Concurrent first calls share one (slow) load; another device gets its own instance."""
    import threading
    import time

    from inferenceguard.scorers import embedding

    made: list[str] = []

    class SlowEncoder:
        def __init__(self, model: object, *, device: str) -> None:
            time.sleep(0.05)  # widen the race window
            made.append(device)

    monkeypatch.setattr(embedding, "SentenceEncoder", SlowEncoder)
    monkeypatch.setattr(embedding, "_DEFAULTS", {})
    got: list[object] = []
    threads = [
        threading.Thread(target=lambda: got.append(embedding.get_default_encoder()))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert made == ["cpu"] and len(got) == 8 and all(g is got[0] for g in got)
    assert embedding.get_default_encoder("meta") is not got[0] and made == ["cpu", "meta"]
