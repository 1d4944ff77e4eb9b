"""Fine-tune the top layers of the encoder and logistic heads: the gate's and judge's loop.

:func:`fine_tune_heads` is the training loop of every
:class:`~inferenceguard.scorers.tuned_encoder.TunedEncoderHeads` model: class-balanced,
source-reweighted binary cross-entropy per head (the probe's
:func:`~.fit.sample_weights`), where a text may have no label for some heads (it then
trains only the others), AdamW with a one-cycle schedule. The same data, seed and thread
count give the same weights byte for byte.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ...scorers.embedding import SentenceEncoder
from ...scorers.tuned_encoder import pooled_features
from .data import DEFAULT_SEED
from .fit import sample_weights

__all__ = ["TuneSettings", "fine_tune_heads"]


@dataclass(frozen=True)
class TuneSettings:
    """The training loop's recipe, shared by the gate's and the judge's settings.

    Attributes:
        tuned_layers: how many of the encoder's top layers are fine-tuned.
        epochs: passes over the training texts.
        lr: peak learning rate of the tuned layers (one-cycle schedule).
        head_lr: peak learning rate of the logistic heads.
        batch_size: texts per step.
        seed: dropout, head initialisation, data order (and the callers' samples).
    """

    tuned_layers: int = 2
    epochs: int = 3
    lr: float = 1e-4
    head_lr: float = 1e-3
    batch_size: int = 32
    seed: int = DEFAULT_SEED


def _head_weights(
    targets: torch.Tensor, sources: Sequence[str], source_power: float
) -> torch.Tensor:
    """`[n, H]` float32 loss weights: per head, over its labelled rows, class-balanced and
    source-reweighted, with mean 1; 0 where the row has no label for the head."""
    out = torch.zeros(targets.shape, dtype=torch.float32)
    for h in range(targets.shape[1]):
        known = ~torch.isnan(targets[:, h])
        rows = known.nonzero().reshape(-1).tolist()
        if not rows:
            continue
        w = sample_weights(
            targets[known, h].double(), [sources[i] for i in rows], source_power
        ).float()
        out[known, h] = w / w.mean()
    return out


def _batches(
    order: list[int],
    texts: Sequence[str],
    batch_size: int,
    length_buckets: int,
    rng: torch.Generator,
) -> list[list[int]]:
    """Cut ``order`` into batches; with ``length_buckets`` each run of that many batches is
    sorted by text length (ties by position) first, and the batches are then shuffled."""
    if length_buckets <= 0:
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    run = batch_size * length_buckets
    batches: list[list[int]] = []
    for start in range(0, len(order), run):
        chunk = sorted(order[start : start + run], key=lambda i: (len(texts[i]), i))
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=rng).tolist()]


def fine_tune_heads(
    encoder: SentenceEncoder,
    texts: Sequence[str],
    targets: Sequence[Sequence[float | None]],
    sources: Sequence[str],
    settings: TuneSettings,
    *,
    max_length: int,
    source_power: float = 0.5,
    length_buckets: int = 0,
    log: Callable[[str], Any] = lambda _m: None,
) -> tuple[dict[str, torch.Tensor], list[tuple[torch.Tensor, torch.Tensor]]]:
    """Fine-tune the top ``tuned_layers`` of a copy of ``encoder`` and one logistic head per
    target column.

    Args:
        encoder: the frozen base encoder (it is copied, not changed).
        texts: `[n]` training texts.
        targets: `[n][H]` labels in {0, 1}, ``None`` where a text has no label for a head.
        sources: `[n]` source names, for the per-source re-weighting.
        settings: the recipe (:class:`TuneSettings`).
        max_length: texts are truncated to this many tokens.
        source_power: see :func:`~.fit.sample_weights`.
        length_buckets: ``0`` draws batches at random; ``k > 0`` sorts each run of
            ``k * batch_size`` shuffled texts by length before cutting it into batches
            (and shuffles the batches), so that long texts pad little: several times
            faster on responses, whose lengths vary a lot.
        log: progress messages, one per epoch.

    Returns:
        ``(layers, heads)``: the tuned layers' parameters named as in the encoder's state
        dict, and ``(weight [d], bias [1])`` per head, all rounded to float16 as they ship.
    """
    seed, batch_size, lr, head_lr = (
        settings.seed,
        settings.batch_size,
        settings.lr,
        settings.head_lr,
    )
    torch.manual_seed(seed)
    model = copy.deepcopy(encoder.model).train()
    model.requires_grad_(False)
    n_layers = int(model.config.num_hidden_layers)
    tuned = list(range(n_layers - settings.tuned_layers, n_layers))
    params = [p for i in tuned for p in model.encoder.layer[i].parameters()]
    for p in params:
        p.requires_grad_(True)
    n_heads = len(targets[0]) if targets else 0
    head = torch.nn.Linear(encoder.dim, n_heads)
    y = torch.tensor(
        [[math.nan if v is None else float(v) for v in row] for row in targets],
        dtype=torch.float32,
    )
    weights = _head_weights(y, sources, source_power)
    known = ~torch.isnan(y)
    steps = settings.epochs * -(-len(texts) // batch_size)
    opt = torch.optim.AdamW(
        [{"params": params, "lr": lr}, {"params": head.parameters(), "lr": head_lr}],
        weight_decay=0.01,
    )
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=[lr, head_lr], total_steps=steps, pct_start=0.1
    )
    order_rng = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    for epoch in range(settings.epochs):
        order = torch.randperm(len(texts), generator=order_rng).tolist()
        total = 0.0
        for idx in _batches(order, texts, batch_size, length_buckets, order_rng):
            pooled = pooled_features(
                model, encoder.tokenizer, [texts[i] for i in idx], max_length, encoder.device
            )
            logits = head(pooled)
            loss = None
            for h in range(n_heads):
                m = known[idx, h]
                if not bool(m.any()):
                    continue
                bce = F.binary_cross_entropy_with_logits(
                    logits[:, h][m], y[idx, h][m], reduction="none"
                )
                term = (bce * weights[idx, h][m]).mean()
                loss = term if loss is None else loss + term
            if loss is None:  # no label in this batch for any head
                continue
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        log(f"epoch {epoch}: loss {total / len(order):.4f} ({time.perf_counter() - t0:.0f} s)")
    state = model.state_dict()
    layers = {
        k: v.detach().half()
        for k, v in state.items()
        if any(k.startswith(f"encoder.layer.{i}.") for i in tuned)
    }
    heads = [
        (head.weight[h].detach().reshape(-1).half(), head.bias[h].detach().reshape(1).half())
        for h in range(n_heads)
    ]
    return layers, heads
