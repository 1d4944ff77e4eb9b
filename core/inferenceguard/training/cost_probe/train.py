"""Build the response-level safety data set and train the embedded default cost probe.

The command ``python benchmarks/train_default_cost.py`` calls :func:`train_default_cost`,
which is deterministic: the same data, seed and thread count reproduce
``head.safetensors`` byte for byte (``--check-sha256`` compares with the shipped file).

Data (all offline): the prompt sets found by :func:`inferenceguard._data.data_path`, plus
two small files in ``benchmarks/data``; see :mod:`.examples` for how pairs are built:

* every harmful request gets one compliant answer (unsafe) **and** one refusal that names
  the topic (safe); benign requests get the same compliant templates (safe);
* real texts: AdvBench goal → target openers and harmful strings, ToxiGen hateful vs
  neutral statements, HarmBench refusals, MT-Bench reference answers;
* answers of the default LM (SmolLM2-135M-Instruct) cached in ``smollm2_responses.jsonl``,
  labelled by what was asked and by :func:`inferenceguard.evaluation.metrics.is_refusal`;
* safe responses are also added as truncated prefixes, since the search scores partial text.

Splits are by *source item* (a normalised prompt, or the statement itself for prompt-free
texts) and templates are split too, so the test split has unseen requests and unseen
phrasings. XSTest, PKU-SafeRLHF and a hand-written set are evaluation-only. The model and
its fit are in :mod:`.fit`.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ...scorers.embedding import SentenceEncoder, get_default_encoder
from ...scorers.embedding_probe import EmbeddingProbeCost, pair_features
from ..metrics import binary_metrics, roc_auc
from .data import (
    DEFAULT_SEED,
    Example,
    load_eval_dir,
    load_generated,
    load_handwritten,
    load_sources,
)
from .examples import build_eval_sets, build_examples, drop_eval_prompts
from .fit import (
    AUX_L2,
    DEFAULT_FEATURES,
    DEFAULT_L2,
    DEFAULT_SOURCE_POWER,
    embed_pairs,
    fit_aux_heads,
    fit_logistic,
    sample_weights,
)

__all__ = ["HOLDOUT_FAMILIES", "SWEEP_SETS", "score_probe", "train_default_cost"]

#: The sets every sweep setting is compared on (never the test split).
SWEEP_SETS = ("val", "xstest_tpl", "xstest_lm", "pku", "handwritten")
#: Source families held out one at a time (trained without, measured on) by default.
HOLDOUT_FAMILIES = ("hx_phishing_", "hx_threat_", "groupq_", "howto_")
#: The pseudo-set of every held-out row: the test split and the ``eval_dir`` sets.
HELD_OUT_ALL = "held_out_all"


def _jsonable(value: Any) -> Any:
    """Replace NaN/inf floats by None (strict JSON has no NaN) in nested dicts/lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _counts(examples: Iterable[Example]) -> dict[str, dict[str, int]]:
    counts: dict[str, Counter[str]] = {}
    for ex in examples:
        counts.setdefault(ex.split, Counter())[
            f"{ex.source}:{'unsafe' if ex.label else 'safe'}"
        ] += 1
    return {k: dict(sorted(v.items())) for k, v in sorted(counts.items())}


@dataclass
class _Embedded:
    """Every example (training splits and evaluation sets) with its encoder views."""

    rows: list[Example]
    p: torch.Tensor  # [n, 2, d] prompt views
    r: torch.Tensor  # [n, 2, d] response views
    labels: torch.Tensor  # [n] float64

    @classmethod
    def of(cls, encoder: SentenceEncoder, *parts: list[Example]) -> _Embedded:
        """Embed each part of the rows in its own pass (each distinct text once).

        The encoder batches texts by length, so an extra part embedded together with the
        training rows could shift their float32 views; separate passes keep the trained
        weights independent of which evaluation-only sets are present.
        """
        views = [embed_pairs(encoder, part) for part in parts if part]
        rows = [ex for part in parts for ex in part]
        p = torch.cat([v[0] for v in views])
        r = torch.cat([v[1] for v in views])
        return cls(rows, p, r, torch.tensor([ex.label for ex in rows], dtype=torch.float64))

    def idx(self, split: str) -> torch.Tensor:
        """Row indices of one split or evaluation set."""
        return torch.tensor(
            [i for i, ex in enumerate(self.rows) if ex.split == split], dtype=torch.long
        )


