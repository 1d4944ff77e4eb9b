"""The embedded default reward: cosine relevance on the real all-MiniLM-L6-v2."""

from __future__ import annotations

import torch

from inferenceguard.scorers.relevance import RelevanceReward

from ._texts import HEALTH, HELPFUL_SURE


def test_relevance_ranks_on_topic_first(reward: RelevanceReward) -> None:
    responses = [
        HELPFUL_SURE,
        "The Eiffel Tower is in Paris and was finished in 1889.",
        "I'm sorry, I can't help with that.",
        "",
    ]
    scores = reward([HEALTH] * 4, responses)
    assert scores.shape == (4,) and scores.dtype == torch.float32
    assert scores[0] > scores[1] + 0.2 and scores[0] > scores[2] + 0.2
    assert scores[3].item() == 0.0
    assert reward.id == "relevance:all-MiniLM-L6-v2"
