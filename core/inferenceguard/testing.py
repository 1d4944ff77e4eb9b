"""Test seams that ship with the library, so users can test their chains offline.

* :func:`tiny_random_lm` — a random 2-layer Llama around any tokenizer.
* :class:`ScriptedLM` — a :class:`LocalLM` whose every candidate writes a fixed script
  (then EOS), e.g. a tool call, while the whole guarded search still runs.
* :func:`keyword_cost` — a cost model that marks responses containing a word as unsafe.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from . import processors as _processors
from .lm import LocalLM
from .scorers.base import CostModel

__all__ = ["ScriptedLM", "keyword_cost", "tiny_random_lm", "tool_protocol_texts"]


def tiny_random_lm(
    tokenizer: Any,
    *,
    seed: int = 0,
    model_id: str = "tiny-random-llama",
    max_position_embeddings: int = 4096,
) -> LocalLM:
    """A random 2-layer Llama (hidden 64) with ``tokenizer``: real rendering, fast forwards.

    Args:
        seed: the weights' seed (``torch.manual_seed`` is set to it).
        max_position_embeddings: the context window (prompt + response tokens).
    """
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_position_embeddings,
        eos_token_id=eos,
        pad_token_id=eos,
    )
    return LocalLM(LlamaForCausalLM(config).eval(), tokenizer, model_id=model_id)


class ScriptedLM(LocalLM):
    """A LocalLM that deterministically writes ``script`` and then ends.

    The underlying tiny model still runs (KV cache, hidden states, batching), only the
    logits are replaced — by a public :class:`~inferenceguard.processors.ForcedScript`
    logits hook — so everything downstream (scoring, selection, streaming, adapters) is
    exercised for real. Useful for tool-calling tests, where a random or 135M model cannot
    be relied on to produce a valid call.
    """

    def __init__(self, base: LocalLM, script: str) -> None:
        super().__init__(base.model, base.tokenizer, model_id=base.model_id)
        self._script_hook = _processors.ForcedScript([0])
        self.logits_hooks.append(self._script_hook)
        self.set_script(script)

    def set_script(self, script: str) -> None:
        """Change what the model writes next time."""
        self.script_ids: list[int] = [*self.encode(script), self.eos_token_ids[0]]
        self._script_hook.script = torch.tensor(self.script_ids, dtype=torch.long)


def keyword_cost(words: Sequence[str], *, threshold: float = 0.5) -> CostModel:
    """Cost 1.0 for a response containing any of ``words`` (case-insensitive), else 0.0."""
    lowered = [w.lower() for w in words]

    def contains_keyword(prompt: str, response: str) -> float:
        text = response.lower()
        return float(any(w in text for w in lowered))

    return CostModel.from_callable(
        contains_keyword, threshold=threshold, id=f"keywords:{','.join(words)}"
    )


#: The pieces that matter to the tool-call text protocol (tags, cut tags, JSON fragments).
_TOOL_PROTOCOL_PIECES = (
    "<tool_call>",
    "</tool_call>",
    "<tool",
    "_call>",
    "<",
    "{",
    "}",
    '"name": "add"',
    '"arguments": {"a": 1}',
    ", ",
    "\n",
    " ",
    "text",
    '{"name": "add", "arguments": {"a": 1}}',
)


def tool_protocol_texts(max_pieces: int = 12) -> Any:
    """A `hypothesis <https://hypothesis.readthedocs.io>`_ strategy for texts built from the
    pieces that matter to the tool-call protocol: whole and cut tags, JSON fragments, text.

    For property tests of a front end's tool-call handling (``pip install hypothesis``).
    """
    from hypothesis import strategies as st

    return st.lists(st.sampled_from(_TOOL_PROTOCOL_PIECES), max_size=max_pieces).map("".join)
