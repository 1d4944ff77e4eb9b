"""The critic's file format: ``critic.safetensors`` + ``critic.json``. No pickle.

``critic.json`` records everything needed to tell whether a critic fits a guard: the base
model id and hidden size, the block length, step-fraction denominator (``max_new_tokens``)
and sampler of the rollouts, the cost model id and threshold, the budget and the safety
state's scale, the training data (with the train/val/test split by prompt id), the
training settings and metrics, the library version, and the sha256 of the weights file.

Loading checks, in order: the format (:class:`ArtifactError` for unknown or newer formats),
the sha256 of the weights (:class:`ArtifactError` for a truncated or tampered file), then
compatibility (:class:`CriticMismatchError`, naming expected vs actual and the fix)::

    critic = load_critic("my_critic/", lm=lm, cost_model=cost, config=guard_config)
    guard = InferenceGuard(lm, cost, reward, critic=critic, config=guard_config)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from .._embedded import DEFAULT_LM_ID
from .._io import atomic_write_bytes, atomic_write_text
from .._version import __version__
from ..errors import ArtifactError, ConfigError, CriticMismatchError
from .model import CriticArchitecture, LatentCritic

if TYPE_CHECKING:
    from ..config import GuardConfig
    from ..lm import LocalLM
    from ..scorers.base import CostModel

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "META_FILE",
    "WEIGHTS_FILE",
    "check_compatibility",
    "default_critic_path",
    "load_critic",
    "load_default_critic",
    "read_critic_metadata",
    "save_critic",
]

logger = logging.getLogger(__name__)

FORMAT = "inferenceguard-critic"
FORMAT_VERSION = 1
WEIGHTS_FILE = "critic.safetensors"
META_FILE = "critic.json"

#: Metadata a critic must carry to be saved (and that loading relies on).
_REQUIRED = ("base_model", "block_len", "max_new_tokens", "cost_model", "budget")


def default_critic_path() -> Path:
    """Folder of the shipped critic for the embedded default LM and cost model."""
    return Path(__file__).resolve().parent.parent / "assets" / "default_critic"


def _weights_bytes(critic: LatentCritic) -> bytes:
    from safetensors.torch import save

    state = {
        k: v.detach().to("cpu", torch.float32).contiguous() for k, v in critic.state_dict().items()
    }
    # One metadata key only: safetensors writes that map in hash order, so several keys
    # would make the bytes (and the recorded sha256) change from run to run.
    return save(state, metadata={"format": f"{FORMAT}/{FORMAT_VERSION}"})


def save_critic(critic: LatentCritic, directory: str | os.PathLike[str]) -> Path:
    """Write ``critic.safetensors`` and ``critic.json`` into ``directory``, atomically.

    The weights are written first: a crash between the two writes leaves a JSON whose
    sha256 no longer matches, which loading refuses, instead of silently mixing versions.

    Args:
        critic: a trained critic whose ``metadata`` was filled by training.
        directory: created if needed; existing critic files are replaced.

    Returns:
        The directory.

    Raises:
        ConfigError: the critic's metadata lacks the base model, block length, cost model
            or budget (train it with :func:`~inferenceguard.training.critic.train.train_critic`).
    """
    missing = [k for k in _REQUIRED if k not in critic.metadata]
    if missing:
        raise ConfigError(
            f"The critic's metadata lacks {missing}, so a loader could not check it.",
            hint="train it with inferenceguard.training.critic.train.train_critic, or fill critic.metadata.",
        )
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    blob = _weights_bytes(critic)
    meta = {
        **critic.metadata,
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": critic.arch.to_dict(),
        "z_scale": float(critic.z_scale),
        "weights_file": WEIGHTS_FILE,
        "weights_sha256": hashlib.sha256(blob).hexdigest(),
        "library_version": __version__,
    }
    text = json.dumps(meta, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False)
    atomic_write_bytes(out / WEIGHTS_FILE, blob)
    atomic_write_text(out / META_FILE, text + "\n")
    critic.metadata = meta
    return out


def _folder(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    return path.parent if path.name in (META_FILE, WEIGHTS_FILE) else path


def read_critic_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate ``critic.json`` (not the weights).

    Args:
        path: the critic folder, or its ``critic.json`` / ``critic.safetensors``.

    Raises:
        ArtifactError: missing, unreadable, of another format or a newer version, or
            lacking required fields.
    """
    file = _folder(path) / META_FILE
    try:
        meta = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ArtifactError(
            f"No critic at {str(_folder(path))!r}: {META_FILE} is missing.",
            hint="pass the folder that save_critic / inferenceguard train-critic wrote.",
        ) from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{file} is unreadable or not JSON: {exc}.") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ArtifactError(f"{file} is not an InferenceGuard critic (format {got!r}).")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ArtifactError(
            f"{file} has critic format version {version!r}; this library reads up to "
            f"{FORMAT_VERSION}.",
            hint="upgrade inferenceguard, or retrain the critic with this version.",
        )
    required = (*_REQUIRED, "architecture", "z_scale", "weights_sha256")
    missing = [k for k in required if k not in meta]
    if missing:
        raise ArtifactError(f"{file} lacks the fields {missing}.")
    return meta


