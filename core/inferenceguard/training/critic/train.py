"""Train a :class:`LatentCritic` on rollouts: BCE on the outcome, MSE on the reward.

* **Safety head**: BCE against "this block's response ended within budget".
* **Value head**: predicts the Monte-Carlo return of the block — the verified final reward
  of the response the block belongs to (undiscounted, γ = 1; λ = 1 in TD(λ) terms) — as
  MSE on that reward standardised with the training set's mean and std, on blocks whose
  response ended within budget only. The search uses the value to rank candidates it
  already trusts to end safe, so the head estimates E[final reward | this block, ends
  within budget]; the rewards of truncated over-budget responses would only add noise.
  The target varies with the block through the response it continues: two blocks of one
  prompt share a target only if they lead to the same response. Why not a discount or a
  TD(λ) mix (RE-Control): the reward is given once, at the end, and a response has at most
  ``max_new_tokens / block_len`` blocks (4 with the defaults), so bootstrapping from the
  next block's value removes little variance while adding the bias of a value head that
  is still being fitted; a discount would rank a candidate lower merely for being early.
  The verified final reward is also what the held-out R² and early stopping measure.
* **Split by prompt, never by block**: the blocks of one prompt's responses share most of
  their context, so a block split would leak. The split is stratified by source and
  decided by hashing each prompt id with the seed, so it is stable when prompts are added.
* **Early stopping** on the validation loss, keeping the best epoch's weights.
* Metrics on validation and test: ROC-AUC of the safety head (over all blocks, and over
  the blocks still within budget — the only ones whose critic score changes the search's
  ranking — next to the AUC of the safety state alone), calibration (ECE and reliability
  bins), Brier score, and the reward head's R².

Deterministic for a given seed, data and thread count.
"""

from __future__ import annotations

import hashlib
import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from ..._version import __version__
from ...critic.io import _BASELINES  # the metric pairs load_critic checks: one list
from ...critic.model import CriticArchitecture, LatentCritic
from ...errors import ConfigError
from ..metrics import calibration, r2_score, roc_auc
from .rollouts import RolloutData

__all__ = [
    "TrainResult",
    "TrainSettings",
    "evaluate_critic",
    "format_summary",
    "split_by_prompt",
    "train_critic",
    "z_scale_for",
]

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
#: What the value head predicts (recorded in ``critic.json``; see the module docstring).
VALUE_TARGET = "monte-carlo return: verified final reward of the block's response (gamma=1)"


@dataclass(frozen=True)
class TrainSettings:
    """Critic training hyperparameters (recorded in ``critic.json``)."""

    # Chosen by 4-fold CV by prompt on the shipped critic's train+val rollouts (test split
    # untouched): the latent state has 576 dims and ~100 training prompts, so it overfits in
    # a few epochs unless heavily regularised, the safety head most; the z skip path
    # carries the easy signal.
    width: int = 128  # per-trunk width
    depth: int = 2  # trunk layers
    dropout: float = 0.1  # trunk dropout
    safety_input_dropout: float = 0.9  # dropout on the hidden state, safety trunk
    value_input_dropout: float = 0.5  # dropout on the hidden state, value trunk
    skip: bool = True  # linear [z, step_frac] path to each head
    lr: float = 3e-4  # AdamW; the paper's 1e-5 suits a 4096-wide net on 37k prompts, not this
    weight_decay: float = 0.1  # AdamW decoupled weight decay
    batch_size: int = 64  # blocks per step
    max_epochs: int = 200  # upper bound; early stopping usually ends far sooner
    patience: int = 15  # epochs without a better validation loss (for either head) before stopping
    value_weight: float = 1.0  # weight of the reward MSE next to the safety BCE
    val_fraction: float = 0.15  # of each source's prompts
    test_fraction: float = 0.15  # of each source's prompts, held out from training and stopping
    seed: int = 0  # initialisation, batch order and the split

    def __post_init__(self) -> None:
        if not (0 <= self.val_fraction < 1 and 0 <= self.test_fraction < 1):
            raise ConfigError("val_fraction and test_fraction must be in [0, 1).")
        if self.val_fraction + self.test_fraction >= 1:
            raise ConfigError(
                f"val_fraction + test_fraction = {self.val_fraction + self.test_fraction} "
                "leaves no training prompts; keep the sum below 1."
            )
        for name in ("batch_size", "max_epochs", "patience"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}.")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


