"""Stop criteria for block sampling: EOS tokens and stop strings, as per-row bool tensors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["StopStrings", "hits_eos"]

# Tokens of earlier blocks decoded with the new ones: a stop string may straddle a block
# boundary, and no realistic stop string spans more tokens than this.
_TAIL = 8


def hits_eos(next_tokens: torch.Tensor, eos: torch.Tensor) -> torch.Tensor:
    """`[n]` bool: the row's newest token is an end-of-sequence token (``eos`` `[e]`)."""
    return torch.isin(next_tokens, eos)


class StopStrings:
    """Detects the token that completes a stop string, for many rows at once.

    Only a short tail of each row is decoded, in one ``batch_decode`` per step, so the cost
    does not grow with the response.

    Args:
        tokenizer: decodes token ids (special tokens dropped, as in the response text).
        stop: the stop strings (empty: never stops).
        history: each row's response tokens before this block (``None``: none).
    """

    def __init__(
        self,
        tokenizer: Any,
        stop: Sequence[str],
        history: Sequence[Sequence[int]] | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.stop = tuple(stop)
        self.history = history

    def __bool__(self) -> bool:
        return bool(self.stop)

    def __call__(self, new_tokens: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Which of ``rows`` just completed a stop string.

        Args:
            new_tokens: `[n, t]` the block's tokens so far (the newest last).
            rows: `[m]` the row indices to check (those still running).

        Returns:
            `[m]` bool, aligned with ``rows``.
        """
        index = rows.tolist()
        tails = [self._tail(i, new_tokens[i].tolist()) for i in index]
        decode = self.tokenizer.batch_decode
        now = decode(tails, skip_special_tokens=True)
        before = decode([t[:-1] for t in tails], skip_special_tokens=True)
        hit = [
            any(s in a and s not in b for s in self.stop) for a, b in zip(now, before, strict=True)
        ]
        return torch.tensor(hit, dtype=torch.bool, device=rows.device)

    def _tail(self, row: int, new: list[int]) -> list[int]:
        earlier = list(self.history[row][-_TAIL:]) if self.history else []
        return earlier + new
