"""A logistic probe on sentence embeddings of the (prompt, response) pair: P(unsafe).

The embedded default cost model. A frozen :class:`~.embedding.SentenceEncoder` embeds the
prompt and the response (the sentence embedding, plus a "head" view of the first tokens);
a linear head over a few pair features (the blocks named in :data:`FEATURE_BLOCKS`) gives
a logit, and the cost is its sigmoid, in `[0, 1]`, with a declared threshold (0.5 unless
the shipped metadata says otherwise).

Why the pair and not the response alone: the same response shape is unsafe or fine
depending on what was asked ("Sure, here is how to …" kill a Python process vs. a person).
The product ``e_prompt * e_response`` lets a linear head weigh response features by the
prompt's topic. The ``gc``/``gct`` blocks make the structure of the label explicit
("harmful request AND compliant answer", OR "toxic text"): three small logistic heads score
P(the prompt is a harmful request) ``g``, P(the response complies rather than refuses)
``c`` and P(the response is abusive or hateful) ``t``, and the main head sees
``[g, c, g*c]`` (``gc``) or ``[g, c, g*c, t]`` (``gct``, the shipped default: the main
head then has only five parameters, so it cannot learn topic shortcuts of its own).
``benchmarks/DEFAULT_COST_MODEL.md`` has the measurements.

On disk a probe is two files in one folder, never pickle::

    head.safetensors   float32 tensors "weight" [input_dim] and "bias" [1], plus with
                       gc/gct "gate.weight" [d], "gate.bias" [1], "comply.weight" [2d],
                       "comply.bias" [1], "tox.weight" [2d], "tox.bias" [1]
    metadata.json      format, encoder id, feature blocks, threshold, sha256 of the
                       weights file, training data summary, metrics, library version

:meth:`EmbeddingProbeCost.load` checks all of it and raises
:class:`~inferenceguard.errors.ArtifactError` on a missing, truncated or altered file.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from .._io import read_metadata_file, read_verified_bytes, write_weights_and_metadata
from .._version import __version__
from ..errors import ArtifactError, ConfigError
from .base import CostModel
from .embedding import SentenceEncoder, encoder_for

__all__ = [
    "FEATURE_BLOCKS",
    "FORMAT",
    "FORMAT_VERSION",
    "META_FILE",
    "WEIGHTS_FILE",
    "EmbeddingProbeCost",
    "aux_shapes",
    "comply_scores",
    "gate_scores",
    "pair_features",
    "tox_scores",
]

FORMAT = "inferenceguard.embedding_probe"
FORMAT_VERSION = 1
WEIGHTS_FILE = "head.safetensors"
META_FILE = "metadata.json"

Aux = Mapping[str, torch.Tensor]
FeatureFn = Callable[[torch.Tensor, torch.Tensor, Aux], torch.Tensor]


def gate_scores(p: torch.Tensor, aux: Aux) -> torch.Tensor:
    """`[n]` P(the prompt is a harmful request) from prompt views `[n, 2, d]`."""
    w, b = aux["gate.weight"], aux["gate.bias"]
    return torch.sigmoid(p[:, 0] @ w.to(p.dtype) + b.to(p.dtype))


def comply_scores(r: torch.Tensor, aux: Aux) -> torch.Tensor:
    """`[n]` P(the response complies rather than refuses) from response views `[n, 2, d]`."""
    w, b = aux["comply.weight"], aux["comply.bias"]
    return torch.sigmoid(torch.cat([r[:, 0], r[:, 1]], dim=1) @ w.to(r.dtype) + b.to(r.dtype))


def tox_scores(r: torch.Tensor, aux: Aux) -> torch.Tensor:
    """`[n]` P(the response is abusive or hateful) from response views `[n, 2, d]`."""
    w, b = aux["tox.weight"], aux["tox.bias"]
    return torch.sigmoid(torch.cat([r[:, 0], r[:, 1]], dim=1) @ w.to(r.dtype) + b.to(r.dtype))


def _gc(p: torch.Tensor, r: torch.Tensor, aux: Aux) -> torch.Tensor:
    g, c = gate_scores(p, aux), comply_scores(r, aux)
    return torch.stack([g, c, g * c], dim=1)


def _gct(p: torch.Tensor, r: torch.Tensor, aux: Aux) -> torch.Tensor:
    return torch.cat([_gc(p, r, aux), tox_scores(r, aux).unsqueeze(1)], dim=1)


#: Feature blocks over the encoder views of prompt ``P`` and response ``R``, each
#: ``[n, 2, d]`` (view 0: sentence embedding, view 1: first-tokens "head"; both unit-norm).
#: Each block is ``[n, d]`` except ``cos`` (``[n, 1]``) and ``gc`` (``[n, 3]``).
FEATURE_BLOCKS: dict[str, FeatureFn] = {
    "r": lambda P, R, aux: R[:, 0],  # response embedding
    "rh": lambda P, R, aux: R[:, 1],  # response head (its first tokens)
    "p": lambda P, R, aux: P[:, 0],  # prompt embedding
    "pr": lambda P, R, aux: P[:, 0] * R[:, 0],  # a diagonal bilinear prompt x response term
    "prh": lambda P, R, aux: P[:, 0] * R[:, 1],
    "absdiff": lambda P, R, aux: (P[:, 0] - R[:, 0]).abs(),
    "cos": lambda P, R, aux: (P[:, 0] * R[:, 0]).sum(dim=1, keepdim=True),
    "gc": _gc,  # [harmful request g, compliance c, g * c] from the auxiliary heads
    "gct": _gct,  # [g, c, g * c, toxicity t]
}
_AUX_BLOCKS = ("gc", "gct")


def aux_shapes(dim: int) -> dict[str, tuple[int, ...]]:
    """Shapes of the auxiliary heads the ``gc``/``gct`` blocks need (``dim``-wide encoder)."""
    return {
        "gate.weight": (dim,),
        "gate.bias": (1,),
        "comply.weight": (2 * dim,),
        "comply.bias": (1,),
        "tox.weight": (2 * dim,),
        "tox.bias": (1,),
    }


def _block_width(name: str, dim: int) -> int:
    return {"cos": 1, "gc": 3, "gct": 4}.get(name, dim)


def pair_features(
    p: torch.Tensor, r: torch.Tensor, features: Sequence[str], aux: Aux | None = None
) -> torch.Tensor:
    """Concatenate the named feature blocks of prompt and response views.

    Args:
        p: `[n, 2, d]` prompt views (:meth:`SentenceEncoder.encode_views`).
        r: `[n, 2, d]` response views.
        features: block names from :data:`FEATURE_BLOCKS`, in order.
        aux: the auxiliary heads (:func:`aux_shapes`), needed by the ``gc`` block.

    Returns:
        `[n, sum of block widths]` tensor in the dtype of ``p``.

    Raises:
        ConfigError: an unknown block name, mismatched shapes, or ``gc`` without ``aux``.
    """
    unknown = [f for f in features if f not in FEATURE_BLOCKS]
    if unknown or not features:
        raise ConfigError(
            f"unknown or empty feature blocks {list(features)!r}; known: {sorted(FEATURE_BLOCKS)}."
        )
    if p.shape != r.shape or p.dim() != 3 or p.shape[1] < 2:
        raise ConfigError(
            f"p and r must both be [n, 2, d] views, got {tuple(p.shape)} and {tuple(r.shape)}."
        )
    needs_aux = any(f in _AUX_BLOCKS for f in features)
    if needs_aux and (aux is None or any(k not in aux for k in aux_shapes(1))):
        raise ConfigError("the 'gc'/'gct' feature blocks need the auxiliary heads (aux).")
    return torch.cat([FEATURE_BLOCKS[f](p, r, aux or {}) for f in features], dim=1)


def _check_head(weight: torch.Tensor, features: Sequence[str], dim: int) -> None:
    """The feature names are known and ``weight`` has one entry per feature column."""
    for f in features:
        if f not in FEATURE_BLOCKS:
            raise ConfigError(f"unknown feature block {f!r}; known: {sorted(FEATURE_BLOCKS)}.")
    expected = sum(_block_width(f, dim) for f in features)
    if weight.numel() != expected or not features:
        raise ConfigError(
            f"weight has {weight.numel()} entries, but features {list(features)} on a "
            f"{dim}-d encoder need {expected}."
        )


def _aux_tensors(aux: Aux | None, features: Sequence[str], dim: int) -> dict[str, torch.Tensor]:
    """The auxiliary heads as float32 CPU tensors, checked against the ``gc``/``gct`` blocks."""
    if not any(f in _AUX_BLOCKS for f in features):
        if aux:
            raise ConfigError("aux heads were given but neither 'gc' nor 'gct' is a feature.")
        return {}
    out: dict[str, torch.Tensor] = {}
    for name, shape in aux_shapes(dim).items():
        if aux is None or name not in aux:
            raise ConfigError(f"the 'gc'/'gct' blocks need the auxiliary tensor {name!r}.")
        t = torch.as_tensor(aux[name], dtype=torch.float32).detach().cpu()
        if tuple(t.shape) != shape:
            raise ConfigError(f"{name} has shape {tuple(t.shape)}, expected {shape}.")
        out[name] = t.contiguous()
    return out


def _read_weights(wpath: Path, meta: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The tensors of ``wpath``, after checking its sha256 and the head's shapes.

    The hash is taken of the very bytes that are parsed, so a file swapped between the
    check and the read cannot slip through.
    """
    blob = read_verified_bytes(wpath, meta["weights_sha256"], "The probe weights")
    from safetensors.torch import load as st_load

    try:
        tensors = st_load(blob)
        weight, bias = tensors["weight"], tensors["bias"]
    except Exception as exc:  # safetensors raises its own error types
        raise ArtifactError(f"{wpath} is not a valid probe weights file ({exc!r}).") from exc
    if weight.shape != (int(meta["input_dim"]),) or bias.shape != (1,):
        raise ArtifactError(
            f"{wpath} holds weight {tuple(weight.shape)} / bias {tuple(bias.shape)}, "
            f"expected ({meta['input_dim']},) / (1,)."
        )
    return tensors


