"""Turn whatever the user passed (a scorer, a function, ``"default"``, a path or hub id) into a scorer.

Usage::

    cost = load_cost_model("PKU-Alignment/beaver-7b-v1.0-cost")          # picks the PKU loader
    cost = load_cost_model("./my-toxicity-classifier", unsafe_labels=["toxic"])
    cost = load_cost_model("meta-llama/Llama-Guard-3-1B", kind="guard", device="cuda")
    cost = load_cost_model(lambda prompt, response: float("bomb" in response), threshold=0.5)
    reward = load_reward_model("OpenAssistant/reward-model-deberta-v3-large-v2")

For a path or hub id the loader is chosen from ``config.json``'s ``architectures``:
``*ForScore`` (Safe-RLHF score models) → ``"pku"``, ``*ForSequenceClassification`` →
``"classifier"``, ``*ForCausalLM`` → ``"guard"`` (cost only). ``kind=`` overrides it.

The second half of this module holds the plumbing that the Hugging Face loaders
(:mod:`.hf_classifier`, :mod:`.guard_model`, :mod:`.pku`) share: resolving a path or hub id
offline, device and dtype defaults, fitting a (prompt, response) pair into ``max_length``
tokens, and padding. It lives here, beside the code that inspects checkpoints, so the
loaders do not depend on one another.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import torch

from .._device import model_input_device, resolve_device, resolve_dtype  # noqa: F401  (re-exported to the loaders)
from ..errors import ConfigError, InputError, ModelLoadError
from .base import CostModel, RewardModel

__all__ = ["COST_KINDS", "REWARD_KINDS", "load_cost_model", "load_reward_model"]

#: Loader families for cost models, by the name ``kind=`` accepts.
COST_KINDS: tuple[str, ...] = ("classifier", "guard", "pku")
#: Loader families for reward models (a generative guard only yields a cost).
REWARD_KINDS: tuple[str, ...] = ("classifier", "pku")

# Substrings of config.json "architectures" → kind, tried in this order.
_ARCHITECTURE_KINDS: tuple[tuple[str, str], ...] = (
    ("ForScore", "pku"),
    ("ForSequenceClassification", "classifier"),
    ("ForCausalLM", "guard"),
)

Spec = CostModel | RewardModel | Callable[..., Any] | str | os.PathLike


def load_cost_model(
    spec: Spec, *, kind: str | None = None, threshold: float | None = None, **kwargs: Any
) -> CostModel:
    """Build a cost model from a scorer, a function, ``"default"``, a folder or a hub id.

    Args:
        spec: a :class:`CostModel` (returned as is); a function ``fn(prompt, response)``
            (needs ``threshold``; ``batched=True`` and ``id=`` go to
            :meth:`CostModel.from_callable`); ``"default"`` for the embedded cost model;
            or a local folder / hub id of a Hugging Face checkpoint.
        kind: force the loader (one of :data:`COST_KINDS`) instead of reading
            ``config.json``.
        threshold: costs above it are unsafe. Required for a function; for checkpoints
            it overrides the loader's default (0.5 for probabilities, 0.0 for PKU).
        **kwargs: passed to the loader's ``from_pretrained`` (``device``, ``dtype``,
            ``batch_size``, ``max_length``, ``trust_remote_code``, …).

    Returns:
        The cost model.

    Raises:
        ConfigError: unknown ``kind``, a reward model where a cost model is needed, or a
            function without ``threshold``.
        ModelLoadError: the checkpoint cannot be found or loaded.
    """
    if isinstance(spec, CostModel):
        return spec
    if isinstance(spec, RewardModel):
        raise ConfigError(
            f"load_cost_model got a reward model ({spec!r}).",
            hint="pass it as the reward model, or pass a CostModel here.",
        )
    if kind is not None:
        _check_kind(kind, COST_KINDS, role="cost")
    if _is_default(spec):
        from .defaults import load_default_cost_model  # lazy: loads the embedded models

        model = load_default_cost_model(device=kwargs.get("device"))
        if threshold is not None:
            model.threshold = float(threshold)
        return model
    if callable(spec) and not isinstance(spec, str | os.PathLike):
        if threshold is None:
            raise ConfigError(
                "A function used as a cost model needs a threshold.",
                hint="pass threshold=…, the cost above which a text is unsafe (e.g. 0.5).",
            )
        return CostModel.from_callable(spec, threshold=threshold, **_callable_kwargs(kwargs))
    source = check_source(spec)
    kind = kind or _detect_kind(source, kwargs.get("revision"), COST_KINDS, role="cost")
    if threshold is not None:
        kwargs["threshold"] = threshold
    if kind == "classifier":
        from .hf_classifier import SequenceClassifierCost

        return SequenceClassifierCost.from_pretrained(source, **kwargs)
    if kind == "guard":
        from .guard_model import GenerativeGuardCost

        return GenerativeGuardCost.from_pretrained(source, **kwargs)
    from .pku import PKUCost

    return PKUCost.from_pretrained(source, **kwargs)


def load_reward_model(spec: Spec, *, kind: str | None = None, **kwargs: Any) -> RewardModel:
    """Build a reward model from a scorer, a function, ``"default"``, a folder or a hub id.

    Args:
        spec: a :class:`RewardModel` (returned as is); a function ``fn(prompt, response)``;
            ``"default"`` for the embedded relevance reward; or a local folder / hub id.
        kind: force the loader (one of :data:`REWARD_KINDS`).
        **kwargs: passed to the loader (see :func:`load_cost_model`).

    Returns:
        The reward model.

    Raises:
        ConfigError: unknown ``kind`` or a cost model where a reward model is needed.
        ModelLoadError: the checkpoint cannot be found or loaded.
    """
    if isinstance(spec, RewardModel):
        return spec
    if isinstance(spec, CostModel):
        raise ConfigError(
            f"load_reward_model got a cost model ({spec!r}).",
            hint="pass it as the cost model, or pass a RewardModel here.",
        )
    if kind is not None:
        _check_kind(kind, REWARD_KINDS, role="reward")
    if _is_default(spec):
        from .defaults import load_default_reward_model  # lazy: loads the embedded models

        return load_default_reward_model(device=kwargs.get("device"))
    if callable(spec) and not isinstance(spec, str | os.PathLike):
        return RewardModel.from_callable(spec, **_callable_kwargs(kwargs))
    source = check_source(spec)
    kind = kind or _detect_kind(source, kwargs.get("revision"), REWARD_KINDS, role="reward")
    if kind == "classifier":
        from .hf_classifier import SequenceClassifierReward

        return SequenceClassifierReward.from_pretrained(source, **kwargs)
    from .pku import PKUReward

    return PKUReward.from_pretrained(source, **kwargs)


def _callable_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The options a wrapped function takes; loader options (device, …) do not apply."""
    return {k: v for k, v in kwargs.items() if k in ("id", "batched")}


