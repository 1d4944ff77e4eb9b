"""Hugging Face plumbing shared by the checkpoint loaders (not public API).

:mod:`.hf_classifier`, :mod:`.guard_model` and :mod:`.pku` import this module and
:mod:`inferenceguard._device`, never :mod:`.registry`: the registry imports the loaders, so
the dependency runs one way only. What lives here:

* sources: :func:`check_source` (one rule, :func:`inferenceguard._sources.local_source`,
  for a local folder against a hub id), hub and offline resolution (:func:`is_offline`,
  :func:`read_config`, :func:`local_snapshot`), :func:`load_auto_model` and :func:`load_error`;
* limits: :func:`check_positive_int`, :func:`check_response_side`, :func:`default_max_length`;
* batching: :func:`fit_pair` (cut a pair to ``max_length`` tokens), :func:`pad_batch`,
  :func:`chunks`, and :class:`PairBatcher`, the one ``fit → pad → chunk → forward`` loop,
  which reports the real tokens it feeds the model to :func:`~.base.count_tokens`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch

from .._device import model_input_device, resolve_device, resolve_dtype
from .._sources import local_source
from ..errors import ConfigError, InputError, ModelLoadError
from .base import count_tokens

ResponseSide = Literal["left", "right"]
#: Token ids (and masks) of one input, before padding: ``{"input_ids": [...], ...}``.
Row = dict[str, list[int]]

# A hub id: "name" or "owner/name" (letters, digits, "-", "_", ".").
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_OFFLINE_HINT = (
    "download it where the hub is reachable (`hf download {id} --local-dir DIR`) and pass "
    "DIR, or unset HF_HUB_OFFLINE to let the hub be used."
)
# What transformers raises for a checkpoint it cannot read.
_LOAD_ERRORS = (OSError, ValueError, KeyError, RuntimeError, ImportError)


# -- sources ------------------------------------------------------------------------------


def is_offline() -> bool:
    """Whether the hub must not be contacted (``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE``).

    Read from the environment at call time, not at import time as ``huggingface_hub``
    does, so a test or an app that sets the variable later is obeyed.
    """
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}:
            return True
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def check_source(spec: Any, *, what: str = "model") -> str:
    """Return ``spec`` as a string after checking it names a folder or a plausible hub id.

    Args:
        spec: a folder or a hub id.
        what: what is being loaded, for messages (``"cost model"``, ``"reward model"``).

    Raises:
        ConfigError: ``spec`` is neither a string nor a path.
        ModelLoadError: it is a file, a path that does not exist, or a hub id that is not
            cached while offline.
    """
    if not isinstance(spec, str | os.PathLike):
        raise ConfigError(
            f"Expected a scorer, a function, 'default', a folder or a hub id, got "
            f"{type(spec).__name__}.",
        )
    local = local_source(spec, what=what)
    if local is not None:
        if local.is_dir():
            return str(local)
        raise ModelLoadError(
            f"{os.fspath(spec)} is a file; a {what} is loaded from a folder.",
            hint="pass the folder that holds config.json and the weights.",
        )
    text = os.fspath(spec)
    if not _HUB_ID.match(text):
        raise ModelLoadError(
            f"No folder at {text} (and it is not a hub id).",
            hint="check the path, or pass a hub id such as 'owner/name'.",
        )
    if is_offline():
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(text, "config.json"), str):
            raise ModelLoadError(
                f"{text} is not a local folder and not in the hub cache, and the hub is "
                "offline (HF_HUB_OFFLINE=1).",
                hint=_OFFLINE_HINT.format(id=text),
            )
    return text


def read_config(source: str, *, revision: str | None = None) -> dict[str, Any]:
    """Read ``config.json`` of a local folder or a hub id (from the cache when offline)."""
    path = Path(source)
    if path.is_dir():
        file = path / "config.json"
        if not file.is_file():
            raise ModelLoadError(
                f"{source} has no config.json.",
                hint="pass the folder written by save_pretrained (it holds config.json).",
            )
    else:
        from huggingface_hub import hf_hub_download

        try:
            file = Path(
                hf_hub_download(
                    source, "config.json", revision=revision, local_files_only=is_offline()
                )
            )
        except Exception as exc:  # hub errors come in many types; all mean "not loadable"
            raise ModelLoadError(
                f"Could not fetch config.json of {source}: {exc}",
                hint=_OFFLINE_HINT.format(id=source) if is_offline() else None,
            ) from exc
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"Unreadable config.json at {file}: {exc}") from exc


def local_snapshot(source: str, *, revision: str | None, allow_patterns: list[str]) -> Path:
    """Return a local folder for ``source``, downloading only ``allow_patterns`` from the hub."""
    if Path(source).is_dir():
        return Path(source)
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(
            source,
            revision=revision,
            allow_patterns=allow_patterns,
            local_files_only=is_offline(),
        )
    except Exception as exc:  # hub errors come in many types; all mean "not loadable"
        raise ModelLoadError(
            f"Could not fetch {source} from the hub: {exc}",
            hint=_OFFLINE_HINT.format(id=source) if is_offline() else None,
        ) from exc
    return Path(folder)


def load_error(source: str, exc: Exception) -> ModelLoadError:
    """Wrap a transformers loading failure with the fix that applies."""
    hint = _OFFLINE_HINT.format(id=source) if is_offline() and not Path(source).is_dir() else None
    return ModelLoadError(f"Could not load {source}: {exc}", hint=hint)


def load_auto_model(
    auto_class: Any,
    source: str | os.PathLike,
    *,
    what: str,
    device: str | torch.device | None,
    dtype: str | torch.dtype | None,
    device_map: str | dict | None,
    trust_remote_code: bool,
    revision: str | None,
    model_kwargs: dict[str, Any] | None,
) -> tuple[Any, Any, str]:
    """Load ``auto_class.from_pretrained(source)`` and its tokenizer, placed on ``device``.

    Args:
        auto_class: a transformers auto class, e.g. ``AutoModelForCausalLM``.
        source: folder or hub id (checked with :func:`check_source`).
        what: what is being loaded, for messages.
        device, dtype, device_map, trust_remote_code, revision, model_kwargs: as the
            loaders' ``from_pretrained`` document them.

    Returns:
        ``(model, tokenizer, source)`` with ``source`` as a checked string.

    Raises:
        ModelLoadError: the source is missing or transformers cannot load it.
    """
    from transformers import AutoTokenizer

    source = check_source(source, what=what)
    torch_device = resolve_device(device)
    offline = is_offline()
    kwargs: dict[str, Any] = {
        "dtype": resolve_dtype(dtype, torch_device),
        "trust_remote_code": trust_remote_code,
        "revision": revision,
        "local_files_only": offline,
        **(model_kwargs or {}),
    }
    if device_map is not None:
        kwargs["device_map"] = device_map
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            source, trust_remote_code=trust_remote_code, revision=revision, local_files_only=offline
        )
        model = auto_class.from_pretrained(source, **kwargs)
    except _LOAD_ERRORS as exc:
        raise load_error(source, exc) from exc
    if device_map is None:
        model = model.to(torch_device)
    return model, tokenizer, source


# -- limits -------------------------------------------------------------------------------


def check_positive_int(name: str, value: Any, *, allow_none: bool = False) -> None:
    """Raise :class:`ConfigError` unless ``value`` is a positive int (or ``None`` if allowed)."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}.")


