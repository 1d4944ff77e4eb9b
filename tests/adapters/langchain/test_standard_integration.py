"""LangChain's standard integration suite, offline, on a rule-scripted tiny model.

The model is a 2-layer Llama with random weights and the real SmolLM2 tokenizer and chat
template, so rendering, the guarded search, streaming, usage and callbacks are all real.
Its logits are forced by :class:`lc_scripted.RuleScriptedLM`, which writes, per request,
what the suite's prompt asks for: prose for plain prompts and tool results, the requested
``<tool_call>`` when tools are bound. So the tool-calling and structured-output tests run
the library's real tool protocol (prompt rendering, parsing, streaming of tool-call
chunks) instead of being xfailed.
"""

from __future__ import annotations

import functools
from typing import Any

from langchain_tests.integration_tests import ChatModelIntegrationTests
from lc_scripted import RuleScriptedLM, standard_suite_rules

from inferenceguard import CostModel, InferenceGuard, RewardModel
from inferenceguard.testing import tiny_random_lm
from langchain_inferenceguard import ChatInferenceGuard


@functools.cache
def scripted_guard() -> InferenceGuard:
    """One guard on the rule-scripted tiny Llama, shared by all tests."""
    from transformers import AutoTokenizer

    from inferenceguard._embedded import embedded_lm_dir

    base = tiny_random_lm(AutoTokenizer.from_pretrained(embedded_lm_dir()))
    lm = RuleScriptedLM(base, standard_suite_rules())
    cost = CostModel.from_callable(lambda prompt, response: 0.0, threshold=0.5, id="zero-cost")
    reward = RewardModel.from_callable(lambda prompt, response: float(len(response)), id="length")
    return InferenceGuard(lm, cost, reward)


class TestChatInferenceGuardIntegration(ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[ChatInferenceGuard]:
        return ChatInferenceGuard

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {
            "guard": scripted_guard(),
            # Long enough for the longest scripted call (unicode names take many tokens).
            "max_tokens": 96,
            "n_candidates": 2,
            "n_beams": 1,
            "block_len": 16,
            "seed": 0,
        }

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def supports_model_override(self) -> bool:
        return False

    @property
    def supports_json_mode(self) -> bool:
        return False
