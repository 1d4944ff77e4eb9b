"""SequenceClassifierCost / SequenceClassifierReward on tiny random BERT, DeBERTa-v2 and
Llama classifiers, saved with ``save_pretrained`` and loaded back by path."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import (
    AutoTokenizer,
    BertForSequenceClassification,
    DebertaV2ForSequenceClassification,
)

from inferenceguard.errors import ConfigError, InputError
from inferenceguard.scorers._hf import fit_pair
from inferenceguard.scorers.base import RewardModel, checked_scores
from inferenceguard.scorers.hf_classifier import SequenceClassifierCost, SequenceClassifierReward
from inferenceguard.scorers.registry import load_cost_model

from ._checkpoints import CHAT_TEMPLATE, PROMPTS, RESPONSES


@torch.inference_mode()
def _manual_logits(folder: Path, model_cls, texts_a, texts_b=None) -> torch.Tensor:
    """Reference: one unpadded forward per pair, straight through transformers."""
    tok = AutoTokenizer.from_pretrained(folder)
    model = model_cls.from_pretrained(folder).eval()
    rows = []
    for i, a in enumerate(texts_a):
        enc = tok(a, texts_b[i], return_tensors="pt") if texts_b else tok(a, return_tensors="pt")
        rows.append(model(**enc).logits[0])
    return torch.stack(rows)


def test_classifier_cost_is_the_unsafe_probability_of_each_pair(bert_dir):
    cost = SequenceClassifierCost.from_pretrained(bert_dir, batch_size=2, device="cpu")
    # "non-toxic" contains "toxic" but is negated: only index 1 counts as unsafe.
    assert cost.unsafe_indices == [1]
    assert cost.threshold == 0.5 and cost.id == str(bert_dir)
    expected = torch.softmax(
        _manual_logits(bert_dir, BertForSequenceClassification, PROMPTS, RESPONSES), -1
    )[:, 1]
    got = cost(PROMPTS, RESPONSES)  # batches of 2 with padding and token type ids
    assert got.dtype == torch.float32 and got.device.type == "cpu"
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_classifier_response_only_ignores_the_prompt(bert_dir):
    cost = SequenceClassifierCost.from_pretrained(bert_dir, input_format="response")
    expected = torch.softmax(
        _manual_logits(bert_dir, BertForSequenceClassification, RESPONSES), -1
    )[:, 1]
    torch.testing.assert_close(cost(PROMPTS, RESPONSES), expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(cost(["other"] * 3, RESPONSES), expected, atol=1e-5, rtol=1e-5)


def test_classifier_labels_modes_and_their_errors(bert_dir):
    both = SequenceClassifierCost.from_pretrained(bert_dir, unsafe_labels=["toxic", 0])
    torch.testing.assert_close(both(PROMPTS, RESPONSES), torch.ones(3))  # all classes
    logit = SequenceClassifierCost.from_pretrained(
        bert_dir, unsafe_labels="TOXIC", mode="logit", threshold=1.5
    )
    raw = _manual_logits(bert_dir, BertForSequenceClassification, PROMPTS, RESPONSES)[:, 1]
    torch.testing.assert_close(logit(PROMPTS, RESPONSES), raw, atol=1e-5, rtol=1e-5)
    assert logit.threshold == 1.5
    with pytest.raises(ConfigError, match="Did you mean 'toxic'"):
        SequenceClassifierCost.from_pretrained(bert_dir, unsafe_labels=["toxc"])
    with pytest.raises(ConfigError, match="out of range"):
        SequenceClassifierCost.from_pretrained(bert_dir, unsafe_labels=[2])
    with pytest.raises(ConfigError, match="no natural threshold"):
        SequenceClassifierCost.from_pretrained(bert_dir, mode="logit")
    with pytest.raises(ConfigError, match="Did you mean 'pair'"):
        SequenceClassifierCost.from_pretrained(bert_dir, input_format="pairs")
    with pytest.raises(ConfigError, match="chat template"):
        SequenceClassifierCost.from_pretrained(bert_dir, input_format="chat")
    with pytest.raises(ConfigError, match="which one is the reward"):
        SequenceClassifierReward.from_pretrained(bert_dir)


def test_classifier_multi_label_head_uses_the_largest_sigmoid(bert_dir, tmp_path):
    model = BertForSequenceClassification.from_pretrained(bert_dir)
    model.config.problem_type = "multi_label_classification"
    model.config.id2label = {0: "insult", 1: "threat"}
    model.config.label2id = {"insult": 0, "threat": 1}
    cost = SequenceClassifierCost(
        model, AutoTokenizer.from_pretrained(bert_dir), unsafe_labels=["insult", "threat"]
    )
    logits = _manual_logits(bert_dir, BertForSequenceClassification, PROMPTS, RESPONSES)
    expected = torch.sigmoid(logits).amax(-1)
    torch.testing.assert_close(cost(PROMPTS, RESPONSES), expected, atol=1e-5, rtol=1e-5)


def test_deberta_reward_is_the_single_logit(deberta_dir):
    reward = SequenceClassifierReward.from_pretrained(deberta_dir, batch_size=2)
    assert isinstance(reward, RewardModel) and reward.label_index == 0
    expected = _manual_logits(deberta_dir, DebertaV2ForSequenceClassification, PROMPTS, RESPONSES)[
        :, 0
    ]
    torch.testing.assert_close(reward(PROMPTS, RESPONSES), expected, atol=1e-5, rtol=1e-5)


def test_deberta_single_logit_cost_defaults(deberta_dir):
    prob = SequenceClassifierCost.from_pretrained(deberta_dir)
    logit = SequenceClassifierCost.from_pretrained(deberta_dir, mode="logit")
    assert prob.unsafe_indices == [0] and logit.threshold == 0.0
    # sigmoid(logit) > 0.5 exactly when logit > 0: both modes make the same decision.
    torch.testing.assert_close(
        prob(PROMPTS, RESPONSES), torch.sigmoid(logit(PROMPTS, RESPONSES)), atol=1e-6, rtol=0
    )


def test_classifier_chat_format_renders_the_template(deberta_dir):
    reward = SequenceClassifierReward.from_pretrained(
        deberta_dir, input_format="chat", chat_template=CHAT_TEMPLATE
    )
    texts = [f"user: {p}\nassistant: {r}\n" for p, r in zip(PROMPTS, RESPONSES, strict=True)]
    tok = AutoTokenizer.from_pretrained(deberta_dir)
    model = DebertaV2ForSequenceClassification.from_pretrained(deberta_dir).eval()
    with torch.inference_mode():
        expected = torch.stack(
            [
                model(**tok(t, add_special_tokens=False, return_tensors="pt")).logits[0, 0]
                for t in texts
            ]
        )
    torch.testing.assert_close(reward(PROMPTS, RESPONSES), expected, atol=1e-5, rtol=1e-5)


def test_classifier_truncates_the_prompt_before_the_response(bert_dir, bert_tokenizer):
    prompt = "How do I bake bread? " * 20
    response = RESPONSES[0]
    short = SequenceClassifierCost.from_pretrained(bert_dir, max_length=32)
    full = SequenceClassifierCost.from_pretrained(bert_dir)

    def count(p, r):
        return len(bert_tokenizer(p, r)["input_ids"])

    kept, kept_response, dropped = fit_pair(
        prompt, response, count=count, tokenizer=bert_tokenizer, max_length=32, response_side="left"
    )
    assert prompt.endswith(kept) and 0 < len(kept) < len(prompt)
    assert kept_response == response and dropped == 0
    assert count(kept, response) <= 32 < count(prompt, response)
    torch.testing.assert_close(short([prompt], [response]), full([kept], [response]))


def test_mismatched_lengths_are_rejected_by_checked_scores(bert_dir):
    cost = SequenceClassifierCost.from_pretrained(bert_dir)
    with pytest.raises(InputError, match="same length"):
        checked_scores(cost, PROMPTS, RESPONSES[:2])


def test_empty_response_scores_with_tokenizers_that_add_no_special_tokens(
    tmp_path, smollm2_tokenizer
):
    from transformers import LlamaConfig, LlamaForSequenceClassification

    config = LlamaConfig(
        vocab_size=len(smollm2_tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        num_labels=2,
        pad_token_id=smollm2_tokenizer.eos_token_id,
    )
    LlamaForSequenceClassification(config).save_pretrained(tmp_path)
    smollm2_tokenizer.save_pretrained(tmp_path)
    cost = load_cost_model(tmp_path, input_format="response", device="cpu")
    scores = cost(["hi", "hi"], ["", "hello"])
    assert scores.shape == (2,) and bool(((scores >= 0) & (scores <= 1)).all())
    assert cost(["hi"], [""]).shape == (1,)
