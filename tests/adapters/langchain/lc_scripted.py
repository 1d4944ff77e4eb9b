"""A rule-based scripted model for LangChain's standard suite: prompt pattern → script.

LangChain's standard integration tests ask for specific tool calls ("What is the value of
magic_function(3)? Use the tool."). A random-weight model cannot write them, so
:class:`RuleScriptedLM` writes, for each request, the script of the first rule that
matches it: the tiny model still runs the whole guarded search (KV cache, scoring,
streaming), only its logits are forced, as with :class:`inferenceguard.testing.ScriptedLM`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from inferenceguard import LocalLM
from inferenceguard.testing import ScriptedLM

__all__ = [
    "PLAIN_REPLY",
    "TOOL_RESULT_REPLY",
    "RuleScriptedLM",
    "standard_suite_rules",
    "tool_call",
]

Messages = Sequence[Mapping[str, Any]]
Tools = Sequence[Mapping[str, Any]]
#: A rule reads one request and returns the script to write, or ``None`` to pass.
Rule = Callable[[Messages, Tools, Any], "str | None"]

PLAIN_REPLY = "Hello! I am a scripted assistant."
TOOL_RESULT_REPLY = "The tool says: it's sunny."


def tool_call(name: str, arguments: Mapping[str, Any]) -> str:
    """The text of one well-formed call in the library's tool-call protocol."""
    payload = json.dumps({"name": name, "arguments": dict(arguments)}, ensure_ascii=False)
    return f"<tool_call>{payload}</tool_call>"


class RuleScriptedLM(ScriptedLM):
    """A :class:`ScriptedLM` that picks its script per request from ``rules``.

    The rules see the request as the guard renders it (normalised messages, OpenAI-format
    tools, the tool choice); the first that returns a script wins, else ``default``.
    Requests with different scripts must not run at the same time (the script is shared).
    """

    def __init__(self, base: LocalLM, rules: Sequence[Rule], default: str = PLAIN_REPLY) -> None:
        super().__init__(base, default)
        self.rules = list(rules)
        self.default = default

    def render(
        self,
        messages: Any,
        *,
        tools: Tools | None = None,
        tool_choice: Any = None,
        **kwargs: Any,
    ) -> str:
        """Choose this request's script, then render the prompt as usual."""
        listed = [{"role": "user", "content": messages}] if isinstance(messages, str) else messages
        script = next(
            (s for rule in self.rules if (s := rule(listed, tools or [], tool_choice)) is not None),
            self.default,
        )
        self.set_script(script)
        return super().render(messages, tools=tools, tool_choice=tool_choice, **kwargs)


# ----------------------------------------------------------------------------- rules
def _answer_tool_results(messages: Messages, tools: Tools, tool_choice: Any) -> str | None:
    return TOOL_RESULT_REPLY if messages and messages[-1].get("role") == "tool" else None


def _no_tools(messages: Messages, tools: Tools, tool_choice: Any) -> str | None:
    return PLAIN_REPLY if not tools or tool_choice == "none" else None


_QUOTED = re.compile(r"'([^']+)'")


def _last_user_text(messages: Messages) -> str:
    users = [m for m in messages if m.get("role") == "user"]
    content = users[-1].get("content", "") if users else ""
    return content if isinstance(content, str) else ""


def _arguments(name: str, schema: Mapping[str, Any], messages: Messages) -> dict[str, Any]:
    """What the suite's prompts ask for, tool by tool; else a value of each required type."""
    if name == "magic_function":
        return {"input": 3}
    if name == "greeting_generator":
        return {"answer_style": "pirate"}
    if name == "unicode_customer":
        quoted = _QUOTED.search(_last_user_text(messages))
        return {"customer_name": quoted.group(1) if quoted else "", "description": "a company"}
    if name in ("Joke", "JokeDict"):
        return {"setup": "Why did the cat sit on the laptop?", "punchline": "To watch the mouse."}
    by_type = {
        "string": "x",
        "integer": 1,
        "number": 1.0,
        "boolean": True,
        "array": [],
        "object": {},
    }
    props = schema.get("properties") or {}
    return {key: by_type.get(props[key].get("type"), "x") for key in schema.get("required") or []}


def _call_a_tool(messages: Messages, tools: Tools, tool_choice: Any) -> str | None:
    functions = [t["function"] for t in tools]
    chosen = next((f for f in functions if f["name"] == tool_choice), functions[0])
    return tool_call(chosen["name"], _arguments(chosen["name"], chosen["parameters"], messages))


def standard_suite_rules() -> list[Rule]:
    """Answer tool results in prose, plain prompts in prose, else call the asked-for tool."""
    return [_answer_tool_results, _no_tools, _call_a_tool]
