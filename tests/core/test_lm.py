"""LocalLM: rendering, block sampling, KV-cache reordering, hidden states, stops, seeds."""

from __future__ import annotations

import pytest
import torch

from inferenceguard import LocalLM, ModelLoadError, SamplerSettings
from inferenceguard.errors import ConfigError, InputError

GREEDY = SamplerSettings(do_sample=False)


def _prompt_ids(lm: LocalLM, text: str = "Tell me a story.") -> list[int]:
    return lm.encode(lm.render(text))


def test_render_uses_chat_template_with_system_and_multi_turn(tiny_lm):
    prompt = tiny_lm.render(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Bye"},
        ]
    )
    assert prompt.startswith("<|im_start|>system\nBe brief.<|im_end|>")
    assert "<|im_start|>assistant\nHello!<|im_end|>" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")


def test_render_tools_and_tool_results_without_native_template_support(tiny_lm):
    tools = [{"name": "get_weather", "description": "Weather", "parameters": {"type": "object"}}]
    prompt = tiny_lm.render(
        [
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"id": "1", "name": "get_weather", "arguments": {"city": "Paris"}}],
            },
            {"role": "tool", "content": "sunny", "tool_call_id": "1"},
        ],
        tools=tools,
        tool_choice="required",
    )
    assert '"name": "get_weather"' in prompt
    assert (
        '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>' in prompt
    )
    assert "<tool_response>sunny</tool_response>" in prompt
    assert "You must call one of the tools." in prompt


def test_render_falls_back_to_plain_transcript_without_template(tiny_lm):
    lm = LocalLM(tiny_lm.model, tiny_lm.tokenizer, model_id="x")
    original = lm.tokenizer.chat_template
    try:
        lm.tokenizer.chat_template = None
        assert lm.render("Hi") == "User: Hi\nAssistant:"
    finally:
        lm.tokenizer.chat_template = original


def test_greedy_block_decoding_matches_generate(tiny_lm):
    ids = _prompt_ids(tiny_lm)
    state = tiny_lm.prefill(ids)
    tokens = []
    for _ in range(3):  # three blocks of 5 tokens, continuing through the KV cache
        block = tiny_lm.sample_block(state, 5, sampler=GREEDY)
        tokens += block.tokens[0, : block.lengths[0]].tolist()
        if block.finished[0]:
            break
    reference = tiny_lm.model.generate(
        torch.tensor([ids]), do_sample=False, max_new_tokens=15, min_new_tokens=15
    )[0, len(ids) :].tolist()
    assert tokens == reference[: len(tokens)]
    assert len(tokens) == 15