_RETRAIN = (
    "train a critic for this setup with `inferenceguard train-critic` (same --model, "
    "--cost-model, --block-len), or run without a critic (critic=None)."
)


@dataclass(frozen=True)
class _Fit:
    """One row of the compatibility table: what the critic was trained with, what the guard
    uses, what the difference means, and how to fix it."""

    field: str
    expected: Any
    actual: Any
    message: str
    fix: str = _RETRAIN


def _model_rows(meta: dict[str, Any], lm: LocalLM, check_model_id: bool) -> list[_Fit]:
    base = meta["base_model"]
    rows = [
        _Fit(
            "hidden_size",
            int(base["hidden_size"]),
            lm.hidden_size,
            f"The critic was trained for base model {base['id']!r} with hidden size "
            f"{base['hidden_size']}, but the guard's model {lm.model_id!r} has hidden size "
            f"{lm.hidden_size}.",
        )
    ]
    if check_model_id:
        rows.append(
            _Fit(
                "base_model",
                base["id"],
                lm.model_id,
                f"The critic was trained for base model {base['id']!r}, but the guard's model "
                f"is {lm.model_id!r} (same hidden size {lm.hidden_size}).",
                _RETRAIN + " If both names are the same weights, pass check_model_id=False.",
            )
        )
    return rows


def _hard_rows(
    meta: dict[str, Any],
    lm: LocalLM | None,
    cost_model: CostModel | None,
    config: GuardConfig | None,
    check_model_id: bool,
) -> list[_Fit]:
    """Differences that change what the critic's inputs mean: each one is an error."""
    rows = [] if lm is None else _model_rows(meta, lm, check_model_id)
    cost = meta["cost_model"]
    if cost_model is not None:
        rows.append(
            _Fit(
                "cost_model",
                (cost["id"], float(cost["threshold"])),
                (cost_model.id, float(cost_model.threshold)),
                f"The critic was trained with cost model {cost['id']!r} (threshold "
                f"{cost['threshold']}), but the guard uses {cost_model.id!r} (threshold "
                f"{cost_model.threshold}); its safety state would mean something else.",
            )
        )
    if config is not None:
        rows.append(
            _Fit(
                "block_len",
                int(meta["block_len"]),
                config.block_len,
                f"The critic was trained on blocks of {meta['block_len']} tokens, but the "
                f"guard's config has block_len={config.block_len}.",
                f"set block_len={meta['block_len']}, or {_RETRAIN}",
            )
        )
    return rows


