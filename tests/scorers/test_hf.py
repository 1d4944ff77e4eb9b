"""The Hugging Face plumbing the loaders share: truncation, sources and the batching loop."""

from __future__ import annotations

import pytest
import torch

from inferenceguard.errors import ConfigError, InputError
from inferenceguard.scorers._hf import PairBatcher, fit_pair


def test_fit_pair_cuts_the_response_on_the_chosen_side(bert_tokenizer):
    response = "Mix flour and water. Then bake it for an hour. " * 6

    def count(p, r):
        return len(bert_tokenizer(p, r)["input_ids"])

    p, r, dropped = fit_pair(
        "a prompt",
        response,
        count=count,
        tokenizer=bert_tokenizer,
        max_length=20,
        response_side="left",
    )
    assert p == "" and response.endswith(r) and dropped == len(response) - len(r) > 0
    assert count(p, r) <= 20
    p, r, dropped = fit_pair(
        "a prompt",
        response,
        count=count,
        tokenizer=bert_tokenizer,
        max_length=20,
        response_side="right",
    )
    assert p == "" and response.startswith(r) and dropped == 0 and count(p, r) <= 20
    with pytest.raises(InputError, match="template alone"):
        fit_pair(
            "a", "b", count=count, tokenizer=bert_tokenizer, max_length=1, response_side="left"
        )


class _CharTokenizer:
    """One token per character, with exact offsets (enough for fit_pair)."""

    pad_token_id, eos_token_id, model_max_length = 0, None, 10**30

    def __call__(self, text, **_):
        return {"offset_mapping": [(i, i + 1) for i in range(len(text))]}


class _CharScorer(PairBatcher):
    """Tokens are character codes; the "model" reports, per row, the sum and count of real
    ids and the id in the last column."""

    def __init__(self, *, pad_side="right", **settings):
        self.pad_side = pad_side
        self._init_batching(_CharTokenizer(), None, **{"response_truncation": "left", **settings})
        self.batch_sizes = []

    def _encode_pair(self, prompts, responses):
        texts = [f"{p}|{r}" for p, r in zip(prompts, responses, strict=True)]
        return [{"input_ids": [ord(c) for c in text]} for text in texts]

    def _input_device(self):
        return torch.device("cpu")

    def _forward_batch(self, batch):
        ids, mask = batch["input_ids"], batch["attention_mask"]
        self.batch_sizes.append(len(ids))
        return torch.stack([(ids * mask).sum(-1), mask.sum(-1), ids[:, -1]], dim=-1)


def _expected(text: str, last: int) -> list[int]:
    return [sum(map(ord, text)), len(text), last]


def test_pair_batcher_chunks_pads_and_keeps_the_order():
    prompts, responses = ["a", "bb", "c", "dddd", ""], ["x", "yy", "", "z", "w"]
    texts = [f"{p}|{r}" for p, r in zip(prompts, responses, strict=True)]
    right = _CharScorer(batch_size=2, max_length=None)
    got = right._forward_all(prompts, responses, empty=torch.zeros(0, 3))
    assert right.batch_sizes == [2, 2, 1]
    # Right padding: a shorter row ends in pad ids (0); the longest row in its last char.
    lasts = [0, ord("y"), 0, ord("z"), ord("w")]  # "a|x" < "bb|yy" and "c|" < "dddd|z"
    assert got.tolist() == [_expected(t, last) for t, last in zip(texts, lasts, strict=True)]
    left = _CharScorer(batch_size=2, max_length=None, pad_side="left")
    got = left._forward_all(prompts, responses, empty=torch.zeros(0, 3))
    # Left padding: every row's last real token is in the last column.
    assert got.tolist() == [_expected(t, ord(t[-1])) for t in texts]
    empty = torch.zeros(0, 3)
    assert left._forward_all([], [], empty=empty) is empty


def test_pair_batcher_fits_over_long_pairs_prompt_first():
    scorer = _CharScorer(batch_size=4, max_length=8)
    got = scorer._forward_all(["abcdefgh", "ab"], ["xy", "xy"], empty=torch.zeros(0, 3))
    # "abcdefgh|xy" has 11 tokens: the prompt loses its first 3, the short pair is untouched.
    assert got.tolist() == [_expected("defgh|xy", ord("y")), _expected("ab|xy", 0)]
    assert scorer._fit("p", "0123456789") == ("", "3456789", 3)  # then the response's start
    right = _CharScorer(batch_size=4, max_length=8, response_truncation="right")
    assert right._fit("p", "0123456789") == ("", "0123456", 0)  # or its end


def test_pair_batcher_checks_its_settings():
    with pytest.raises(ConfigError, match="batch_size must be a positive integer"):
        _CharScorer(batch_size=0, max_length=None)
    with pytest.raises(ConfigError, match="max_length must be a positive integer"):
        _CharScorer(batch_size=1, max_length=0)
    with pytest.raises(ConfigError, match="response_truncation must be 'left' or 'right'"):
        _CharScorer(batch_size=1, max_length=None, response_truncation="middle")
    assert _CharScorer(batch_size=1, max_length=None).max_length == 2048  # no limit declared