def check_response_side(value: Any) -> None:
    """Raise :class:`ConfigError` unless ``value`` is ``"left"`` or ``"right"``."""
    if value not in ("left", "right"):
        raise ConfigError(f"response_truncation must be 'left' or 'right', got {value!r}.")


def default_max_length(tokenizer: Any, config: Any) -> int:
    """The smallest sensible context limit the tokenizer and the model config declare."""
    limits = [
        getattr(tokenizer, "model_max_length", None),
        getattr(config, "max_position_embeddings", None),
    ]
    # Tokenizers without a limit report ~1e30; ignore such placeholders.
    usable = [int(x) for x in limits if isinstance(x, int | float) and 0 < x < 1_000_000]
    return min(usable) if usable else 2048


def pad_token_id(tokenizer: Any) -> int:
    """The id to pad with: pad, else EOS, else 0 (masked positions are never read)."""
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if isinstance(candidate, int):
            return candidate
        if isinstance(candidate, list) and candidate:
            return int(candidate[0])
    return 0


# -- batching -----------------------------------------------------------------------------


def chunks(n: int, size: int) -> Iterator[slice]:
    """Slices ``[0, size), [size, 2·size), …`` covering ``range(n)``."""
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def pad_batch(
    rows: Sequence[Row], *, pad_id: int, side: Literal["left", "right"]
) -> dict[str, torch.Tensor]:
    """Pad token-id lists into `[n, L]` long tensors.

    ``input_ids`` is padded with ``pad_id``, every other key (``attention_mask``,
    ``token_type_ids``) with 0. An ``attention_mask`` is added when absent.
    """
    length = max(len(row["input_ids"]) for row in rows)
    keys = list(rows[0])
    if "attention_mask" not in keys:
        keys.append("attention_mask")
    out: dict[str, list[list[int]]] = {key: [] for key in keys}
    for row in rows:
        n_pad = length - len(row["input_ids"])
        for key in keys:
            values = row.get(key) or [1] * len(row["input_ids"])
            fill = [pad_id if key == "input_ids" else 0] * n_pad
            out[key].append(fill + values if side == "left" else values + fill)
    return {key: torch.tensor(value, dtype=torch.long) for key, value in out.items()}


