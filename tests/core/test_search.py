"""The InferenceGuard search and its baselines on a tiny random model with synthetic costs."""

from __future__ import annotations

import hashlib

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from inferenceguard import (
    ContextLengthError,
    CostModel,
    GuardConfig,
    ResourceError,
    SafetyExhaustedError,
)
from inferenceguard.config import GuardConfig as _Config
from inferenceguard.testing import keyword_cost

STRATEGY_NAMES = list(_Config.model_fields["strategy"].annotation.__args__)


def _greedy_first_token_text(tiny_lm, prompt="Hi"):
    from inferenceguard import SamplerSettings

    state = tiny_lm.prefill(tiny_lm.encode(tiny_lm.render(prompt)))
    block = tiny_lm.sample_block(state, 1, sampler=SamplerSettings(do_sample=False))
    return tiny_lm.decode(block.tokens[0, :1])


def test_safe_prompt_streams_blocks_that_add_up_to_the_result(make_guard):
    guard = make_guard()
    chunks = list(guard.stream("Hi"))
    result = chunks[-1].result
    assert result is not None and all(c.result is None for c in chunks[:-1])
    assert "".join(c.delta for c in chunks) == result.text
    assert len(chunks) > 2  # text arrived block by block, not all at the end
    assert result.finish_reason == "length"
    assert result.completion_tokens == 12
    report = result.safety
    assert report.safe and report.cost == 0.0 and report.budget == 0.5
    assert report.steps == 3 and report.candidates_sampled == 12 and not report.exhausted
    assert len(report.z_trace) == 3


def test_logit_penalty_finds_the_safe_path_when_every_first_candidate_is_unsafe(
    make_guard, tiny_lm
):
    banned = _greedy_first_token_text(tiny_lm)
    # Greedy: every candidate of round 1 is identical and unsafe; only the penalty helps.
    guard = make_guard(
        cost=keyword_cost([banned]), do_sample=False, logit_penalty=1e4, resample_rounds=3
    )
    result = guard.generate("Hi")
    assert banned.lower() not in result.text.lower()
    assert result.text and result.safety.safe and not result.safety.exhausted
    assert result.safety.all_unsafe_steps >= 1 and result.safety.resample_rounds >= 1


def test_without_resampling_the_same_case_is_exhausted(make_guard, tiny_lm):
    banned = _greedy_first_token_text(tiny_lm)
    guard = make_guard(cost=keyword_cost([banned]), do_sample=False, resample_rounds=0)
    result = guard.generate("Hi")
    assert result.finish_reason == "safety" and result.safety.exhausted
    assert result.text == "I'm sorry, but I can't help with that."
    assert result.safety.cost == 0.0


def test_no_safe_path_returns_only_safe_text(make_guard):
    everything = CostModel.from_callable(lambda p, r: float(len(r) > 0), threshold=0.5)
    result = make_guard(cost=everything).generate("Hi")
    assert result.finish_reason == "safety" and result.safety.exhausted
    assert result.text == "" and result.safety.safe


def test_search_stops_at_the_last_safe_prefix(make_guard):
    short_only = CostModel.from_callable(lambda p, r: float(len(r) > 12), threshold=0.5)
    chunks = list(make_guard(cost=short_only, block_len=2).stream("Hi"))
    result = chunks[-1].result
    assert result.finish_reason == "safety"
    assert 0 < len(result.text) <= 12
    assert "".join(c.delta for c in chunks) == result.text


def test_on_exhausted_raise_carries_the_safe_result(make_guard):
    everything = CostModel.from_callable(lambda p, r: 1.0, threshold=0.5)
    with pytest.raises(SafetyExhaustedError) as info:
        make_guard(cost=everything, on_exhausted="raise").generate("Hi")
    assert info.value.result.safety.exhausted


def test_n1_greedy_without_safety_pressure_equals_plain_greedy_generation(make_guard, tiny_lm):
    guard = make_guard(n_candidates=1, n_beams=1, do_sample=False, block_len=4, max_new_tokens=12)
    result = guard.generate("Tell me a story.")
    ids = tiny_lm.encode(tiny_lm.render("Tell me a story."))
    ref = tiny_lm.model.generate(torch.tensor([ids]), do_sample=False, max_new_tokens=12)
    assert result.token_ids == ref[0, len(ids) :].tolist()
    assert result.text == tiny_lm.decode(ref[0, len(ids) :])


def test_forward_passes_per_step_equal_block_tokens_not_candidates(
    make_guard, tiny_lm, monkeypatch
):
    shapes = []
    original = tiny_lm.model.forward

    def counting(*args, **kwargs):
        shapes.append(tuple(kwargs["input_ids"].shape))
        return original(*args, **kwargs)

    monkeypatch.setattr(tiny_lm.model, "forward", counting)
    make_guard(n_candidates=8, n_beams=2, block_len=4, max_new_tokens=12).generate("Hi")
    decode_calls = shapes[1:]
    assert len(decode_calls) == 12  # 3 blocks x 4 tokens, one batched forward each
    assert all(s == (8, 1) for s in decode_calls)


def test_seed_makes_requests_reproducible(make_guard):
    guard = make_guard(temperature=1.0)
    assert guard.generate("Hi", seed=7).text == guard.generate("Hi", seed=7).text
    assert guard.generate("Hi", seed=7).text != guard.generate("Hi", seed=8).text


def test_timeout_returns_the_safe_text_so_far(make_guard):
    result = make_guard(max_time=1e-9).generate("Hi")
    assert result.finish_reason == "timeout" and result.safety.safe


