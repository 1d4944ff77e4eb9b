"""The seam between the search and a decoding backend, written down as Protocols.

:class:`~inferenceguard.lm.LocalLM` (transformers, in process) is the one implementation
today; a serving-engine backend (SGLang, vLLM) implements the same methods later. The
search, the critic's rollouts and the test doubles use nothing else, so a backend never
has to expose a KV cache or a forward function.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import torch

__all__ = ["Decoder", "RowState"]


class RowState(Protocol):
    """The live rows (candidates) of one decode, as the search sees them.

    Attributes:
        next_logits: `[n, V]` logits of each row's next token.
        hidden: `[n, H]` final-layer hidden state at each row's last token.
        length: tokens per row, prompt included (every row has the same length).
    """

    next_logits: torch.Tensor
    hidden: torch.Tensor
    length: int

    @property
    def n(self) -> int:
        """Number of rows."""

    def select(self, indices: torch.Tensor) -> None:
        """Keep rows ``indices`` `[m]` in that order; a repeated index expands a row."""

    def checkpoint(self) -> Any:
        """A marker :meth:`rollback` can return to."""

    def rollback(self, checkpoint: Any) -> None:
        """Forget every token decoded since ``checkpoint`` (the prompt is not recomputed)."""


class Decoder(Protocol):
    """What the search needs from a base model.

    Attributes:
        eos_token_ids: ids that end a response.
        vocab_size: V, the logits' width.
        hidden_size: H, the hidden states' width (what the critic reads).
        device: where the state's tensors live.
    """

    eos_token_ids: tuple[int, ...]

    @property
    def vocab_size(self) -> int: ...

    @property
    def hidden_size(self) -> int: ...

    @property
    def device(self) -> torch.device: ...

    def encode(self, text: str) -> list[int]:
        """Token ids of a rendered prompt."""

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """Response text of token ids (special tokens dropped)."""

    def prefill(self, prompt_ids: Sequence[int]) -> RowState:
        """Run the prompt once; a state with one row."""

    def step(self, state: RowState, next_tokens: torch.Tensor) -> None:
        """Append ``next_tokens`` `[n]` (one per row) and advance ``state`` in place."""

    def sample_block(
        self,
        state: RowState,
        block_len: int,
        *,
        sampler: Any,
        bias: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        stop: Sequence[str] = (),
        history: Sequence[Sequence[int]] | None = None,
    ) -> Any:
        """Sample up to ``block_len`` tokens for every row with a `[V]` or `[n, V]` logit
        bias; returns a :class:`~inferenceguard.lm.Block` (tokens, lengths, finished,
        hidden state at each row's last real token)."""
