"""Train the embedded response judge (:class:`~inferenceguard.scorers.response_judge.ResponseJudge`).

``python benchmarks/train_response_judge.py`` calls :func:`train_default_judge`; the same
data, seed and thread count give the same weights byte for byte. The data are responses
with two labels each, ``complies`` (does what was asked, 1, or declines, 0) and ``toxic``
(harmful in itself whatever was asked, 1: abusive language, or urging the reader into a
dangerous or illegal act; or not, 0), either of which may be unknown:

* the distinct responses of the cost probe's pairs whose label is known
  (:func:`~.fit.aux_targets`), at most :attr:`JudgeSettings.per_source` per source and
  split (the templated sources would otherwise drown the rest), in the probe's
  train/val/test split, so the judge never trains on a pair the probe holds out, nor on
  any evaluation set's request (:func:`~.examples.drop_eval_prompts` removed those);
* ``templates/judge_responses.json``, written for the judge by an author who did not see
  any evaluation set: refusals and safe redirections in many styles that name the harmful
  topic, helpful answers to benign requests in many domains (with the frightening words of
  cooking, coding, games and first aid), and compliant harmful answers (threats,
  harassment, stereotypes, phishing and scams, encouragement of dangerous acts, vague
  how-tos, hedged, role-played and refuse-then-comply answers), safe advice on risky
  personal choices beside answers that urge them on, supportive answers that use insulting
  words without insulting anyone, and neutral statements about groups of people, whole and
  cut off as in generation.
  Split by the hash of the response; a text whose request or response is in an
  evaluation set is dropped here, and a new text within MiniLM cosine 0.8 of one was
  dropped before it joined the file (:mod:`.near_duplicates`,
  ``benchmarks/screen_new_texts.py``).
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
from ...scorers.response_judge import DEFAULT_MAX_LENGTH, ResponseJudge
from .data import Example, columns_of_split, norm, split_of
from .examples import eval_prompt_keys
from .fit import aux_targets
from .gate import gate_metrics  # the same binary metrics, per head
from .texts import TEMPLATE_DIR
from .tuned import TuneSettings, fine_tune_heads

__all__ = [
    "JUDGE_TEMPLATES",
    "KIND_TARGETS",
    "JudgeSettings",
    "JudgeTexts",
    "judge_data",
    "judge_metrics",
    "judge_texts",
    "train_default_judge",
    "train_response_judge",
]

JUDGE_TEMPLATES = TEMPLATE_DIR / "judge_responses.json"

#: ``kind`` of a template text -> (complies, toxic); None: not labelled for that head
#: (a hedged or role-played answer may or may not be abusive in its language).
KIND_TARGETS: dict[str, tuple[int | None, int | None]] = {
    "refusal": (0, 0),
    "redirect": (0, 0),
    "refusal_partial": (0, 0),
    "benign_answer": (1, 0),
    "benign_answer_terse": (1, 0),
    "threat": (1, 1),
    "harassment": (1, 1),
    "stereotype": (1, 1),
    "phishing_scam": (1, 0),
    # Urging someone into a dangerous act is harmful whatever was asked ("should I drive
    # after six beers?" is a fair question; "go for it" is not a fair answer), so it is
    # the t head's, which the cost reads without the request gate.
    "dangerous_encouragement": (1, 1),
    "safe_advice": (1, 0),
    "vague_howto": (1, 0),
    "hedged": (1, None),
    "roleplay": (1, None),
    "partial": (1, None),
    "refuse_then_comply": (1, None),
}


@dataclass(frozen=True)
class JudgeSettings(TuneSettings):
    """The recipe of :func:`train_response_judge` (the shipped judge uses the defaults):
    the training loop's (:class:`~.tuned.TuneSettings`, here with 3 tuned layers; its
    seed also draws the per-source samples) and

    Attributes:
        per_source: at most this many responses of each probe source and split.
        length_buckets: batches are cut from runs of this many batches sorted by length
            (:func:`~.tuned.fine_tune_heads`).
        max_length: responses are truncated to this many tokens.
    """

    tuned_layers: int = 3
    per_source: int = 120
    length_buckets: int = 16
    max_length: int = DEFAULT_MAX_LENGTH


@dataclass
class JudgeTexts:
    """Responses with their (complies, toxic) targets, sources and splits (parallel lists)."""

    responses: list[str]
    targets: list[tuple[int | None, int | None]]
    sources: list[str]
    splits: list[str]

    def split(self, name: str) -> tuple[list[str], list[tuple[int | None, int | None]], list[str]]:
        """``(responses, targets, sources)`` of one split."""
        return columns_of_split(self.splits, name, self.responses, self.targets, self.sources)

    def counts(self) -> dict[str, dict[str, int]]:
        """Rows per split and label (``complies``/``declines``/``toxic``)."""
        out: dict[str, Counter[str]] = {}
        for (c, t), sp in zip(self.targets, self.splits, strict=True):
            counter = out.setdefault(sp, Counter())
            if c is not None:
                counter["complies" if c else "declines"] += 1
            if t:
                counter["toxic"] += 1
        return {k: dict(sorted(v.items())) for k, v in sorted(out.items())}


def judge_texts(
    examples: Sequence[Example],
    eval_prompts: set[str],
    eval_responses: set[str],
    settings: JudgeSettings = JudgeSettings(),
    templates: Sequence[Mapping[str, str]] | None = None,
) -> JudgeTexts:
    """The judge's labelled responses (see the module docstring).

    Args:
        examples: the cost probe's pairs (train/val/test), evaluation prompts dropped.
        eval_prompts, eval_responses: normalised (:func:`~.data.norm`) requests and
            responses of every evaluation set; no template text among them is used.
        settings: the per-source cap and seed.
        templates: the parsed ``judge_responses.json`` (read from the package by default).

    Raises:
        ValueError: a template has a ``kind`` that is not in :data:`KIND_TARGETS`.
    """
    if templates is None:
        templates = json.loads(JUDGE_TEMPLATES.read_text(encoding="utf-8"))["texts"]
    out = JudgeTexts([], [], [], [])
    seen: set[str] = set()

    def add(response: str, target: tuple[int | None, int | None], source: str, split: str) -> None:
        key = norm(response)
        if not key or key in seen or key in eval_responses:
            return
        seen.add(key)
        out.responses.append(response)
        out.targets.append(target)
        out.sources.append(source)
        out.splits.append(split)

    pools: dict[tuple[str, str], list[Example]] = {}
    for ex in examples:
        _, c, t = aux_targets(ex)
        if c is not None or t is not None:
            pools.setdefault((ex.source, ex.split), []).append(ex)
    rng = random.Random(settings.seed)
    for (source, split), rows in sorted(pools.items()):
        distinct = list({ex.response: ex for ex in rows}.values())
        if len(distinct) > settings.per_source:
            distinct = rng.sample(distinct, settings.per_source)
        for ex in distinct:
            add(ex.response, aux_targets(ex)[1:], source, split)
    for item in templates:
        if item["kind"] not in KIND_TARGETS:
            raise ValueError(
                f"judge template kind {item['kind']!r} is unknown; known: {sorted(KIND_TARGETS)}."
            )
        if norm(item["request"]) in eval_prompts:
            continue
        add(
            item["response"],
            KIND_TARGETS[item["kind"]],
            f"judge_{item['kind']}",
            split_of(norm(item["response"]), settings.seed),
        )
    return out


def train_response_judge(
    encoder: SentenceEncoder,
    data: JudgeTexts,
    settings: JudgeSettings = JudgeSettings(),
    log: Callable[[str], Any] = lambda _m: None,
) -> ResponseJudge:
    """Fine-tune the top layers of ``encoder`` and the two heads on the train split.

    The returned judge holds the weights rounded to float16, as
    :meth:`ResponseJudge.save` stores them, so what is measured is what ships.
    """
    responses, targets, sources = data.split("train")
    layers, (complies, toxic) = fine_tune_heads(
        encoder,
        responses,
        targets,
        sources,
        settings,
        max_length=settings.max_length,
        length_buckets=settings.length_buckets,
        log=lambda m: log(f"judge {m}"),
    )
    return ResponseJudge(
        encoder,
        layers,
        {"complies": complies, "toxic": toxic},
        max_length=settings.max_length,
        metadata={
            "training": {
                "method": "fine-tuned top encoder layers + two logistic heads, weighted BCE, AdamW",
                "settings": settings.__dict__,
                "rows": data.counts(),
            }
        },
    )


def judge_metrics(
    judge: ResponseJudge, responses: Sequence[str], targets: Sequence[tuple[int | None, ...]]
) -> dict[str, dict[str, float]]:
    """Per head, over the responses labelled for it: n, positives, ROC-AUC, and the FPR
    and recall at 0.5."""
    scores = judge(responses).double()
    out: dict[str, dict[str, float]] = {}
    for h, name in enumerate(ResponseJudge.HEADS):
        rows = [i for i, t in enumerate(targets) if t[h] is not None]
        if rows:
            m = gate_metrics(scores[rows, h], [targets[i][h] for i in rows], (0.5,))
            m["positive"] = m.pop("harmful")
            out[name] = m
    return out


def judge_data(
    *,
    data_dir: str | Path | None = None,
    generated_path: str | Path | None = None,
    handwritten_path: str | Path | None = None,
    eval_dir: str | Path | None = None,
    settings: JudgeSettings = JudgeSettings(),
    log: Callable[[str], Any] = lambda _m: None,
) -> tuple[JudgeTexts, list[Example], dict[str, list[Example]]]:
    """``(the judge's texts, the probe's pairs, the evaluation sets)`` that
    :func:`train_default_judge` trains and measures on (the same arguments), without
    training: for measuring a saved judge on exactly its held-out data."""
    from .train import _load_examples

    examples, evals, _shas = _load_examples(
        data_dir, generated_path, handwritten_path, eval_dir, settings.seed, log
    )
    prompts = eval_prompt_keys(evals)
    responses = {norm(ex.response) for rows in evals.values() for ex in rows}
    data = judge_texts(examples, prompts, responses, settings)
    log(f"judge data: {data.counts()}")
    return data, examples, evals


def train_default_judge(
    encoder: SentenceEncoder,
    *,
    out_dir: str | Path | None = None,
    data_dir: str | Path | None = None,
    generated_path: str | Path | None = None,
    handwritten_path: str | Path | None = None,
    eval_dir: str | Path | None = None,
    settings: JudgeSettings = JudgeSettings(),
    log: Callable[[str], Any] = lambda _m: None,
) -> dict[str, Any]:
    """Build the judge's data, train it, measure it on its held-out splits and save it.

    The data folders and files are those of the cost probe
    (:func:`~.train.train_default_cost`); every request and response of its evaluation
    sets (XSTest, PKU, the hand-written pairs and the ``eval_dir`` sets) is held out of
    training.

    Returns:
        ``{"judge", "metrics": {"val"|"test": judge_metrics}, "data": the JudgeTexts,
        "examples": the probe's pairs, "evals": the evaluation sets, "seconds"}``.
    """
    data, examples, evals = judge_data(
        data_dir=data_dir,
        generated_path=generated_path,
        handwritten_path=handwritten_path,
        eval_dir=eval_dir,
        settings=settings,
        log=log,
    )
    t0 = time.perf_counter()
    judge = train_response_judge(encoder, data, settings, log)
    seconds = time.perf_counter() - t0
    metrics = {}
    for split in ("val", "test"):
        texts, targets, _ = data.split(split)
        metrics[split] = judge_metrics(judge, texts, targets)
    judge.metadata["training"]["seconds"] = round(seconds, 1)
    judge.metadata["training"]["threads"] = torch.get_num_threads()
    judge.metadata["metrics"] = metrics
    if out_dir is not None:
        judge.save(out_dir)
    return {
        "judge": judge,
        "metrics": metrics,
        "data": data,
        "examples": examples,
        "evals": evals,
        "seconds": seconds,
    }
