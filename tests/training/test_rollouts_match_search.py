"""The critic is trained on what the search feeds it: for one seed, the (hidden state, z,
step fraction) rows that rollouts record equal the ones the search computes."""

from __future__ import annotations

import pytest
import torch

from inferenceguard import CostModel, GuardConfig, InferenceGuard, RewardModel, SamplerSettings
from inferenceguard._data import prompt_seed
from inferenceguard.search.baselines import STRATEGIES
from inferenceguard.search.events import BlockEvent
from inferenceguard.training.critic.rollouts import (
    PromptItem,
    RolloutSettings,
    prompt_id,
    rollout_prompt,
)


def _search_rows(guard: InferenceGuard, prompt: str) -> list[BlockEvent]:
    ctx = guard._context(prompt, None, None, {})
    search = STRATEGIES[ctx.config.strategy](ctx)
    events = []
    while True:
        try:
            event = next(search)
        except StopIteration:
            return events
        if isinstance(event, BlockEvent):
            events.append(event)


@pytest.mark.parametrize("safety_mode", ["prefix", "final"])
def test_rollout_rows_equal_the_search_rows_for_one_seed(tiny_lm, safety_mode):
    # Costs vary (so z does) but stay within budget, and the reward is flat, so the search
    # keeps every candidate in row order: it then sees exactly the rollouts' responses.
    cost = CostModel.from_callable(lambda p, r: len(r) / 1000, threshold=0.5, id="length")
    reward = RewardModel.from_callable(lambda p, r: 0.0, id="flat")
    item = PromptItem(prompt_id("Tell me a story."), "Tell me a story.", "test")
    settings = RolloutSettings(
        samples_per_prompt=3,
        block_len=4,
        max_new_tokens=12,
        sampler=SamplerSettings(temperature=0.8, top_p=0.95),
        safety_mode=safety_mode,
        seed=7,
    )
    record, rows = rollout_prompt(tiny_lm, cost, reward, item, settings)
    assert all(r["finish"] == "length" for r in record["responses"])  # nobody left early

    config = GuardConfig(
        n_candidates=3,
        n_beams=3,
        block_len=4,
        max_new_tokens=12,
        temperature=0.8,
        top_p=0.95,
        safety_mode=safety_mode,
        # Rollouts keep every sample to the end; a commit horizon would drop beams that do
        # not start with the committed block. Each row's features are computed the same way
        # either way; with every beam kept the two see exactly the same rows.
        commit_horizon=None,
        seed=prompt_seed(settings.seed, item.id),
    )
    events = _search_rows(InferenceGuard(tiny_lm, cost, reward, config=config), item.text)
    assert len(events) == 3 and rows["block"].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    hidden = torch.cat([e.hidden.to("cpu", torch.float16) for e in events])
    assert torch.equal(rows["hidden"], hidden)
    assert torch.equal(rows["z"], torch.cat([e.z for e in events]))
    assert torch.equal(rows["step_frac"], torch.cat([e.step_frac for e in events]))
    assert len(set(r["text"] for r in record["responses"])) == 3  # the rows really differ
