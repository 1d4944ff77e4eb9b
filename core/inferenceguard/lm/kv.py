"""The decode state and every call into a transformers KV ``Cache``: the only file that makes them.

transformers has changed its cache API between releases (``past_key_values`` became
``cache`` in 5.x, ``crop`` and ``is_croppable`` moved onto layers), so every such call lives
here, behind :class:`DecodeState` and three small functions.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

__all__ = [
    "Checkpoint",
    "DecodeState",
    "MergedRows",
    "cache_argument",
    "cache_length",
    "can_fork",
    "fork_cache",
    "merge_rows",
    "mergeable",
    "new_cache",
    "returned_cache",
    "split_rows",
]

#: What :meth:`DecodeState.rollback` needs: the next logits, the hidden states and the length.
Checkpoint = tuple[torch.Tensor, torch.Tensor, int]


def cache_argument(model: Any) -> str:
    """The keyword ``model.forward`` takes the cache under (``cache`` in 5.x, else ``past_key_values``)."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def new_cache(model: Any) -> Any:
    """An empty dynamic cache for ``model`` (filled by the prefill)."""
    from transformers import DynamicCache

    return DynamicCache(config=model.config)


def returned_cache(output: Any) -> Any:
    """The cache a forward returned, under either of its names."""
    return output.get("cache", None) or output.get("past_key_values", None)


def cache_length(cache: Any) -> int:
    """Positions held by ``cache`` (0 for ``None``)."""
    return 0 if cache is None else int(cache.get_seq_length())


def can_fork(model: Any) -> bool:
    """Whether :func:`fork_cache` works for ``model``'s cache (every layer can be cropped;
    sliding-window and recurrent layers cannot)."""
    layers = getattr(new_cache(model), "layers", [])
    return all(getattr(layer, "is_croppable", True) for layer in layers)


def fork_cache(cache: Any, rows: torch.Tensor, length: int) -> Any:
    """A new cache with rows ``rows`` (repeats expand) and the first ``length`` positions.

    ``cache`` itself is left as it was, so one stored prefix can be forked to many
    candidates (the prefix-reusing scorers do this; the LM reorders its own in place).

    Args:
        cache: a filled cache of at least ``length`` positions.
        rows: `[m]` long batch indices into ``cache``.
        length: positions to keep, from the start.
    """
    forked = copy.copy(cache)
    # Layers assign new tensors when cropped or reordered, so shallow copies suffice.
    forked.layers = [copy.copy(layer) for layer in cache.layers]
    extra = cache_length(cache) - length
    if extra > 0:
        _crop(forked, extra)
    forked.reorder_cache(rows.to(torch.long))
    return forked


def _crop(cache: Any, extra: int) -> None:
    """Drop the last ``extra`` positions of every layer."""
    if not all(getattr(layer, "is_croppable", True) for layer in getattr(cache, "layers", [])):
        raise RuntimeError(
            "This model's KV cache cannot be cropped, so blocks cannot be resampled; "
            "set resample_rounds=0."
        )
    cache.crop(-extra)


def mergeable(states: Sequence[DecodeState]) -> bool:
    """Whether the caches of ``states`` can share one padded forward: every layer a plain
    dynamic layer (sliding-window, static and quantised layers are decoded one state at
    a time instead)."""
    from transformers.cache_utils import DynamicLayer

    for state in states:
        layers = getattr(state.cache, "layers", None)
        if not layers or any(type(layer) is not DynamicLayer for layer in layers):
            return False
    return True


@dataclass
class MergedRows:
    """Several decode states stacked into one batch for a single forward.

    Each state's rows are left-padded to the longest state; ``mask`` hides the padding and
    ``positions`` carries each row's true position, so a row computes what it would alone.

    Attributes:
        cache: the stacked cache `[Σn, heads, L_max, d]` per layer.
        mask: `[Σn, L_max + 1]` long, 1 on real positions (the new token included).
        positions: `[Σn, 1]` long, the position of each row's new token.
        spans: per state, its rows ``(start, stop)`` in the batch.
        lengths: per state, its cache length before the forward.
    """

    cache: Any
    mask: torch.Tensor
    positions: torch.Tensor
    spans: list[tuple[int, int]]
    lengths: list[int]


def merge_rows(model: Any, states: Sequence[DecodeState]) -> MergedRows:
    """Stack ``states`` (see :func:`mergeable`) into one left-padded batch (one copy of
    each layer's keys and values; the forward appends to it as usual)."""
    lengths = [s.length for s in states]
    rows = [s.n for s in states]
    longest = max(lengths)
    device = states[0].next_logits.device
    spans = [(sum(rows[:i]), sum(rows[: i + 1])) for i in range(len(rows))]
    cache = new_cache(model)
    for idx, layer in enumerate(cache.layers):
        parts = [state.cache.layers[idx] for state in states]
        keys = _stack_left_padded([p.keys for p in parts], spans, lengths, longest)
        values = _stack_left_padded([p.values for p in parts], spans, lengths, longest)
        layer.lazy_initialization(keys, values)
        layer.keys, layer.values = keys, values
    per_row = torch.tensor(lengths, device=device).repeat_interleave(
        torch.tensor(rows, device=device)
    )
    columns = torch.arange(longest + 1, device=device)
    mask = (columns[None, :] >= (longest - per_row)[:, None]).long()
    return MergedRows(cache, mask, per_row[:, None], spans, lengths)


