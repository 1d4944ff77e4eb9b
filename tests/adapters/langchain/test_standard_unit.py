"""LangChain's standard unit suite: construction, tool binding, ls params (nothing loaded)."""

from __future__ import annotations

from typing import Any

from langchain_tests.unit_tests import ChatModelUnitTests

from langchain_inferenceguard import ChatInferenceGuard


class TestChatInferenceGuardUnit(ChatModelUnitTests):
    """No guard is passed: constructing, binding tools and structured output load nothing."""

    @property
    def chat_model_class(self) -> type[ChatInferenceGuard]:
        return ChatInferenceGuard

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"n_candidates": 4, "n_beams": 2, "block_len": 4}

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def supports_model_override(self) -> bool:
        return False