def token_starts(tokenizer: Any, text: str) -> list[int]:
    """Character offset where each token of ``text`` (no special tokens) starts.

    Needs a fast (``tokenizers``-backed) tokenizer for exact offsets; others fall back to
    word starts, which is only used to choose where to cut an over-long text.
    """
    try:
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return [int(start) for start, _ in enc["offset_mapping"]]
    except (NotImplementedError, ValueError, TypeError, KeyError):
        return [m.start() for m in re.finditer(r"\S+", text)]


def fit_pair(
    prompt: str,
    response: str,
    *,
    count: Callable[[str, str], int],
    tokenizer: Any,
    max_length: int,
    response_side: ResponseSide,
) -> tuple[str, str, int]:
    """Shorten ``(prompt, response)`` until the rendered input has ``≤ max_length`` tokens.

    The prompt is cut first, from its start: the response is the text being judged, and the
    end of the prompt (the request itself, usually) is the context that matters most.
    Only when the prompt is gone is the response cut, on ``response_side``: ``"left"``
    drops its beginning and keeps the newest text, which is what prefix costs need (the
    older text was scored when it was the newest, and the safety state keeps the worst
    prefix); ``"right"`` keeps the beginning, as ``transformers`` truncation does.

    Args:
        prompt: the user's request.
        response: the (partial) response.
        count: number of tokens of the rendered input for a (prompt, response).
        tokenizer: used to find token boundaries where the texts may be cut.
        max_length: the limit.
        response_side: which end of the response to drop, if it must be cut.

    Returns:
        ``(prompt, response, dropped)``: the shortened texts and the number of characters
        dropped from the start of the response (0 unless ``response_side="left"`` cut it).

    Raises:
        InputError: even an empty prompt and response exceed ``max_length`` (the template
            alone is too long).
    """
    if count(prompt, response) <= max_length:
        return prompt, response, 0
    starts = token_starts(tokenizer, prompt)
    # Cut k tokens off the prompt's start; the smallest k that fits wins.
    k = _smallest(
        1, len(starts), lambda k: count(_drop_start(prompt, starts, k), response) <= max_length
    )
    if k is not None:
        return _drop_start(prompt, starts, k), response, 0
    if count("", "") > max_length:
        raise InputError(
            f"max_length={max_length} is shorter than the scorer's input template alone.",
            hint="raise max_length.",
        )
    starts = token_starts(tokenizer, response)
    cut = _drop_start if response_side == "left" else _drop_end
    k = _smallest(1, len(starts), lambda k: count("", cut(response, starts, k)) <= max_length)
    kept = cut(response, starts, k if k is not None else len(starts))
    dropped = len(response) - len(kept) if response_side == "left" else 0
    return "", kept, dropped


def _drop_start(text: str, starts: list[int], k: int) -> str:
    """``text`` without its first ``k`` tokens (``starts``: each token's first character)."""
    return text[starts[k] :] if k < len(starts) else ""


def _drop_end(text: str, starts: list[int], k: int) -> str:
    """``text`` without its last ``k`` tokens (the first ``len(starts) - k`` are kept)."""
    end = len(starts) - k
    return text[: starts[end]] if end < len(starts) else text


def _smallest(lo: int, hi: int, ok: Callable[[int], bool]) -> int | None:
    """Smallest k in ``[lo, hi]`` with ``ok(k)`` (assumed monotone), or ``None``.

    Token counts are monotone in how much text is cut except at rare merge boundaries, so
    the bisection result is re-checked and walked forward when needed.
    """
    if hi < lo or not ok(hi):
        return None
    left, right = lo, hi
    while left < right:
        mid = (left + right) // 2
        if ok(mid):
            right = mid
        else:
            left = mid + 1
    while left < hi and not ok(left):
        left += 1
    return left


