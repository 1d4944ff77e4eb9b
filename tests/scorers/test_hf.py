"""The Hugging Face plumbing the loaders share: truncation, sources and the batching loop."""

from __future__ import annotations

import pytest

from inferenceguard.errors import InputError
from inferenceguard.scorers._hf import fit_pair


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
