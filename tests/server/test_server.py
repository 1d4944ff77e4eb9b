"""The OpenAI-compatible server, driven by real clients over loopback HTTP.

Each test starts uvicorn in a background thread on a free 127.0.0.1 port, in front of a
guard on the tiny random model (``make_guard``), or on ``ScriptedLM`` where an exact text
(a tool call, a flagged word) is needed. Clients: the official ``openai`` package,
LangChain's ``ChatOpenAI`` and plain ``httpx`` for raw bodies and headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
openai = pytest.importorskip("openai")

from inferenceguard import (  # noqa: E402
    ContextLengthError,
    CostModel,
    GuardConfig,
    InferenceGuard,
    InputError,
    ResourceError,
    RewardModel,
    ScorerError,
)
from inferenceguard.reply import ReplyAssembler  # noqa: E402
from inferenceguard.result import GuardResult, SafetyReport, StreamChunk  # noqa: E402
from inferenceguard.server import AdmissionQueue, QueueFullError, create_app  # noqa: E402
from inferenceguard.server.convert import (  # noqa: E402
    ChunkFormat,
    error_response,
    finish_reason,
    guard_call,
    validation_param,
)
from inferenceguard.server.schemas import ChatCompletionRequest  # noqa: E402
from inferenceguard.testing import ScriptedLM, keyword_cost  # noqa: E402

# Sockets stay enabled for this module, and may only connect to the loopback address.
pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])

USER = [{"role": "user", "content": "Tell me something nice."}]
#: The served model's name (the tiny test model's id): another name is a 404.
MODEL = "tiny-random-llama"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
CALL = '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'


# --------------------------------------------------------------------------- harness
@contextlib.contextmanager
def running(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread on a free loopback port; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., str]]:
    """``serve(guard, **create_app_kwargs)`` → base URL; servers stop after the test."""
    with contextlib.ExitStack() as stack:

        def factory(guard: InferenceGuard, **kwargs: Any) -> str:
            return stack.enter_context(running(create_app(guard, **kwargs)))

        yield factory


def client(base: str, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{base}/v1", api_key=kwargs.pop("api_key", "unused"), max_retries=0, **kwargs
    )


def zero_cost() -> CostModel:
    return CostModel.from_callable(lambda p, r: 0.0, threshold=0.5, id="zero-cost")


def length_reward() -> RewardModel:
    return RewardModel.from_callable(lambda p, r: float(len(r)), id="length")


@pytest.fixture
def scripted(tiny_lm) -> Callable[..., InferenceGuard]:
    """``scripted(text, cost=None, **config)`` → a guard whose model writes ``text``."""

    def factory(text: str, cost: CostModel | None = None, **config: Any) -> InferenceGuard:
        settings = {"n_candidates": 2, "n_beams": 1, "block_len": 4, "max_new_tokens": 96}
        return InferenceGuard(
            ScriptedLM(tiny_lm, text),
            cost or zero_cost(),
            length_reward(),
            config=GuardConfig(**{**settings, "seed": 0, **config}),
        )

    return factory


def hashed_cost(prompt: str, response: str) -> float:
    """Flags a pseudo-random third of all texts, so the search has real work to do."""
    return hashlib.sha256(response.encode()).digest()[0] / 255.0 * 0.75


def health(base: str) -> dict[str, Any]:
    return httpx.get(f"{base}/health", timeout=5).json()


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


# --------------------------------------------------------------------------- openai client
def test_plain_completion_matches_the_library(make_guard, serve):
    guard = make_guard()
    reply = client(serve(guard)).chat.completions.create(model=MODEL, messages=USER)
    direct = guard.generate(USER)
    choice = reply.choices[0]
    assert reply.object == "chat.completion"
    assert reply.model == "tiny-random-llama"
    assert choice.message.role == "assistant"
    assert choice.message.content == direct.text
    assert choice.finish_reason == {"stop": "stop", "length": "length"}[direct.finish_reason]
    assert reply.usage.prompt_tokens == direct.prompt_tokens
    assert reply.usage.completion_tokens == direct.completion_tokens
    assert reply.usage.total_tokens == direct.total_tokens
    assert reply.safety["safe"] is True
    assert reply.safety["cost"] <= reply.safety["budget"]
    assert reply.safety["finish_reason"] == direct.finish_reason
    assert reply.safety["config"]["n_candidates"] == 4


def test_stream_sends_the_same_text_as_chunks(make_guard, serve):
    guard = make_guard()
    stream = client(serve(guard)).chat.completions.create(
        model=MODEL, messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == guard.generate(USER).text
    (last,) = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert last.choices[0].finish_reason in {"stop", "length"}
    assert last.safety["safe"] is True
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens > 0
    assert all(c.usage is None for c in chunks[:-1])


def test_stream_raw_format_ends_with_done(make_guard, serve):
    base = serve(make_guard())
    body = {"messages": USER, "stream": True}
    with httpx.stream("POST", f"{base}/v1/chat/completions", json=body, timeout=30) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in r.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    payloads = [json.loads(line[6:]) for line in lines[:-1]]
    assert {p["object"] for p in payloads} == {"chat.completion.chunk"}
    assert len({p["id"] for p in payloads}) == 1
    assert "usage" not in payloads[0]  # only with stream_options.include_usage


def test_sampling_parameters_reach_the_guard(make_guard, serve):
    base = serve(make_guard(max_new_tokens=24))
    c = client(base)
    short = c.chat.completions.create(model=MODEL, messages=USER, max_tokens=4)
    assert short.usage.completion_tokens <= 4
    assert short.safety["config"]["max_new_tokens"] == 4
    newer = c.chat.completions.create(
        model=MODEL, messages=USER, max_tokens=20, max_completion_tokens=3
    )
    assert newer.safety["config"]["max_new_tokens"] == 3
    greedy = [
        c.chat.completions.create(model=MODEL, messages=USER, temperature=0, seed=s, max_tokens=8)
        for s in (1, 2)
    ]
    assert greedy[0].choices[0].message.content == greedy[1].choices[0].message.content
    assert greedy[0].safety["config"]["do_sample"] is False
    tuned = c.chat.completions.create(
        model=MODEL, messages=USER, temperature=0.7, top_p=0.9, seed=5, max_tokens=4
    )
    config = tuned.safety["config"]
    assert (config["temperature"], config["top_p"], config["seed"]) == (0.7, 0.9, 5)


def test_stop_strings(scripted, serve):
    base = serve(scripted("Hello world. Goodbye now."))
    reply = client(base).chat.completions.create(model=MODEL, messages=USER, stop="Goodbye")
    assert reply.choices[0].message.content == "Hello world. "
    assert reply.choices[0].finish_reason == "stop"
    reply = client(base).chat.completions.create(model=MODEL, messages=USER, stop=["now", "world"])
    assert reply.choices[0].message.content == "Hello "


def test_tool_call(scripted, serve):
    base = serve(scripted(CALL))
    reply = client(base).chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[WEATHER_TOOL],
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert call.id.startswith("call_")
    assert reply.safety["safe"] is True


def test_tool_call_stream_holds_back_the_call_text(scripted, serve):
    base = serve(scripted(f"Let me check. {CALL}"))
    chunks = list(
        client(base).chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Weather in Paris?"}],
            tools=[WEATHER_TOOL],
            tool_choice="auto",
            stream=True,
        )
    )
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    content = "".join(d.content or "" for d in deltas)
    assert content == "Let me check."
    assert all("<tool" not in (d.content or "") for d in deltas)
    calls = [tc for d in deltas for tc in (d.tool_calls or [])]
    assert len(calls) == 1
    assert calls[0].index == 0
    assert calls[0].function.name == "get_weather"
    assert json.loads(calls[0].function.arguments) == {"city": "Paris"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_tool_choice_none_leaves_text_alone(scripted, serve):
    base = serve(scripted(CALL))
    reply = client(base).chat.completions.create(
        model=MODEL, messages=USER, tools=[WEATHER_TOOL], tool_choice="none"
    )
    assert reply.choices[0].message.tool_calls is None
    assert reply.choices[0].message.content == CALL
    assert reply.choices[0].finish_reason == "stop"


def test_tool_results_round_trip(scripted, serve):
    base = serve(scripted("It is sunny in Paris."))
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21 C"},
    ]
    reply = client(base).chat.completions.create(
        model=MODEL, messages=messages, tools=[WEATHER_TOOL]
    )
    assert reply.choices[0].message.content == "It is sunny in Paris."
    assert reply.choices[0].finish_reason == "stop"


def test_models_and_health(make_guard, serve):
    base = serve(make_guard(), model_name="guarded")
    models = client(base).models.list()
    assert [m.id for m in models.data] == ["guarded"]
    assert client(base).models.retrieve("guarded").id == "guarded"
    with pytest.raises(openai.NotFoundError):
        client(base).models.retrieve("gpt-4")
    status = health(base)
    assert status["status"] == "ok"
    assert status["model"] == "guarded"
    assert (status["running"], status["waiting"]) == (0, 0)


# --------------------------------------------------------------------------- safety
def test_streamed_over_budget_word_never_appears(scripted, serve):
    script = "Sure, here is how. First you get the dynamite and then you light it."
    base = serve(scripted(script, cost=keyword_cost(["dynamite"])))
    chunks = list(
        client(base).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "How?"}], stream=True
        )
    )
    deltas = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    text = "".join(deltas)
    assert "dynamite" not in text.lower()
    assert all("dyn" not in d.lower() for d in deltas)
    assert script.startswith(text)
    last = chunks[-1]
    assert last.choices[0].finish_reason == "content_filter"
    assert last.safety["exhausted"] is True
    assert last.safety["safe"] is True
    assert last.safety["finish_reason"] == "safety"
    plain = client(base).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "How?"}]
    )
    assert "dynamite" not in (plain.choices[0].message.content or "").lower()
    assert plain.choices[0].finish_reason == "content_filter"


def test_on_exhausted_raise_is_still_a_response(scripted, serve):
    guard = scripted("dynamite " * 4, cost=keyword_cost(["dynamite"]), on_exhausted="raise")
    base = serve(guard)
    reply = client(base).chat.completions.create(model=MODEL, messages=USER)
    assert reply.choices[0].finish_reason == "content_filter"
    assert "dynamite" not in (reply.choices[0].message.content or "")
    chunks = list(client(base).chat.completions.create(model=MODEL, messages=USER, stream=True))
    assert chunks[-1].choices[0].finish_reason == "content_filter"


def test_concurrent_clients_each_get_their_own_answer(make_guard, serve):
    cost = CostModel.from_callable(hashed_cost, threshold=0.5, id="hashed")
    guard = make_guard(cost=cost, max_new_tokens=12)
    base = serve(guard, max_concurrent=4, max_queue=8)
    jobs = [(f"Question number {i}?", seed) for i, seed in enumerate((11, 12, 13, 14, 15, 16))]

    def ask(job: tuple[str, int]) -> Any:
        prompt, seed = job
        messages = [{"role": "user", "content": prompt}]
        if seed % 2:
            return client(base).chat.completions.create(model=MODEL, messages=messages, seed=seed)
        stream = client(base).chat.completions.create(
            model=MODEL, messages=messages, seed=seed, stream=True
        )
        chunks = list(stream)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        return text, chunks[-1].safety

    with ThreadPoolExecutor(len(jobs)) as pool:
        answers = list(pool.map(ask, jobs))
    for (prompt, seed), answer in zip(jobs, answers, strict=True):
        if isinstance(answer, tuple):
            text, safety = answer
        else:
            text, safety = answer.choices[0].message.content, answer.safety
        expected = guard.generate([{"role": "user", "content": prompt}], seed=seed)
        assert text == expected.text
        assert safety["safe"] is True
        assert hashed_cost(prompt, text) <= 0.5
    assert health(base)["running"] == 0


# --------------------------------------------------------------------------- admission
class Gate:
    """A batched cost model that blocks until opened, counting its calls."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.calls = 0

    def __call__(self, prompts: list[str], responses: list[str]) -> list[float]:
        self.calls += 1
        self.event.wait(timeout=30)
        return [0.0] * len(responses)

    def cost(self) -> CostModel:
        return CostModel.from_callable(self, threshold=0.5, id="gate", batched=True)