@dataclass
class TrainResult:
    """What :func:`train_critic` returns.

    Attributes:
        critic: the trained critic (eval mode) with its metadata filled in.
        metrics: per split (``val``, ``test``), see :func:`evaluate_critic`; plus
            ``epochs`` and ``best_epoch`` (per head).
        split: prompt ids per split.
        history: per epoch, training and validation loss.
    """

    critic: LatentCritic
    metrics: dict[str, Any]
    split: dict[str, list[str]]
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def worse_than_safety_state(self) -> str | None:
        """Why this critic ranks worse than the safety state z alone, or ``None``.

        A held-out safety AUC below z's means scoring with the critic can only cost reward
        or safety margin (the guarantee never rests on it): :func:`train_critic` warns
        with this text, and a caller should not decode with such a critic.
        """
        for split in ("test", "val"):
            recorded = self.metrics.get(split)
            if not isinstance(recorded, dict):
                continue
            for metric, baseline in _BASELINES:
                value, floor = recorded.get(metric), recorded.get(baseline)
                numbers = isinstance(value, int | float) and isinstance(floor, int | float)
                if numbers and value < floor:
                    return (
                        f"The trained critic is worse than the safety state alone on its "
                        f"{split} split: {metric}={value:.4f} < {baseline}={floor:.4f}."
                    )
            return None  # judged on the first split that has metrics, like load_critic
        return None


# ----------------------------------------------------------------------------- metrics


def _clean(value: float) -> float | None:
    """JSON has no NaN: undefined metrics are stored as null."""
    return None if value is None or not math.isfinite(value) else round(float(value), 4)


def evaluate_critic(
    critic: LatentCritic,
    hidden: torch.Tensor,
    z: torch.Tensor,
    step_frac: torch.Tensor,
    within_budget: torch.Tensor,
    reward: torch.Tensor,
) -> dict[str, Any]:
    """Metrics of ``critic`` on a set of blocks.

    Returns:
        ``blocks``, ``base_rate`` (fraction ending within budget), ``auc``,
        ``auc_z_only`` (the safety state alone as the score), ``auc_live`` and
        ``auc_live_z_only`` (blocks with ``z ≥ 0``), ``brier``, ``accuracy``, ``ece``,
        ``reliability``, ``reward_r2`` (value head, blocks ending within budget), ``reward_mae``.
    """
    if z.numel() == 0:
        return {"blocks": 0}
    p_safe, value = critic.predict(hidden, z, step_frac)
    y = within_budget.float()
    live = z >= 0
    ece, bins = calibration(p_safe, y)
    safe_end = y > 0.5
    metrics = {
        "blocks": int(z.numel()),
        "base_rate": _clean(float(y.mean())),
        "auc": _clean(roc_auc(p_safe, y)),
        "auc_z_only": _clean(roc_auc(z, y)),
        "auc_live": _clean(roc_auc(p_safe[live], y[live])),
        "auc_live_z_only": _clean(roc_auc(z[live], y[live])),
        "brier": _clean(float(((p_safe - y) ** 2).mean())),
        "accuracy": _clean(float(((p_safe >= 0.5).float() == y).float().mean())),
        "ece": _clean(ece),
        "reliability": bins,
        "reward_r2": _clean(r2_score(value[safe_end], reward[safe_end])),
        "reward_mae": _clean(float((value[safe_end] - reward[safe_end]).abs().mean()))
        if bool(safe_end.any())
        else None,
    }
    return metrics


# ----------------------------------------------------------------------------- data


def split_by_prompt(
    prompt_ids: Sequence[str],
    sources: Sequence[str],
    *,
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> dict[str, list[str]]:
    """Assign whole prompts to train / val / test, stratified by source.

    Within each source, prompts are ordered by ``sha256(seed:id)``; the first
    ``round(n·test_fraction)`` go to test, the next ``round(n·val_fraction)`` to val, the
    rest to train. Sources with fewer than 3 prompts go to train entirely.

    Returns:
        ``{"train": [...], "val": [...], "test": [...]}``, ids in input order.
    """
    by_source: dict[str, list[str]] = {}
    for pid, source in zip(prompt_ids, sources, strict=True):
        by_source.setdefault(source, []).append(pid)
    which: dict[str, str] = {}
    for ids in by_source.values():
        ranked = sorted(ids, key=lambda p: hashlib.sha256(f"{seed}:{p}".encode()).hexdigest())
        n = len(ranked)
        n_test = round(n * test_fraction) if n >= 3 else 0
        n_val = round(n * val_fraction) if n >= 3 else 0
        for i, pid in enumerate(ranked):
            which[pid] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    return {s: [p for p in prompt_ids if which[p] == s] for s in SPLITS}


def z_scale_for(budget: float, z: torch.Tensor) -> float:
    """The budget scale that divides the raw safety state.

    ``|budget|`` when it is not ~0 (a probability cost with budget 0.5 gives z/0.5 in
    [-1, 1]); for a zero budget (PKU-style costs, τ = 0) the std of the observed z.
    """
    if abs(budget) > 1e-6:
        return abs(float(budget))
    finite = z[torch.isfinite(z)]
    spread = float(finite.std()) if finite.numel() > 1 else 0.0
    return spread if spread > 1e-6 else 1.0


# ----------------------------------------------------------------------------- training


def _losses(
    critic: LatentCritic,
    h: torch.Tensor,
    z: torch.Tensor,
    f: torch.Tensor,
    y: torch.Tensor,
    r_std: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(BCE of the safety head, MSE of the value head on blocks that ended within budget)."""
    logit, value = critic(h, z, f)
    bce = F.binary_cross_entropy_with_logits(logit, y)
    mask = y > 0.5
    mse = F.mse_loss(value[mask], r_std[mask]) if bool(mask.any()) else value.sum() * 0.0
    return bce, mse


_HEADS = ("safety", "value")


class _BestPerHead:
    """The best stopping loss of each head, its epoch, and that epoch's head weights.

    The heads have separate parameters (``safety_*`` / ``value_*``), so each can keep the
    weights of its own best epoch.
    """

    def __init__(self) -> None:
        self.loss = {k: math.inf for k in _HEADS}
        self.epoch = {k: 0 for k in _HEADS}
        self.state: dict[str, torch.Tensor] = {}

    def update(self, epoch: int, losses: dict[str, float], critic: LatentCritic) -> None:
        """Keep a copy of each head that improved on its best loss (by more than 1e-5)."""
        for head in _HEADS:
            if losses[head] < self.loss[head] - 1e-5:
                self.loss[head], self.epoch[head] = losses[head], epoch
                self.state.update(
                    {
                        k: v.detach().clone()
                        for k, v in critic.state_dict().items()
                        if k.startswith(head)
                    }
                )

    def restore(self, critic: LatentCritic) -> None:
        """Load every head's best weights into ``critic`` and put it in eval mode."""
        critic.load_state_dict({**critic.state_dict(), **self.state})
        critic.eval()


def _train_epoch(
    critic: LatentCritic,
    opt: torch.optim.Optimizer,
    inputs: tuple[torch.Tensor, ...],
    train_idx: torch.Tensor,
    settings: TrainSettings,
    generator: torch.Generator,
) -> float:
    """One pass over shuffled mini-batches of ``train_idx``; returns the mean training loss."""
    critic.train()
    total = 0.0
    order = train_idx[torch.randperm(train_idx.numel(), generator=generator)]
    for idx in order.split(settings.batch_size):
        bce, mse = _losses(critic, *(t[idx] for t in inputs))
        loss = bce + settings.value_weight * mse
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += float(loss.detach()) * idx.numel()
    return total / train_idx.numel()


def _fit(
    critic: LatentCritic,
    inputs: tuple[torch.Tensor, ...],
    train_idx: torch.Tensor,
    stop_idx: torch.Tensor,
    settings: TrainSettings,
    *,
    progress: bool,
) -> tuple[list[dict[str, float]], dict[str, int]]:
    """AdamW over shuffled mini-batches with early stopping per head.

    Each head keeps the weights of its own best epoch on the ``stop_idx`` rows (the safety
    head by BCE, the value head by MSE); training stops once neither improved for
    ``patience`` epochs.

    Args:
        inputs: per block ``(hidden, z, step_frac, within_budget, standardised reward)``.
        train_idx: rows to train on.
        stop_idx: rows whose losses decide early stopping (validation prompts).

    Returns:
        (history, best epoch per head); the critic is left with the best weights, in eval mode.
    """
    from tqdm.auto import tqdm

    opt = torch.optim.AdamW(critic.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    generator = torch.Generator().manual_seed(settings.seed)
    best = _BestPerHead()
    history: list[dict[str, float]] = []
    bar = tqdm(range(1, settings.max_epochs + 1), desc="critic", disable=not progress, unit="epoch")
    for epoch in bar:
        train_loss = _train_epoch(critic, opt, inputs, train_idx, settings, generator)
        critic.eval()
        with torch.no_grad():
            bce, mse = _losses(critic, *(t[stop_idx] for t in inputs))
        now = {"safety": float(bce), "value": float(mse)}
        history.append(
            {
                "epoch": epoch,
                "train_loss": train_loss,
                "val_bce": now["safety"],
                "val_mse": now["value"],
            }
        )
        best.update(epoch, now, critic)
        bar.set_postfix(bce=f"{now['safety']:.4f}", mse=f"{now['value']:.4f}")
        if epoch - max(best.epoch.values()) >= settings.patience:
            break
    bar.close()
    best.restore(critic)
    return history, dict(best.epoch)


def _block_splits(
    data: RolloutData, settings: TrainSettings
) -> tuple[dict[str, list[str]], list[str], dict[str, torch.Tensor]]:
    """(prompt ids per split, the split of each block, a bool mask per split)."""
    sources = [r["source"] for r in data.records]
    split = split_by_prompt(
        data.prompt_ids,
        sources,
        val_fraction=settings.val_fraction,
        test_fraction=settings.test_fraction,
        seed=settings.seed,
    )
    where = {pid: s for s, ids in split.items() for pid in ids}
    block_split = [where[data.records[int(i)]["prompt_id"]] for i in data.prompt_index]
    masks = {s: torch.tensor([b == s for b in block_split], dtype=torch.bool) for s in SPLITS}
    return split, block_split, masks


def _check_trainable(train: torch.Tensor, y: torch.Tensor) -> None:
    """Refuse a training split with no blocks or with one outcome only."""
    if int(train.sum()) == 0:
        raise ConfigError("No training blocks: add prompts or lower val/test fractions.")
    if y[train].min() == y[train].max():
        raise ConfigError(
            f"Every training response {'ended within' if y[train][0] > 0.5 else 'went over'} "
            "budget, so the safety head has nothing to learn.",
            hint="mix harmful and benign prompts, or sample more responses per prompt.",
        )


def _new_critic(
    data: RolloutData,
    settings: TrainSettings,
    hidden: torch.Tensor,
    y: torch.Tensor,
    tr: torch.Tensor,
) -> LatentCritic:
    """An untrained critic whose input and reward normalisation come from the train split."""
    torch.manual_seed(settings.seed)
    arch = CriticArchitecture(
        hidden_size=int(data.info["base_model"]["hidden_size"]),
        width=settings.width,
        depth=settings.depth,
        dropout=settings.dropout,
        safety_input_dropout=settings.safety_input_dropout,
        value_input_dropout=settings.value_input_dropout,
        skip=settings.skip,
    )
    critic = LatentCritic(arch, z_scale=z_scale_for(float(data.info["budget"]), data.z[tr]))
    safe_tr = tr & (y > 0.5)
    r_mean = float(data.reward[safe_tr].mean()) if bool(safe_tr.any()) else 0.0
    r_sd = float(data.reward[safe_tr].std()) if int(safe_tr.sum()) > 1 else 1.0
    critic.set_normalisation(
        h_mean=hidden[tr].mean(0),
        h_std=hidden[tr].std(0) if int(tr.sum()) > 1 else torch.ones(arch.hidden_size),
        reward_mean=r_mean,
        reward_std=r_sd if math.isfinite(r_sd) and r_sd > 0 else 1.0,
    )
    return critic


def train_critic(
    data: RolloutData, settings: TrainSettings | None = None, *, progress: bool = True
) -> TrainResult:
    """Train a critic on ``data`` and evaluate it on held-out prompts.

    Args:
        data: rollouts from :func:`~inferenceguard.training.critic.rollouts.load_rollouts`.
        settings: hyperparameters.
        progress: show tqdm bars.

    Returns:
        A :class:`TrainResult`; ``result.critic.metadata`` holds everything
        :func:`~inferenceguard.critic.io.save_critic` writes besides the weights.

    Raises:
        ConfigError: no training blocks, or only one outcome class in training.
    """
    settings = settings or TrainSettings()
    split, block_split, masks = _block_splits(data, settings)
    hidden, y, tr = data.hidden.float(), data.within_budget.float(), masks["train"]
    _check_trainable(tr, y)
    critic = _new_critic(data, settings, hidden, y, tr)
    r_std = (data.reward - critic.reward_mean) / critic.reward_std
    inputs = (hidden, data.z, data.step_frac, y, r_std)
    train_idx, val_idx = tr.nonzero().flatten(), masks["val"].nonzero().flatten()
    if not val_idx.numel():
        logger.warning("No validation prompts: early stopping watches the training loss.")
    stop_idx = val_idx if val_idx.numel() else train_idx
    history, best_epochs = _fit(critic, inputs, train_idx, stop_idx, settings, progress=progress)
    metrics: dict[str, Any] = {"epochs": len(history), "best_epoch": best_epochs}
    for name in ("val", "test"):
        m = masks[name]
        metrics[name] = evaluate_critic(
            critic, hidden[m], data.z[m], data.step_frac[m], y[m], data.reward[m]
        )
    critic.metadata = _metadata(data, split, block_split, settings, metrics, float(critic.z_scale))
    result = TrainResult(critic, metrics, split, history)
    if result.worse_than_safety_state:
        warnings.warn(
            f"{result.worse_than_safety_state} Fix: collect more rollouts (more prompts, "
            "more samples per prompt) and retrain, or decode without a critic (critic=None).",
            UserWarning,
            stacklevel=2,
        )
    return result


def _metadata(
    data: RolloutData,
    split: dict[str, list[str]],
    block_split: list[str],
    settings: TrainSettings,
    metrics: dict[str, Any],
    z_scale: float,
) -> dict[str, Any]:
    info, rollout = data.info, data.info["settings"]
    where = {pid: s for s, ids in split.items() for pid in ids}
    sources: dict[str, dict[str, int]] = {}
    responses = {s: 0 for s in SPLITS}
    within = {s: 0 for s in SPLITS}
    for record in data.records:
        s = where[record["prompt_id"]]
        counts = sources.setdefault(record["source"], {k: 0 for k in SPLITS})
        counts[s] += 1
        responses[s] += len(record["responses"])
        within[s] += sum(bool(r["within_budget"]) for r in record["responses"])
    blocks = {s: block_split.count(s) for s in SPLITS}
    return {
        "base_model": dict(info["base_model"]),
        "block_len": rollout["block_len"],
        "max_new_tokens": rollout["max_new_tokens"],
        "sampler": dict(rollout["sampler"]),
        "safety_mode": rollout["safety_mode"],
        "cost_model": dict(info["cost_model"]),
        "reward_model": dict(info["reward_model"]),
        "budget": float(info["budget"]),
        "z_scale": z_scale,
        "data": {
            "samples_per_prompt": rollout["samples_per_prompt"],
            "rollout_seed": rollout["seed"],
            "prompts": {s: len(split[s]) for s in SPLITS},
            "sources": sources,
            "responses": responses,
            "within_budget_rate": {
                s: round(within[s] / responses[s], 4) if responses[s] else None for s in SPLITS
            },
            "blocks": blocks,
            "prompt_id": "first 16 hex digits of sha256(prompt text, UTF-8)",
            "split": {s: list(split[s]) for s in SPLITS},
        },
        "training": {**settings.to_dict(), "value_target": VALUE_TARGET},
        "metrics": metrics,
        "library_version": __version__,
    }


def format_summary(metrics: dict[str, Any]) -> str:
    """A short human-readable table of :func:`train_critic` metrics."""

    def fmt(value: Any) -> str:
        return (
            "n/a" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)
        )

    rows = [
        ("blocks", "blocks"),
        ("ended within budget", "base_rate"),
        ("safety AUC (all blocks)", "auc"),
        ("  z alone", "auc_z_only"),
        ("safety AUC (blocks with z >= 0)", "auc_live"),
        ("  z alone", "auc_live_z_only"),
        ("ECE (10 bins)", "ece"),
        ("Brier", "brier"),
        ("accuracy @ 0.5", "accuracy"),
        ("reward R2 (ended within budget)", "reward_r2"),
    ]
    lines = [
        f"critic: {metrics.get('epochs')} epochs; best epoch per head: {metrics.get('best_epoch')}",
        f"{'metric':<34}{'val':>10}{'test':>10}",
    ]
    for label, key in rows:
        val = metrics.get("val", {}).get(key)
        test = metrics.get("test", {}).get(key)
        lines.append(f"{label:<34}{fmt(val):>10}{fmt(test):>10}")
    for name in ("val", "test"):
        bins = metrics.get(name, {}).get("reliability") or []
        if bins:
            cells = ", ".join(
                f"[{b['lo']:.1f},{b['hi']:.1f}) n={b['count']} p={b['mean_pred']:.2f} y={b['frac_pos']:.2f}"
                for b in bins
            )
            lines.append(f"reliability ({name}): {cells}")
    return "\n".join(lines)
