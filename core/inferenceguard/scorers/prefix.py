"""Prefix-reusing scoring for scorers backed by a causal transformer (guard LMs, PKU models).

The search scores, every block, ``n`` candidates that each extend one of a few beams by a
few tokens. A full re-score reads the whole prompt and response again for every
candidate; a :class:`CausalPrefixSession` instead keeps the KV cache of the token rows it
has scored (its *stems*) and, for a new row, forks the stem that shares the longest
token prefix with it and runs only the tokens after that prefix:

* Llama-Guard-style guards: the stem is the chat template's head + prompt + response so
  far; per candidate the new response tokens **and** the template's tail up to the
  verdict position run (the tail follows the response, so it cannot be cached);
* PKU score models: the stem is the head + response so far; the per-token scores of the
  new tokens come out of the same pass, and the session keeps every position's score, so
  the largest score over all token prefixes of a response is known at no extra cost.

Reuse is decided on token ids, never on text: a row reuses exactly the positions whose
ids (and therefore, the model being causal, whose keys, values and scores) equal a stored
row's, so scores match a full re-score up to float rounding, whatever the tokenizer does
at block boundaries. Rows longer than the scorer's ``max_length`` are handed to the full
path, which shortens them as it always did.

Memory: stems used or made by the last three calls are kept (one verification step, the
commit check after it, and the next step or a resample, which reuses the same parents);
older ones are dropped with the caches they hold.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from ..lm.kv import fork_cache
from ._hf import Row
from .base import PrefixSession, count_tokens

__all__ = ["CausalPrefixModel", "CausalPrefixSession"]

#: Calls a stem survives without being used (see the module docstring).
_KEEP_CALLS = 3
#: Two one-character responses that tokenise differently: rendering both tells where the
#: response starts and how long the template's tail after it is.
_PROBES = ("A", "B")


class CausalPrefixModel(Protocol):
    """What a scorer implements to be scored by a :class:`CausalPrefixSession`."""

    max_length: int

    def _encode_pair(self, prompts: Sequence[str], responses: Sequence[str]) -> list[Row]:
        """Unpadded token rows, one per (prompt, response)."""

    def _input_device(self) -> torch.device:
        """Where input ids must go."""

    def _prefix_forward(
        self, batch: dict[str, torch.Tensor], cache: Any, last: torch.Tensor
    ) -> tuple[Any, torch.Tensor, torch.Tensor | None]:
        """One forward of right-padded new tokens on top of ``cache`` (``None``: empty).

        Args:
            batch: ``input_ids``, ``attention_mask`` (cached positions included) and
                ``position_ids``, `[m, L]` (mask `[m, cached + L]`), on the input device.
            last: `[m]` column of each row's last real token.

        Returns:
            ``(cache, end, tokens)``: the updated cache, `[m]` float32 CPU score at each
            row's last token, and `[m, L]` float32 CPU score at every new position (or
            ``None`` for models that score only the end).
        """


@dataclass
class _Stem:
    """Token ids whose KV cache is stored: row ``row`` of ``cache``.

    Attributes:
        ids: the tokens held (a prefix of the row that made the stem).
        cache: a batched KV cache; only row ``row`` and the first ``len(ids)`` positions
            belong to this stem.
        row: batch row of ``cache``.
        scores: `[len(ids)]` score at every position (token-level models), else ``None``.
        used: the call that last made or used it.
    """

    ids: list[int]
    cache: Any
    row: int
    scores: torch.Tensor | None
    used: int


class CausalPrefixSession(PrefixSession):
    """A :class:`~.base.PrefixSession` over a causal scorer model (see the module docstring).

    Args:
        model: the scorer side that runs forwards (:class:`CausalPrefixModel`).
        prompt: the request every scored response answers.
        full: ``full(prompts, responses) -> [n]`` scores without reuse, for rows over
            ``model.max_length`` (they are shortened there).
    """

    def __init__(
        self,
        model: CausalPrefixModel,
        prompt: str,
        full: Callable[[Sequence[str], Sequence[str]], torch.Tensor],
    ) -> None:
        self._model, self.prompt, self._full = model, prompt, full
        self._stems: list[_Stem] = []
        self._calls = 0
        a, b = (row["input_ids"] for row in model._encode_pair([prompt] * 2, list(_PROBES)))
        #: First position that holds response text (earlier ones are the template's head).
        self.response_start = _common_length(a, b)
        tail = _common_length(a[::-1], b[::-1])
        #: Template tokens after the response (the guard's verdict question, an EOS).
        self.tail = min(tail, len(a) - self.response_start)

    def close(self) -> None:
        self._stems = []

    @torch.inference_mode()
    def score(self, responses: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor | None]:
        responses = list(responses)
        n = len(responses)
        self._calls += 1
        rows = [r["input_ids"] for r in self._model._encode_pair([self.prompt] * n, responses)]
        end, worst = torch.zeros(n), torch.zeros(n)
        token_level = True
        fits = [i for i, row in enumerate(rows) if len(row) <= self._model.max_length]
        for stem, members in self._groups(rows, fits):
            e, w = self._score_group(stem, [rows[i] for i in members])
            end[members] = e
            if w is None:
                token_level = False
            else:
                worst[members] = w
        if long := [i for i in range(n) if len(rows[i]) > self._model.max_length]:
            # The full path shortens over-long texts; only their end score is known.
            values = self._full([self.prompt] * len(long), [responses[i] for i in long])
            end[long] = values.float()
            worst[long] = values.float()
        self._stems = [s for s in self._stems if s.used > self._calls - _KEEP_CALLS]
        return end, worst if token_level else None

    def _groups(self, rows: list[list[int]], members: list[int]) -> list[tuple[Any, list[int]]]:
        """Rows ``members`` grouped by the stem sharing the longest token prefix with each."""
        groups: dict[int, list[int]] = {}
        for i in members:
            best, best_len = -1, 0
            for k, stem in enumerate(self._stems):
                shared = _common_length(rows[i], stem.ids)
                if shared > best_len:
                    best, best_len = k, shared
            groups.setdefault(best, []).append(i)
        return [(self._stems[k] if k >= 0 else None, idx) for k, idx in groups.items()]

    def _score_group(
        self, stem: _Stem | None, rows: list[list[int]]
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """End scores `[m]` and token-level worst scores `[m]` (or ``None``) of ``rows``,
        run on top of ``stem``; the rows become stems themselves."""
        # Every row must run at least its last token, which gives its score.
        base = base_cap = min(len(row) - 1 for row in rows)
        if stem is not None:
            stem.used = self._calls
            base = min(base, *(_common_length(stem.ids, row) for row in rows))
        else:
            base = 0
        shared = min(min(_common_length(rows[0], row) for row in rows), base_cap)
        if len(rows) > 1 and shared > base:
            # Tokens every row has in common (the prompt, the first time) run once.
            stem = self._extend(stem, base, rows[0][:shared])
            base = shared
        cache = None
        if stem is not None and base > 0:
            cache = fork_cache(stem.cache, torch.full((len(rows),), stem.row), base)
        batch, last = self._new_tokens(rows, base)
        cache, end, tokens = self._model._prefix_forward(batch, cache, last)
        count_tokens(sum(len(row) - base for row in rows))
        worst = None
        for j, row in enumerate(rows):
            scores = None
            if tokens is not None:
                head = stem.scores[:base] if stem is not None and base > 0 else tokens[j, :0]
                scores = torch.cat([head, tokens[j, : len(row) - base]])
            keep = max(len(row) - self.tail, base)
            kept = None if scores is None else scores[:keep]
            self._stems.append(_Stem(row[:keep], cache, j, kept, self._calls))
            if scores is not None:
                worst = torch.zeros(len(rows)) if worst is None else worst
                response = scores[self.response_start :]
                worst[j] = response.max() if response.numel() else end[j]
        return end, worst

    def _extend(self, stem: _Stem | None, base: int, ids: list[int]) -> _Stem:
        """A new stem holding ``ids``: ``stem``'s first ``base`` positions plus the rest, run once."""
        cache = None
        if stem is not None and base > 0:
            cache = fork_cache(stem.cache, torch.tensor([stem.row]), base)
        batch, last = self._new_tokens([ids], base)
        cache, _, tokens = self._model._prefix_forward(batch, cache, last)
        count_tokens(len(ids) - base)
        scores = None
        if tokens is not None:
            head = stem.scores[:base] if stem is not None and base > 0 else tokens[0, :0]
            scores = torch.cat([head, tokens[0]])
        made = _Stem(ids, cache, 0, scores, self._calls)
        self._stems.append(made)
        return made

    def _new_tokens(
        self, rows: list[list[int]], base: int
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Right-padded tokens after ``base`` on the input device, and each row's last column."""
        new = [row[base:] for row in rows]
        width = max(len(part) for part in new)
        ids = torch.zeros(len(new), width, dtype=torch.long)
        mask = torch.zeros(len(new), base + width, dtype=torch.long)
        mask[:, :base] = 1
        for j, part in enumerate(new):
            ids[j, : len(part)] = torch.tensor(part, dtype=torch.long)
            mask[j, base : base + len(part)] = 1
        # Padding goes on the right: real tokens keep their positions and never see it.
        positions = (base + torch.arange(width)).expand(len(new), width)
        device = self._model._input_device()
        batch = {"input_ids": ids, "attention_mask": mask, "position_ids": positions}
        last = torch.tensor([len(part) - 1 for part in new])
        return {k: v.to(device) for k, v in batch.items()}, last


def _common_length(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token rows.

    Bisection on slice equality: list comparison runs in C, a Python loop per token
    would cost more than the forward it saves on long prompts.
    """
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo
