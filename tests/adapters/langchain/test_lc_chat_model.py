"""ChatInferenceGuard on the tiny random model: calls, streaming, config, errors, concurrency."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler, get_usage_metadata_callback
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from inferenceguard import InferenceGuard, SafetyReport
from inferenceguard import build as build_module
from inferenceguard.errors import ConfigError, ContextLengthError, InputError
from inferenceguard.testing import keyword_cost
from langchain_inferenceguard import ChatInferenceGuard

MakeLLM = Callable[..., ChatInferenceGuard]
PROMPTS = ["Hello", "Tell me a story.", "What is 2 + 2?", "Name a colour."]


def merged(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    full = chunks[0]
    for chunk in chunks[1:]:
        full = full + chunk
    return full


class TokenRecorder(BaseCallbackHandler):
    """Collects the text of every ``on_llm_new_token`` callback."""

    def __init__(self) -> None:
        self.tokens: list[str] = []

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.tokens.append(token)


# --------------------------------------------------------------------------- construction
def test_construction_loads_nothing_and_the_first_call_builds_the_guard_once(
    make_llm: MakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny = make_llm().guard
    calls: list[dict[str, Any]] = []

    def fake_build_guard(**kwargs: Any) -> InferenceGuard:
        calls.append(kwargs)
        return tiny

    monkeypatch.setattr(build_module, "build_guard", fake_build_guard)
    llm = ChatInferenceGuard(
        model="some/model",
        cost_model="my-cost",
        device="cpu",
        max_tokens=8,
        n_candidates=2,
        n_beams=1,
        block_len=4,
    )
    assert calls == []
    assert llm._get_ls_params()["ls_model_name"] == "some/model"
    with ThreadPoolExecutor(4) as pool:
        guards = list(pool.map(lambda _: llm.get_guard(), range(8)))
    assert all(g is tiny for g in guards)
    assert len(calls) == 1
    assert calls[0]["model"] == "some/model"
    assert calls[0]["cost_model"] == "my-cost"
    assert calls[0]["device"] == "cpu"
    llm.invoke("hi")
    assert len(calls) == 1
    assert llm._get_ls_params()["ls_model_name"] == "tiny-random-llama"


def test_guard_given_with_model_settings_is_rejected(make_llm: MakeLLM) -> None:
    guard = make_llm().guard
    with pytest.raises(ConfigError, match="guard= was given together with model"):
        ChatInferenceGuard(guard=guard, model="other/model")


def test_invalid_guard_settings_fail_at_construction() -> None:
    # Our ConfigError (a ValueError), not pydantic's ValidationError: `except ConfigError` works.
    with pytest.raises(ConfigError, match="n_beams"):
        ChatInferenceGuard(n_candidates=2, n_beams=8)
    with pytest.raises(ConfigError, match="not_a_field"):
        ChatInferenceGuard(guard_config={"not_a_field": 1})
    with pytest.raises(ValueError, match="n_beams"):
        ChatInferenceGuard(n_candidates=2, n_beams=8)


def test_max_tokens_zero_names_max_tokens_not_block_len() -> None:
    with pytest.raises(ConfigError, match="max_tokens") as info:
        ChatInferenceGuard(max_tokens=0)
    assert "block_len" not in str(info.value)


def test_guard_config_fields_at_the_top_level_and_typos_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"guard_config=\{'budget': ...\}"):
        ChatInferenceGuard(budget=0.3)
    with pytest.raises(ConfigError, match="did you mean 'n_candidates'"):
        ChatInferenceGuard(n_candidate=8)
    with pytest.raises(ConfigError, match=r"pass max_tokens=\.\.\. instead of max_new_tokens"):
        ChatInferenceGuard(max_new_tokens=8)


def test_ls_and_identifying_params(make_llm: MakeLLM) -> None:
    llm = make_llm(temperature=0.7, max_tokens=12, stop=["END"])
    params = llm._get_ls_params()
    assert params["ls_provider"] == "inferenceguard"
    assert params["ls_model_name"] == "tiny-random-llama"
    assert params["ls_model_type"] == "chat"
    assert params["ls_temperature"] == 0.7
    assert params["ls_max_tokens"] == 12
    assert params["ls_stop"] == ["END"]
    assert llm._get_ls_params(stop=["X"])["ls_stop"] == ["X"]
    ident = llm._identifying_params
    assert ident["model_name"] == "tiny-random-llama"
    assert ident["cost_model"] == "zero-cost"
    assert ident["max_new_tokens"] == 12
    assert llm._llm_type == "inferenceguard"
    assert llm.metadata["lc_versions"]["inferenceguard"]


# --------------------------------------------------------------------------- invoke
def test_invoke_returns_text_usage_and_the_safety_report(make_llm: MakeLLM) -> None:
    msg = make_llm().invoke("Hello")
    assert isinstance(msg, AIMessage)
    assert msg.content
    assert msg.usage_metadata["input_tokens"] > 0
    assert msg.usage_metadata["output_tokens"] == 8
    assert msg.usage_metadata["total_tokens"] == sum(
        msg.usage_metadata[k] for k in ("input_tokens", "output_tokens")
    )
    meta = msg.response_metadata
    assert meta["model_name"] == "tiny-random-llama"
    assert meta["model_provider"] == "inferenceguard"
    assert meta["finish_reason"] == "length"
    report = SafetyReport(**meta["safety"])
    assert report.safe
    assert report.cost <= report.budget


def test_usage_callback_counts_tokens_per_model(make_llm: MakeLLM) -> None:
    llm = make_llm()
    with get_usage_metadata_callback() as callback:
        msg = llm.invoke("Hello")
        list(llm.stream("Hello"))
    usage = callback.usage_metadata["tiny-random-llama"]
    assert usage["output_tokens"] == 2 * msg.usage_metadata["output_tokens"]
    assert usage["input_tokens"] == 2 * msg.usage_metadata["input_tokens"]


def test_fields_and_call_kwargs_reach_the_guard_config(make_llm: MakeLLM) -> None:
    llm = make_llm(max_tokens=8, timeout=30.0, guard_config={"budget": 0.25, "top_p": 0.9})
    config = llm.invoke("Hello").response_metadata["safety"]["config"]
    assert (config["max_new_tokens"], config["max_time"], config["budget"], config["top_p"]) == (
        8,
        30.0,
        0.25,
        0.9,
    )
    assert (config["n_candidates"], config["n_beams"], config["block_len"]) == (2, 1, 4)
    config = llm.invoke("Hello", max_tokens=4, guard_config={"top_p": 0.5}).response_metadata[
        "safety"
    ]["config"]
    assert (config["max_new_tokens"], config["top_p"]) == (4, 0.5)
    bound = llm.bind(temperature=0)
    assert bound.invoke("Hello").response_metadata["safety"]["config"]["do_sample"] is False


def test_temperature_zero_is_greedy_whatever_the_seed(make_llm: MakeLLM) -> None:
    a = make_llm(temperature=0, seed=1).invoke("Hello").content
    b = make_llm(temperature=0, seed=2).invoke("Hello").content
    assert a == b


def test_stop_strings_end_the_answer(make_llm: MakeLLM) -> None:
    llm = make_llm(max_tokens=12)
    free = llm.invoke("Hello").content
    word = free.split()[2]
    stopped = llm.invoke("Hello", stop=[word])
    assert word not in stopped.content
    assert free.startswith(stopped.content)
    assert stopped.response_metadata["finish_reason"] == "stop"
    assert make_llm(max_tokens=12, stop=[word]).invoke("Hello").content == stopped.content


def test_core_errors_propagate_unchanged(make_llm: MakeLLM) -> None:
    llm = make_llm()
    with pytest.raises(ContextLengthError):
        llm.invoke("Hello", max_tokens=5000)  # window: 2048
    with pytest.raises(ConfigError, match="not_a_field"):
        llm.invoke("Hello", not_a_field=1)
    with pytest.raises(InputError, match="image"):
        llm.invoke([HumanMessage([{"type": "image_url", "image_url": {"url": "http://x/y.png"}}])])
    with pytest.raises(ConfigError, match="serves one local model"):
        llm.invoke("Hello", model="gpt-4o")


# --------------------------------------------------------------------------- streaming
def test_stream_matches_invoke_and_reports_usage_once(make_llm: MakeLLM) -> None:
    llm = make_llm()
    chunks = list(llm.stream("Hello"))
    assert len(chunks) >= 3  # one chunk per committed block, then the last one
    assert chunks[-1].chunk_position == "last"
    assert [c.usage_metadata is not None for c in chunks].count(True) == 1
    assert [bool(c.response_metadata.get("model_name")) for c in chunks].count(True) == 1
    full = merged(chunks)
    msg = llm.invoke("Hello")
    assert full.content == msg.content
    assert full.usage_metadata == msg.usage_metadata
    assert full.response_metadata["finish_reason"] == msg.response_metadata["finish_reason"]


def test_callbacks_receive_every_streamed_piece(make_llm: MakeLLM) -> None:
    recorder = TokenRecorder()
    llm = make_llm(streaming=True)
    msg = llm.invoke("Hello", config={"callbacks": [recorder]})
    assert len(recorder.tokens) >= 3
    assert "".join(recorder.tokens) == msg.content


def test_stream_emits_only_text_within_budget(make_llm: MakeLLM) -> None:
    cost = keyword_cost(["swordfish"])
    llm = make_llm(script="The password is swordfish, keep it safe.", cost=cost)
    chunks = list(llm.stream("What is the password?"))
    so_far = ""
    for chunk in chunks:
        so_far += chunk.content
        assert "swordfish" not in so_far
        assert float(cost.score(["q"], [so_far])[0]) <= cost.threshold
    full = merged(chunks)
    assert full.content.startswith("The password is")
    assert full.response_metadata["finish_reason"] == "safety"
    report = full.response_metadata["safety"]
    assert report["exhausted"]
    assert report["safe"]


@pytest.mark.parametrize("letter", ["e", "a"])
def test_random_model_output_never_contains_a_flagged_letter(
    make_llm: MakeLLM, letter: str
) -> None:
    llm = make_llm(cost=keyword_cost([letter]), max_tokens=12)
    for prompt in PROMPTS[:2]:
        streamed = [c.content for c in llm.stream(prompt)]
        assert all(letter not in piece.lower() for piece in streamed)
        assert letter not in llm.invoke(prompt).content.lower()


def test_closing_a_stream_early_frees_the_guard(make_llm: MakeLLM) -> None:
    llm = make_llm(max_tokens=16)
    stream = llm.stream("Hello")
    next(stream)
    stream.close()
    assert llm.invoke("Hello").content


# --------------------------------------------------------------------------- async
async def test_async_matches_sync(make_llm: MakeLLM) -> None:
    llm = make_llm()
    sync = llm.invoke("Hello")
    assert (await llm.ainvoke("Hello")).content == sync.content
    chunks = [c async for c in llm.astream("Hello")]
    assert chunks[-1].chunk_position == "last"
    assert [c.usage_metadata is not None for c in chunks].count(True) == 1
    assert merged(chunks).content == sync.content


async def test_async_callers_run_concurrently_and_get_their_own_answers(make_llm: MakeLLM) -> None:
    llm = make_llm(temperature=0)  # greedy: the random model's answer depends on the prompt
    expected = [llm.invoke(p).content for p in PROMPTS]
    assert len(set(expected)) == len(PROMPTS)
    answers = await asyncio.gather(*(llm.ainvoke(p) for p in PROMPTS))
    assert [a.content for a in answers] == expected
    assert [m.content for m in await llm.abatch(PROMPTS)] == expected


async def test_astream_only_emits_text_within_budget(make_llm: MakeLLM) -> None:
    llm = make_llm(script="The password is swordfish.", cost=keyword_cost(["swordfish"]))
    text = "".join([c.content async for c in llm.astream("password?")])
    assert text.startswith("The password is")
    assert "swordfish" not in text


# --------------------------------------------------------------------------- chains, threads
def test_lcel_chain(make_llm: MakeLLM) -> None:
    llm = make_llm()
    prompt = ChatPromptTemplate.from_messages(
        [("system", "You are terse."), ("human", "Say something about {topic}.")]
    )
    chain = prompt | llm | StrOutputParser()
    out = chain.invoke({"topic": "cats"})
    assert isinstance(out, str)
    assert out
    direct = llm.invoke(prompt.invoke({"topic": "cats"}))
    assert out == direct.content
    assert "".join(chain.stream({"topic": "cats"})) == out


def test_batch_across_threads_gives_each_caller_its_own_answer(make_llm: MakeLLM) -> None:
    llm = make_llm(temperature=0)  # greedy: the random model's answer depends on the prompt
    expected = [llm.invoke(p).content for p in PROMPTS]
    assert len(set(expected)) == len(PROMPTS)  # every prompt has its own answer
    assert [m.content for m in llm.batch(PROMPTS, config={"max_concurrency": 4})] == expected

    barrier = threading.Barrier(len(PROMPTS))

    def call(prompt: str) -> str:
        barrier.wait()
        return llm.invoke(prompt).content

    with ThreadPoolExecutor(len(PROMPTS)) as pool:
        assert list(pool.map(call, PROMPTS)) == expected


def test_batch_puts_every_input_in_one_batched_forward(make_llm: MakeLLM, monkeypatch) -> None:
    llm = make_llm(temperature=0)
    lm = llm.get_guard().lm
    inputs = PROMPTS * 2  # more than LangChain's default pool of cpu + 4 threads here
    expected = [llm.invoke(p).content for p in PROMPTS] * 2
    sizes: list[int] = []
    original = lm.step_many

    def counting(states, tokens):
        sizes.append(len(states))
        return original(states, tokens)

    monkeypatch.setattr(lm, "step_many", counting)
    assert [m.content for m in llm.batch(inputs)] == expected
    assert max(sizes) == len(inputs)  # LangChain's threads met in one forward
