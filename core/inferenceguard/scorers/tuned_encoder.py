"""Text classifiers made of MiniLM with its top layers fine-tuned and logistic heads.

The request gate (:class:`~.request_gate.RequestHarmGate`, one head reading the request)
and the response judge (:class:`~.response_judge.ResponseJudge`, two heads reading the
response) are the same kind of model: a copy of the shared sentence encoder whose top
:attr:`TunedEncoderHeads.tuned_layers` transformer layers are replaced by fine-tuned ones,
and one logistic head per named output over the scaled, L2-normalised mean pool of the
last hidden states. This module holds what they share: building the copy and checking the
layers, scoring with a per-text cache, the float16 safetensors file, its sha256-checked
metadata and the id. Why fine-tuned layers rather than a head on the frozen embedding: a
frozen sentence embedding mostly encodes the *topic*, so "kill a Python process" sits next
to "kill my neighbour" and a polite refusal that names a weapon next to its instructions.

On disk a model is two files in one folder, never pickle::

    <weights file>   float16 tensors: the tuned layers' parameters (named as in the
                     encoder, ``encoder.layer.<i>.…``) and ``<head>.weight`` [d],
                     ``<head>.bias`` [1] per head
    metadata.json    format, encoder id, tuned layers, heads, max_length, sha256 of the
                     weights file, training summary, metrics, library version
"""

from __future__ import annotations

import copy
import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch

from .._io import read_metadata_file, read_verified_bytes, write_weights_and_metadata
from .._version import __version__
from ..errors import ArtifactError, ConfigError
from .embedding import SentenceEncoder, encoder_for, length_ordered

__all__ = ["META_FILE", "POOL_SCALE", "TunedEncoderHeads", "pooled_features"]

META_FILE = "metadata.json"
#: The mean-pooled, L2-normalised output is scaled by this before the heads, so that a
#: unit-norm input can reach confident logits with small head weights.
POOL_SCALE = 10.0

Head = tuple[torch.Tensor, torch.Tensor]
_Model = TypeVar("_Model", bound="TunedEncoderHeads")


def pooled_features(
    model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    max_length: int,
    device: str | torch.device,
) -> torch.Tensor:
    """What the heads read: ``POOL_SCALE`` x the L2-normalised mean of the last hidden
    states over real tokens, `[n, d]`. One function for the trainers (a model in training
    mode, with gradients) and for scoring, so the two cannot drift apart."""
    batch = tokenizer(
        list(texts), truncation=True, max_length=max_length, padding=True, return_tensors="pt"
    ).to(device)
    hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
    return torch.nn.functional.normalize(pooled, dim=-1) * POOL_SCALE


def _layer_prefix(index: int) -> str:
    return f"encoder.layer.{index}."


