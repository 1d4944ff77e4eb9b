"""Stop criteria return one bool per row, from the row's own tokens only."""

from __future__ import annotations

import torch

from inferenceguard.lm.stopping import StopStrings, hits_eos


def test_hits_eos_marks_rows_whose_newest_token_ends_the_response():
    assert hits_eos(torch.tensor([5, 2, 9]), torch.tensor([2, 9])).tolist() == [False, True, True]


def test_stop_strings_fire_on_the_token_that_completes_one(smollm2_tokenizer):
    tok = smollm2_tokenizer
    new = torch.tensor([tok.encode("Hello world"), tok.encode("Hello there")])
    assert StopStrings(tok, ["world"])(new, torch.arange(2)).tolist() == [True, False]
    # Only the rows asked about are checked, and a stop string that was already there
    # before the newest token is not a new stop.
    assert StopStrings(tok, ["Hello"])(new, torch.tensor([1])).tolist() == [False]
    assert StopStrings(tok, ["there"])(new, torch.tensor([1])).tolist() == [True]


def test_stop_strings_see_across_a_block_boundary(smollm2_tokenizer):
    tok = smollm2_tokenizer
    earlier, last = tok.encode("The end")[:-1], tok.encode("The end")[-1:]
    stopper = StopStrings(tok, ["end"], history=[earlier])
    assert stopper(torch.tensor([last]), torch.tensor([0])).tolist() == [True]
    assert not StopStrings(tok, [])  # no stop strings: the sampler skips the check
