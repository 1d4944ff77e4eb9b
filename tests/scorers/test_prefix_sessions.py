"""Prefix-reusing sessions of the guard and PKU scorers equal full re-scoring (fp32, 1e-4),
while reading only the new tokens."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaForCausalLM, LlamaModel

from inferenceguard.lm.kv import cache_argument, fork_cache, new_cache, returned_cache
from inferenceguard.scorers.base import PrefixScorer, token_meter
from inferenceguard.scorers.guard_model import GenerativeGuardCost
from inferenceguard.scorers.pku import PKUCost, PKUReward, PKUScoreModel

from ._checkpoints import PROMPTS, tiny_llama_config

# A search in miniature: each step's candidates extend some of the previous step's texts
# (beams diverge, one parent is reused, one candidate ends), with uneven lengths so the
# full path left- or right-pads every batch.
STEPS = [
    ["Mix", "Then", "I can", "Hello"],
    ["Mix flour", "Mix water", "Then bake", "I can't"],
    ["Mix flour and water.", "Mix flour and", "Mix water now", "Then bake it for an hour."],
    ["Mix flour and water. Then bake it.", "Mix flour and water. Then", "Mix flour andsafe"],
    ["Mix flour and water. Then bake it.", "Mix flour and water.\n\nunsafe", ""],
]


@pytest.fixture(scope="module")
def guard(llama_tokenizer) -> GenerativeGuardCost:
    torch.manual_seed(2)
    model = LlamaForCausalLM(tiny_llama_config(llama_tokenizer)).eval()
    return GenerativeGuardCost(model, llama_tokenizer, batch_size=3)


@pytest.fixture(scope="module")
def pku(llama_tokenizer) -> PKUScoreModel:
    torch.manual_seed(3)
    backbone = LlamaModel(tiny_llama_config(llama_tokenizer)).eval()
    return PKUScoreModel(backbone, torch.nn.Linear(32, 1, bias=True), llama_tokenizer, batch_size=3)


def _full_token_worst(model: PKUScoreModel, prompt: str, responses: list[str]) -> torch.Tensor:
    """Largest per-token score over each response's tokens, from the full (no-cache) pass."""
    session = model.prefix_session(prompt)
    rows = model._encode_pair([prompt] * len(responses), responses)
    scores, mask = model._token_scores(rows)
    worst = []
    for j, row in enumerate(rows):
        n = len(row["input_ids"])
        part = scores[j, session.response_start : n]
        worst.append(part.max() if part.numel() else scores[j, n - 1])
    assert bool(mask.sum(-1).eq(torch.tensor([len(r["input_ids"]) for r in rows])).all())
    return torch.stack(worst)


def test_guard_session_scores_equal_full_rescoring_and_read_fewer_tokens(guard):
    assert isinstance(guard, PrefixScorer)
    # Several requests in flight, each with its own session, interleaved step by step.
    sessions = {p: guard.prefix_session(p) for p in PROMPTS}
    read, full_read = 0, 0
    for step, texts in enumerate(STEPS):
        for prompt, session in sessions.items():
            with token_meter() as meter:
                end, worst = session.score(texts)
            with token_meter() as full_meter:
                expected = guard.score([prompt] * len(texts), texts)
            torch.testing.assert_close(end, expected, atol=1e-4, rtol=0)
            assert worst is None  # a guard's verdict judges only the whole response
            if step > 0:  # after the prompt is cached, each step reads less than a re-score
                assert meter.tokens < full_meter.tokens
            read, full_read = read + meter.tokens, full_read + full_meter.tokens
    assert read < full_read / 2


def test_guard_session_resampling_the_same_parents_reuses_their_cache(guard):
    session = guard.prefix_session(PROMPTS[0])
    session.score(["Mix flour", "Then bake"])
    for texts in (["Mix flour and", "Then bake it"], ["Mix flour with", "Then bake now"]):
        with token_meter() as meter:
            end, _ = session.score(texts)
        torch.testing.assert_close(end, guard.score([PROMPTS[0]] * 2, texts), atol=1e-4, rtol=0)
        # Only the new words and the template's tail ran, not the prompt again.
        prompt_tokens = guard._count(PROMPTS[0], "")
        assert meter.tokens < prompt_tokens


