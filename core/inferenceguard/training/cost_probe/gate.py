"""Train the embedded request gate (:class:`~inferenceguard.scorers.request_gate.RequestHarmGate`).

``python benchmarks/train_request_gate.py`` calls :func:`train_request_gate` on
:func:`gate_prompts`; the same data, seed and thread count give the same weights byte for
byte. The data are requests only, labelled harmful (1) or benign (0):

* every distinct request of the cost probe's pairs whose harm is known
  (:func:`~.fit.aux_targets`), in the probe's train/val/test split, so the gate never
  trains on a request the probe holds out, nor on any evaluation set's request
  (:func:`~.examples.drop_eval_prompts` has removed those);
* ``templates/gate_prompts.json``, written for the gate: benign requests with frightening
  words or sensitive topics (homonyms, idioms, harmless targets, fiction and games,
  definitions, history, self-protection, health, respectful questions about groups,
  step-by-step everyday tasks), harmful requests of thirteen kinds, and jailbreak wrappers
  (role-play, "developer mode", fictional framing) put around harmful *and* benign
  training requests, so that the wrapper alone decides nothing. Split by the same hash;
  a new request within MiniLM cosine 0.8 of an evaluation request was dropped before it
  joined the file (:mod:`.near_duplicates`, ``benchmarks/screen_new_texts.py``).
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ...scorers.embedding import SentenceEncoder
from ...scorers.request_gate import DEFAULT_MAX_LENGTH, RequestHarmGate
from ..metrics import roc_auc
from .data import Example, columns_of_split, load_sources, norm, split_of
from .examples import eval_prompt_keys
from .fit import aux_targets
from .texts import TEMPLATE_DIR
from .tuned import TuneSettings, fine_tune_heads

__all__ = [
    "GatePrompts",
    "GateSettings",
    "gate_metrics",
    "gate_prompts",
    "train_default_gate",
    "train_request_gate",
]

GATE_TEMPLATES = TEMPLATE_DIR / "gate_prompts.json"


@dataclass(frozen=True)
class GateSettings(TuneSettings):
    """The recipe of :func:`train_request_gate` (the shipped gate uses the defaults): the
    training loop's (:class:`~.tuned.TuneSettings`; its seed also draws the wrapper
    samples) and

    Attributes:
        wrapped_harmful: harmful training requests put into each jailbreak wrapper.
        wrapped_benign: benign training requests put into each wrapper.
    """

    wrapped_harmful: int = 12
    wrapped_benign: int = 4


@dataclass
class GatePrompts:
    """Requests with labels, sources and splits (parallel lists)."""

    prompts: list[str]
    labels: list[int]
    sources: list[str]
    splits: list[str]

    def split(self, name: str) -> tuple[list[str], list[int], list[str]]:
        """``(prompts, labels, sources)`` of one split."""
        return columns_of_split(self.splits, name, self.prompts, self.labels, self.sources)

    def counts(self) -> dict[str, dict[str, int]]:
        """Rows per split and label."""
        out: dict[str, Counter[str]] = {}
        for lab, sp in zip(self.labels, self.splits, strict=True):
            out.setdefault(sp, Counter())["harmful" if lab else "benign"] += 1
        return {k: dict(sorted(v.items())) for k, v in sorted(out.items())}


def gate_prompts(
    examples: Sequence[Example],
    eval_prompts: set[str],
    settings: GateSettings = GateSettings(),
    templates: Mapping[str, Any] | None = None,
) -> GatePrompts:
    """The gate's labelled requests (see the module docstring).

    Args:
        examples: the cost probe's pairs (train/val/test), evaluation prompts dropped.
        eval_prompts: normalised (:func:`~.data.norm`) requests of every evaluation set;
            no template request among them is used.
        settings: the wrapper sample sizes and seed.
        templates: the parsed ``gate_prompts.json`` (read from the package by default).
    """
    if templates is None:
        templates = json.loads(GATE_TEMPLATES.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    out = GatePrompts([], [], [], [])

    def add(prompt: str, label: int, source: str, split: str) -> None:
        key = norm(prompt)
        if not key or key in seen or key in eval_prompts:
            return
        seen[key] = label
        out.prompts.append(prompt)
        out.labels.append(label)
        out.sources.append(source)
        out.splits.append(split)

    for ex in examples:
        harm = aux_targets(ex)[0]
        if ex.prompt and harm is not None:
            add(ex.prompt, harm, ex.source.removesuffix("+prefix"), ex.split)
    for kind, label in (("benign", 0), ("harmful", 1)):
        for item in templates[kind]:
            add(
                item["prompt"], label, f"gate_{kind}_{item['type']}", split_of(norm(item["prompt"]))
            )
    rng = random.Random(settings.seed)
    pools = {
        lab: [
            p
            for p, y, s in zip(out.prompts, out.labels, out.splits, strict=True)
            if y == lab and s == "train"
        ]
        for lab in (0, 1)
    }
    for wrapper in templates["wrappers"]:
        for label, k in ((1, settings.wrapped_harmful), (0, settings.wrapped_benign)):
            for prompt in rng.sample(pools[label], k):
                add(wrapper.replace("{request}", prompt), label, f"gate_wrapped_{label}", "train")
    return out


def train_request_gate(
    encoder: SentenceEncoder,
    data: GatePrompts,
    settings: GateSettings = GateSettings(),
    log: Callable[[str], Any] = lambda _m: None,
) -> RequestHarmGate:
    """Fine-tune the top layers of ``encoder`` and a logistic head on the train split.

    Class-balanced, source-reweighted binary cross-entropy (the probe's
    :func:`~.fit.sample_weights`), AdamW with a one-cycle schedule. The returned gate
    holds the weights rounded to float16, as :meth:`RequestHarmGate.save` stores them,
    so what is measured is what ships.
    """
    prompts, labels, sources = data.split("train")
    layers, [(head_weight, head_bias)] = fine_tune_heads(
        encoder,
        prompts,
        [[label] for label in labels],
        sources,
        settings,
        max_length=DEFAULT_MAX_LENGTH,
        log=lambda m: log(f"gate {m}"),
    )
    return RequestHarmGate(
        encoder,
        layers,
        head_weight,
        head_bias,
        metadata={
            "training": {
                "method": "fine-tuned top encoder layers + logistic head, weighted BCE, AdamW",
                "settings": settings.__dict__,
                "rows": data.counts(),
            }
        },
    )


def gate_metrics(
    scores: torch.Tensor, labels: Sequence[int], thresholds: Sequence[float] = (0.5, 0.9)
) -> dict[str, float]:
    """ROC-AUC, and per threshold the FPR on benign and the recall on harmful requests."""
    y = torch.tensor(labels, dtype=torch.float64)
    s = scores.double()
    out: dict[str, float] = {"n": float(len(labels)), "harmful": float(y.sum())}
    out["roc_auc"] = roc_auc(s, y) if 0 < y.sum() < len(y) else float("nan")
    for t in thresholds:
        benign, harmful = s[y == 0], s[y == 1]
        out[f"fpr@{t:g}"] = float((benign > t).double().mean()) if len(benign) else float("nan")
        out[f"recall@{t:g}"] = (
            float((harmful > t).double().mean()) if len(harmful) else float("nan")
        )
    return out


def train_default_gate(
    encoder: SentenceEncoder,
    *,
    out_dir: str | Path | None = None,
    data_dir: str | Path | None = None,
    generated_path: str | Path | None = None,
    handwritten_path: str | Path | None = None,
    eval_dir: str | Path | None = None,
    eval_requests: Mapping[str, Sequence[tuple[str, int]]] | None = None,
    settings: GateSettings = GateSettings(),
    log: Callable[[str], Any] = lambda _m: None,
) -> dict[str, Any]:
    """Build the gate's data, train it, measure it on every held-out set and save it.

    The data folders and files are those of the cost probe
    (:func:`~.train.train_default_cost`); every request of its evaluation sets, of
    XSTest and of ``eval_requests`` is held out of training.

    Args:
        encoder: the base encoder (the embedded all-MiniLM-L6-v2 for the shipped gate).
        out_dir: where to save the gate (``None``: not saved).
        eval_requests: more evaluation sets, ``name -> [(request, harmful?)]`` (the
            benchmark passes the audit's requests and the cost-eval sets' requests).
        settings: the recipe.
        log: progress messages.

    Returns:
        ``{"gate", "metrics": {set: gate_metrics}, "sets": {set: [(request, label)]},
        "data": the GatePrompts trained on, "rows": their counts, "seconds"}``; the sets
        are ``val``, ``test``, ``xstest`` and those of ``eval_requests``.
    """
    from .train import _load_examples

    examples, evals, _shas = _load_examples(
        data_dir, generated_path, handwritten_path, eval_dir, settings.seed, log
    )
    extra = {k: list(v) for k, v in (eval_requests or {}).items()}
    xstest = [(p, int(label == "unsafe")) for p, _t, label in load_sources(data_dir).xstest]
    held_out = eval_prompt_keys(evals)
    held_out |= {norm(p) for rows in [xstest, *extra.values()] for p, _ in rows}
    data = gate_prompts(examples, held_out, settings)
    log(f"gate data: {data.counts()}")
    t0 = time.perf_counter()
    gate = train_request_gate(encoder, data, settings, log)
    seconds = time.perf_counter() - t0
    sets: dict[str, list[tuple[str, int]]] = {}
    for split in ("val", "test"):
        prompts, labels, _ = data.split(split)
        sets[split] = list(zip(prompts, labels, strict=True))
    sets["xstest"] = xstest
    sets.update(extra)
    metrics = {
        name: gate_metrics(gate([p for p, _ in rows]), [y for _, y in rows])
        for name, rows in sets.items()
        if rows
    }
    gate.metadata["training"]["seconds"] = round(seconds, 1)
    gate.metadata["training"]["threads"] = torch.get_num_threads()
    gate.metadata["metrics"] = metrics
    if out_dir is not None:
        gate.save(out_dir)
    return {
        "gate": gate,
        "metrics": metrics,
        "sets": sets,
        "data": data,
        "rows": data.counts(),
        "seconds": seconds,
    }