class EmbeddingProbeCost(CostModel):
    """P(unsafe) from a logistic head on sentence embeddings of (prompt, response).

    An empty (or whitespace-only) response costs 0: nothing said yet cannot be unsafe, and
    the search's first block starts from the empty prefix.

    Attributes:
        encoder: the sentence encoder (shared with the relevance reward by default).
        features: feature block names, see :data:`FEATURE_BLOCKS`.
        weight: `[input_dim]` float32 head weights.
        bias: `[1]` float32 head bias.
        aux: the auxiliary gate/comply heads (empty unless ``"gc"`` is a feature).
        threshold: costs above this are unsafe.
        metadata: the JSON metadata (training data summary, metrics, ...).
        id: ``"embedding-probe:<encoder>:<first 12 hex of the weights' sha256>"``.
    """

    def __init__(
        self,
        encoder: SentenceEncoder,
        weight: torch.Tensor,
        bias: torch.Tensor | float,
        *,
        features: Sequence[str],
        aux: Aux | None = None,
        threshold: float = 0.5,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Build a probe from an encoder and head parameters.

        Args:
            encoder: embeds prompts and responses.
            weight: `[input_dim]` head weights (``input_dim`` must match ``features``).
            bias: scalar head bias.
            features: feature block names.
            aux: tensors named as in :func:`aux_shapes`; required iff ``"gc"`` is a feature.
            threshold: the cost above which a text is unsafe, in `(0, 1)`.
            metadata: extra information stored with the probe.

        Raises:
            ConfigError: shapes, features or threshold are invalid.
        """
        features = list(features)
        weight = torch.as_tensor(weight, dtype=torch.float32).detach().cpu().reshape(-1)
        bias = torch.as_tensor(bias, dtype=torch.float32).detach().cpu().reshape(1)
        _check_head(weight, features, encoder.dim)
        aux_t = _aux_tensors(aux, features, encoder.dim)
        tensors = [weight, bias, *aux_t.values()]
        if not all(torch.isfinite(t).all() for t in tensors):
            raise ConfigError("probe weights contain NaN or infinity.")
        if not (isinstance(threshold, int | float) and 0.0 < threshold < 1.0):
            raise ConfigError(f"threshold must be a probability in (0, 1), got {threshold!r}.")
        self.encoder = encoder
        self.features = features
        self.weight = weight
        self.bias = bias
        self.aux = aux_t
        self.threshold = float(threshold)
        self.metadata: dict[str, Any] = dict(metadata or {})
        digest = hashlib.sha256(self._weights_bytes()).hexdigest()
        self.id = f"embedding-probe:{encoder.id.rsplit('/', 1)[-1]}:{digest[:12]}"

    def _weights_bytes(self) -> bytes:
        from safetensors.torch import save

        return save(
            {"weight": self.weight.contiguous(), "bias": self.bias.contiguous(), **self.aux},
            # One key only: safetensors writes the header's metadata map in hash order, so
            # two keys would make the bytes (and the sha256) differ from run to run.
            metadata={"format": f"{FORMAT}/{FORMAT_VERSION}"},
        )

    def features_for(self, prompts: Sequence[str], responses: Sequence[str]) -> torch.Tensor:
        """Pair features `[n, input_dim]` (float32) of the given texts."""
        n = len(prompts)
        views = self.encoder.encode_views(list(prompts) + list(responses))  # dedup + cache
        return pair_features(views[:n], views[n:], self.features, self.aux)

    def logits(self, prompts: Sequence[str], responses: Sequence[str]) -> torch.Tensor:
        """Head logits `[n]` (float32); the cost is their sigmoid."""
        if len(prompts) == 0:
            return torch.empty(0, dtype=torch.float32)
        return self.features_for(prompts, responses) @ self.weight + self.bias

    def explain(self, prompts: Sequence[str], responses: Sequence[str]) -> dict[str, torch.Tensor]:
        """The cost with its parts, for debugging a verdict.

        Returns:
            ``{"cost": [n]}`` plus, with auxiliary heads, ``"harmful_request"`` (g),
            ``"complies"`` (c) and ``"toxic"`` (t), each `[n]` float32.
        """
        out = {"cost": self.score(prompts, responses)}
        if self.aux and len(prompts):
            n = len(prompts)
            views = self.encoder.encode_views(list(prompts) + list(responses))
            out["harmful_request"] = gate_scores(views[:n], self.aux)
            out["complies"] = comply_scores(views[n:], self.aux)
            out["toxic"] = tox_scores(views[n:], self.aux)
        return out

    def _aux_head(self, head: Callable, texts: Sequence[str], what: str) -> torch.Tensor:
        """One auxiliary head on the first view of ``texts``, `[n]` float32."""
        if not self.aux:
            raise ConfigError(
                f"{self.id} has no {what}: it was trained without the 'gc'/'gct' features.",
                hint="train it with features including 'gct'.",
            )
        if len(texts) == 0:
            return torch.empty(0, dtype=torch.float32)
        return head(self.encoder.encode_views(list(texts)), self.aux)

    def request_harm(self, prompts: Sequence[str]) -> torch.Tensor:
        """P(the prompt is a harmful request), the probe's request gate g, `[n]` float32.

        It reads the prompt only, so it is the ``request_gate`` of
        :class:`~inferenceguard.scorers.combinators.RequestAwareReward` and
        :class:`~inferenceguard.scorers.combinators.RefusalRequiredCost`.

        Raises:
            ConfigError: the probe has no auxiliary heads (no ``gc``/``gct`` feature).
        """
        return self._aux_head(gate_scores, prompts, "request gate")

    def refusal_scores(self, prompts: Sequence[str], responses: Sequence[str]) -> torch.Tensor:
        """P(the response declines rather than complies), ``1 - c``, `[n]` float32.

        It reads the response only (``prompts`` keeps the scorer signature), so wrapped as
        ``RewardModel.from_callable(probe.refusal_scores, batched=True)`` it can be the
        ``refusal`` term of :class:`~inferenceguard.scorers.combinators.RequestAwareReward`.

        Raises:
            ConfigError: the probe has no auxiliary heads (no ``gc``/``gct`` feature).
        """
        return 1.0 - self._aux_head(comply_scores, responses, "compliance head")

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> torch.Tensor:
        """P(unsafe) for each (prompt, response) pair.

        Args:
            prompts: `[n]` user requests.
            responses: `[n]` (partial) responses.

        Returns:
            `[n]` float32 CPU tensor in `[0, 1]`; 0 for empty responses.
        """
        cost = torch.sigmoid(self.logits(prompts, responses))
        empty = torch.tensor([not r.strip() for r in responses], dtype=torch.bool)
        return cost.masked_fill(empty, 0.0) if len(responses) else cost

    # ----------------------------------------------------------------- persistence

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``head.safetensors`` and ``metadata.json`` into ``directory`` atomically.

        Returns:
            The directory.
        """
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        blob = self._weights_bytes()
        meta = {
            **self.metadata,
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "encoder": {
                "id": self.encoder.id,
                "dim": self.encoder.dim,
                "max_length": self.encoder.max_length,
            },
            "features": self.features,
            "input_dim": int(self.weight.numel()),
            "threshold": self.threshold,
            "weights_file": WEIGHTS_FILE,
            "weights_sha256": hashlib.sha256(blob).hexdigest(),
            "library_version": __version__,
        }
        write_weights_and_metadata(out, WEIGHTS_FILE, blob, META_FILE, meta)
        self.metadata = {k: v for k, v in meta.items()}
        return out

    @staticmethod
    def read_metadata(directory: str | os.PathLike[str]) -> dict[str, Any]:
        """Read and validate ``metadata.json`` (not the weights).

        Raises:
            ArtifactError: missing, unparsable or of an unknown format/version.
        """
        path = Path(directory) / META_FILE
        meta = read_metadata_file(
            path,
            format=FORMAT,
            version=FORMAT_VERSION,
            required=("encoder", "features", "input_dim", "threshold", "weights_sha256"),
            what="embedding-probe",
            hint="pass the folder written by EmbeddingProbeCost.save() or train_default_cost.",
        )
        unknown = [f for f in meta["features"] if f not in FEATURE_BLOCKS]
        if unknown or not meta["features"]:
            raise ArtifactError(f"{path} names unknown feature blocks {unknown or '[]'}.")
        return meta

    @classmethod
    def load(
        cls,
        directory: str | os.PathLike[str],
        *,
        encoder: SentenceEncoder | None = None,
        device: str | torch.device | None = None,
    ) -> EmbeddingProbeCost:
        """Load a probe saved by :meth:`save`, verifying the weights' sha256.

        Args:
            directory: folder holding ``metadata.json`` and ``head.safetensors``.
            encoder: the encoder to use; by default the one named in the metadata (the
                process-wide embedded encoder when that is all-MiniLM-L6-v2).
            device: device for a newly loaded encoder.

        Raises:
            ArtifactError: a file is missing, truncated, tampered with or inconsistent.
            ConfigError: ``encoder`` has another width than the probe was trained on.
            ModelLoadError: the encoder cannot be loaded.
        """
        directory = Path(directory)
        meta = cls.read_metadata(directory)
        tensors = _read_weights(directory / meta.get("weights_file", WEIGHTS_FILE), meta)
        weight, bias = tensors.pop("weight"), tensors.pop("bias")
        threshold = meta["threshold"]
        if not isinstance(threshold, int | float) or not math.isfinite(threshold):
            raise ArtifactError(f"metadata threshold {threshold!r} is not a finite number.")
        encoder = encoder_for(meta["encoder"], encoder, device, f"the probe in {directory}")
        try:
            return cls(
                encoder,
                weight,
                bias,
                features=meta["features"],
                aux=tensors or None,
                threshold=float(threshold),
                metadata=meta,
            )
        except ConfigError as exc:
            raise ArtifactError(f"{directory} holds an inconsistent probe: {exc}") from exc