def test_full_queue_answers_429_with_retry_after(make_guard, serve):
    gate = Gate()
    base = serve(make_guard(cost=gate.cost()), max_concurrent=1, max_queue=1)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(client(base).chat.completions.create, model=MODEL, messages=USER)
        wait_for(lambda: health(base)["running"] == 1)
        second = pool.submit(client(base).chat.completions.create, model=MODEL, messages=USER)
        wait_for(lambda: health(base)["waiting"] == 1)
        with pytest.raises(openai.RateLimitError) as info:
            client(base).chat.completions.create(model=MODEL, messages=USER)
        retry_after = info.value.response.headers["retry-after"]
        assert retry_after.isdigit() and int(retry_after) >= 1
        error = info.value.body
        assert error["code"] == "queue_full"
        assert error["type"] == "rate_limit_error"
        raw = httpx.post(f"{base}/v1/chat/completions", json={"messages": USER, "stream": True})
        assert raw.status_code == 429
        gate.event.set()
        assert first.result(timeout=30).safety["safe"]
        assert second.result(timeout=30).safety["safe"]
    status = health(base)
    assert (status["running"], status["waiting"], status["rejected"]) == (0, 0, 2)


@pytest.mark.parametrize("stream", [False, True])
def test_client_disconnect_cancels_the_search(make_guard, serve, stream):
    calls = []

    def slow_cost(prompts: list[str], responses: list[str]) -> list[float]:
        calls.append(len(responses))
        time.sleep(0.05)
        return [0.0] * len(responses)

    cost = CostModel.from_callable(slow_cost, threshold=0.5, id="slow", batched=True)
    # 100 steps of >= 50 ms: about 5 s if it ran to the end.
    base = serve(make_guard(cost=cost, block_len=2, max_new_tokens=200), max_concurrent=1)
    body = {"messages": USER, "stream": stream}
    if stream:
        with httpx.stream("POST", f"{base}/v1/chat/completions", json=body, timeout=30) as r:
            assert r.status_code == 200
            next(line for line in r.iter_lines() if line.startswith("data: "))
    else:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{base}/v1/chat/completions", json=body, timeout=0.4)
    wait_for(lambda: health(base)["running"] == 0, timeout=5)
    time.sleep(0.3)  # a step that was in flight may finish
    settled = len(calls)
    time.sleep(0.5)
    assert len(calls) == settled  # the search stopped
    assert settled < 60
    # The slot is free again: the next request runs.
    reply = client(base).chat.completions.create(model=MODEL, messages=USER, max_tokens=2)
    assert reply.safety["safe"]


