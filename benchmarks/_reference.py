"""The reference every speed benchmark divides by: plain sampling with ``model.generate``."""

from __future__ import annotations

from typing import Any

import torch


def sample_plain(lm: Any, ids: torch.Tensor, tokens: int) -> None:
    """Sample exactly ``tokens`` new tokens for every row of ``ids`` with no scoring at all."""
    with torch.inference_mode():
        lm.model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            do_sample=True,
            max_new_tokens=tokens,
            min_new_tokens=tokens,
            pad_token_id=lm.tokenizer.pad_token_id,
        )
