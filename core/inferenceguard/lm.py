"""`LocalLM`: the one place that touches the base model.

It loads a causal LM and its tokenizer, renders chat messages through the chat template,
and samples **blocks** of tokens for many candidates at once:

* the prompt is prefilled once (:meth:`LocalLM.prefill`), giving a :class:`DecodeState`
  with one row;
* :meth:`DecodeState.select` expands or reorders rows (beam selection) by reordering the
  KV cache with ``index_select``, never by recomputing it;
* :meth:`LocalLM.sample_block` decodes up to ``B`` tokens for every row with **one
  batched forward per token** and returns, per row, the new tokens, whether the row ended
  (EOS or stop string) and the final-layer hidden state at its last real token.

Example::

    lm = LocalLM.from_pretrained()                       # embedded SmolLM2, offline
    state = lm.prefill(lm.encode(lm.render("What is the capital of France?")))
    state.select(torch.zeros(4, dtype=torch.long))      # 4 candidates share the prompt
    block = lm.sample_block(state, 16, sampler=SamplerSettings(temperature=0.7))
"""

from __future__ import annotations

import inspect
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ._device import resolve_device, resolve_dtype
from ._embedded import DEFAULT_LM_ID, embedded_lm_dir
from .errors import ConfigError, InputError, ModelLoadError
from .messages import Message, normalize_messages
from .processors import sample_next
from .tools import normalize_tools, tools_system_prompt

__all__ = ["Block", "DecodeState", "LocalLM", "SamplerSettings"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SamplerSettings:
    """How the base model's next token is drawn."""

    do_sample: bool = True
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int | None = None

    def __post_init__(self) -> None:
        if self.do_sample and not self.temperature > 0:
            raise ConfigError(
                f"temperature must be > 0 when sampling, got {self.temperature!r}.",
                hint="use do_sample=False for greedy decoding.",
            )
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p!r}.")


class DecodeState:
    """The live candidates of one prompt: KV cache, next-token logits, last hidden states.

    Rows are candidates. All rows have the same length (prompt + generated tokens): rows
    that end are dropped by the search, never continued, so no row has padding inside.

    Attributes:
        cache: the transformers KV cache, batch dimension = rows.
        next_logits: `[n, V]` logits of the next token of each row.
        hidden: `[n, H]` final-layer hidden state at each row's last token.
        length: tokens in the cache.
    """

    def __init__(self, cache: Any, next_logits: torch.Tensor, hidden: torch.Tensor, length: int):
        self.cache = cache
        self.next_logits = next_logits
        self.hidden = hidden
        self.length = length

    @property
    def n(self) -> int:
        """Number of rows."""
        return self.next_logits.shape[0]

    def select(self, indices: torch.Tensor) -> None:
        """Keep rows ``indices`` (with repeats: expand), in that order, in place.

        This reorders the KV cache on every layer by ``index_select`` on the batch
        dimension — the cache is never recomputed.

        Args:
            indices: `[m]` long tensor of row indices into the current state.
        """
        indices = indices.to(torch.long)
        self.cache.reorder_cache(indices.to(self.next_logits.device))
        self.next_logits = self.next_logits.index_select(0, indices.to(self.next_logits.device))
        self.hidden = self.hidden.index_select(0, indices.to(self.hidden.device))

    def checkpoint(self) -> tuple[torch.Tensor, torch.Tensor, int]:
        """What :meth:`rollback` needs to undo the next block (the cache is cropped, not copied)."""
        return self.next_logits, self.hidden, self.length

    def rollback(self, checkpoint: tuple[torch.Tensor, torch.Tensor, int]) -> None:
        """Undo the tokens decoded since ``checkpoint`` by cropping the KV cache.

        Used to resample a block with penalised logits; the prompt and earlier blocks are
        not recomputed.

        Raises:
            RuntimeError: the model's cache type cannot be cropped.
        """
        next_logits, hidden, length = checkpoint
        extra = self.length - length
        if extra > 0:
            if not all(
                getattr(layer, "is_croppable", True) for layer in getattr(self.cache, "layers", [])
            ):
                raise RuntimeError(
                    "This model's KV cache cannot be cropped, so blocks cannot be resampled; "
                    "set resample_rounds=0."
                )
            self.cache.crop(-extra)
        self.next_logits, self.hidden, self.length = next_logits, hidden, length