# --------------------------------------------------------------------------- errors
def post(base: str, body: Any, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{base}/v1/chat/completions", json=body, timeout=30, **kwargs)


def assert_error(response: httpx.Response, status: int, param: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    if param is not None:
        assert error["param"] == param
    return error


@pytest.mark.parametrize(
    ("body", "param", "fragment"),
    [
        ({"messages": []}, "messages", "empty"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role", "wizard"),
        ({"messages": USER, "n": 2}, "n", "n=1"),
        ({}, "messages", "required"),
        ({"messages": "hello"}, "messages", "list"),
        ({"messages": USER, "logprobs": True}, "logprobs", "not supported"),
        ({"messages": USER, "presence_penalty": 0.5}, "presence_penalty", "not supported"),
        (
            {"messages": USER, "response_format": {"type": "json_object"}},
            "response_format",
            "json_object",
        ),
        ({"messages": USER, "temperature": 3}, "temperature", "less than or equal"),
        ({"messages": USER, "max_tokens": 0}, "max_tokens", "greater than or equal"),
        ({"messages": USER, "stop": ["a", "b", "c", "d", "e"]}, "stop", "at most 4"),
        (
            {
                "messages": USER,
                "tools": [WEATHER_TOOL],
                "tool_choice": {"type": "function", "function": {"name": "nope"}},
            },
            "tool_choice",
            "nope",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "x"}}],
                    }
                ]
            },
            "messages[0].content",
            "image_url",
        ),
        (
            {
                "messages": [
                    {"role": "assistant", "content": None, "tool_calls": [{"function": {}}]}
                ]
            },
            "messages[0].tool_calls[0]",
            "no tool name",
        ),
        ({"messages": [{"role": "system", "content": "only me"}]}, "messages", "system"),
    ],
)
def test_bad_requests_get_openai_error_bodies(make_guard, serve, body, param, fragment):
    base = serve(make_guard())
    for stream in (False, True):
        error = assert_error(post(base, {**body, "stream": stream}), 400, param)
        assert error["type"] == "invalid_request_error"
        assert fragment.lower() in error["message"].lower()
    assert health(base)["running"] == 0