def test_guard_session_hands_over_long_texts_to_the_full_path(llama_tokenizer, guard):
    short = GenerativeGuardCost(guard.model, llama_tokenizer, max_length=40)
    session = short.prefix_session(PROMPTS[1])
    texts = ["I can't help with that.", "Mix flour and water. " * 6]
    end, _ = session.score(texts)
    torch.testing.assert_close(end, short.score([PROMPTS[1]] * 2, texts), atol=1e-4, rtol=0)


def test_pku_session_end_scores_and_token_level_worst_equal_the_full_pass(pku):
    cost, reward = PKUCost(pku), PKUReward(pku)
    assert isinstance(cost, PrefixScorer) and isinstance(reward, PrefixScorer)
    sessions = {p: cost.prefix_session(p) for p in PROMPTS[:2]}
    for texts in STEPS:
        for prompt, session in sessions.items():
            end, worst = session.score(texts)
            torch.testing.assert_close(end, cost([prompt] * len(texts), texts), atol=1e-4, rtol=0)
            expected = _full_token_worst(pku, prompt, texts)
            torch.testing.assert_close(worst, expected, atol=1e-4, rtol=0)
            assert bool((worst >= end - 1e-6).all())


def test_pku_worst_sees_a_spike_inside_a_block(pku):
    """The token-level worst is the max over every token prefix, not only block ends."""
    prompt, text = PROMPTS[0], "Mix flour and water. Then bake it."
    session = pku.prefix_session(prompt)
    end, worst = session.score([text])
    rows = pku._encode_pair([prompt], [text])
    scores, _ = pku._token_scores(rows)
    per_token = scores[0, session.response_start :]
    assert worst.item() == pytest.approx(per_token.max().item(), abs=1e-4)
    assert end.item() == pytest.approx(per_token[-1].item(), abs=1e-4)


def test_prefix_reuse_can_be_switched_off(llama_tokenizer, guard, pku):
    off = GenerativeGuardCost(guard.model, llama_tokenizer, prefix_reuse=False)
    assert off.prefix_session("q") is None
    pku_off = PKUScoreModel(pku.backbone, pku.score_head, llama_tokenizer, prefix_reuse=False)
    assert PKUCost(pku_off).prefix_session("q") is None


def test_full_scoring_reports_real_tokens_to_the_meter(guard, pku):
    texts = ["Mix", "I can't help with that."]
    lengths = [guard._count(PROMPTS[0], t) for t in texts]
    with token_meter() as meter:
        guard.score([PROMPTS[0]] * 2, texts)
    assert meter.counted and meter.tokens == sum(lengths)  # padding is not counted
    with token_meter() as meter:
        pku.prefix_scores([PROMPTS[0]] * 2, texts, [[len(t)] for t in texts])
    assert meter.tokens == sum(pku._count(PROMPTS[0], t) for t in texts)


@torch.inference_mode()
def test_fork_cache_copies_rows_and_leaves_the_original(guard):
    model = guard.model
    ids = torch.tensor([[5, 6, 7, 8], [9, 10, 11, 12]])
    arg = cache_argument(model)
    out = model(input_ids=ids, **{arg: new_cache(model)}, use_cache=True)
    cache = returned_cache(out)
    before = [layer.keys.clone() for layer in cache.layers]
    forked = fork_cache(cache, torch.tensor([1, 1, 0]), 3)
    assert forked.get_seq_length() == 3 and cache.get_seq_length() == 4
    step = model(input_ids=torch.tensor([[1], [2], [3]]), **{arg: forked}, use_cache=True)
    assert returned_cache(step).get_seq_length() == 4
    for layer, old in zip(cache.layers, before, strict=True):
        assert torch.equal(layer.keys, old)
    torch.testing.assert_close(forked.layers[0].keys[0, :, :3], before[0][1, :, :3])


def test_the_embedded_cost_model_reports_its_tokens_too(cost):
    texts = ["A reply the encoder has not seen yet, 7319.", "Another unseen one, 4421."]
    with token_meter() as meter:
        cost(["How do I bake bread?"] * 2, texts)
    assert meter.counted and meter.tokens > 0
