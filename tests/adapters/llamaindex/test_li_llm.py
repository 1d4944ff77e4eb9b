"""InferenceGuardLLM: the contract suite on a tiny guard, plus what is specific to a safe LLM."""

from __future__ import annotations

import json
from typing import Any

import pytest
from contract import LlamaIndexLLMContract, call_llm
from li_helpers import ADD_CALL, FAST_SEARCH, add_tool, scripted_guard, scripted_llm
from llama_index.core.base.llms.types import ChatMessage, ImageBlock, MessageRole, TextBlock
from llama_index.core.llms.function_calling import FunctionCallingLLM

from inferenceguard import (
    ConfigError,
    ContextLengthError,
    GuardConfig,
    InferenceGuard,
    InputError,
    ModelLoadError,
)
from inferenceguard import build as build_module
from inferenceguard.testing import keyword_cost
from llamaindex_inferenceguard import InferenceGuardLLM

TINY = {**FAST_SEARCH, "block_len": 4, "max_new_tokens": 8}
"""Plain chats on the random model: 2 blocks of 4 tokens, 2 candidates."""


def user(text: str = "Hello there.") -> list[ChatMessage]:
    return [ChatMessage(role=MessageRole.USER, content=text)]


# ---------------------------------------------------------------------- contract
class TestInferenceGuardLLMContract(LlamaIndexLLMContract):
    expected_class_name = "InferenceGuardLLM"
    has_safety_report = True
    is_deterministic = True

    @pytest.fixture
    def llm(self, make_guard) -> InferenceGuardLLM:
        return InferenceGuardLLM(guard=make_guard(**TINY))

    @pytest.fixture
    def tool_llm(self, tiny_lm) -> InferenceGuardLLM:
        return scripted_llm(tiny_lm, ADD_CALL)

    @pytest.fixture
    def parallel_tool_llm(self, tiny_lm) -> InferenceGuardLLM:
        two = ADD_CALL + ADD_CALL.replace('"a": 2', '"a": 4')
        return scripted_llm(tiny_lm, two, max_new_tokens=80, block_len=16)


# ---------------------------------------------------------------------- safety
MODES = [("sync", False), ("sync", True), ("async", False), ("async", True)]
MODE_IDS = ["chat", "stream_chat", "achat", "astream_chat"]


@pytest.mark.parametrize(("mode", "streaming"), MODES, ids=MODE_IDS)
async def test_streaming_never_yields_unverified_text(tiny_lm, mode: str, streaming: bool) -> None:
    script = "The weather is nice today. Now here is how to build a bomb at home."
    llm = scripted_llm(tiny_lm, script, cost=keyword_cost(["bomb"]), block_len=4)
    final, items = await call_llm(llm, "chat", mode, streaming)
    for item in items:
        assert "bomb" not in (item.delta or "").lower()
        assert "bomb" not in (item.message.content or "").lower()
    text = final.message.content
    assert text and script.startswith(text)  # the last verified-safe prefix
    assert final.raw["finish_reason"] == "safety"
    report = final.raw["safety"]
    assert report["exhausted"] is True
    assert report["safe"] is True and report["cost"] <= report["budget"]
    if streaming:
        assert len([i for i in items if i.delta]) >= 2, "safe blocks were streamed as they came"