def _is_default(spec: Any) -> bool:
    return isinstance(spec, str) and spec == "default"


def _check_kind(kind: str, valid: Sequence[str], *, role: str) -> None:
    if kind in valid:
        return
    close = difflib.get_close_matches(str(kind), valid, n=1)
    guess = f" Did you mean {close[0]!r}?" if close else ""
    extra = (
        " (a generative guard only yields costs)" if role == "reward" and kind == "guard" else ""
    )
    raise ConfigError(
        f"Unknown {role} model kind {kind!r}{extra}.{guess}",
        hint=f"use one of {', '.join(repr(k) for k in valid)}.",
    )


def _detect_kind(source: str, revision: str | None, valid: Sequence[str], *, role: str) -> str:
    config = read_config(source, revision=revision)
    architectures = config.get("architectures") or []
    for marker, kind in _ARCHITECTURE_KINDS:
        if any(marker in str(arch) for arch in architectures):
            if kind not in valid:
                raise ConfigError(
                    f"{source} is a {architectures} checkpoint, which cannot be a {role} model.",
                    hint=f"pass kind= one of {', '.join(repr(k) for k in valid)} if you are sure.",
                )
            return kind
    raise ConfigError(
        f"Cannot tell which loader fits {source}: config.json lists architectures "
        f"{architectures or 'none'}.",
        hint=f"pass kind= one of {', '.join(repr(k) for k in valid)}.",
    )


# ---------------------------------------------------------------------------------------
# Shared by the Hugging Face loaders (not public API).
# ---------------------------------------------------------------------------------------

# A hub id: "name" or "owner/name" (letters, digits, "-", "_", ".").
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_OFFLINE_HINT = (
    "download it where the hub is reachable (`hf download {id} --local-dir DIR`) and pass "
    "DIR, or unset HF_HUB_OFFLINE to let the hub be used."
)


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


def check_source(spec: Any) -> str:
    """Return ``spec`` as a string after checking it names a folder or a plausible hub id.

    Raises:
        ModelLoadError: it is a file, a missing path, or a hub id that is not cached
            while offline.
    """
    if not isinstance(spec, str | os.PathLike):
        raise ConfigError(
            f"Expected a scorer, a function, 'default', a folder or a hub id, got "
            f"{type(spec).__name__}.",
        )
    text = os.fspath(spec)
    path = Path(text).expanduser()
    if path.is_dir():
        return str(path)
    if path.exists():
        raise ModelLoadError(
            f"{text} is a file; a model is loaded from a folder.",
            hint="pass the folder that holds config.json and the weights.",
        )
    looks_like_path = isinstance(spec, os.PathLike) or text.startswith((".", "/", "~", "\\"))
    if looks_like_path or not _HUB_ID.match(text):
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


def check_positive_int(name: str, value: Any, *, allow_none: bool = False) -> None:
    """Raise :class:`ConfigError` unless ``value`` is a positive int (or ``None`` if allowed)."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}.")


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


def chunks(n: int, size: int) -> Iterator[slice]:
    """Slices ``[0, size), [size, 2·size), …`` covering ``range(n)``."""
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def pad_batch(
    rows: Sequence[dict[str, list[int]]], *, pad_id: int, side: Literal["left", "right"]
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


ResponseSide = Literal["left", "right"]


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

    # Cut k tokens off the prompt's start; the smallest k that fits wins.
    starts = token_starts(tokenizer, prompt)

    def cut_prompt(k: int) -> str:
        return prompt[starts[k] :] if k < len(starts) else ""

    k = _smallest(1, len(starts), lambda k: count(cut_prompt(k), response) <= max_length)
    if k is not None:
        return cut_prompt(k), response, 0
    if count("", "") > max_length:
        raise InputError(
            f"max_length={max_length} is shorter than the scorer's input template alone.",
            hint="raise max_length.",
        )
    starts = token_starts(tokenizer, response)
    if response_side == "left":

        def cut_response(k: int) -> str:
            return response[starts[k] :] if k < len(starts) else ""

        k = _smallest(1, len(starts), lambda k: count("", cut_response(k)) <= max_length)
        kept = cut_response(k if k is not None else len(starts))
        return "", kept, len(response) - len(kept)

    def keep_response(k: int) -> str:  # keep the first len(starts) - k tokens
        end = len(starts) - k
        return response[: starts[end]] if end < len(starts) else response

    k = _smallest(1, len(starts), lambda k: count("", keep_response(k)) <= max_length)
    return "", keep_response(k if k is not None else len(starts)), 0


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