def test_bad_json_and_unknown_paths(make_guard, serve):
    base = serve(make_guard())
    response = httpx.post(
        f"{base}/v1/chat/completions",
        content=b'{"messages": [',
        headers={"content-type": "application/json"},
    )
    assert assert_error(response, 400)["code"] == "invalid_json"
    assert assert_error(httpx.get(f"{base}/v1/nothing"), 404)["code"] == "not_found"
    assert assert_error(httpx.get(f"{base}/v1/chat/completions"), 405)["code"]


def test_openai_client_raises_bad_request(make_guard, serve):
    base = serve(make_guard())
    with pytest.raises(openai.BadRequestError) as info:
        client(base).chat.completions.create(model=MODEL, messages=[], n=1)
    assert info.value.body["param"] == "messages"


def test_guard_errors_map_to_status_codes(make_guard, serve):
    base = serve(make_guard())
    error = assert_error(post(base, {"messages": USER, "max_tokens": 5000}), 400)
    assert error["code"] == "context_length_exceeded"
    assert "max_tokens=5000" in error["message"] and error["param"] == "messages"
    # The client's field, not the guard's internal max_new_tokens (issue 20).
    error = assert_error(post(base, {"messages": USER, "max_tokens": 50000}), 400, "max_tokens")
    assert "max_tokens" in error["message"]
    assert "max_new_tokens" not in error["message"] and "GuardConfig" not in error["message"]
    small = serve(make_guard(max_batch_tokens=50))
    assert assert_error(post(small, {"messages": USER}), 413)["code"] == "request_too_large"