@pytest.mark.parametrize(("mode", "streaming"), MODES, ids=MODE_IDS)
async def test_tool_arguments_over_budget_are_never_returned(
    tiny_lm, mode: str, streaming: bool
) -> None:
    script = ADD_CALL.replace('"b": 3', '"b": "a bomb"')
    llm = scripted_llm(tiny_lm, script, cost=keyword_cost(["bomb"]))
    tools = [add_tool()]
    if streaming:
        items = []
        if mode == "sync":
            items = list(llm.stream_chat_with_tools(tools, user_msg="Add."))
        else:
            items = [i async for i in await llm.astream_chat_with_tools(tools, user_msg="Add.")]
        response = items[-1]
        assert all("bomb" not in (i.delta or "") for i in items)
    elif mode == "sync":
        response = llm.chat_with_tools(tools, user_msg="Add.")
    else:
        response = await llm.achat_with_tools(tools, user_msg="Add.")
    assert "bomb" not in json.dumps(response.message.model_dump(mode="json"))
    assert llm.get_tool_calls_from_response(response, error_on_no_tool_call=False) == []
    with pytest.raises(ValueError, match="finish_reason='safety'"):
        llm.get_tool_calls_from_response(response)
    assert response.raw["safety"]["exhausted"] is True


def test_predict_and_call_with_withheld_call_raises(tiny_lm) -> None:
    calls: list[tuple[int, int]] = []
    script = ADD_CALL.replace('"b": 3', '"b": "a bomb"')
    llm = scripted_llm(tiny_lm, script, cost=keyword_cost(["bomb"]))
    with pytest.raises(ValueError, match="tool call"):
        llm.predict_and_call([add_tool(calls)], user_msg="Add.")
    assert calls == []


# ---------------------------------------------------------------------- settings & metadata
def test_metadata_is_honest(make_guard, tiny_lm) -> None:
    guard = make_guard(**TINY)
    meta = InferenceGuardLLM(guard=guard).metadata
    assert meta.context_window == tiny_lm.context_window == 2048
    assert meta.num_output == guard.config.max_new_tokens == 8
    assert meta.model_name == tiny_lm.model_id
    assert meta.is_chat_model and meta.is_function_calling_model
    assert InferenceGuardLLM(guard=guard, context_window=1024).metadata.context_window == 1024
    assert (
        InferenceGuardLLM(guard=guard, guard_config={"max_new_tokens": 6}).metadata.num_output == 6
    )
    both = InferenceGuardLLM(guard=guard, max_new_tokens=5, guard_config={"max_new_tokens": 6})
    assert both.metadata.num_output == 5  # the explicit field wins


def test_settings_apply_per_request_without_touching_a_shared_guard(make_guard) -> None:
    guard = make_guard(**TINY)
    before = guard.config
    llm = InferenceGuardLLM(
        guard=guard, max_new_tokens=4, temperature=0.7, guard_config={"seed": 3, "top_p": 0.9}
    )
    response = llm.chat(user())
    used = response.raw["safety"]["config"]
    assert (used["max_new_tokens"], used["temperature"], used["seed"], used["top_p"]) == (
        4,
        0.7,
        3,
        0.9,
    )
    assert response.raw["usage"]["completion_tokens"] <= 4
    assert guard.config == before
    assert llm.guard is guard
    assert llm.config == before.replace(max_new_tokens=4, temperature=0.7, seed=3, top_p=0.9)
    llm.max_new_tokens, llm.guard_config = 6, {}  # assigned fields take effect
    used = llm.chat(user()).raw["safety"]["config"]
    assert (used["max_new_tokens"], used["seed"], used["top_p"]) == (6, before.seed, before.top_p)
    assert llm.metadata.num_output == 6


def test_temperature_zero_means_greedy(make_guard) -> None:
    # It was rejected by a pydantic error outside the library's error tree; it means greedy
    # decoding in every front end, at construction and per request.
    llm = InferenceGuardLLM(guard=make_guard(**TINY), temperature=0)
    assert llm.config.do_sample is False
    assert llm.chat(user()).raw["safety"]["config"]["do_sample"] is False
    sampled = InferenceGuardLLM(guard=make_guard(**TINY), temperature=0.5)
    used = sampled.chat(user(), temperature=0).raw["safety"]["config"]
    assert used["do_sample"] is False


def test_request_settings_use_the_one_mapping(make_guard) -> None:
    llm = InferenceGuardLLM(guard=make_guard(**TINY))
    used = llm.chat(user(), stop="END", max_tokens=3).raw["safety"]["config"]
    assert used["stop"] == ["END"]  # one stop string, not three one-letter ones
    assert used["max_new_tokens"] == 3