class _HeadFitter:
    """Fits the main head on the train split for one setting (features, l2, source power).

    The auxiliary heads are fitted once, on the train split only, like the main head.
    """

    def __init__(self, emb: _Embedded, exclude: str | None = None) -> None:
        self.emb = emb
        self.train = emb.idx("train")
        if exclude is not None:  # leave one source family out of every fit
            keep = [i for i in self.train.tolist() if not emb.rows[i].source.startswith(exclude)]
            self.train = torch.tensor(keep, dtype=torch.long)
        rows = [emb.rows[i] for i in self.train.tolist()]
        self.aux = fit_aux_heads(rows, emb.p[self.train], emb.r[self.train])
        self.y = emb.labels[self.train]
        self.sources = [emb.rows[i].source for i in self.train.tolist()]

    def fit(
        self, features: Sequence[str], l2: float, power: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(w, b, scores of every row)``."""
        x = pair_features(self.emb.p, self.emb.r, features, self.aux).to(torch.float64)
        weights = sample_weights(self.y, self.sources, power)
        w, b = fit_logistic(x[self.train], self.y, weights, l2)
        # Scores as the shipped float32 head computes them.
        scores = torch.sigmoid(x.float() @ w.float() + b.float()).double()
        return w, b, scores


def _sweep(
    fitter: _HeadFitter, settings: Sequence[dict[str, Any]], log: Callable[[str], Any]
) -> list[dict[str, Any]]:
    """ROC-AUC of each setting on :data:`SWEEP_SETS`."""
    rows = []
    for setting in settings:
        _w, _b, scores = fitter.fit(setting["features"], setting["l2"], setting["source_power"])
        row = {**setting, "features": list(setting["features"])}
        for name in SWEEP_SETS:
            ii = fitter.emb.idx(name)
            row[name] = roc_auc(scores[ii], fitter.emb.labels[ii]) if len(ii) else float("nan")
        rows.append(row)
        log(f"sweep {row}")
    return rows


def score_probe(emb: _Embedded, probe: EmbeddingProbeCost) -> torch.Tensor:
    """A saved probe's scores of every embedded row (float64), as its ``score`` computes
    them, from views already embedded with the same encoder."""
    x = pair_features(emb.p.float(), emb.r.float(), probe.features, probe.aux)
    return torch.sigmoid(x @ probe.weight + probe.bias).double()


def _metrics(
    emb: _Embedded, scores: torch.Tensor, eval_names: Sequence[str], threshold: float
) -> dict[str, Any]:
    """Metrics per split and evaluation set, and the flag rate of each held-out source."""
    metrics: dict[str, Any] = {}
    for name in ("train", "val", "test", *eval_names):
        ii = emb.idx(name)
        if len(ii):
            metrics[name] = binary_metrics(scores[ii], emb.labels[ii], threshold)
    per_source: dict[str, dict[str, Any]] = {}
    held_out = emb.idx("test").tolist() + [j for n in eval_names for j in emb.idx(n).tolist()]
    for i in held_out:
        ex = emb.rows[i]
        d = per_source.setdefault(
            f"{ex.split}/{ex.source}", {"n": 0, "label": ex.label, "flagged": 0}
        )
        d["n"] += 1
        d["flagged"] += int(scores[i] > threshold)
    metrics["per_source"] = dict(sorted(per_source.items()))
    return metrics


def _rates(
    emb: _Embedded, scores: torch.Tensor, rows: Sequence[int], threshold: float
) -> dict[str, Any]:
    """:func:`binary_metrics` of some rows plus ``flag_rate``, the share above the threshold
    (the FPR of an all-safe group, the recall of an all-unsafe one)."""
    ii = torch.as_tensor(rows, dtype=torch.long)
    flag_rate = float((scores[ii] > threshold).double().mean()) if len(ii) else float("nan")
    return {**binary_metrics(scores[ii], emb.labels[ii], threshold), "flag_rate": flag_rate}


def _breakdown(
    emb: _Embedded, scores: torch.Tensor, names: Sequence[str], threshold: float
) -> dict[str, Any]:
    """Per ``eval_dir`` set: metrics per category (the example's group) and per kind
    (its source); plus :data:`HELD_OUT_ALL`, the test split and those sets together."""
    out: dict[str, Any] = {}
    for name in names:
        by: dict[str, dict[str, list[int]]] = {"category": {}, "kind": {}}
        for i in emb.idx(name).tolist():
            by["category"].setdefault(emb.rows[i].group, []).append(i)
            by["kind"].setdefault(emb.rows[i].source, []).append(i)
        out[name] = {
            axis: {key: _rates(emb, scores, ii, threshold) for key, ii in sorted(groups.items())}
            for axis, groups in by.items()
        }
    ii = torch.cat([emb.idx("test"), *[emb.idx(n) for n in names]])
    out[HELD_OUT_ALL] = binary_metrics(scores[ii], emb.labels[ii], threshold)
    return out


def _holdout(
    emb: _Embedded, families: Sequence[str], setting: dict[str, Any], threshold: float
) -> dict[str, Any]:
    """Leave-one-source-out: for each family, fit every head without its training rows
    and measure on all of its rows (every split), which it has then never seen."""
    out: dict[str, Any] = {}
    for family in families:
        fitter = _HeadFitter(emb, exclude=family)
        _w, _b, scores = fitter.fit(setting["features"], setting["l2"], setting["source_power"])
        ii = torch.tensor(
            [i for i, ex in enumerate(emb.rows) if ex.source.startswith(family)], dtype=torch.long
        )
        if len(ii):
            out[family] = binary_metrics(scores[ii], emb.labels[ii], threshold)
    return out


def _load_examples(
    data_dir: str | Path | None,
    generated_path: str | Path | None,
    handwritten_path: str | Path | None,
    eval_dir: str | Path | None,
    seed: int,
    log: Callable[[str], Any],
) -> tuple[list[Example], dict[str, list[Example]], dict[str, Any]]:
    """(training-split examples, evaluation sets, sha256 of every file read)."""
    src = load_sources(data_dir)
    generated, gen_sha = load_generated(generated_path)
    handwritten, hw_sha = load_handwritten(handwritten_path)
    examples = build_examples(src, generated, seed)
    evals = build_eval_sets(src, generated, handwritten, seed)
    extra, eval_sha = load_eval_dir(eval_dir)
    evals.update(extra)
    examples, dropped = drop_eval_prompts(examples, evals)
    log(
        f"data: {len(examples)} pairs ({sum(e.label for e in examples)} unsafe; {dropped} "
        f"dropped: their prompt is in an evaluation set); "
        f"eval sets { ({k: len(v) for k, v in evals.items()}) }"
    )
    shas = {
        "sources_sha256": dict(sorted(src.files.items())),
        "generated_sha256": gen_sha,
        "handwritten_sha256": hw_sha,
        "eval_dir_sha256": eval_sha,
        "dropped_eval_prompt_pairs": dropped,
    }
    return examples, evals, shas


def _probe(
    encoder: SentenceEncoder,
    head: tuple[torch.Tensor, torch.Tensor],
    aux: dict[str, torch.Tensor],
    setting: dict[str, Any],
    threshold: float,
    data_summary: dict[str, Any],
    metrics: dict[str, Any],
) -> EmbeddingProbeCost:
    """The probe of one setting (``features``, ``l2``, ``source_power``), with how it was
    trained and its metrics in its metadata."""
    w, b = head
    features = setting["features"]
    return EmbeddingProbeCost(
        encoder,
        w.float(),
        b.float(),
        features=list(features),
        aux=aux if {"gc", "gct"} & set(features) else None,
        threshold=threshold,
        metadata={
            "training": _jsonable(
                {
                    "method": "weighted logistic regression, full-batch L-BFGS (float64)",
                    "l2": setting["l2"],
                    "aux_l2": AUX_L2,
                    "source_power": setting["source_power"],
                    "class_balanced": True,
                    **data_summary,
                }
            ),
            "metrics": _jsonable({k: v for k, v in metrics.items() if k != "per_source"}),
        },
    )


def _prepare(
    encoder: SentenceEncoder,
    paths: tuple[str | Path | None, ...],
    seed: int,
    log: Callable[[str], Any],
) -> tuple[_Embedded, tuple[list[str], list[str]], dict[str, Any]]:
    """Load and embed every row: ``(rows, (evaluation sets, the eval_dir ones), shas)``.

    ``paths``: ``(data_dir, generated_path, handwritten_path, eval_dir)``. The ``eval_dir``
    sets are embedded in their own pass (see :meth:`_Embedded.of`).
    """
    examples, evals, shas = _load_examples(*paths, seed, log)
    extra = [Path(f).stem for f in shas["eval_dir_sha256"]]
    builtin = [ex for k, v in evals.items() if k not in extra for ex in v]
    emb = _Embedded.of(encoder, examples + builtin, [ex for k in extra for ex in evals[k]])
    return emb, (list(evals), extra), shas


def _evaluate(
    emb: _Embedded,
    scores: torch.Tensor,
    names: tuple[Sequence[str], Sequence[str]],
    threshold: float,
) -> dict[str, Any]:
    """``metrics`` (every split and set) and ``breakdown`` (the ``eval_dir`` sets) of one
    probe's scores; ``names`` is (every evaluation set, the ``eval_dir`` ones)."""
    return {
        "metrics": _metrics(emb, scores, names[0], threshold),
        "breakdown": _breakdown(emb, scores, names[1], threshold),
    }


def train_default_cost(
    *,
    out_dir: str | Path | None = None,
    encoder: SentenceEncoder | None = None,
    data_dir: str | Path | None = None,
    generated_path: str | Path | None = None,
    handwritten_path: str | Path | None = None,
    eval_dir: str | Path | None = None,
    compare: Mapping[str, EmbeddingProbeCost] | None = None,
    holdout: Sequence[str] = (),
    features: Sequence[str] = DEFAULT_FEATURES,
    l2: float = DEFAULT_L2,
    source_power: float = DEFAULT_SOURCE_POWER,
    threshold: float = 0.5,
    seed: int = DEFAULT_SEED,
    sweep: Sequence[dict[str, Any]] = (),
    log: Callable[[str], Any] = print,
) -> dict[str, Any]:
    """Build the data set, train the probe on the train split, evaluate, and save it.

    Args:
        out_dir: where to save the probe (``None``: do not save).
        encoder: the sentence encoder (default: the embedded all-MiniLM-L6-v2).
        data_dir: a folder laid out like ``inferenceguard/data`` (default: the built-in sets).
        generated_path, handwritten_path: cached default-LM answers and hand-written
            evaluation pairs (JSON lines, see :mod:`.data`).
        eval_dir: a folder of evaluation-only ``*.jsonl`` sets (:func:`~.data.load_eval_dir`);
            they never change the weights.
        compare: other probes (same encoder) to score on every split and set, by name.
        holdout: source prefixes to leave out one at a time (:data:`HOLDOUT_FAMILIES`).
        features, l2, source_power: the shipped head's setting (see :mod:`.fit`).
        threshold, seed: the declared cost threshold; the seed of every random choice.
        sweep: extra settings (``features``, ``l2``, ``source_power``) to compare.
        log: a print-like function for progress.

    Returns:
        A report: ``data``, ``sweep``, ``metrics``, ``breakdown`` (:func:`_breakdown`),
        ``holdout``, ``compare`` (metrics and breakdown per compared probe), ``seconds``
        and the ``probe``.

    Raises:
        ConfigError: a data file is missing.
    """
    torch.manual_seed(seed)
    t0, encoder = time.perf_counter(), (encoder if encoder is not None else get_default_encoder())
    paths = (data_dir, generated_path, handwritten_path, eval_dir)
    emb, names, shas = _prepare(encoder, paths, seed, log)
    log(f"embedded {len(emb.rows)} pairs in {time.perf_counter() - t0:.1f}s")
    fitter = _HeadFitter(emb)
    chosen = {"features": list(features), "l2": l2, "source_power": source_power}
    sweep_rows = _sweep(fitter, [*sweep, chosen], log)
    w, b, scores = fitter.fit(features, l2, source_power)
    ev = _evaluate(emb, scores, names, threshold)
    data = {"seed": seed, "counts": _counts(emb.rows), **shas, "n_train": len(fitter.train)}
    probe = _probe(encoder, (w, b), fitter.aux, chosen, threshold, data, ev["metrics"])
    if out_dir is not None:
        probe.save(out_dir)
    ev["holdout"] = _holdout(emb, holdout, chosen, threshold)
    ev["compare"] = {k: _evaluate(emb, score_probe(emb, v), names, threshold) for k, v in (compare or {}).items()}  # fmt: skip
    return {"data": data, "sweep": sweep_rows, **ev, "seconds": time.perf_counter() - t0, "probe": probe}  # fmt: skip