def _drift_rows(
    meta: dict[str, Any], config: GuardConfig, cost_model: CostModel | None
) -> list[_Fit]:
    """Differences that keep the inputs' meaning but shift their distribution: warnings."""
    sampler = meta.get("sampler") or {}
    rows = [
        _Fit(
            key,
            sampler[key],
            getattr(config, key),
            f"{key} {sampler[key]!r} vs {getattr(config, key)!r}",
        )
        for key in ("do_sample", "temperature", "top_p", "top_k")
        if key in sampler
    ]
    budget = config.budget
    if budget is None and cost_model is not None:
        budget = cost_model.threshold
    if budget is not None:
        rows.append(
            _Fit(
                "budget",
                float(meta["budget"]),
                float(budget),
                f"budget {meta['budget']} vs {budget}",
            )
        )
    mode = meta.get("safety_mode", "prefix")
    rows.append(
        _Fit(
            "safety_mode",
            mode,
            config.safety_mode,
            f"safety_mode {meta.get('safety_mode')!r} vs {config.safety_mode!r}",
        )
    )
    return rows


def check_compatibility(
    meta: dict[str, Any],
    *,
    lm: LocalLM | None = None,
    cost_model: CostModel | None = None,
    config: GuardConfig | None = None,
    check_model_id: bool = True,
) -> None:
    """Raise if a critic with metadata ``meta`` does not fit these models and config.

    Errors (the critic's inputs would mean something else): another base model id or
    hidden size, another cost model id or threshold, another block length. Warnings (the
    inputs keep their meaning, their distribution shifts): another sampler, budget or
    safety mode; another ``max_new_tokens`` (step-fraction spacing) is logged at INFO.

    Args:
        meta: from :func:`read_critic_metadata`.
        lm, cost_model, config: what the guard uses; ``None`` skips that check.
        check_model_id: ``False`` accepts a different model id with the same hidden size
            (the same weights saved under another name or path).

    Raises:
        CriticMismatchError: naming the expected and actual values and the fix.
    """
    for row in _hard_rows(meta, lm, cost_model, config, check_model_id):
        if row.expected != row.actual:
            raise CriticMismatchError(row.message, hint=row.fix)
    if config is None:
        return
    if int(meta["max_new_tokens"]) != config.max_new_tokens:
        # Only the step fraction's spacing changes (tokens / max_new_tokens): not worth a
        # warning on every default guard, which allows longer answers than the rollouts did.
        logger.info(
            "The critic's rollouts used max_new_tokens=%s, the guard %s: step fractions differ.",
            meta["max_new_tokens"],
            config.max_new_tokens,
        )
    drift = [
        row.message for row in _drift_rows(meta, config, cost_model) if row.expected != row.actual
    ]
    if drift:
        logger.warning(
            "The critic was trained with other search settings (critic vs guard: %s); its "
            "predictions may be less accurate.",
            "; ".join(drift),
        )


#: Recorded metric -> the safety-state-alone baseline it must beat (``training.critic``).
_BASELINES = (("auc", "auc_z_only"), ("auc_live", "auc_live_z_only"))


def _warn_if_worse_than_safety_state(meta: dict[str, Any], folder: Path) -> None:
    """Warn when the critic's recorded held-out safety AUC is below the safety state's.

    Such a critic ranks candidates worse than ``z`` alone would, so scoring with it can
    only cost reward or safety margin; it still loads (the guarantee never rests on it).
    """
    metrics = meta.get("metrics") or {}
    split = next((name for name in ("test", "val") if isinstance(metrics.get(name), dict)), None)
    if split is None:
        return
    recorded = metrics[split]
    for metric, baseline in _BASELINES:
        value, floor = recorded.get(metric), recorded.get(baseline)
        if isinstance(value, int | float) and isinstance(floor, int | float) and value < floor:
            warnings.warn(
                f"The critic in {folder} is worse than the safety state alone on its {split} "
                f"split: {metric}={value:.4f} < {baseline}={floor:.4f}. Fix: retrain it on more "
                "rollouts (inferenceguard train-critic), or run without a critic "
                "(critic=None, --critic none).",
                UserWarning,
                stacklevel=3,
            )
            return