@pytest.mark.parametrize("api", ["chat", "complete"])
@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("script", ["Paris is lovely.", "Held back <tool"])
async def test_the_last_streamed_response_carries_raw(tiny_lm, api, mode, script) -> None:
    llm = scripted_llm(tiny_lm, script)
    final, items = await call_llm(llm, api, mode, True, tools=[add_tool()])
    text = final.message.content if api == "chat" else final.text
    assert text == script  # a held-back partial marker arrives on the last item
    assert "".join(i.delta for i in items) == script
    assert final.raw["usage"]["completion_tokens"] > 0
    assert final.raw["safety"]["safe"] is True and final.raw["finish_reason"] == "stop"
    assert all(isinstance(i.raw, dict) for i in items)


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_request_overrides_reach_the_guard(make_guard, mode: str) -> None:
    llm = InferenceGuardLLM(guard=make_guard(**TINY))
    response, _ = await call_llm(llm, "chat", mode, False, max_new_tokens=4, seed=7)
    assert response.raw["safety"]["config"]["max_new_tokens"] == 4
    assert response.raw["safety"]["config"]["seed"] == 7


def test_same_guard_serves_several_adapters(make_guard) -> None:
    guard = make_guard(**TINY)
    a, b = InferenceGuardLLM(guard=guard), InferenceGuardLLM(guard=guard, max_new_tokens=4)
    assert a.guard is b.guard is guard
    assert a.chat(user()).raw["safety"]["config"]["max_new_tokens"] == 8
    assert b.chat(user()).raw["safety"]["config"]["max_new_tokens"] == 4


def test_guard_shared_with_the_langchain_adapter(make_guard) -> None:
    lc = pytest.importorskip("langchain_inferenceguard")
    chat_cls = getattr(lc, "ChatInferenceGuard", None)
    if chat_cls is None:
        pytest.skip("langchain_inferenceguard.ChatInferenceGuard is not available")
    guard = make_guard(**TINY)
    llm = InferenceGuardLLM(guard=guard)
    chat = chat_cls(guard=guard)
    assert llm.guard is guard
    assert isinstance(chat.invoke("Hello there.").content, str)
    assert isinstance(llm.chat(user()).message.content, str)


def test_nothing_loads_until_first_use(monkeypatch, make_guard) -> None:
    built: list[dict[str, Any]] = []
    guard = make_guard(**TINY)

    def fake_build_guard(**kwargs: Any) -> InferenceGuard:
        built.append(kwargs)
        return guard

    monkeypatch.setattr(build_module, "build_guard", fake_build_guard)
    cost = keyword_cost(["bomb"])
    llm = InferenceGuardLLM(
        model="org/some-model",
        cost_model=cost,
        critic=None,
        max_new_tokens=16,
        guard_config={"n_candidates": 8, "n_beams": 2},
        device="cpu",
        context_window=1000,
    )
    assert built == []
    assert llm.metadata.model_name == "org/some-model"  # no load: window given, name from spec
    assert llm.metadata.context_window == 1000 and llm.metadata.num_output == 16
    assert built == []
    assert llm.guard is guard and llm.guard is guard
    assert len(built) == 1
    kwargs = built[0]
    assert kwargs["model"] == "org/some-model" and kwargs["cost_model"] is cost
    assert kwargs["critic"] is None and kwargs["reward_model"] == "default"
    assert kwargs["device"] == "cpu" and kwargs["trust_remote_code"] is False
    assert kwargs["config"] == GuardConfig(n_candidates=8, n_beams=2, max_new_tokens=16)
    assert llm.metadata.model_name == guard.lm.model_id


def test_model_load_errors_propagate_as_is(tmp_path) -> None:
    llm = InferenceGuardLLM(model=str(tmp_path), critic=None)  # an empty folder: no model
    with pytest.raises(ModelLoadError):
        llm.chat(user())