def test_reorder_then_continue_equals_recomputing_from_scratch(tiny_lm):
    ids = _prompt_ids(tiny_lm)
    state = tiny_lm.prefill(ids)
    state.select(torch.zeros(4, dtype=torch.long))
    gen = torch.Generator().manual_seed(0)
    block = tiny_lm.sample_block(state, 6, sampler=SamplerSettings(), generator=gen)
    order = torch.tensor([2, 0, 2])
    state.select(order)
    for row, src in enumerate(order.tolist()):
        full = torch.tensor([ids + block.tokens[src].tolist()])
        with torch.inference_mode():
            out = tiny_lm.model(full, output_hidden_states=True)
        torch.testing.assert_close(state.next_logits[row], out.logits[0, -1], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(
            state.hidden[row], out.hidden_states[-1][0, -1], atol=1e-4, rtol=1e-4
        )


def test_hidden_state_is_taken_at_each_rows_last_real_token(tiny_lm):
    ids = _prompt_ids(tiny_lm)
    state = tiny_lm.prefill(ids)
    state.select(torch.zeros(3, dtype=torch.long))
    eos = tiny_lm.eos_token_ids[0]
    # Force row 1 to end after two tokens with a bias that makes EOS certain at step 3.
    block = tiny_lm.sample_block(state, 2, sampler=GREEDY)
    bias = torch.zeros(3, tiny_lm.vocab_size)
    bias[1, eos] = 1e4
    block2 = tiny_lm.sample_block(state, 4, sampler=GREEDY, bias=bias)
    assert block2.finished.tolist() == [False, True, False]
    assert block2.lengths.tolist() == [4, 0, 4]
    assert block2.tokens[1, 0] == eos  # the EOS was sampled but is not part of the response
    for row in range(3):
        seq = ids + block.tokens[row].tolist() + block2.tokens[row, : block2.lengths[row]].tolist()
        with torch.inference_mode():
            out = tiny_lm.model(torch.tensor([seq]), output_hidden_states=True)
        torch.testing.assert_close(
            block2.hidden[row], out.hidden_states[-1][0, -1], atol=1e-4, rtol=1e-4
        )


def test_one_batched_forward_per_token_not_per_candidate(tiny_lm, monkeypatch):
    calls = []
    original = tiny_lm.model.forward

    def counting_forward(*args, **kwargs):
        calls.append(kwargs["input_ids"].shape)
        return original(*args, **kwargs)

    state = tiny_lm.prefill(_prompt_ids(tiny_lm))
    state.select(torch.zeros(16, dtype=torch.long))
    monkeypatch.setattr(tiny_lm.model, "forward", counting_forward)
    block = tiny_lm.sample_block(
        state, 8, sampler=SamplerSettings(), generator=torch.Generator().manual_seed(1)
    )
    assert len(calls) == block.forwards == 8
    assert all(shape == (16, 1) for shape in calls)


def test_stop_string_ends_the_row_exactly_there(tiny_lm):
    ids = _prompt_ids(tiny_lm)
    state = tiny_lm.prefill(ids)
    reference = tiny_lm.sample_block(state, 10, sampler=GREEDY)
    text = tiny_lm.decode(reference.tokens[0])
    stop = text[len(tiny_lm.decode(reference.tokens[0, :4])) :][:3]  # starts inside token 5
    assert stop
    state = tiny_lm.prefill(ids)
    block = tiny_lm.sample_block(state, 10, sampler=GREEDY, stop=[stop])
    assert block.finished[0] and block.lengths[0] < 10
    kept = tiny_lm.decode(block.tokens[0, : block.lengths[0]])
    assert stop in kept and stop not in tiny_lm.decode(block.tokens[0, : block.lengths[0] - 1])


def test_two_runs_with_one_seed_agree(tiny_lm):
    def run(seed):
        state = tiny_lm.prefill(_prompt_ids(tiny_lm))
        state.select(torch.zeros(4, dtype=torch.long))
        gen = torch.Generator().manual_seed(seed)
        return tiny_lm.sample_block(
            state, 8, sampler=SamplerSettings(top_p=0.9), generator=gen
        ).tokens

    assert torch.equal(run(3), run(3))
    assert not torch.equal(run(3), run(4))


def test_rollback_restores_the_state_exactly(tiny_lm):
    state = tiny_lm.prefill(_prompt_ids(tiny_lm))
    state.select(torch.zeros(2, dtype=torch.long))
    checkpoint = state.checkpoint()
    first = tiny_lm.sample_block(state, 5, sampler=GREEDY)
    state.rollback(checkpoint)
    again = tiny_lm.sample_block(state, 5, sampler=GREEDY)
    assert torch.equal(first.tokens, again.tokens)
    assert state.cache.get_seq_length() == state.length


def test_sampler_settings_are_validated():
    with pytest.raises(ConfigError, match="temperature"):
        SamplerSettings(temperature=0.0)
    with pytest.raises(ConfigError, match="top_p"):
        SamplerSettings(top_p=1.5)
    SamplerSettings(do_sample=False, temperature=0.0)  # greedy ignores temperature


def test_empty_prompt_is_rejected(tiny_lm):
    with pytest.raises(InputError):
        tiny_lm.prefill([])


def test_unknown_model_offline_fails_fast_with_a_fix(tmp_path):
    with pytest.raises(ModelLoadError, match="Fix:"):
        LocalLM.from_pretrained("no-such-org/no-such-model-xyz", device="cpu")
    with pytest.raises(ModelLoadError):
        LocalLM.from_pretrained(tmp_path, device="cpu")  # empty folder


@pytest.mark.slow
def test_default_model_loads_offline_and_knows_paris(default_lm):
    state = default_lm.prefill(_prompt_ids(default_lm, "What is the capital of France?"))
    block = default_lm.sample_block(state, 24, sampler=GREEDY)
    assert "Paris" in default_lm.decode(block.tokens[0, : block.lengths[0]])
    assert default_lm.model_id == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert default_lm.hidden_size == 576 and default_lm.context_window == 8192
