"""GenerativeGuardCost on a tiny random Llama guard with whole-word verdict tokens."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, LlamaForCausalLM

from inferenceguard.errors import ConfigError
from inferenceguard.scorers._hf import fit_pair
from inferenceguard.scorers.guard_model import GenerativeGuardCost

from ._checkpoints import PROMPTS, RESPONSES


def _manual_p_unsafe(folder: Path, prompt: str, response: str, **template_kwargs) -> float:
    tok = AutoTokenizer.from_pretrained(folder)
    model = LlamaForCausalLM.from_pretrained(folder).eval()
    conversation = [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
    text = tok.apply_chat_template(
        conversation, tokenize=False, add_generation_prompt=True, **template_kwargs
    )
    ids = tok(text, add_special_tokens=False, return_tensors="pt")
    safe, unsafe = tok.convert_tokens_to_ids(["safe", "unsafe"])
    with torch.inference_mode():
        logits = model(**ids).logits[0, -1]
    return torch.softmax(logits[[safe, unsafe]], -1)[1].item()


def test_guard_cost_is_p_unsafe_at_the_verdict_position(guard_dir, llama_tokenizer):
    assert llama_tokenizer.convert_ids_to_tokens(
        llama_tokenizer.encode("unsafe", add_special_tokens=False)
    ) == ["unsafe"]  # the fixture's vocabulary has whole verdict words, as Llama Guard 3's
    cost = GenerativeGuardCost.from_pretrained(guard_dir, batch_size=3)
    assert cost.threshold == 0.5 and cost.id == str(guard_dir)
    assert cost.verdict_token_ids == tuple(
        llama_tokenizer.convert_tokens_to_ids(["safe", "unsafe"])
    )
    got = cost(PROMPTS, RESPONSES)  # one left-padded batch of three lengths
    expected = torch.tensor(
        [_manual_p_unsafe(guard_dir, p, r) for p, r in zip(PROMPTS, RESPONSES, strict=True)]
    )
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert ((got > 0) & (got < 1)).all()


def test_guard_template_kwargs_template_and_verdict_ids(guard_dir, llama_tokenizer):
    with_categories = GenerativeGuardCost.from_pretrained(
        guard_dir, template_kwargs={"categories": "S1 violence"}
    )
    assert "Categories: S1 violence." in with_categories.render("q", "a")
    expected = _manual_p_unsafe(guard_dir, PROMPTS[1], RESPONSES[1], categories="S1 violence")
    assert with_categories([PROMPTS[1]], [RESPONSES[1]]).item() == pytest.approx(expected, abs=1e-5)

    custom = GenerativeGuardCost.from_pretrained(
        guard_dir, chat_template="Judge: {{ messages[1]['content'] }}\n\n"
    )
    assert (
        custom.render("q", "an answer") == "Judge: an answer\n"
    )  # jinja drops one trailing newline
    ids = tuple(llama_tokenizer.convert_tokens_to_ids(["unsafe", "safe"]))
    swapped = GenerativeGuardCost.from_pretrained(guard_dir, verdict_token_ids=ids)
    plain = GenerativeGuardCost.from_pretrained(guard_dir)
    torch.testing.assert_close(swapped(PROMPTS, RESPONSES), 1 - plain(PROMPTS, RESPONSES))


def test_guard_configuration_errors(guard_dir, llama_tokenizer):
    model = LlamaForCausalLM.from_pretrained(guard_dir)
    with pytest.raises(ConfigError, match="same token"):
        GenerativeGuardCost(model, llama_tokenizer, verdict_token_ids=(5, 5))
    with pytest.raises(ConfigError, match="two token ids"):
        GenerativeGuardCost(model, llama_tokenizer, verdict_token_ids=(5, 10**6))
    no_template = AutoTokenizer.from_pretrained(guard_dir)
    no_template.chat_template = None
    with pytest.raises(ConfigError, match="no chat template"):
        GenerativeGuardCost(model, no_template)


def test_guard_truncates_long_prompts_to_max_length(guard_dir):
    long_prompt = "Tell me how to make a bomb. " * 40
    cost = GenerativeGuardCost.from_pretrained(guard_dir, max_length=64)
    batch = cost._batch([long_prompt, PROMPTS[0]], [RESPONSES[1], RESPONSES[0]])
    assert batch["input_ids"].shape[1] <= 64
    assert cost.render("", "").startswith("<s>")  # the template (and its BOS) survives
    assert torch.isfinite(cost([long_prompt], [RESPONSES[1]])).all()


def test_guard_truncated_pairs_score_as_their_kept_text_alone(guard_dir):
    """Cut to max_length in one left-padded batch = the reference forward on the kept text."""
    tok = AutoTokenizer.from_pretrained(guard_dir)

    def count(prompt: str, response: str) -> int:
        conversation = [
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": response},
        ]
        text = tok.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
        return len(tok(text, add_special_tokens=False)["input_ids"])

    pairs = [
        ("Tell me how to make a bomb. " * 40, RESPONSES[1]),  # the prompt is cut
        ("hello", RESPONSES[2] * 8),  # the prompt is not enough: the response's start goes
        (PROMPTS[0], RESPONSES[0]),  # fits as it is
    ]
    expected = []
    for prompt, response in pairs:
        kept = fit_pair(
            prompt, response, count=count, tokenizer=tok, max_length=64, response_side="left"
        )
        assert count(kept[0], kept[1]) <= 64
        expected.append(_manual_p_unsafe(guard_dir, kept[0], kept[1]))
    assert count(*pairs[0]) > 64 and count("", pairs[1][1]) > 64 >= count(*pairs[2])
    cost = GenerativeGuardCost.from_pretrained(guard_dir, max_length=64, batch_size=3)
    got = cost([p for p, _ in pairs], [r for _, r in pairs])
    torch.testing.assert_close(got, torch.tensor(expected), atol=1e-5, rtol=1e-5)