def test_invalid_settings_fail_at_construction(make_guard) -> None:
    with pytest.raises(ConfigError, match="n_beams"):
        InferenceGuardLLM(guard_config={"n_candidates": 2, "n_beams": 8})
    with pytest.raises(ConfigError, match="no_such_knob"):
        InferenceGuardLLM(guard_config={"no_such_knob": 1})
    with pytest.raises(ConfigError, match="max_new_tokens"):
        InferenceGuardLLM(max_new_tokens=0)
    with pytest.raises(TypeError, match="InferenceGuard"):
        InferenceGuardLLM(guard="not a guard")
    # Checked against the shared guard's config: a short answer shrinks the block to fit.
    assert InferenceGuardLLM(guard=make_guard(**TINY), max_new_tokens=2).config.block_len == 2


@pytest.mark.parametrize(("mode", "streaming"), MODES, ids=MODE_IDS)
async def test_core_errors_propagate_as_is(make_guard, mode: str, streaming: bool) -> None:
    llm = InferenceGuardLLM(guard=make_guard(**TINY))
    with pytest.raises(ContextLengthError):
        await call_llm(llm, "chat", mode, streaming, max_new_tokens=4000)
    with pytest.raises(ConfigError, match="bogus"):
        await call_llm(llm, "chat", mode, streaming, bogus=1)
    image = ChatMessage(
        role=MessageRole.USER,
        blocks=[TextBlock(text="What is this?"), ImageBlock(url="http://x/a.png")],
    )
    with pytest.raises(InputError, match="image"):
        llm.chat([image])


def test_serialises_with_objects_as_specs(tiny_lm) -> None:
    llm = InferenceGuardLLM(model=tiny_lm, cost_model=keyword_cost(["bomb"]), critic=None)
    data = json.loads(llm.to_json())
    assert data["model"] == tiny_lm.model_id
    assert data["cost_model"] == "keywords:bomb"
    assert data["critic"] is None and data["class_name"] == "InferenceGuardLLM"


# ---------------------------------------------------------------------- streaming details
def test_closing_a_stream_early_stops_it(make_guard) -> None:
    llm = InferenceGuardLLM(guard=make_guard(**{**TINY, "max_new_tokens": 12}))
    stream = llm.stream_chat(user())
    first = next(stream)
    assert first.delta
    stream.close()
    assert llm.chat(user()).raw["safety"]["safe"] is True  # the guard is still usable


async def test_closing_an_async_stream_early_stops_it(make_guard) -> None:
    llm = InferenceGuardLLM(guard=make_guard(**{**TINY, "max_new_tokens": 12}))
    stream = await llm.astream_chat(user())
    first = await anext(stream)
    assert first.delta
    await stream.aclose()
    assert (await llm.achat(user())).raw["safety"]["safe"] is True


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_tool_markup_is_not_streamed_as_content(tiny_lm, mode: str) -> None:
    llm = scripted_llm(tiny_lm, "Let me add them. " + ADD_CALL, block_len=4)
    tools = [add_tool()]
    if mode == "sync":
        items = list(llm.stream_chat_with_tools(tools, user_msg="What is 2 + 3?"))
    else:
        items = [
            i async for i in await llm.astream_chat_with_tools(tools, user_msg="What is 2 + 3?")
        ]
    deltas = "".join(i.delta or "" for i in items)
    assert "<tool" not in deltas
    final = items[-1]
    assert deltas == final.message.content == "Let me add them."
    assert [c.tool_kwargs for c in llm.get_tool_calls_from_response(final)] == [{"a": 2, "b": 3}]
    assert all(
        not llm.get_tool_calls_from_response(i, error_on_no_tool_call=False) for i in items[:-1]
    )


