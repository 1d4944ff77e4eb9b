"""Screen new training texts for near-copies of held-out text before they join a template file.

The trainers hold evaluation sets out by exact (normalised) text only: a request or
response that appears in an evaluation set is never trained on
(:func:`~.examples.eval_prompt_keys`). A new training text that is a light paraphrase of
an evaluation text ("the most humane way to kill a live lobster" beside "kill a lobster
humanely") passes that rule and still leaks the evaluation set into training, so new
texts for ``templates/gate_prompts.json`` and ``templates/judge_responses.json`` are first
screened here: every text whose sentence embedding is within cosine ``threshold`` of a
held-out request or response is dropped. ``benchmarks/screen_new_texts.py`` is the
command; :func:`screen_gate_prompts` and :func:`screen_judge_texts` are the rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from .data import Example

__all__ = [
    "DEFAULT_NEAR_DUPLICATE_COSINE",
    "HeldOutTexts",
    "NearDuplicate",
    "held_out_texts",
    "near_duplicates",
    "screen_gate_prompts",
    "screen_judge_texts",
]

#: MiniLM cosine at or above which two texts count as the same text reworded. At 0.8 the
#: pairs read as paraphrases ("Can you explain why Mexicans are so lazy?" beside its
#: evaluation twin is 0.97); below about 0.7 they share a topic rather than a text.
DEFAULT_NEAR_DUPLICATE_COSINE = 0.8


class _Encoder(Protocol):
    def encode(self, texts: Sequence[str]) -> torch.Tensor: ...


@dataclass(frozen=True)
class HeldOutTexts:
    """The texts no training text may be a near-copy of.

    Attributes:
        requests: every evaluation set's requests, and the requests of the probe's
            validation and test pairs that no training pair also has.
        responses: every evaluation set's responses, and the responses of the probe's
            validation and test pairs (the judge is measured on those too).
    """

    requests: list[str]
    responses: list[str]


@dataclass(frozen=True)
class NearDuplicate:
    """One new text that is too close to a held-out text.

    Attributes:
        index: position of the new text in the list screened.
        field: ``"request"`` or ``"response"``: which part of the new text matched.
        cosine: the embedding cosine of the two texts.
        held_out: the held-out text it is closest to.
    """

    index: int
    field: str
    cosine: float
    held_out: str


def held_out_texts(
    examples: Sequence[Example], evals: Mapping[str, Sequence[Example]]
) -> HeldOutTexts:
    """The held-out requests and responses of a training run.

    Args:
        examples: the probe's pairs (their ``val``/``test`` requests and responses are
            held out; a request that a training pair also has is not).
        evals: the evaluation sets (all their requests and responses are held out).
    """
    requests = {ex.prompt for rows in evals.values() for ex in rows}
    trained = {ex.prompt for ex in examples if ex.split == "train"}
    requests |= {ex.prompt for ex in examples if ex.split != "train"} - trained
    requests = {r for r in requests if r.strip()}
    responses = {ex.response for rows in evals.values() for ex in rows}
    responses |= {ex.response for ex in examples if ex.split != "train"}
    return HeldOutTexts(sorted(requests), sorted(r for r in responses if r.strip()))


def near_duplicates(
    texts: Sequence[str],
    references: Sequence[str],
    encoder: _Encoder,
    *,
    threshold: float = DEFAULT_NEAR_DUPLICATE_COSINE,
    chunk: int = 512,
) -> list[tuple[int, int, float]]:
    """``(i, j, cosine)`` for every ``texts[i]`` whose nearest reference ``references[j]``
    is at cosine ``>= threshold`` (one row per text: the nearest reference).

    Args:
        texts: the candidate texts.
        references: the texts they must not copy.
        encoder: anything with ``encode(texts) -> [n, dim]`` unit-norm rows (the embedded
            :class:`~inferenceguard.scorers.embedding.SentenceEncoder`).
        threshold: the cosine in `(0, 1]` at which a text counts as a copy.
        chunk: candidates compared at once (memory is ``chunk x len(references)``).

    Raises:
        ValueError: ``threshold`` outside `(0, 1]` or ``chunk < 1``.
    """
    if not (isinstance(threshold, int | float) and 0.0 < threshold <= 1.0):
        raise ValueError(f"threshold must be in (0, 1], got {threshold!r}.")
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk!r}.")
    if not texts or not references:
        return []
    # Normalise again: a caller's encoder need not return unit rows, and the rule is cosine.
    ref = torch.nn.functional.normalize(torch.as_tensor(encoder.encode(references)).float(), dim=-1)
    out: list[tuple[int, int, float]] = []
    for start in range(0, len(texts), chunk):
        part = list(texts[start : start + chunk])
        emb = torch.nn.functional.normalize(torch.as_tensor(encoder.encode(part)).float(), dim=-1)
        best, where = (emb @ ref.T).max(dim=1)
        for k in torch.nonzero(best >= threshold).flatten().tolist():
            out.append((start + k, int(where[k]), float(best[k])))
    return out


def _screen(
    texts: Sequence[str], references: Sequence[str], field: str, encoder: _Encoder, threshold: float
) -> list[NearDuplicate]:
    """:func:`near_duplicates` of ``texts`` as :class:`NearDuplicate` rows for ``field``."""
    return [
        NearDuplicate(i, field, cos, references[j])
        for i, j, cos in near_duplicates(texts, references, encoder, threshold=threshold)
    ]


def screen_gate_prompts(
    items: Sequence[Mapping[str, Any]],
    held_out: HeldOutTexts,
    encoder: _Encoder,
    *,
    threshold: float = DEFAULT_NEAR_DUPLICATE_COSINE,
) -> list[NearDuplicate]:
    """The new request-gate texts (``{"prompt": ...}`` items) to drop: those within
    ``threshold`` of a held-out request."""
    prompts = [str(item["prompt"]) for item in items]
    return _screen(prompts, held_out.requests, "request", encoder, threshold)


def screen_judge_texts(
    items: Sequence[Mapping[str, Any]],
    held_out: HeldOutTexts,
    encoder: _Encoder,
    *,
    threshold: float = DEFAULT_NEAR_DUPLICATE_COSINE,
) -> list[NearDuplicate]:
    """The new response-judge texts (``{"request", "response"}`` items) to drop: those whose
    request is within ``threshold`` of a held-out request, or whose response is within it of
    a held-out response (one entry per text, the request's match first)."""
    requests = [str(item["request"]) for item in items]
    responses = [str(item["response"]) for item in items]
    found: dict[int, NearDuplicate] = {}
    for near in _screen(requests, held_out.requests, "request", encoder, threshold):
        found[near.index] = near
    for near in _screen(responses, held_out.responses, "response", encoder, threshold):
        found.setdefault(near.index, near)
    return [found[i] for i in sorted(found)]