@dataclass
class Block:
    """One sampled block for every row of a :class:`DecodeState`.

    Attributes:
        tokens: `[n, B']` new tokens (B' ≤ B when every row ended early); entries at or
            past ``lengths[i]`` are not part of row i's response.
        lengths: `[n]` response tokens per row in this block (EOS excluded).
        finished: `[n]` bool, the row ended in this block.
        finish_kind: per row ``"eos"``, ``"stop"`` or ``None``.
        hidden: `[n, H]` final-layer hidden state at each row's last real token.
        forwards: batched model forwards run for this block.
    """

    tokens: torch.Tensor
    lengths: torch.Tensor
    finished: torch.Tensor
    finish_kind: list[str | None]
    hidden: torch.Tensor
    forwards: int


class LocalLM:
    """A local Hugging Face causal LM with block sampling for many candidates.

    Build it with :meth:`from_pretrained` (hub id, local folder, or the embedded
    default) or wrap an already loaded ``model`` and ``tokenizer``.

    Args:
        model: a ``transformers`` causal LM in eval mode.
        tokenizer: its tokenizer (with a chat template, or the plain-text fallback is used).
        model_id: the name recorded in reports and critic metadata.
    """

    def __init__(self, model: Any, tokenizer: Any, *, model_id: str | None = None) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.model_id = model_id or getattr(model.config, "_name_or_path", "") or "local-model"
        self._lock = threading.Lock()
        # transformers 5.x renamed `past_key_values` to `cache`; support both lines.
        self._cache_arg = (
            "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
        )
        eos = getattr(model.generation_config, "eos_token_id", None)
        if eos is None:
            eos = tokenizer.eos_token_id
        ids = [eos] if isinstance(eos, int) else list(eos or [])
        if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
            ids.append(tokenizer.eos_token_id)
        self.eos_token_ids: tuple[int, ...] = tuple(int(i) for i in ids)
        if self.tokenizer.pad_token_id is None and self.eos_token_ids:
            self.tokenizer.pad_token_id = self.eos_token_ids[0]

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(
        cls,
        source: str | os.PathLike | None = None,
        *,
        device: str | None = None,
        dtype: str | torch.dtype | None = None,
        device_map: str | dict | None = None,
        trust_remote_code: bool = False,
        model_kwargs: Mapping[str, Any] | None = None,
    ) -> LocalLM:
        """Load a causal LM and tokenizer.

        Args:
            source: ``None`` or ``"default"`` for the embedded SmolLM2-135M-Instruct, a
                local folder, or a hub id (needs the hub, or the model in the HF cache).
            device: ``"cpu"``, ``"cuda"``, ``"cuda:1"`` …; default CUDA when available.
            dtype: default fp32 on CPU, bf16 on CUDA.
            device_map: passed to transformers/accelerate (e.g. ``"auto"`` to shard a
                model over several GPUs); then ``device`` is ignored.
            trust_remote_code: run code shipped with a hub model. Off unless you set it.
            model_kwargs: any other ``from_pretrained`` keyword arguments.

        Raises:
            ModelLoadError: the model cannot be found or loaded (message says why and how to fix).
        """
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device = str(resolve_device(device))
        torch_dtype = resolve_dtype(dtype, device)
        model_id: str
        if source in (None, "default"):
            path: str | Path = embedded_lm_dir()
            model_id = DEFAULT_LM_ID
        else:
            path = Path(source) if Path(source).exists() else str(source)
            model_id = str(source)
        kwargs = dict(model_kwargs or {})
        kwargs.setdefault("dtype", torch_dtype)
        if device_map is not None:
            kwargs["device_map"] = device_map
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
            model = AutoModelForCausalLM.from_pretrained(
                path, trust_remote_code=trust_remote_code, **kwargs
            )
        except (OSError, ValueError, KeyError) as exc:
            offline = os.environ.get("HF_HUB_OFFLINE") == "1"
            hint = (
                "pass a local folder, or unset HF_HUB_OFFLINE to download from the hub."
                if offline and not Path(str(source)).exists()
                else "check the id or path; a folder needs config.json, weights and tokenizer files."
            )
            raise ModelLoadError(f"Could not load the model {source!r}: {exc}", hint=hint) from exc
        if device_map is None:
            model = model.to(device)
        return cls(model, tokenizer, model_id=model_id)

    # ------------------------------------------------------------------ properties
    @property
    def device(self) -> torch.device:
        """Device of the input embeddings (where input ids go)."""
        return self.model.get_input_embeddings().weight.device

    @property
    def hidden_size(self) -> int:
        """Width of the final-layer hidden state the critic reads."""
        config = self.model.config
        return int(getattr(config, "hidden_size", None) or config.get_text_config().hidden_size)

    @property
    def vocab_size(self) -> int:
        """Rows of the output embedding (the logits' width)."""
        return int(self.model.get_output_embeddings().weight.shape[0])

    @property
    def context_window(self) -> int:
        """Maximum tokens (prompt + response) the model accepts."""
        config = self.model.config
        text = config.get_text_config() if hasattr(config, "get_text_config") else config
        return int(getattr(text, "max_position_embeddings", None) or 2048)

    @property
    def has_chat_template(self) -> bool:
        """Whether the tokenizer carries a chat template (else a plain-text fallback is used)."""
        return bool(getattr(self.tokenizer, "chat_template", None))

    # ------------------------------------------------------------------ text
    def render(
        self,
        messages: str | Sequence[Mapping[str, Any]],
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: Any = None,
        add_generation_prompt: bool = True,
    ) -> str:
        """Render chat messages (and tool schemas) into the prompt text.

        Templates that know tools get them natively; others get the tool block of
        :mod:`inferenceguard.tools` in the system prompt, with assistant tool calls and tool
        results rendered as ``<tool_call>`` / ``<tool_response>`` text. A tokenizer without
        a chat template falls back to a plain ``Role: content`` transcript ending in
        ``Assistant:``.
        """
        msgs = normalize_messages(messages)
        tool_list = normalize_tools(tools)
        template = getattr(self.tokenizer, "chat_template", None) or ""
        native_tools = "tools" in template and "tool_call" in template
        if tool_list and (not native_tools or tool_choice not in (None, "auto")):
            msgs = _with_tool_system_prompt(msgs, tools_system_prompt(tool_list, tool_choice))
        if not native_tools:
            msgs = [_flatten_tool_turns(m) for m in msgs]
        if not template:
            return _plain_transcript(msgs, add_generation_prompt)
        kwargs: dict[str, Any] = {"tokenize": False, "add_generation_prompt": add_generation_prompt}
        if native_tools and tool_list:
            kwargs["tools"] = tool_list
        return self.tokenizer.apply_chat_template(msgs, **kwargs)

    def encode(self, text: str) -> list[int]:
        """Token ids of a rendered prompt (the template already holds special tokens)."""
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """Text of response token ids, special tokens dropped."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    # ------------------------------------------------------------------ decoding
    def _forward(
        self, input_ids: torch.Tensor, cache: Any
    ) -> tuple[torch.Tensor, torch.Tensor, Any]:
        with self._lock, torch.inference_mode():
            out = self.model(
                input_ids=input_ids,
                use_cache=True,
                output_hidden_states=True,
                logits_to_keep=1,
                **{self._cache_arg: cache},
            )
        new_cache = out.get("cache", None) or out.get("past_key_values", None)
        return out.logits[:, -1, :], out.hidden_states[-1][:, -1, :], new_cache

    def prefill(self, prompt_ids: Sequence[int]) -> DecodeState:
        """Run the prompt once and return a one-row :class:`DecodeState`.

        Raises:
            InputError: the prompt is empty.
        """
        if len(prompt_ids) == 0:
            raise InputError("The rendered prompt is empty.")
        from transformers import DynamicCache

        ids = torch.tensor([list(prompt_ids)], dtype=torch.long, device=self.device)
        logits, hidden, cache = self._forward(ids, DynamicCache(config=self.model.config))
        return DecodeState(cache, logits, hidden, length=len(prompt_ids))

    def sample_block(
        self,
        state: DecodeState,
        block_len: int,
        *,
        sampler: SamplerSettings,
        bias: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        stop: Sequence[str] = (),
        history: Sequence[Sequence[int]] | None = None,
    ) -> Block:
        """Decode up to ``block_len`` tokens for every row, one batched forward per token.

        Args:
            state: advanced in place (cache, next logits, hidden states).
            block_len: B.
            sampler: temperature / top-p / top-k / greedy.
            bias: `[V]` or `[n, V]` additive logit bias (the unsafe-token penalty).
            generator: seeded generator for reproducible sampling.
            stop: stop strings; a row ends on the token that completes one.
            history: each row's earlier response tokens (only needed for stop strings
                that may straddle a block boundary).

        Returns:
            The :class:`Block`. Rows that end keep being fed (their later tokens are
            ignored) so the batch stays rectangular; the loop exits early once all ended.
        """
        n, device = state.n, state.next_logits.device
        if bias is not None:
            bias = bias.to(device)
            if bias.dim() == 1:
                bias = bias.expand(n, -1)
        eos = torch.tensor(self.eos_token_ids or [-1], device=device)
        tokens = torch.full(
            (n, block_len), self.tokenizer.pad_token_id or 0, dtype=torch.long, device=device
        )
        lengths = torch.full((n,), block_len, dtype=torch.long, device=device)
        finished = torch.zeros(n, dtype=torch.bool, device=device)
        kinds: list[str | None] = [None] * n
        hiddens = [state.hidden]
        forwards = 0
        steps = 0
        for step in range(block_len):
            next_tokens = sample_next(
                state.next_logits,
                do_sample=sampler.do_sample,
                temperature=sampler.temperature,
                top_p=sampler.top_p,
                top_k=sampler.top_k,
                bias=bias,
                generator=generator,
            )
            tokens[:, step] = next_tokens
            hit_eos = torch.isin(next_tokens, eos) & ~finished
            if hit_eos.any():
                lengths[hit_eos] = step
                finished |= hit_eos
                for i in hit_eos.nonzero().flatten().tolist():
                    kinds[i] = "eos"
            steps = step + 1
            if bool(finished.all()):
                break
            logits, hidden, state.cache = self._forward(next_tokens[:, None], state.cache)
            forwards += 1
            state.next_logits, state.hidden = logits, hidden
            state.length += 1
            hiddens.append(hidden)
            if stop:
                for i in (~finished).nonzero().flatten().tolist():
                    if self._ends_in_stop(
                        tokens[i, : step + 1], history[i] if history else (), stop
                    ):
                        lengths[i] = step + 1
                        finished[i] = True
                        kinds[i] = "stop"
                if bool(finished.all()):
                    break
        # hidden_steps[:, j] is the hidden state after j new tokens (j = 0: the incoming one).
        hidden_steps = torch.stack(hiddens, dim=1)
        last = lengths.clamp(max=hidden_steps.shape[1] - 1)
        hidden_at_last = hidden_steps[torch.arange(n, device=device), last]
        return Block(
            tokens[:, :steps], lengths.clamp(max=steps), finished, kinds, hidden_at_last, forwards
        )

    def _ends_in_stop(self, new: torch.Tensor, history: Sequence[int], stop: Sequence[str]) -> bool:
        # Decode a short tail only: the stop string must end in the newest token.
        tail = list(history[-8:]) + new.tolist()
        text = self.tokenizer.decode(tail[-(8 + len(new)) :], skip_special_tokens=True)
        previous = self.tokenizer.decode(tail[:-1][-(8 + len(new)) :], skip_special_tokens=True)
        return any(s in text and s not in previous for s in stop)


def _with_tool_system_prompt(msgs: list[Message], block: str) -> list[Message]:
    if msgs and msgs[0]["role"] == "system":
        first = {**msgs[0], "content": f"{msgs[0]['content']}\n\n{block}".strip()}
        return [first, *msgs[1:]]
    return [{"role": "system", "content": block}, *msgs]


def _flatten_tool_turns(msg: Message) -> Message:
    """Render tool calls and results as text for templates that do not know tools."""
    import json

    if msg["role"] == "assistant" and msg.get("tool_calls"):
        calls = "".join(
            "<tool_call>"
            + json.dumps({"name": c["name"], "arguments": c["arguments"]}, ensure_ascii=False)
            + "</tool_call>"
            for c in msg["tool_calls"]
        )
        return {"role": "assistant", "content": (msg["content"] + calls).strip()}
    if msg["role"] == "tool":
        return {"role": "user", "content": f"<tool_response>{msg['content']}</tool_response>"}
    return {"role": msg["role"], "content": msg["content"]}


def _plain_transcript(msgs: list[Message], add_generation_prompt: bool) -> str:
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in msgs]
    if add_generation_prompt:
        lines.append("Assistant:")
    return "\n".join(lines)