def _stack_left_padded(
    parts: Sequence[torch.Tensor],
    spans: Sequence[tuple[int, int]],
    lengths: Sequence[int],
    longest: int,
) -> torch.Tensor:
    """`[n_i, h, L_i, d]` tensors -> one `[Σn, h, L_max, d]`, each right-aligned (zeros left)."""
    first = parts[0]
    out = first.new_zeros((spans[-1][1], first.shape[1], longest, first.shape[3]))
    for part, (start, stop), length in zip(parts, spans, lengths, strict=True):
        out[start:stop, :, longest - length :] = part
    return out


def split_rows(merged: MergedRows, cache: Any, states: Sequence[DecodeState]) -> None:
    """Undo :func:`merge_rows` after the forward: each state's cache becomes its own rows of
    ``cache`` with the padding dropped (views, not copies)."""
    longest = max(merged.lengths) + 1
    for state, (start, stop), length in zip(states, merged.spans, merged.lengths, strict=True):
        cut = longest - (length + 1)
        for layer, own in zip(cache.layers, state.cache.layers, strict=True):
            own.keys = layer.keys[start:stop, :, cut:]
            own.values = layer.values[start:stop, :, cut:]


class DecodeState:
    """The live rows of a decode: KV cache, next-token logits, last hidden states.

    Rows are candidates. All rows have the same length (prompt + generated tokens): rows
    that end are dropped by the search, never continued, so no row has padding inside.
    Only :class:`~inferenceguard.lm.LocalLM` advances a state (:meth:`LocalLM.step`);
    callers read it and reorder or roll back its rows.

    Attributes:
        cache: the transformers KV cache, batch dimension = rows (private to this module
            and :class:`~inferenceguard.lm.LocalLM`).
        next_logits: `[n, V]` logits of the next token of each row.
        hidden: `[n, H]` final-layer hidden state at each row's last token.
        length: tokens in the cache (prompt included).
        prompt_length: tokens of the prompt; ``length - prompt_length`` tokens were generated.
    """

    def __init__(
        self,
        cache: Any,
        next_logits: torch.Tensor,
        hidden: torch.Tensor,
        length: int,
        prompt_length: int | None = None,
    ) -> None:
        self.cache = cache
        self.next_logits = next_logits
        self.hidden = hidden
        self.length = length
        self.prompt_length = length if prompt_length is None else prompt_length
        #: Set by the step scheduler (:mod:`inferenceguard.search.scheduler`): the state's
        #: forwards then join the batched forward of every request in flight.
        self.stepper: Any = None

    @property
    def n(self) -> int:
        """Number of rows."""
        return self.next_logits.shape[0]

    @property
    def generated(self) -> torch.Tensor:
        """`[n]` long: tokens generated so far by each row (the position a script forces)."""
        return torch.full(
            (self.n,), self.length - self.prompt_length, dtype=torch.long, device=self.hidden.device
        )

    def select(self, indices: torch.Tensor) -> None:
        """Keep rows ``indices`` (with repeats: expand), in that order, in place.

        This reorders the KV cache on every layer by ``index_select`` on the batch
        dimension — the cache is never recomputed.

        Args:
            indices: `[m]` long tensor of row indices into the current state.
        """
        indices = indices.to(torch.long)
        self.cache.reorder_cache(indices.to(self.next_logits.device))
        self.next_logits = self.next_logits.index_select(0, indices.to(self.next_logits.device))
        self.hidden = self.hidden.index_select(0, indices.to(self.hidden.device))

    def checkpoint(self) -> Checkpoint:
        """What :meth:`rollback` needs to undo the next block (the cache is cropped, not copied)."""
        return self.next_logits, self.hidden, self.length

    def rollback(self, checkpoint: Checkpoint) -> None:
        """Undo the tokens decoded since ``checkpoint`` by cropping the KV cache.

        Used to resample a block with penalised logits; the prompt and earlier blocks are
        not recomputed.

        Raises:
            RuntimeError: the model's cache type cannot be cropped.
        """
        next_logits, hidden, length = checkpoint
        extra = self.length - length
        if extra > 0:
            _crop(self.cache, extra)
        self.next_logits, self.hidden, self.length = next_logits, hidden, length

    def advance(self, cache: Any, next_logits: torch.Tensor, hidden: torch.Tensor) -> None:
        """Record one decoded token for every row (called by the LM after its forward)."""
        self.cache, self.next_logits, self.hidden = cache, next_logits, hidden
        self.length += 1
