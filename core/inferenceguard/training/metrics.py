"""The metrics both trainers report: ROC-AUC, calibration, R², and thresholded rates.

One copy, shared by the cost-probe trainer (:mod:`.cost_probe`) and the critic trainer
(:mod:`.critic.train`), so a number called "ROC-AUC" means the same in both reports.
All functions take tensors or plain sequences and return plain Python floats; an
undefined value (one class only, constant targets) is ``nan``, never an exception.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["binary_metrics", "calibration", "r2_score", "roc_auc"]

Values = Sequence[float] | torch.Tensor


def _flat(values: Values) -> torch.Tensor:
    return torch.as_tensor(values).reshape(-1).double()


def roc_auc(scores: Values, labels: Values) -> float:
    """Area under the ROC curve: the Mann-Whitney U statistic, ties counting half.

    Args:
        scores: `[n]` higher means "more likely positive".
        labels: `[n]` 0/1 (a label above 0.5 is positive).

    Returns:
        The AUC in `[0, 1]`; ``nan`` when only one class is present.
    """
    s = _flat(scores)
    y = _flat(labels) > 0.5
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = torch.argsort(s, stable=True)
    # Tied scores share the mean of the ranks they span (1-based).
    _, inverse, counts = torch.unique_consecutive(s[order], return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).double()
    ranks = torch.empty_like(s)
    ranks[order] = (ends - (counts.double() - 1) / 2)[inverse]
    u = float(ranks[y].sum()) - n_pos * (n_pos + 1) / 2
    return u / (n_pos * n_neg)


def calibration(
    probs: Values, labels: Values, n_bins: int = 10
) -> tuple[float, list[dict[str, float]]]:
    """Expected calibration error and reliability bins (equal width on `[0, 1]`).

    Returns:
        ``(ECE, bins)``: each bin has ``lo``, ``hi``, ``count``, ``mean_pred`` and
        ``frac_pos``; empty bins are omitted. ``(nan, [])`` for no rows.
    """
    probs, labels = _flat(probs), _flat(labels)
    if probs.numel() == 0:
        return float("nan"), []
    which = (probs * n_bins).long().clamp(0, n_bins - 1)
    ece, bins = 0.0, []
    for b in range(n_bins):
        mask = which == b
        count = int(mask.sum())
        if count == 0:
            continue
        mean_pred, frac_pos = float(probs[mask].mean()), float(labels[mask].mean())
        ece += count / probs.numel() * abs(mean_pred - frac_pos)
        bins.append(
            {
                "lo": b / n_bins,
                "hi": (b + 1) / n_bins,
                "count": count,
                "mean_pred": round(mean_pred, 4),
                "frac_pos": round(frac_pos, 4),
            }
        )
    return ece, bins


def r2_score(pred: Values, target: Values) -> float:
    """Coefficient of determination; ``nan`` with fewer than two or constant targets."""
    pred, target = _flat(pred), _flat(target)
    if target.numel() < 2:
        return float("nan")
    total = float(((target - target.mean()) ** 2).sum())
    if total == 0:
        return float("nan")
    return 1.0 - float(((target - pred) ** 2).sum()) / total


def binary_metrics(scores: Values, labels: Values, threshold: float) -> dict[str, Any]:
    """ROC-AUC plus precision, recall, false-positive rate and accuracy at ``threshold``.

    A score strictly above ``threshold`` is a positive prediction (the cost models' rule:
    a cost above the threshold is unsafe). Rates with an empty denominator are ``nan``.
    """
    pred = _flat(scores) > threshold
    y = _flat(labels) > 0.5
    tp, fp = int((pred & y).sum()), int((pred & ~y).sum())
    fn, tn = int((~pred & y).sum()), int((~pred & ~y).sum())
    n = int(y.numel())
    return {
        "n": n,
        "n_unsafe": int(y.sum()),
        "roc_auc": roc_auc(scores, labels),
        "precision": tp / (tp + fp) if tp + fp else float("nan"),
        "recall": tp / (tp + fn) if tp + fn else float("nan"),
        "fpr": fp / (fp + tn) if fp + tn else float("nan"),
        "accuracy": (tp + tn) / max(1, n),
    }