class TunedEncoderHeads:
    """Base class: an encoder copy with fine-tuned top layers and named logistic heads.

    Subclasses set :attr:`FORMAT`, :attr:`WEIGHTS_FILE`, :attr:`HEADS` (the head names, in
    output order), :attr:`KIND` (the id's prefix) and :attr:`DEFAULT_MAX_LENGTH`.

    Attributes:
        id: ``"<KIND>:<encoder>:<sha256[:12] of the weights>"``; it becomes part of the id
            of every cost model built on it, so a critic trained with one model refuses
            to run with another.
        tuned_layers: indices of the encoder layers this model replaces.
        max_length: texts are truncated to this many tokens.
        metadata: what :meth:`save` wrote (training summary, metrics).
    """

    FORMAT: ClassVar[str] = ""
    FORMAT_VERSION: ClassVar[int] = 1
    WEIGHTS_FILE: ClassVar[str] = ""
    HEADS: ClassVar[tuple[str, ...]] = ()
    KIND: ClassVar[str] = ""
    DEFAULT_MAX_LENGTH: ClassVar[int] = 128

    def __init__(
        self,
        encoder: SentenceEncoder,
        layers: Mapping[str, torch.Tensor],
        heads: Mapping[str, Head],
        *,
        max_length: int | None = None,
        cache_size: int = 4096,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Build the model on a copy of ``encoder``'s model with ``layers`` swapped in.

        Args:
            encoder: the frozen base encoder (its model is copied, not changed).
            layers: parameters of the tuned layers, named as in the encoder's state dict
                (``encoder.layer.<i>.…``); every parameter of a named layer is required.
            heads: ``name -> (weight [d], bias [1])`` for exactly the names in
                :attr:`HEADS`.
            max_length: truncate texts to this many tokens (default
                :attr:`DEFAULT_MAX_LENGTH`).
            cache_size: outputs of this many recent texts are kept (``0``: none).
            metadata: recorded with the model.

        Raises:
            ConfigError: shapes or names do not fit the encoder, or a size is out of range.
        """
        max_length = self.DEFAULT_MAX_LENGTH if max_length is None else max_length
        if not (isinstance(max_length, int) and max_length >= 8):
            raise ConfigError(f"max_length must be an int >= 8, got {max_length!r}.")
        if not (isinstance(cache_size, int) and cache_size >= 0):
            raise ConfigError(f"cache_size must be an int >= 0, got {cache_size!r}.")
        if set(heads) != set(self.HEADS):
            raise ConfigError(
                f"{type(self).__name__} needs the heads {list(self.HEADS)}, got {sorted(heads)}."
            )
        dim = encoder.dim
        for name, (weight, bias) in heads.items():
            if tuple(weight.shape) != (dim,) or tuple(bias.shape) != (1,):
                raise ConfigError(
                    f"the {name!r} head must be [{dim}] and [1] for the {dim}-d encoder "
                    f"{encoder.id}, got {tuple(weight.shape)} and {tuple(bias.shape)}."
                )
        self.encoder = encoder
        self.tokenizer = encoder.tokenizer
        self.model = copy.deepcopy(encoder.model).eval()
        self.tuned_layers = self._swap_in(layers)
        self.model.requires_grad_(False)
        # [H, d] and [H]: every head in one matrix product.
        self.head_weight = torch.stack([heads[h][0].float() for h in self.HEADS]).to(encoder.device)
        self.head_bias = torch.cat([heads[h][1].float() for h in self.HEADS]).to(encoder.device)
        self.max_length = max_length
        self.cache_size = cache_size
        self._cache: OrderedDict[str, tuple[float, ...]] = OrderedDict()
        self._lock = threading.Lock()
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.id = f"{self.KIND}:{encoder.id.rsplit('/', 1)[-1]}:{self._digest()[:12]}"

    def _swap_in(self, layers: Mapping[str, torch.Tensor]) -> list[int]:
        """Load ``layers`` into the copy; returns the tuned layer indices."""
        state = self.model.state_dict()
        n_layers = int(self.model.config.num_hidden_layers)
        tuned = sorted({int(k.split(".")[2]) for k in layers if k.startswith("encoder.layer.")})
        if not tuned or set(layers) != {
            k for i in tuned for k in state if k.startswith(_layer_prefix(i))
        }:
            raise ConfigError(
                "layers must hold every parameter of whole encoder layers, named as in "
                "the encoder's state dict (encoder.layer.<i>.…).",
                hint=f"pass the tensors {type(self).__name__}.save() wrote.",
            )
        if tuned[-1] >= n_layers:
            raise ConfigError(f"the encoder has {n_layers} layers; got {tuned}.")
        for name, tensor in layers.items():
            if tuple(tensor.shape) != tuple(state[name].shape):
                raise ConfigError(
                    f"{name} is {tuple(tensor.shape)}, the encoder's is {tuple(state[name].shape)}."
                )
        self.model.load_state_dict(
            {k: v.to(state[k].dtype) for k, v in layers.items()}, strict=False
        )
        return tuned

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r}, tuned_layers={self.tuned_layers})"

    # ------------------------------------------------------------------ scoring

    def tensors(self) -> dict[str, torch.Tensor]:
        """The tensors :meth:`save` writes (float16, on the CPU)."""
        state = self.model.state_dict()
        out = {
            k: v.detach().to("cpu", torch.float16).contiguous()
            for k, v in state.items()
            if any(k.startswith(_layer_prefix(i)) for i in self.tuned_layers)
        }
        for i, name in enumerate(self.HEADS):
            out[f"{name}.weight"] = (
                self.head_weight[i].detach().to("cpu", torch.float16).contiguous()
            )
            out[f"{name}.bias"] = (
                self.head_bias[i : i + 1].detach().to("cpu", torch.float16).contiguous()
            )
        return out

    def _weights_bytes(self) -> bytes:
        from safetensors.torch import save as st_save

        return st_save(dict(sorted(self.tensors().items())))

    def _digest(self) -> str:
        return hashlib.sha256(self._weights_bytes()).hexdigest()

    def head_logits(self, texts: Sequence[str]) -> torch.Tensor:
        """Logits of every head for ``texts``, `[n, H]` float32 (no cache)."""
        features = pooled_features(
            self.model, self.tokenizer, texts, self.max_length, self.encoder.device
        )
        return features @ self.head_weight.T + self.head_bias

    def probabilities(self, texts: Sequence[str]) -> torch.Tensor:
        """Sigmoid of every head for each text, `[n, H]` float32 on the CPU, cached per
        distinct text. An empty (or blank) text scores 0 on every head."""
        texts = list(texts)
        with self._lock:
            known = {t: self._cache[t] for t in set(texts) if t in self._cache}
        todo = length_ordered(t for t in texts if t not in known and t.strip())
        fresh: dict[str, tuple[float, ...]] = {}
        with torch.inference_mode():
            for i in range(0, len(todo), 64):
                part = todo[i : i + 64]
                values = torch.sigmoid(self.head_logits(part)).float().cpu().tolist()
                fresh.update(zip(part, map(tuple, values), strict=True))
        if self.cache_size and fresh:
            with self._lock:
                for t, v in fresh.items():
                    self._cache[t] = v
                    self._cache.move_to_end(t)
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        values = {**known, **fresh}
        zero = (0.0,) * len(self.HEADS)
        return torch.tensor([values.get(t, zero) for t in texts], dtype=torch.float32).reshape(
            len(texts), len(self.HEADS)
        )

    def clear_cache(self) -> None:
        """Forget the cached outputs (after changing the weights in place)."""
        with self._lock:
            self._cache.clear()

    # ------------------------------------------------------------- persistence

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the weights file and ``metadata.json`` into ``directory`` atomically.

        The weights are stored as float16; the model's id is the hash of those bytes.
        """
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        blob = self._weights_bytes()
        meta = {
            **self.metadata,
            "format": self.FORMAT,
            "format_version": self.FORMAT_VERSION,
            "encoder": {"id": self.encoder.id, "dim": self.encoder.dim},
            "tuned_layers": self.tuned_layers,
            "heads": list(self.HEADS),
            "max_length": self.max_length,
            "pool_scale": POOL_SCALE,
            "weights_file": self.WEIGHTS_FILE,
            "weights_sha256": hashlib.sha256(blob).hexdigest(),
            "library_version": __version__,
        }
        write_weights_and_metadata(out, self.WEIGHTS_FILE, blob, META_FILE, meta)
        self.metadata = meta
        return out

    @classmethod
    def _from_parts(
        cls: type[_Model],
        encoder: SentenceEncoder,
        layers: dict[str, torch.Tensor],
        heads: dict[str, Head],
        **kwargs: Any,
    ) -> _Model:
        """Construct from loaded parts (subclasses with another signature override it)."""
        return cls(encoder, layers, heads, **kwargs)

    @classmethod
    def load(
        cls: type[_Model],
        directory: str | os.PathLike[str],
        *,
        encoder: SentenceEncoder | None = None,
        device: str | torch.device | None = None,
    ) -> _Model:
        """Load a model saved by :meth:`save`, verifying the weights' sha256.

        Args:
            directory: folder holding ``metadata.json`` and the weights file.
            encoder: the base encoder; by default the one named in the metadata (the
                process-wide embedded encoder for all-MiniLM-L6-v2).
            device: device for a newly loaded encoder.

        Raises:
            ArtifactError: a file is missing, truncated, altered or inconsistent.
            ConfigError: ``encoder`` has another width than the model was trained on.
            ModelLoadError: the base encoder cannot be loaded.
        """
        directory = Path(directory)
        what = cls.KIND
        meta = read_metadata_file(
            directory / META_FILE,
            format=cls.FORMAT,
            version=cls.FORMAT_VERSION,
            required=("encoder", "max_length", "weights_sha256"),
            what=what,
            hint=f"pass the folder written by {cls.__name__}.save().",
        )
        blob = read_verified_bytes(
            directory / meta.get("weights_file", cls.WEIGHTS_FILE),
            meta["weights_sha256"],
            f"The {what} weights",
        )
        from safetensors.torch import load as st_load

        try:
            tensors = st_load(blob)
            heads = {h: (tensors.pop(f"{h}.weight"), tensors.pop(f"{h}.bias")) for h in cls.HEADS}
        except Exception as exc:  # safetensors raises its own error types; KeyError too
            raise ArtifactError(f"{directory} holds no valid {what} weights ({exc!r}).") from exc
        encoder = encoder_for(meta["encoder"], encoder, device, f"the {what} in {directory}")
        try:
            return cls._from_parts(
                encoder, tensors, heads, max_length=int(meta["max_length"]), metadata=meta
            )
        except ConfigError as exc:
            raise ArtifactError(f"{directory} holds an inconsistent {what}: {exc}") from exc