def test_scorer_failure_is_a_500_without_internals(make_guard, serve):
    nan = CostModel.from_callable(lambda p, r: float("nan"), threshold=0.5, id="nan")
    base = serve(make_guard(cost=nan))
    error = assert_error(post(base, {"messages": USER}), 500)
    assert error["type"] == "server_error"
    assert health(base)["running"] == 0


def test_error_mid_stream_is_reported_in_band(make_guard, serve):
    calls = []

    def failing_later(prompt: str, response: str) -> float:
        calls.append(response)
        return 0.0 if len(calls) <= 8 else float("nan")

    cost = CostModel.from_callable(failing_later, threshold=0.5, id="flaky")
    base = serve(make_guard(cost=cost, n_candidates=2, n_beams=1, block_len=2, max_new_tokens=24))
    stream = client(base).chat.completions.create(model=MODEL, messages=USER, stream=True)
    received = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            received.append(chunk)
    assert received and received[0].choices[0].delta.role == "assistant"
    assert info.value.body["code"] == "ScorerError"
    assert info.value.body["type"] == "server_error"
    assert health(base)["running"] == 0


def test_body_size_limit(make_guard, serve):
    base = serve(make_guard(), max_body_bytes=1000)
    big = [{"role": "user", "content": "x" * 2000}]
    assert assert_error(post(base, {"messages": big}), 413)["code"] == "request_too_large"


def test_api_key(make_guard, serve):
    base = serve(make_guard(), api_key="s3cret")
    with pytest.raises(openai.AuthenticationError) as info:
        client(base, api_key="wrong").chat.completions.create(model=MODEL, messages=USER)
    assert info.value.body["code"] == "invalid_api_key"
    assert assert_error(post(base, {"messages": USER}), 401)["code"] == "invalid_api_key"
    assert httpx.get(f"{base}/v1/models").status_code == 401
    assert httpx.get(f"{base}/health").status_code == 200
    reply = client(base, api_key="s3cret").chat.completions.create(model=MODEL, messages=USER)
    assert reply.safety["safe"]