class PairBatcher:
    """The one batching loop of the Hugging Face scorers: fit → pad → chunk → forward.

    A scorer sets :attr:`pad_side` and implements two hooks:

    * :meth:`_encode_pair`: unpadded token rows for a batch of (prompt, response) pairs;
    * :meth:`_forward_batch`: one forward on a padded batch already on the input device,
      returning a `[b, ...]` CPU tensor.

    :meth:`_forward_all` then shortens over-long pairs with :func:`fit_pair` (the
    prompt first), pads, splits into ``batch_size`` chunks and runs them under
    ``torch.inference_mode``. Call :meth:`_init_batching` from ``__init__``.
    """

    #: Which side padding goes on: "right" keeps real tokens at their positions, "left"
    #: puts every row's last token in the last column.
    pad_side: ClassVar[ResponseSide] = "right"
    tokenizer: Any
    batch_size: int
    max_length: int
    response_truncation: ResponseSide
    _pad_id: int

    def _init_batching(
        self,
        tokenizer: Any,
        model_config: Any,
        *,
        batch_size: int,
        max_length: int | None,
        response_truncation: ResponseSide,
    ) -> None:
        """Check and store the batching settings (shared by every HF scorer)."""
        check_response_side(response_truncation)
        check_positive_int("batch_size", batch_size)
        check_positive_int("max_length", max_length, allow_none=True)
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_length = max_length or default_max_length(tokenizer, model_config)
        self.response_truncation = response_truncation
        self._pad_id = pad_token_id(tokenizer)

    def _encode_pair(self, prompts: Sequence[str], responses: Sequence[str]) -> list[Row]:
        """Unpadded token rows, one per (prompt, response)."""
        raise NotImplementedError

    def _forward_batch(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """One forward on a padded batch on the input device: `[b, ...]` CPU tensor."""
        raise NotImplementedError

    def _input_device(self) -> torch.device:
        """Where input ids must go."""
        return model_input_device(self.model)  # type: ignore[attr-defined]

    def _count(self, prompt: str, response: str) -> int:
        """Number of tokens of the input for one pair."""
        return len(self._encode_pair([prompt], [response])[0]["input_ids"])

    def _fit(self, prompt: str, response: str) -> tuple[str, str, int]:
        """``(prompt, response, dropped)`` cut to :attr:`max_length` (see :func:`fit_pair`)."""
        return fit_pair(
            prompt,
            response,
            count=self._count,
            tokenizer=self.tokenizer,
            max_length=self.max_length,
            response_side=self.response_truncation,
        )

    def _fitted_rows(self, prompts: Sequence[str], responses: Sequence[str]) -> list[Row]:
        """:meth:`_encode_pair`, with over-long pairs shortened and encoded again."""
        rows = self._encode_pair(prompts, responses)
        for i, row in enumerate(rows):
            if len(row["input_ids"]) > self.max_length:
                prompt, response, _ = self._fit(prompts[i], responses[i])
                rows[i] = self._encode_pair([prompt], [response])[0]
        return rows

    def _pad(self, rows: Sequence[Row]) -> dict[str, torch.Tensor]:
        return pad_batch(rows, pad_id=self._pad_id, side=self.pad_side)

    def _batch(self, prompts: Sequence[str], responses: Sequence[str]) -> dict[str, torch.Tensor]:
        """Padded model inputs (on the CPU) for one batch of pairs."""
        return self._pad(self._fitted_rows(prompts, responses))

    @torch.inference_mode()
    def _forward_all(
        self, prompts: Sequence[str], responses: Sequence[str], *, empty: torch.Tensor
    ) -> torch.Tensor:
        """:meth:`_forward_batch` over every pair, ``batch_size`` at a time.

        Returns:
            The rows of every batch concatenated, or ``empty`` for no pairs.
        """
        device = self._input_device()
        out = []
        for part in chunks(len(prompts), self.batch_size):
            batch = self._batch(prompts[part], responses[part])
            count_tokens(int(batch["attention_mask"].sum()))
            out.append(self._forward_batch({k: v.to(device) for k, v in batch.items()}))
        return torch.cat(out) if out else empty