def test_prompt_longer_than_context_window_is_rejected(make_guard):
    with pytest.raises(ContextLengthError, match="context window"):
        make_guard(max_new_tokens=64).generate("word " * 3000)


def test_memory_bound_is_checked_before_allocating(make_guard):
    with pytest.raises(ResourceError, match="max_batch_tokens"):
        make_guard(n_candidates=64, n_beams=4, max_batch_tokens=1000).generate("Hi")


@pytest.mark.parametrize("strategy", STRATEGY_NAMES)
def test_every_strategy_returns_a_verified_result(make_guard, strategy):
    result = make_guard(strategy=strategy, max_new_tokens=8, args_top_k=3).generate("Hi")
    assert result.safety.strategy == strategy and result.safety.safe
    assert 0 < result.completion_tokens <= 8


def test_adaptive_search_narrows_on_benign_prompts(make_guard):
    wide = make_guard(n_candidates=8, n_beams=2).generate("Hi").safety.candidates_sampled
    narrow = make_guard(n_candidates=8, n_beams=2, adaptive=True, adaptive_min_candidates=2)
    assert narrow.generate("Hi").safety.candidates_sampled < wide


async def test_async_generate_and_stream_match_sync(make_guard):
    guard = make_guard()
    sync = guard.generate("Hi")
    assert (await guard.agenerate("Hi")).text == sync.text
    deltas = [c.delta async for c in guard.astream("Hi")]
    assert "".join(deltas) == sync.text


def _hash_cost(salt: int):
    def cost(prompt: str, response: str) -> float:
        digest = hashlib.sha256(f"{salt}:{response}".encode()).digest()
        return digest[0] / 255.0

    return cost


@pytest.mark.parametrize("horizon", [None, 0, 1, 2, 4])
@settings(max_examples=25)
@given(
    seed=st.integers(0, 2**16),
    salt=st.integers(0, 2**16),
    budget=st.floats(0.05, 0.95),
    strategy=st.sampled_from(STRATEGY_NAMES),
    block_len=st.integers(1, 5),
    n_beams=st.integers(1, 3),
    extra=st.integers(0, 3),
    resample_rounds=st.integers(0, 2),
    mode=st.sampled_from(["prefix", "final"]),
    first_block=st.booleans(),
    deltas=st.sampled_from(["token", "block"]),
)
def test_nothing_returned_or_streamed_is_over_budget(
    make_guard,
    seed,
    salt,
    budget,
    strategy,
    block_len,
    n_beams,
    extra,
    resample_rounds,
    mode,
    horizon,
    first_block,
    deltas,
):
    fn = _hash_cost(salt)
    cost = CostModel.from_callable(fn, threshold=0.5)
    guard = make_guard(
        cost=cost,
        strategy=strategy,
        seed=seed,
        budget=budget,
        block_len=block_len,
        n_beams=n_beams,
        n_candidates=n_beams + extra,
        resample_rounds=resample_rounds,
        safety_mode=mode,
        max_new_tokens=8,
        args_top_k=2,
        commit_horizon=horizon,
        commit_first_block=first_block,
        stream_deltas=deltas,
    )
    streamed = ""
    for chunk in guard.stream("Hi"):
        streamed += chunk.delta
        assert fn("Hi", streamed) <= budget or streamed == ""
        if chunk.result is not None:
            assert chunk.result.text == streamed
            assert chunk.result.safety.cost == pytest.approx(fn("Hi", streamed), abs=1e-6)
            assert chunk.result.safety.safe or streamed == ""


def test_config_errors_name_the_parameter_and_the_fix():
    from inferenceguard import ConfigError

    with pytest.raises(ConfigError, match="n_beams"):
        GuardConfig(n_candidates=2, n_beams=4)
    with pytest.raises(ConfigError, match="block_len"):
        GuardConfig(block_len=64, max_new_tokens=32)
    with pytest.raises(ConfigError, match="temperature"):
        GuardConfig(temperature=0)
    with pytest.raises(ConfigError, match="budget"):
        GuardConfig(budget=float("nan"))
    with pytest.raises(ConfigError, match="n_candidates"):
        GuardConfig(nope=1, n_candidates=0)
    config = GuardConfig(n_candidates=8, stop=("\n",))
    assert GuardConfig.from_dict(config.to_dict()) == config


def test_refuse_replaces_a_partial_answer_unless_it_was_streamed(make_guard):
    short_only = CostModel.from_callable(
        lambda p, r: float(len(r) > 12 and not r.startswith("I'm sorry")), threshold=0.5
    )
    guard = make_guard(cost=short_only, block_len=2, n_beams=1, on_exhausted="refuse")
    assert guard.generate("Hi").text == "I'm sorry, but I can't help with that."
    streamed = list(guard.stream("Hi"))[-1].result
    assert streamed.finish_reason == "safety" and 0 < len(streamed.text) <= 12


def test_short_max_new_tokens_shrinks_the_default_block():
    assert GuardConfig(max_new_tokens=8).block_len == 8
    assert GuardConfig().replace(max_new_tokens=4).block_len == 4


@pytest.mark.parametrize("strategy", ["plain", "best_of_n", "beam", "inferenceguard"])
def test_unverified_baselines_return_their_raw_unsafe_text(make_guard, strategy):
    everything = CostModel.from_callable(lambda p, r: float(len(r) > 0), threshold=0.5)
    guard = make_guard(cost=everything, strategy=strategy, resample_rounds=0)
    raw = guard.generate_unverified("Hi")
    assert raw.text and not raw.safety.safe and raw.safety.cost == 1.0
    assert guard.generate("Hi").text == ""  # what users get: nothing unsafe