# --------------------------------------------------------------------------- LangChain
def test_langchain_chat_openai(make_guard, scripted, serve):
    langchain_openai = pytest.importorskip("langchain_openai")
    guard = make_guard()
    base = serve(guard)
    llm = langchain_openai.ChatOpenAI(
        model=MODEL, base_url=f"{base}/v1", api_key="unused", max_retries=0
    )
    message = llm.invoke(USER[0]["content"])
    assert message.content == guard.generate(USER).text
    assert message.response_metadata["finish_reason"] in {"stop", "length"}
    assert message.usage_metadata["output_tokens"] > 0
    chunks = list(llm.stream(USER[0]["content"]))
    assert "".join(c.content for c in chunks) == message.content

    tool_base = serve(scripted(CALL))
    tool_llm = langchain_openai.ChatOpenAI(
        model=MODEL, base_url=f"{tool_base}/v1", api_key="unused", max_retries=0
    ).bind_tools([WEATHER_TOOL])
    ai = tool_llm.invoke("Weather in Paris?")
    assert [(c["name"], c["args"]) for c in ai.tool_calls] == [("get_weather", {"city": "Paris"})]
    merged = None
    for chunk in tool_llm.stream("Weather in Paris?"):
        merged = chunk if merged is None else merged + chunk
    assert [(c["name"], c["args"]) for c in merged.tool_calls] == [
        ("get_weather", {"city": "Paris"})
    ]


def test_a_model_that_is_not_served_is_a_404_like_get_models(make_guard, serve):
    base = serve(make_guard())
    with pytest.raises(openai.NotFoundError) as info:
        client(base).chat.completions.create(model="gpt-4o", messages=USER)
    assert info.value.body["code"] == "model_not_found"
    assert info.value.body["param"] == "model"
    listed = assert_error(httpx.get(f"{base}/v1/models/gpt-4o"), 404)
    assert listed["message"] == info.value.body["message"] == "The model 'gpt-4o' does not exist."
    assert post(base, {"messages": USER}).status_code == 200  # no model: the served one


def test_a_client_cannot_set_the_budget_or_other_safety_fields(make_guard, serve):
    base = serve(make_guard())
    with pytest.raises(openai.BadRequestError) as info:
        client(base).chat.completions.create(
            model=MODEL, messages=USER, extra_body={"budget": 10.0}
        )
    assert info.value.body["param"] == "budget"
    assert "a client cannot set budget" in info.value.body["message"]
    assert "operator" in info.value.body["message"]
    for field in ("n_candidates", "strategy", "use_critic", "guard_config"):
        assert_error(post(base, {"messages": USER, field: 1}), 400, field)
    # Unknown fields that change nothing about safety stay accepted (newer clients).
    assert post(base, {"messages": USER, "metadata": {"k": "v"}, "store": False}).status_code == 200


def test_request_errors_name_the_clients_field(make_guard, serve):
    base = serve(make_guard())
    tool_turn = [
        *USER,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "{}"},
                }
            ],
        },
        {"role": "tool", "content": "Sunny"},
    ]
    error = assert_error(post(base, {"messages": tool_turn}), 400, "messages[2].tool_call_id")
    assert "tool_call_id" in error["message"]
    empty = httpx.post(f"{base}/v1/chat/completions", timeout=30)
    assert "messages" in assert_error(empty, 400, "messages")["message"]
    assert_error(post(base, {"messages": [{"role": "user"}]}), 400, "messages[0]")


def test_the_safety_verdict_is_also_a_response_header(make_guard, serve):
    base = serve(make_guard())
    raw = client(base).chat.completions.with_raw_response.create(model=MODEL, messages=USER)
    verdict = json.loads(raw.headers["x-inferenceguard-safety"])
    body = raw.parse()
    assert verdict["safe"] is True and verdict["budget"] == body.safety["budget"]
    assert verdict["cost"] == pytest.approx(body.safety["cost"])
    assert verdict["finish_reason"] == body.safety["finish_reason"]


def test_a_forced_tool_choice_is_enforced(scripted, serve):
    named = {"type": "function", "function": {"name": "get_weather"}}
    base = serve(scripted(CALL))
    reply = client(base).chat.completions.create(
        model=MODEL, messages=USER, tools=[WEATHER_TOOL], tool_choice=named
    )
    assert reply.choices[0].message.tool_calls[0].function.name == "get_weather"
    prose = serve(scripted("I would rather chat about the weather."))
    for choice in ("required", named):
        response = post(prose, {"messages": USER, "tools": [WEATHER_TOOL], "tool_choice": choice})
        error = assert_error(response, 422, "tool_choice")
        assert error["code"] == "tool_choice_not_met"
        assert json.loads(response.headers["x-inferenceguard-safety"])["safe"] is True
    body = {"messages": USER, "tools": [WEATHER_TOOL], "tool_choice": "required", "stream": True}
    assert "stream" in assert_error(post(prose, body), 400, "tool_choice")["message"]


def test_langchain_structured_output_through_function_calling(scripted, serve):
    langchain_openai = pytest.importorskip("langchain_openai")
    from pydantic import BaseModel

    class Weather(BaseModel):
        """Weather in a city."""

        city: str

    base = serve(
        scripted('<tool_call>{"name": "Weather", "arguments": {"city": "Paris"}}</tool_call>')
    )
    llm = langchain_openai.ChatOpenAI(
        model=MODEL, base_url=f"{base}/v1", api_key="unused", max_retries=0
    )
    structured = llm.with_structured_output(Weather, method="function_calling")
    assert structured.invoke("Weather in Paris?") == Weather(city="Paris")
    with pytest.raises(openai.BadRequestError, match="function_calling"):
        llm.with_structured_output(Weather, method="json_schema").invoke("Weather in Paris?")


# --------------------------------------------------------------------------- units
def test_guard_call_translation():
    request = ChatCompletionRequest(
        messages=USER,
        max_tokens=9,
        temperature=0,
        top_p=0.5,
        seed=3,
        stop="END",
        tools=[WEATHER_TOOL],
        stream=True,
        stream_options={"include_usage": True},
        parallel_tool_calls=False,
        user="ignored",
        some_future_field=True,
    )
    call = guard_call(request)
    assert call.overrides == {"max_new_tokens": 9, "do_sample": False, "seed": 3, "stop": ["END"]}
    assert call.stream and call.include_usage and call.parse_tools
    assert not call.parallel_tool_calls
    assert call.tools[0]["function"]["name"] == "get_weather"
    sampled = guard_call(ChatCompletionRequest(messages=USER, temperature=0.5, top_p=0.8))
    assert sampled.overrides == {"temperature": 0.5, "top_p": 0.8}
    no_tools = guard_call(ChatCompletionRequest(messages=USER, tool_choice="auto"))
    assert no_tools.tool_choice is None and not no_tools.parse_tools


def _result(text: str, reason: str) -> GuardResult:
    report = SafetyReport(cost=0.0, budget=0.5, threshold=0.5, safe=True, max_prefix_cost=0.0)
    return GuardResult(
        text=text, finish_reason=reason, prompt_tokens=3, completion_tokens=2, safety=report
    )


@pytest.mark.parametrize(
    ("reason", "tools", "expected"),
    [
        ("stop", False, "stop"),
        ("length", False, "length"),
        ("safety", False, "content_filter"),
        ("timeout", False, "length"),
        ("stop", True, "tool_calls"),
        ("length", True, "length"),
    ],
)
def test_finish_reasons(reason, tools, expected):
    assert finish_reason(_result("x", reason), has_tool_calls=tools) == expected


