"""`LocalLM`: the one place that runs the base model and owns its KV cache.

It loads a causal LM and its tokenizer, renders chat messages through the chat template
(:mod:`.chat_template`), and samples **blocks** of tokens for many candidates at once:

* the prompt is prefilled once (:meth:`LocalLM.prefill`), giving a :class:`DecodeState`
  with one row;
* :meth:`DecodeState.select` expands or reorders rows (beam selection) by reordering the
  KV cache with ``index_select``, never by recomputing it (:mod:`.kv` holds every cache call);
* :meth:`LocalLM.step` advances every row by one given token (token-level strategies);
* :meth:`LocalLM.sample_block` decodes up to ``B`` tokens for every row with **one
  batched forward per token** and returns, per row, the new tokens, whether the row ended
  (EOS or stop string, :mod:`.stopping`) and the final-layer hidden state at its last real
  token.

The methods the search relies on are written down as :class:`~.protocol.Decoder`.

Example::

    lm = LocalLM.from_pretrained()                       # embedded SmolLM2, offline
    state = lm.prefill(lm.encode(lm.render("What is the capital of France?")))
    state.select(torch.zeros(4, dtype=torch.long))      # 4 candidates share the prompt
    block = lm.sample_block(state, 16, sampler=SamplerSettings(temperature=0.7))
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .._device import resolve_device, resolve_dtype
from .._embedded import DEFAULT_LM_ID, embedded_lm_dir
from .._sources import local_source
from ..errors import ConfigError, InputError, ModelLoadError
from ..processors import LogitsHook, sample_next
from .chat_template import render as render_prompt
from .kv import (
    DecodeState,
    cache_argument,
    merge_rows,
    mergeable,
    new_cache,
    returned_cache,
    split_rows,
)
from .protocol import Decoder, RowState
from .stopping import StopStrings, hits_eos

__all__ = ["Block", "DecodeState", "Decoder", "LocalLM", "RowState", "SamplerSettings"]

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


@dataclass
class Block:
    """One sampled block for every row of a :class:`DecodeState`.

    Attributes:
        tokens: `[n, B']` new tokens (B' ≤ B when every row ended early); entries at or
            past ``lengths[i]`` are not part of row i's response.
        lengths: `[n]` response tokens per row in this block (EOS excluded; a stop
            string's last token included).
        finished: `[n]` bool, the row ended in this block (EOS or stop string).
        hidden: `[n, H]` final-layer hidden state at each row's last real token.
        forwards: batched model forwards run for this block.
    """

    tokens: torch.Tensor
    lengths: torch.Tensor
    finished: torch.Tensor
    hidden: torch.Tensor
    forwards: int


class _BlockBuffers:
    """The growing outputs of one :meth:`LocalLM.sample_block` call, `[n, B]` and `[n]`."""

    def __init__(self, state: DecodeState, block_len: int, pad: int) -> None:
        n, device = state.n, state.next_logits.device
        self.tokens = torch.full((n, block_len), pad, dtype=torch.long, device=device)
        self.lengths = torch.full((n,), block_len, dtype=torch.long, device=device)
        self.finished = torch.zeros(n, dtype=torch.bool, device=device)
        self.hiddens = [state.hidden]  # hiddens[j]: after j new tokens (0: the incoming one)
        self.steps = 0
        self.forwards = 0

    def end(self, rows: torch.Tensor, length: int) -> None:
        """Rows ``rows`` (bool `[n]` or indices) end with ``length`` tokens in this block."""
        self.lengths[rows] = length
        self.finished[rows] = True

    def block(self) -> Block:
        n = self.tokens.shape[0]
        hidden_steps = torch.stack(self.hiddens, dim=1)
        last = self.lengths.clamp(max=hidden_steps.shape[1] - 1)
        hidden_at_last = hidden_steps[torch.arange(n, device=last.device), last]
        return Block(
            self.tokens[:, : self.steps],
            self.lengths.clamp(max=self.steps),
            self.finished,
            hidden_at_last,
            self.forwards,
        )


class LocalLM:
    """A local Hugging Face causal LM with block sampling for many candidates.

    Build it with :meth:`from_pretrained` (hub id, local folder, or the embedded
    default) or wrap an already loaded ``model`` and ``tokenizer``.

    Args:
        model: a ``transformers`` causal LM in eval mode.
        tokenizer: its tokenizer (with a chat template, or the plain-text fallback is used).
        model_id: the name recorded in reports and critic metadata.
        logits_hooks: :class:`~inferenceguard.processors.LogitsHook` s applied, in order,
            to the logits of every forward (e.g. :class:`~inferenceguard.processors.ForcedScript`).
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        model_id: str | None = None,
        logits_hooks: Sequence[LogitsHook] = (),
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.model_id = model_id or getattr(model.config, "_name_or_path", "") or "local-model"
        self.logits_hooks: list[LogitsHook] = list(logits_hooks)
        self._lock = threading.Lock()
        self._cache_arg = cache_argument(model)
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
            ModelLoadError: the model cannot be found or loaded (message says why and how
                to fix); a source written as a path that does not exist says so.
            ConfigError: ``device`` or ``dtype`` cannot be used (e.g. CUDA without CUDA).
        """
        device = str(resolve_device(device))
        kwargs = dict(model_kwargs or {})
        kwargs.setdefault("dtype", resolve_dtype(dtype, device))
        if device_map is not None:
            kwargs["device_map"] = device_map
        if source in (None, "default"):
            path: str | Path = embedded_lm_dir()
            model_id = DEFAULT_LM_ID
        else:
            path = local_source(source) or str(source)
            model_id = str(source)
        model, tokenizer = _load_pretrained(path, source, trust_remote_code, kwargs)
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
        """Render chat messages (and tool schemas) into the prompt text
        (see :func:`inferenceguard.lm.chat_template.render`)."""
        return render_prompt(
            self.tokenizer,
            messages,
            tools=tools,
            tool_choice=tool_choice,
            add_generation_prompt=add_generation_prompt,
        )

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
        self, input_ids: torch.Tensor, cache: Any, **extra: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, Any]:
        with self._lock, torch.inference_mode():
            out = self.model(
                input_ids=input_ids,
                use_cache=True,
                output_hidden_states=True,
                logits_to_keep=1,
                **{self._cache_arg: cache},
                **extra,
            )
        return out.logits[:, -1, :], out.hidden_states[-1][:, -1, :], returned_cache(out)

    def _hooked(self, logits: torch.Tensor, state: DecodeState) -> torch.Tensor:
        if not self.logits_hooks:  # the usual case: no per-token tensor to build
            return logits
        generated = state.generated
        for hook in self.logits_hooks:
            logits = hook(logits, generated)
        return logits

    def prefill(self, prompt_ids: Sequence[int]) -> DecodeState:
        """Run the prompt once and return a one-row :class:`DecodeState`.

        Raises:
            InputError: the prompt is empty.
        """
        if len(prompt_ids) == 0:
            raise InputError("The rendered prompt is empty.")
        ids = torch.tensor([list(prompt_ids)], dtype=torch.long, device=self.device)
        logits, hidden, cache = self._forward(ids, new_cache(self.model))
        state = DecodeState(cache, logits, hidden, length=len(prompt_ids))
        state.next_logits = self._hooked(logits, state)
        return state

    def step(self, state: DecodeState, next_tokens: torch.Tensor) -> None:
        """Append one token to every row and advance ``state`` in place: one batched forward.

        This is the decode step token-level strategies (ARGS) and test doubles build on;
        afterwards ``state.next_logits`` `[n, V]` and ``state.hidden`` `[n, H]` belong to
        the new last token. A state attached to the step scheduler (``state.stepper``)
        waits for the forward shared by every request in flight instead.

        Args:
            state: the rows to advance (``state.n`` rows).
            next_tokens: `[n]` long, the token appended to each row.
        """
        if state.stepper is not None:
            state.stepper(self, state, next_tokens)
        else:
            self.step_many([state], [next_tokens])

    def step_many(self, states: Sequence[DecodeState], next_tokens: Sequence[torch.Tensor]) -> None:
        """Advance several decode states (e.g. of different requests) by one token each
        with **one** forward: their caches are stacked left-padded, with an attention mask
        and each row's own position ids (:func:`.kv.merge_rows`), then split back.

        Models whose cache layers cannot be stacked (sliding-window, static) get one
        forward per state.
        """
        tokens = [t.to(device=self.device, dtype=torch.long) for t in next_tokens]
        if len(states) == 1 or not mergeable(states):
            for state, ids in zip(states, tokens, strict=True):
                logits, hidden, cache = self._forward(ids[:, None], state.cache)
                state.advance(cache, logits, hidden)
                state.next_logits = self._hooked(logits, state)
            return
        merged = merge_rows(self.model, states)
        ids = torch.cat(tokens)[:, None]
        extra = {"attention_mask": merged.mask, "position_ids": merged.positions}
        logits, hidden, cache = self._forward(ids, merged.cache, **extra)
        split_rows(merged, cache, states)
        for state, (start, stop) in zip(states, merged.spans, strict=True):
            state.advance(state.cache, logits[start:stop], hidden[start:stop])
            state.next_logits = self._hooked(state.next_logits, state)

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
        device = state.next_logits.device
        if bias is not None:
            bias = bias.to(device).expand(state.n, -1)
        eos = torch.tensor(self.eos_token_ids or [-1], device=device)
        stopper = StopStrings(self.tokenizer, stop, history)
        out = _BlockBuffers(state, block_len, self.tokenizer.pad_token_id or 0)
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
            out.tokens[:, step] = next_tokens
            out.end(hits_eos(next_tokens, eos) & ~out.finished, step)
            out.steps = step + 1
            if bool(out.finished.all()):
                break
            self.step(state, next_tokens)
            out.forwards += 1
            out.hiddens.append(state.hidden)
            if stopper:
                running = (~out.finished).nonzero().flatten()
                out.end(running[stopper(out.tokens[:, : step + 1], running)], step + 1)
                if bool(out.finished.all()):
                    break
        return out.block()


def _load_pretrained(
    path: str | Path, source: Any, trust_remote_code: bool, kwargs: dict[str, Any]
) -> tuple[Any, Any]:
    """The transformers model and tokenizer at ``path``; load failures become ModelLoadError."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(
            path, trust_remote_code=trust_remote_code, **kwargs
        )
    except (OSError, ValueError, KeyError) as exc:
        offline = os.environ.get("HF_HUB_OFFLINE") == "1"
        hint = (
            "pass a local folder, or unset HF_HUB_OFFLINE to download from the hub."
            if offline and not isinstance(path, Path)
            else "check the id or path; a folder needs config.json, weights and tokenizer files."
        )
        raise ModelLoadError(f"Could not load the model {source!r}: {exc}", hint=hint) from exc
    return model, tokenizer
