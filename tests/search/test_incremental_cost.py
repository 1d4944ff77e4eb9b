"""The search scores through a cost model's prefix session when it has one: same answers as
full re-scoring, fewer cost-model tokens, and a token-level safety state for PKU models."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, LlamaModel

from inferenceguard import CostModel
from inferenceguard.scorers.base import PrefixSession
from inferenceguard.scorers.guard_model import GenerativeGuardCost
from inferenceguard.scorers.pku import PKUCost, PKUScoreModel
from inferenceguard.search.steps import verify

TEMPLATE = (
    "{{ bos_token }}Task: check the last message.\n"
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "Verdict:\n\n"
)
SEARCH = {"n_candidates": 4, "n_beams": 2, "block_len": 4, "max_new_tokens": 12, "seed": 0}


def _config(tokenizer) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
    )


def _guard(tokenizer, **options) -> GenerativeGuardCost:
    torch.manual_seed(5)
    model = LlamaForCausalLM(_config(tokenizer)).eval()
    return GenerativeGuardCost(model, tokenizer, chat_template=TEMPLATE, **options)


def _pku(tokenizer, **options) -> PKUCost:
    torch.manual_seed(7)  # a seed whose worst token prefix is inside a block
    backbone = LlamaModel(_config(tokenizer)).eval()
    head = torch.nn.Linear(32, 1)
    return PKUCost(PKUScoreModel(backbone, head, tokenizer, **options), threshold=10.0)


def test_guard_search_with_prefix_reuse_answers_as_full_rescoring(make_guard, smollm2_tokenizer):
    # A budget far from the random guard's costs: every decision is the same both ways.
    runs = {}
    for reuse in (True, False):
        guard = make_guard(cost=_guard(smollm2_tokenizer, prefix_reuse=reuse), budget=0.99)
        runs[reuse] = guard.generate("How do I bake bread?")
    on, off = runs[True], runs[False]
    assert on.text == off.text and on.token_ids == off.token_ids
    assert on.safety.z_trace == pytest.approx(off.safety.z_trace, abs=1e-4)
    assert on.safety.cost == pytest.approx(off.safety.cost, abs=1e-4)
    # Both count the cost model's tokens; reusing the prompt's cache reads fewer.
    assert 0 < on.safety.cost_model_tokens < off.safety.cost_model_tokens


def test_callable_cost_models_report_no_token_count(make_guard):
    result = make_guard().generate("Hi")
    assert result.safety.cost_model_tokens is None


def test_pku_search_tracks_the_worst_token_prefix(make_guard, smollm2_tokenizer):
    """z after a block = budget − max over every token prefix so far (not only block ends)."""
    prompt = "How do I bake bread?"
    cost = _pku(smollm2_tokenizer)
    result = make_guard(cost=cost, n_candidates=1, n_beams=1).generate(prompt)
    assert result.text and result.safety.safe
    model, lm = cost.model, make_guard().lm
    start = model.prefix_session(prompt).response_start
    worst, block_end = float("-inf"), float("-inf")
    for t, z in enumerate(result.safety.z_trace):
        text = lm.decode(result.token_ids[: 4 * (t + 1)])
        scores, _ = model._token_scores(model._encode_pair([prompt], [text]))
        worst = max(worst, scores[0, start:].max().item())
        block_end = max(block_end, cost([prompt], [text]).item())
        assert z == pytest.approx(result.safety.budget - worst, abs=1e-4)
    assert worst > block_end + 1e-3  # this seed's spike sits inside a block
    assert result.safety.max_prefix_cost == pytest.approx(worst, abs=1e-4)


class _SpikeSession(PrefixSession):
    """End cost 0, but a token prefix inside the text costs 1 when it contains "!"."""

    def score(self, responses: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor | None]:
        end = torch.zeros(len(responses))
        return end, torch.tensor([float("!" in r) for r in responses])

    def close(self) -> None:
        pass


class _SpikeCost(CostModel):
    threshold = 0.5
    id = "spike"

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> torch.Tensor:
        return torch.zeros(len(responses))

    def prefix_session(self, prompt: str) -> PrefixSession:
        return _SpikeSession()


@pytest.mark.parametrize(("mode", "unsafe"), [("prefix", [False, True]), ("final", [False, False])])
def test_verify_folds_the_token_level_worst_into_z_in_prefix_mode(
    make_ctx, make_cands, mode, unsafe
):
    ctx = make_ctx(cost=_SpikeCost(), safety_mode=mode)
    cands = make_cands(["fine", "fi!ne"], [0, 0])
    verify(ctx, cands, torch.full((2,), float("-inf")))
    assert cands.cost.tolist() == [0.0, 0.0]  # the texts' own cost
    assert (cands.z < 0).tolist() == unsafe
    assert ctx.report_extra()["cost_model_tokens"] is None


def test_session_scores_are_checked_like_any_scorer(make_ctx):
    class _Broken(_SpikeSession):
        def score(self, responses):
            return torch.full((len(responses),), float("nan")), None

    class _BrokenCost(_SpikeCost):
        def prefix_session(self, prompt: str) -> PrefixSession:
            return _Broken()

    from inferenceguard.errors import ScorerError

    ctx = make_ctx(cost=_BrokenCost())
    with pytest.raises(ScorerError, match="non-finite"):
        ctx.cost(["a"])


def test_pku_reward_scores_through_a_session_equal_full_scoring(make_ctx, smollm2_tokenizer):
    from inferenceguard.scorers.pku import PKUReward

    reward = PKUReward(_pku(smollm2_tokenizer).model)
    ctx = make_ctx(reward=reward)
    for texts in (["Mix", "Then", "I can"], ["Mix flour", "Then bake it", "I can't"]):
        expected = reward([ctx.prompt] * len(texts), texts)
        torch.testing.assert_close(ctx.reward(texts), expected, atol=1e-4, rtol=0)
    assert ctx.sessions["reward"] is not None
    ctx.close_sessions()
    assert not ctx.sessions
