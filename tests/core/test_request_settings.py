"""Issue 20: every request setting of the Python API is honoured or refused with a typed error."""

from __future__ import annotations

import pytest

from inferenceguard import ConfigError, GuardConfig, InferenceGuard, InputError, RewardModel
from inferenceguard.config import check_init_kwargs, resolve_budget
from inferenceguard.testing import ScriptedLM, keyword_cost

ANSWER = "The capital of France is Paris."
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.fixture
def scripted_guard(tiny_lm) -> InferenceGuard:
    lm = ScriptedLM(tiny_lm, ANSWER)
    reward = RewardModel.from_callable(lambda p, r: float(len(r)))
    config = GuardConfig(n_candidates=2, n_beams=1, block_len=4, max_new_tokens=24, seed=0)
    return InferenceGuard(lm, keyword_cost(["bomb"]), reward, config=config)


# --------------------------------------------------------------------------- stop (item 2)
def test_a_stop_string_is_one_stop_string(scripted_guard: InferenceGuard) -> None:
    result = scripted_guard.generate("Capital of France?", stop="Paris")
    # Not split into one-character stop strings (that returned 'The c').
    assert result.text == "The capital of France is "
    assert result.safety.config["stop"] == ["Paris"]


def test_stop_none_means_no_stop_strings(scripted_guard: InferenceGuard) -> None:
    guard = InferenceGuard(
        scripted_guard.lm,
        scripted_guard.cost_model,
        scripted_guard.reward_model,
        config=scripted_guard.config.replace(stop=["France"]),
    )
    assert guard.generate("Capital?", stop=None).text == ANSWER
    assert GuardConfig(stop="END").stop == ("END",)
    assert GuardConfig(stop=None).stop == ()


def test_an_empty_stop_string_is_refused(scripted_guard: InferenceGuard) -> None:
    with pytest.raises(ConfigError, match="stop"):
        scripted_guard.generate("Capital?", stop=[""])
    with pytest.raises(ConfigError, match="empty stop string"):
        GuardConfig(stop=["END", ""])


# --------------------------------------------------------------------------- budget (item 3)
def test_a_budget_that_turns_the_guard_off_is_refused(scripted_guard: InferenceGuard) -> None:
    with pytest.raises(ConfigError, match="allow_unbounded_budget=True"):
        scripted_guard.generate("Capital?", budget=1e9)
    # Probability-scale cost model (threshold 0.5): no cost exceeds 1, so 1 means "off".
    with pytest.raises(ConfigError, match="budget=1 is at or above 1"):
        scripted_guard.generate("Capital?", budget=1.0)
    assert scripted_guard.generate("Capital?", budget=0.9).safety.budget == 0.9


def test_an_unbounded_budget_is_allowed_explicitly_and_reported(
    scripted_guard: InferenceGuard,
) -> None:
    result = scripted_guard.generate("Capital?", budget=1e9, allow_unbounded_budget=True)
    assert result.safety.budget == 1e9
    assert result.safety.config["allow_unbounded_budget"] is True


def test_resolve_budget_keeps_negative_budget_rule() -> None:
    with pytest.raises(ConfigError, match="below zero"):
        resolve_budget(GuardConfig(budget=-0.1), 0.5)
    assert resolve_budget(GuardConfig(), 0.5) == 0.5
    # A score model with threshold 0 (PKU style) has no probability ceiling.
    assert resolve_budget(GuardConfig(budget=3.0), 0.0) == 3.0


# --------------------------------------------------------------------------- messages and tools
def test_a_message_without_content_is_refused(scripted_guard: InferenceGuard) -> None:
    with pytest.raises(InputError, match=r"messages\[0\] \(user\) has no content"):
        scripted_guard.generate([{"role": "user"}])


def test_an_assistant_tool_call_without_content_still_works(
    scripted_guard: InferenceGuard,
) -> None:
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "tool_calls": [{"id": "c1", "name": "get_weather", "arguments": {"city": "Paris"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "Sunny"},
    ]
    assert scripted_guard.generate(messages, tools=[TOOL]).text == ANSWER


def test_a_dict_that_is_not_a_tool_schema_is_refused(scripted_guard: InferenceGuard) -> None:
    with pytest.raises(InputError, match="not a tool schema"):
        scripted_guard.generate("Hi", tools=[{"name": "x"}])


def test_tool_choice_must_name_a_given_tool(scripted_guard: InferenceGuard) -> None:
    with pytest.raises(InputError, match="tool_choice='nope'"):
        scripted_guard.generate("Hi", tools=[TOOL], tool_choice="nope")
    with pytest.raises(InputError, match="no tools were given"):
        scripted_guard.generate("Hi", tool_choice="required")
    named = {"type": "function", "function": {"name": "get_weather"}}
    assert scripted_guard.generate("Hi", tools=[TOOL], tool_choice=named).text == ANSWER


# --------------------------------------------------------------------------- constructors (item 1)
def test_the_one_constructor_rule_names_the_fix() -> None:
    known = {"model", "max_new_tokens", "guard_config"}
    with pytest.raises(ConfigError, match=r"guard_config=\{'budget': ...\}"):
        check_init_kwargs("X", ["budget"], known)
    with pytest.raises(ConfigError, match=r"guard_config=\{'max_time': ...\}"):
        check_init_kwargs("X", ["timeout"], known)
    with pytest.raises(ConfigError, match="pass max_new_tokens"):
        check_init_kwargs("X", ["max_tokens"], known, renamed={"max_tokens": "max_new_tokens"})
    with pytest.raises(ConfigError, match="not an argument of X"):
        check_init_kwargs("X", ["generate_kwargs"], known)
    check_init_kwargs("X", ["model"], known)  # known names pass
