"""LocalLM.step (the public decode step), logits hooks and the ScriptedLM built on them."""

from __future__ import annotations

import torch

from inferenceguard import CostModel, GuardConfig, InferenceGuard, RewardModel, SamplerSettings
from inferenceguard.lm import LocalLM
from inferenceguard.processors import ForcedScript
from inferenceguard.testing import ScriptedLM

GREEDY = SamplerSettings(do_sample=False)


def _ids(lm, text="Tell me a story."):
    return lm.encode(lm.render(text))


def test_step_advances_every_row_like_recomputing_the_sequence(tiny_lm):
    ids = _ids(tiny_lm)
    state = tiny_lm.prefill(ids)
    state.select(torch.zeros(2, dtype=torch.long))
    chosen = torch.tensor([[11, 12], [13, 14]])
    for column in chosen.T:
        tiny_lm.step(state, column)
    assert state.length == len(ids) + 2 and state.generated.tolist() == [2, 2]
    for row in range(2):
        with torch.inference_mode():
            out = tiny_lm.model(
                torch.tensor([ids + chosen[row].tolist()]), output_hidden_states=True
            )
        torch.testing.assert_close(state.next_logits[row], out.logits[0, -1], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(
            state.hidden[row], out.hidden_states[-1][0, -1], atol=1e-4, rtol=1e-4
        )


def test_step_then_rollback_returns_to_the_checkpoint(tiny_lm):
    state = tiny_lm.prefill(_ids(tiny_lm))
    checkpoint = state.checkpoint()
    logits = state.next_logits.clone()
    tiny_lm.step(state, torch.tensor([5]))
    state.rollback(checkpoint)
    again = tiny_lm.sample_block(state, 1, sampler=GREEDY)
    assert again.tokens[0, 0] == logits[0].argmax()


def test_forced_script_hook_writes_the_script_per_row_position(tiny_lm):
    logits = torch.zeros(3, 10)
    forced = ForcedScript([4, 7, 2])(logits, torch.tensor([0, 1, 5]))
    assert forced.argmax(dim=-1).tolist() == [4, 7, 2]  # past the end: the last id


def test_a_logits_hook_steers_every_forward_without_touching_the_model(tiny_lm):
    eos = tiny_lm.eos_token_ids[0]
    script = [*tiny_lm.encode(" hello there"), eos]
    lm = LocalLM(tiny_lm.model, tiny_lm.tokenizer, logits_hooks=[ForcedScript(script)])
    state = lm.prefill(_ids(lm))
    state.select(torch.zeros(3, dtype=torch.long))
    block = lm.sample_block(state, 8, sampler=SamplerSettings(), generator=torch.Generator())
    assert block.finished.all() and block.lengths.tolist() == [len(script) - 1] * 3
    assert all(lm.decode(block.tokens[i, : block.lengths[i]]) == " hello there" for i in range(3))


def test_scripted_lm_writes_its_script_through_the_whole_guarded_search(tiny_lm):
    lm = ScriptedLM(tiny_lm, '<tool_call>{"name": "f", "arguments": {}}</tool_call>')
    guard = InferenceGuard(
        lm,
        CostModel.from_callable(lambda p, r: 0.0, threshold=0.5),
        RewardModel.from_callable(lambda p, r: 0.0),
        config=GuardConfig(n_candidates=4, n_beams=2, block_len=4, max_new_tokens=40, seed=0),
    )
    result = guard.generate("Call f.")
    assert result.text == '<tool_call>{"name": "f", "arguments": {}}</tool_call>'
    assert result.finish_reason == "stop"
    lm.set_script("Done.")
    assert guard.generate("Again.").text == "Done."