def test_chunk_format_tool_stream():
    assembler = ReplyAssembler(parse_tools=True)
    chunks = ChunkFormat(model="m", include_usage=True)
    text = f"Ok. {CALL}"
    items = [StreamChunk(delta=text[i : i + 5]) for i in range(0, len(text), 5)]
    items.append(StreamChunk(result=_result(text, "stop")))
    out = [c for item in items for event in assembler.feed(item) for c in chunks.chunks(event)]
    dumped = [c.model_dump(mode="json") for c in out]
    content = "".join(d["choices"][0]["delta"].get("content", "") for d in dumped if d["choices"])
    assert content == "Ok."
    assert dumped[-3]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert dumped[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert dumped[-2]["safety"]["finish_reason"] == "stop"
    assert dumped[-1]["choices"] == [] and dumped[-1]["usage"]["total_tokens"] == 5
    assert all(d["usage"] is None for d in dumped[:-1])
    assert all(d["id"] == chunks.id for d in dumped)


def test_chunk_format_reports_invalid_calls_apart_from_content():
    assembler = ReplyAssembler(parse_tools=True)
    cut = 'Ok. <tool_call>{"name": "get_weather", "arguments": {}}'
    events = assembler.feed(StreamChunk(delta=cut)) + assembler.finish(_result(cut, "length"))
    dumped = [c.model_dump(mode="json") for e in events for c in ChunkFormat(model="m").chunks(e)]
    assert "".join(d["choices"][0]["delta"].get("content", "") for d in dumped) == "Ok."
    (invalid,) = dumped[-2]["choices"][0]["delta"]["invalid_tool_calls"]
    assert invalid["name"] == "get_weather" and "cut off" in invalid["error"]
    assert "tool_calls" not in dumped[-2]["choices"][0]["delta"]
    assert dumped[-1]["choices"][0]["finish_reason"] == "length"


def test_error_response_mapping():
    assert error_response(InputError("messages[2].role is 'x'."))[1]["error"]["param"] == (
        "messages[2].role"
    )
    status, body = error_response(ContextLengthError("too long"))
    assert (status, body["error"]["code"]) == (400, "context_length_exceeded")
    assert error_response(ResourceError("big"))[0] == 413
    assert error_response(ScorerError("nan"))[0] == 500
    status, body = error_response(RuntimeError("secret internals"))
    assert status == 500 and "secret" not in body["error"]["message"]
    assert validation_param(("body", "messages", 0, "tool_calls", 1, "id")) == (
        "messages[0].tool_calls[1].id"
    )


async def test_admission_queue_bounds_and_cancellation():
    queue = AdmissionQueue(max_concurrent=1, max_queue=1, initial_service_s=2.0)
    first = queue.ticket()
    await first.acquire()
    second = queue.ticket()
    waiter = asyncio.ensure_future(second.acquire())
    await asyncio.sleep(0)
    assert (queue.running, queue.waiting) == (1, 1)
    with pytest.raises(QueueFullError) as info:
        queue.ticket()
    assert info.value.retry_after == 4  # 2 s per request, 2 turns ahead
    waiter.cancel()  # a client that gives up frees its place
    with contextlib.suppress(asyncio.CancelledError):
        await waiter
    assert queue.waiting == 0
    third = queue.ticket()
    first.release()
    first.release()  # idempotent
    async with third:
        assert (queue.running, queue.waiting) == (1, 0)
    assert (queue.running, queue.waiting, queue.completed, queue.rejected) == (0, 0, 2, 1)
    with pytest.raises(ValueError):
        AdmissionQueue(max_concurrent=0)


def test_a_lazy_guard_is_built_on_the_first_request_only(monkeypatch, make_guard):
    from fastapi.testclient import TestClient

    from inferenceguard import LazyGuard
    from inferenceguard import build as build_module

    built: list[dict[str, Any]] = []

    def fake_build_guard(**kwargs: Any) -> InferenceGuard:
        built.append(kwargs)
        return make_guard()

    monkeypatch.setattr(build_module, "build_guard", fake_build_guard)
    app = create_app(LazyGuard(model="org/served-model"))
    body = {"messages": USER, "max_tokens": 4}
    with TestClient(app) as http:
        assert http.get("/v1/models").json()["data"][0]["id"] == "org/served-model"
        assert built == []  # nothing loads until a request needs the model
        assert http.post("/v1/chat/completions", json=body).status_code == 200
        assert http.post("/v1/chat/completions", json={**body, "stream": True}).status_code == 200
    assert built == [{"model": "org/served-model"}]