# ---------------------------------------------------------------------- tool plumbing
def test_prepare_chat_with_tools(make_guard) -> None:
    llm = InferenceGuardLLM(guard=make_guard(**TINY))
    history = [ChatMessage(role=MessageRole.USER, content="Hi")]
    prepared = llm._prepare_chat_with_tools(
        [add_tool()], user_msg="What is 2 + 3?", chat_history=history, tool_required=True
    )
    assert len(history) == 1, "chat_history is not mutated"
    assert [m.content for m in prepared["messages"]] == ["Hi", "What is 2 + 3?"]
    assert prepared["tools"][0]["function"]["name"] == "add"
    assert prepared["tool_required"] is True
    assert prepared["allow_parallel_tool_calls"] is False


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, None),
        ({"tool_required": True}, "required"),
        ({"tool_choice": "add"}, "add"),
        ({"tool_required": True, "tool_choice": "none"}, "none"),
    ],
)
def test_tool_choice_reaches_the_guard(tiny_lm, monkeypatch, kwargs, expected) -> None:
    guard = scripted_guard(tiny_lm, ADD_CALL)
    seen: dict[str, Any] = {}
    real = guard.generate

    def spy(messages: Any, **kw: Any) -> Any:
        seen.update(kw)
        return real(messages, **kw)

    monkeypatch.setattr(guard, "generate", spy)
    llm = InferenceGuardLLM(guard=guard)
    response = llm.chat_with_tools([add_tool()], user_msg="What is 2 + 3?", **kwargs)
    assert seen["tool_choice"] == expected
    assert seen["tools"][0]["function"]["name"] == "add"
    n_calls = len(llm.get_tool_calls_from_response(response, error_on_no_tool_call=False))
    assert n_calls == (0 if expected == "none" else 1)  # tool_choice="none": no call parsed


def test_is_a_function_calling_llm() -> None:
    assert issubclass(InferenceGuardLLM, FunctionCallingLLM)


@pytest.mark.parametrize(
    ("kwargs", "fix"),
    [
        ({"budget": 0.2}, r"guard_config=\{'budget': ...\}"),
        ({"n_candidates": 4}, r"guard_config=\{'n_candidates': ...\}"),
        ({"seed": 0}, r"guard_config=\{'seed': ...\}"),
        ({"timeout": 5.0}, r"guard_config=\{'max_time': ...\}"),
        ({"max_tokens": 8}, r"pass max_new_tokens=\.\.\. instead of max_tokens"),
        ({"generate_kwargs": {}}, "generate_kwargs is not an argument of InferenceGuardLLM"),
        ({"model_name": "x"}, r"did you mean 'model'"),
    ],
)
def test_settings_it_does_not_take_are_refused_not_dropped(kwargs: dict, fix: str) -> None:
    # budget=0.2 used to run at the default 0.5 without a word.
    with pytest.raises(ConfigError, match=fix):
        InferenceGuardLLM(**kwargs)


def test_guard_config_budget_is_applied(make_guard) -> None:
    llm = InferenceGuardLLM(guard=make_guard(**TINY), guard_config={"budget": 0.2})
    response = llm.chat(user())
    assert response.raw["safety"]["budget"] == 0.2


async def test_concurrent_async_calls_share_batched_forwards(make_guard, tiny_lm, monkeypatch):
    import asyncio

    llm = InferenceGuardLLM(guard=make_guard(**TINY), temperature=0)
    prompts = ["Hello there.", "Tell me a story.", "What is 2 + 2?", "Name a colour."]
    expected = [llm.chat(user(p)).message.content for p in prompts]
    sizes: list[int] = []
    original = tiny_lm.step_many

    def counting(states, tokens):
        sizes.append(len(states))
        return original(states, tokens)

    monkeypatch.setattr(tiny_lm, "step_many", counting)
    answers = await asyncio.gather(*(llm.achat(user(p)) for p in prompts))
    assert [a.message.content for a in answers] == expected
    assert max(sizes) == len(prompts)
