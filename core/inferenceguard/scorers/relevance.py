"""The embedded default reward: how relevant a response is to its prompt.

``reward = cos(embed(prompt), embed(response))`` with all-MiniLM-L6-v2. It rewards
answering the question and gives little to refusals or off-topic text (about 0.5 for a
good on-topic answer, about 0 for a refusal or an unrelated fact), which is the tension
the safe search has to resolve against the cost model. It is not a helpfulness or
correctness model: a response that restates the question scores well too.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .base import RewardModel
from .embedding import SentenceEncoder, get_default_encoder

__all__ = ["RelevanceReward"]


class RelevanceReward(RewardModel):
    """Cosine similarity of prompt and response sentence embeddings, in `[-1, 1]`.

    An empty (or whitespace-only) response scores 0.

    Attributes:
        encoder: the sentence encoder (by default the process-wide embedded one).
        id: ``"relevance:<encoder name>"``, e.g. ``"relevance:all-MiniLM-L6-v2"``.
    """

    def __init__(
        self,
        encoder: SentenceEncoder | None = None,
        *,
        device: str | torch.device | None = None,
    ) -> None:
        """Create the reward.

        Args:
            encoder: the encoder to use; ``None`` shares the embedded all-MiniLM-L6-v2.
            device: device of the embedded encoder (ignored when ``encoder`` is given).

        Raises:
            ModelLoadError: the embedded encoder is not installed.
        """
        self.encoder = encoder if encoder is not None else get_default_encoder(device)
        self.id = f"relevance:{self.encoder.id.rsplit('/', 1)[-1]}"

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> torch.Tensor:
        """Cosine similarity of each (prompt, response) pair.

        Args:
            prompts: `[n]` user requests.
            responses: `[n]` (partial) responses.

        Returns:
            `[n]` float32 CPU tensor.
        """
        n = len(prompts)
        if n == 0:
            return torch.empty(0, dtype=torch.float32)
        emb = self.encoder.encode(list(prompts) + list(responses))  # one call: dedup + cache
        # Rows are unit-norm, so the dot product is the cosine.
        sim = (emb[:n] * emb[n:]).sum(dim=1).clamp(-1.0, 1.0)
        empty = torch.tensor([not r.strip() for r in responses], dtype=torch.bool)
        return sim.masked_fill(empty, 0.0)
