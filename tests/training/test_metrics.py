"""The one copy of the training metrics (ROC-AUC, calibration, R², thresholded rates)."""

from __future__ import annotations

import math

import pytest
import torch

from inferenceguard.training import metrics
from inferenceguard.training.cost_probe import train as cost_train
from inferenceguard.training.critic import train as critic_train
from inferenceguard.training.metrics import binary_metrics, calibration, r2_score, roc_auc


def test_both_trainers_use_the_one_copy() -> None:
    assert critic_train.roc_auc is metrics.roc_auc and cost_train.roc_auc is metrics.roc_auc
    assert critic_train.calibration is metrics.calibration
    assert critic_train.r2_score is metrics.r2_score
    assert cost_train.binary_metrics is metrics.binary_metrics


def test_roc_auc_matches_hand_computation() -> None:
    # Pairs (pos, neg): (0.35 vs 0.1, 0.4) wins once, (0.8 vs both) twice: 3 of 4.
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert roc_auc([0.9, 0.1], [0, 1]) == 0.0
    y = torch.tensor([0.0, 0.0, 1.0, 1.0])
    assert roc_auc(torch.tensor([0.1, 0.2, 0.8, 0.9]), y) == 1.0
    assert roc_auc(torch.tensor([0.9, 0.8, 0.2, 0.1]), y) == 0.0


def test_roc_auc_ties_count_half() -> None:
    assert roc_auc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1]) == 0.5
    # One tie between a positive and a negative, everything else ranked right.
    assert roc_auc([0.1, 0.5, 0.5, 0.9], [0, 0, 1, 1]) == pytest.approx(0.875)


def test_roc_auc_is_nan_with_one_class() -> None:
    assert math.isnan(roc_auc([0.1, 0.2], [1, 1]))
    assert math.isnan(roc_auc(torch.tensor([0.1, 0.2]), torch.tensor([0.0, 0.0])))
    assert math.isnan(roc_auc([], []))


def test_roc_auc_accepts_lists_tensors_and_float_labels_alike() -> None:
    g = torch.Generator().manual_seed(0)
    scores = torch.rand(200, generator=g)
    labels = (torch.rand(200, generator=g) < 0.3).long()
    expected = roc_auc(scores.tolist(), labels.tolist())
    assert roc_auc(scores, labels) == expected
    assert roc_auc(scores.float(), labels.double()) == expected
    # Brute force over all (positive, negative) pairs.
    pos, neg = scores[labels == 1], scores[labels == 0]
    wins = (pos[:, None] > neg[None, :]).double() + 0.5 * (pos[:, None] == neg[None, :]).double()
    assert expected == pytest.approx(float(wins.mean()))


def test_calibration_bins_and_ece() -> None:
    y = torch.tensor([0.0, 0.0, 1.0, 1.0])
    ece, bins = calibration(torch.tensor([0.05, 0.05, 0.95, 0.95]), y)
    assert ece == pytest.approx(0.05) and [b["count"] for b in bins] == [2, 2]
    assert bins[0]["lo"] == 0.0 and bins[-1]["hi"] == 1.0 and bins[-1]["frac_pos"] == 1.0
    # A probability of exactly 1 falls in the last bin, not an eleventh one.
    _, bins = calibration([1.0, 0.0], [1, 0])
    assert [(b["lo"], b["count"]) for b in bins] == [(0.0, 1), (0.9, 1)]
    ece, bins = calibration([], [])
    assert math.isnan(ece) and bins == []


def test_r2_score() -> None:
    assert r2_score(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 2.0, 3.0])) == 1.0
    assert r2_score([2.0, 2.0, 2.0], [1.0, 2.0, 3.0]) == pytest.approx(0.0)  # the mean
    assert math.isnan(r2_score([1.0], [1.0]))  # too few targets
    assert math.isnan(r2_score([1.0, 2.0], [3.0, 3.0]))  # constant targets


def test_binary_metrics_at_a_threshold() -> None:
    m = binary_metrics(torch.tensor([0.9, 0.6, 0.4, 0.5]), torch.tensor([1.0, 0.0, 1.0, 0.0]), 0.5)
    # A score equal to the threshold is not flagged (a cost above it is unsafe).
    assert (m["n"], m["n_unsafe"]) == (4, 2)
    assert m["precision"] == 0.5 and m["recall"] == 0.5 and m["fpr"] == 0.5
    assert m["accuracy"] == 0.5 and m["roc_auc"] == 0.5
    none_flagged = binary_metrics([0.1, 0.2], [0, 0], 0.5)
    assert math.isnan(none_flagged["precision"]) and math.isnan(none_flagged["recall"])
    assert none_flagged["fpr"] == 0.0 and none_flagged["accuracy"] == 1.0