def load_critic(
    path: str | os.PathLike[str],
    lm: LocalLM | None = None,
    cost_model: CostModel | None = None,
    *,
    config: GuardConfig | None = None,
    device: str | torch.device | None = None,
    check_model_id: bool = True,
) -> LatentCritic:
    """Load a saved critic, verifying its weights and its fit to the guard.

    Args:
        path: the critic folder (or its ``critic.json`` / ``critic.safetensors``).
        lm: the guard's base model: checks model id and hidden size; the critic is placed
            on its device unless ``device`` is given.
        cost_model: the guard's cost model: checks id and threshold.
        config: the guard's config: checks block length (and warns on other drift).
        device: where the critic runs (default: ``lm``'s device, else CPU).
        check_model_id: see :func:`check_compatibility`.

    Returns:
        The critic in eval mode, ``metadata`` filled from ``critic.json``.

    Raises:
        ArtifactError: files missing, truncated, tampered with, or of an unknown format.
        CriticMismatchError: the critic was trained for another setup.
    """
    from safetensors.torch import load

    folder = _folder(path)
    meta = read_critic_metadata(folder)
    file = folder / str(meta.get("weights_file", WEIGHTS_FILE))
    try:
        blob = file.read_bytes()
    except OSError as exc:
        raise ArtifactError(f"The critic's weights {file} cannot be read: {exc}.") from exc
    digest = hashlib.sha256(blob).hexdigest()
    if digest != meta["weights_sha256"]:
        raise ArtifactError(
            f"{file} does not match the sha256 recorded in {META_FILE} "
            f"(expected {meta['weights_sha256'][:16]}…, got {digest[:16]}…): the file is "
            "truncated, modified, or from another save.",
            hint="re-save or re-train the critic (or reinstall inferenceguard for the shipped one).",
        )
    check_compatibility(
        meta, lm=lm, cost_model=cost_model, config=config, check_model_id=check_model_id
    )
    _warn_if_worse_than_safety_state(meta, folder)
    try:
        arch = CriticArchitecture.from_dict(meta["architecture"])
        critic = LatentCritic(arch, z_scale=float(meta["z_scale"]), metadata=meta)
        critic.load_state_dict(load(blob), strict=True)
    except Exception as exc:  # safetensors' error class moved between versions; any is fatal
        raise ArtifactError(f"{file} does not hold this critic's weights: {exc}") from exc
    if device is None and lm is not None:
        device = lm.device
    return critic.to(device or "cpu").eval()


def load_default_critic(
    lm: LocalLM,
    cost_model: CostModel | None = None,
    config: GuardConfig | None = None,
) -> LatentCritic | None:
    """The shipped critic for the embedded default LM and cost model, when it applies.

    Returns ``None`` (with a logged warning) when the assets are absent, when ``lm`` is
    not the embedded default model, or when ``cost_model`` / ``config`` do not match what
    the critic was trained for; the guard then scores with the reward model.

    Raises:
        ArtifactError: the shipped files are corrupted (reinstall the package).
    """
    folder = default_critic_path()
    if not (folder / META_FILE).is_file():
        logger.warning("No shipped critic in %s; the guard will run without a critic.", folder)
        return None
    if lm.model_id != DEFAULT_LM_ID:
        logger.warning(
            "The shipped critic is for %s, not %s; the guard will run without a critic "
            "(train one with `inferenceguard train-critic --model ...`).",
            DEFAULT_LM_ID,
            lm.model_id,
        )
        return None
    try:
        return load_critic(folder, lm=lm, cost_model=cost_model, config=config)
    except CriticMismatchError as exc:
        logger.warning("Not using the shipped critic: %s", exc)
        return None
