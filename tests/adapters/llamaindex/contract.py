"""A reusable contract test suite for LlamaIndex LLM integrations.

LlamaIndex publishes no standard test suite for LLMs (unlike ``langchain-tests``), so this
mixin encodes the contract that query engines, chat engines and agents rely on
(li-core 0.14). Use it like the LangChain standard suites: subclass it, provide fixtures
and declare capability flags; do not override tests.

.. code-block:: python

    class TestMyLLM(LlamaIndexLLMContract):
        expected_class_name = "MyLLM"

        @pytest.fixture
        def llm(self):                      # answers any chat with some text
            return MyLLM(...)

        @pytest.fixture
        def tool_llm(self):                 # calls add(a=2, b=3) when given the tool
            return MyLLM(...)

What is checked:

* identity: ``BaseLLM`` in the MRO, a stable ``class_name()``, ``to_dict``/``to_json``;
* metadata honesty: chat model, function calling iff a ``FunctionCallingLLM``, positive
  ``num_output`` below ``context_window``, a model name;
* the eight methods (``chat``, ``complete``, ``stream_chat``, ``stream_complete`` and
  their async twins): an assistant message; when streaming, every item's text is the
  concatenation of all deltas so far and the final text equals the last item's; ``raw``
  of the (last) response carries ``usage`` (and ``additional_kwargs`` the same counts);
  ``raw["safety"]`` when the integration declares a safety report;
* callbacks: one LLM event pair per call, whose end payload is the (last) response, and
  ``TokenCountingHandler`` reads the reported usage;
* histories with tool calls and tool results are accepted;
* tool calling: ``chat_with_tools`` (sync, async, streaming) -> ``ToolCallBlock`` ->
  ``get_tool_calls_from_response``; ``predict_and_call``; ``error_on_no_tool_call``;
  ``allow_parallel_tool_calls``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from llama_index.core.base.llms.base import BaseLLM
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    CompletionResponse,
    MessageRole,
    TextBlock,
    ToolCallBlock,
)
from llama_index.core.callbacks import (
    CallbackManager,
    CBEventType,
    EventPayload,
    LlamaDebugHandler,
    TokenCountingHandler,
)
from llama_index.core.llms.function_calling import FunctionCallingLLM
from llama_index.core.tools import FunctionTool

__all__ = ["LlamaIndexLLMContract", "call_llm"]

Response = ChatResponse | CompletionResponse
PROMPT = "Say hello."


def _messages(prompt: str = PROMPT) -> list[ChatMessage]:
    return [ChatMessage(role=MessageRole.USER, content=prompt)]


def _add(a: int, b: int) -> int:
    """Add two integers and return the sum."""
    return a + b


ADD_TOOL = FunctionTool.from_defaults(fn=_add, name="add")


def _text(response: Response) -> str:
    if isinstance(response, ChatResponse):
        return response.message.content or ""
    return response.text


async def call_llm(
    llm: BaseLLM, api: str, mode: str, streaming: bool, prompt: str = PROMPT, **kwargs: Any
) -> tuple[Response, list[Response]]:
    """Call one of the eight methods; return the final response and every streamed item.

    Args:
        api: ``"chat"`` or ``"complete"``.
        mode: ``"sync"`` or ``"async"``.
        streaming: use the ``stream_*`` / ``astream_*`` variant.
    """
    arg: Any = _messages(prompt) if api == "chat" else prompt
    name = ("stream_" if streaming else "") + api
    if mode == "async":
        name = "a" + name
    method = getattr(llm, name)
    if not streaming:
        result = method(arg, **kwargs)
        response = await result if mode == "async" else result
        return response, [response]
    items: list[Response] = []
    if mode == "async":
        async for item in await method(arg, **kwargs):
            items.append(item)
    else:
        items.extend(method(arg, **kwargs))
    assert items, f"{name} yielded nothing"
    return items[-1], items


async def _call_with_tools(
    llm: FunctionCallingLLM, mode: str, streaming: bool, tools: Sequence[Any], **kwargs: Any
) -> ChatResponse:
    user_msg = kwargs.pop("user_msg", "What is 2 + 3?")
    if mode == "sync" and not streaming:
        return llm.chat_with_tools(tools, user_msg=user_msg, **kwargs)
    if mode == "async" and not streaming:
        return await llm.achat_with_tools(tools, user_msg=user_msg, **kwargs)
    last = None
    if mode == "sync":
        for last in llm.stream_chat_with_tools(tools, user_msg=user_msg, **kwargs):  # noqa: B007
            pass
    else:
        async for last in await llm.astream_chat_with_tools(tools, user_msg=user_msg, **kwargs):  # noqa: B007
            pass
    assert last is not None
    return last


MODES = ["sync", "async"]
APIS = ["chat", "complete"]


class LlamaIndexLLMContract:
    """Mixin with the contract tests; see the module docstring."""

    # ------------------------------------------------------------------ flags
    expected_class_name: str | None = None
    """The stable ``class_name()`` (None: only check that it is a non-empty string)."""
    returns_usage: bool = True
    """``raw["usage"]`` with prompt/completion/total tokens on the (last) response."""
    has_safety_report: bool = False
    """``raw["safety"]`` holds a safety report dict (``safe``, ``cost``, ``budget``)."""
    is_deterministic: bool = False
    """The same request gives the same text, streamed or not (seeded samplers)."""
    has_tool_calling: bool = True
    """A ``FunctionCallingLLM`` whose ``tool_llm`` fixture calls ``add(a=2, b=3)``."""

    # ------------------------------------------------------------------ fixtures
    @pytest.fixture
    def llm(self) -> BaseLLM:
        """The LLM under test (override)."""
        raise NotImplementedError("provide an `llm` fixture")

    @pytest.fixture
    def tool_llm(self) -> FunctionCallingLLM:
        """An LLM that answers with the tool call ``add(a=2, b=3)`` (override)."""
        pytest.skip("no tool_llm fixture")

    @pytest.fixture
    def parallel_tool_llm(self) -> FunctionCallingLLM:
        """An LLM that answers with two calls of ``add`` (override to test parallel calls)."""
        pytest.skip("no parallel_tool_llm fixture")

    # ------------------------------------------------------------------ identity
    def test_base_llm_in_mro(self, llm: BaseLLM) -> None:
        assert BaseLLM in type(llm).__mro__

    def test_class_name(self, llm: BaseLLM) -> None:
        name = type(llm).class_name()
        assert isinstance(name, str) and name
        if self.expected_class_name is not None:
            assert name == self.expected_class_name
        assert llm.to_dict()["class_name"] == name
        assert '"class_name"' in llm.to_json()

    def test_metadata(self, llm: BaseLLM) -> None:
        meta = llm.metadata
        assert meta.is_chat_model is True
        assert meta.is_function_calling_model is isinstance(llm, FunctionCallingLLM)
        assert 0 < meta.num_output < meta.context_window
        assert isinstance(meta.model_name, str) and meta.model_name not in ("", "unknown")
        assert llm.to_payload()["class_name"] == type(llm).class_name()

    # ------------------------------------------------------------------ generation
    def _check_final(self, response: Response, api: str) -> None:
        if isinstance(response, ChatResponse):
            assert api == "chat"
            assert response.message.role == MessageRole.ASSISTANT
            assert isinstance(response.message.content, str)
        else:
            assert api == "complete"
            assert isinstance(response.text, str)
        if self.returns_usage:
            usage = response.raw["usage"]
            assert usage["prompt_tokens"] > 0
            assert usage["completion_tokens"] >= 0
            assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
            for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
                assert response.additional_kwargs[key] == usage[key]
        if self.has_safety_report:
            report = response.raw["safety"]
            assert isinstance(report, dict)
            assert report["safe"] is True
            assert report["cost"] <= report["budget"]
            assert response.raw["finish_reason"] in ("stop", "length", "safety", "timeout")

    @pytest.mark.parametrize("streaming", [False, True], ids=["invoke", "stream"])
    @pytest.mark.parametrize("mode", MODES)
    @pytest.mark.parametrize("api", APIS)
    async def test_generate(self, llm: BaseLLM, api: str, mode: str, streaming: bool) -> None:
        final, items = await call_llm(llm, api, mode, streaming)
        self._check_final(final, api)
        if not streaming:
            return
        so_far = ""
        for item in items:
            assert isinstance(item.delta, str), "every streamed item has a str delta"
            so_far += item.delta
            assert _text(item) == so_far, "text is cumulative: the concatenation of deltas"
        assert _text(final) == so_far

    @pytest.mark.parametrize("mode", MODES)
    async def test_stream_matches_invoke(self, llm: BaseLLM, mode: str) -> None:
        if not self.is_deterministic:
            pytest.skip("not deterministic")
        invoked, _ = await call_llm(llm, "chat", mode, False)
        streamed, _ = await call_llm(llm, "chat", mode, True)
        assert _text(streamed) == _text(invoked)

    # ------------------------------------------------------------------ callbacks
    @pytest.mark.parametrize("streaming", [False, True], ids=["invoke", "stream"])
    @pytest.mark.parametrize("mode", MODES)
    async def test_callbacks(self, llm: BaseLLM, mode: str, streaming: bool) -> None:
        debug = LlamaDebugHandler()
        counter = TokenCountingHandler()
        llm.callback_manager = CallbackManager([debug, counter])
        final, _ = await call_llm(llm, "chat", mode, streaming)
        pairs = debug.get_event_pairs(CBEventType.LLM)
        assert len(pairs) == 1
        start, end = pairs[0]
        assert start.payload[EventPayload.MESSAGES][0].content == PROMPT
        assert end.payload[EventPayload.RESPONSE].raw == final.raw
        if self.returns_usage:
            assert counter.prompt_llm_token_count == final.raw["usage"]["prompt_tokens"]
            assert counter.completion_llm_token_count == final.raw["usage"]["completion_tokens"]

    # ------------------------------------------------------------------ histories
    @pytest.mark.parametrize("mode", MODES)
    async def test_history_with_tool_turns(self, llm: BaseLLM, mode: str) -> None:
        history = [
            ChatMessage(role=MessageRole.SYSTEM, content="You are helpful."),
            ChatMessage(role=MessageRole.USER, content="What is 2 + 3?"),
            ChatMessage(
                role=MessageRole.ASSISTANT,
                blocks=[
                    ToolCallBlock(
                        tool_call_id="call_1", tool_name="add", tool_kwargs={"a": 2, "b": 3}
                    )
                ],
            ),
            ChatMessage(
                role=MessageRole.TOOL,
                blocks=[TextBlock(text="5")],
                additional_kwargs={"tool_call_id": "call_1", "name": "add"},
            ),
        ]
        response = llm.chat(history) if mode == "sync" else await llm.achat(history)
        assert response.message.role == MessageRole.ASSISTANT

    # ------------------------------------------------------------------ tools
    def _require_tools(self) -> None:
        if not self.has_tool_calling:
            pytest.skip("no tool calling")

    @pytest.mark.parametrize("streaming", [False, True], ids=["invoke", "stream"])
    @pytest.mark.parametrize("mode", MODES)
    async def test_chat_with_tools(
        self, tool_llm: FunctionCallingLLM, mode: str, streaming: bool
    ) -> None:
        self._require_tools()
        response = await _call_with_tools(tool_llm, mode, streaming, [ADD_TOOL])
        blocks = [b for b in response.message.blocks if isinstance(b, ToolCallBlock)]
        assert [(b.tool_name, b.tool_kwargs) for b in blocks] == [("add", {"a": 2, "b": 3})]
        calls = tool_llm.get_tool_calls_from_response(response)
        assert len(calls) == 1
        assert calls[0].tool_name == "add"
        assert calls[0].tool_kwargs == {"a": 2, "b": 3}
        assert calls[0].tool_id
        assert tool_llm.get_tool_calls_from_response(response, error_on_no_tool_call=False) == calls

    @pytest.mark.parametrize("mode", MODES)
    async def test_predict_and_call(self, tool_llm: FunctionCallingLLM, mode: str) -> None:
        self._require_tools()
        if mode == "sync":
            out = tool_llm.predict_and_call([ADD_TOOL], user_msg="What is 2 + 3?")
        else:
            out = await tool_llm.apredict_and_call([ADD_TOOL], user_msg="What is 2 + 3?")
        assert out.response == "5"
        assert out.sources[0].tool_name == "add"
        assert out.sources[0].raw_input == {"args": (), "kwargs": {"a": 2, "b": 3}}

    async def test_no_tool_call(self, llm: BaseLLM) -> None:
        self._require_tools()
        assert isinstance(llm, FunctionCallingLLM)
        response = llm.chat(_messages())
        with pytest.raises(ValueError, match="tool call"):
            llm.get_tool_calls_from_response(response, error_on_no_tool_call=True)
        assert llm.get_tool_calls_from_response(response, error_on_no_tool_call=False) == []

    @pytest.mark.parametrize("streaming", [False, True], ids=["invoke", "stream"])
    @pytest.mark.parametrize("allow_parallel", [False, True], ids=["single", "parallel"])
    async def test_parallel_tool_calls(
        self, parallel_tool_llm: FunctionCallingLLM, allow_parallel: bool, streaming: bool
    ) -> None:
        self._require_tools()
        response = await _call_with_tools(
            parallel_tool_llm,
            "sync",
            streaming,
            [ADD_TOOL],
            allow_parallel_tool_calls=allow_parallel,
        )
        calls = parallel_tool_llm.get_tool_calls_from_response(response)
        assert len(calls) == (2 if allow_parallel else 1)
        assert all(c.tool_name == "add" for c in calls)
