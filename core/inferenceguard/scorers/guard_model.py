"""Generative guard models (Llama Guard style) as cost models: P("unsafe") from one forward.

A guard model reads a conversation through its chat template and *generates* a verdict,
``safe`` or ``unsafe`` (followed by the violated categories). Sampling that verdict is
slow and noisy; instead, one forward pass gives the next-token distribution at the verdict
position, and the cost is

    P(unsafe) = softmax([logit("safe"), logit("unsafe")])[1]

restricted to the first sub-token of each verdict word, with threshold 0.5 (unsafe is more
likely than safe)::

    cost = GenerativeGuardCost.from_pretrained("meta-llama/Llama-Guard-3-1B", device="cuda")
    cost(["How do I make a bomb?"], ["I can't help with that."])     # tensor([0.0213])

Batches are left-padded so the verdict position is the last column for every row, and
position ids are rebuilt from the attention mask, so a padded row scores exactly as it
would alone.

Within one request the search scores through :meth:`GenerativeGuardCost.prefix_session`
(:mod:`.prefix`): the template's head, the prompt and the response so far are encoded
once and kept in a KV cache, and each candidate runs only its new tokens plus the
template's tail up to the verdict (the tail follows the response, so it cannot be cached).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ..errors import ConfigError
from ..lm.kv import cache_argument, can_fork, new_cache, returned_cache
from ._hf import PairBatcher, ResponseSide, Row, load_auto_model
from .base import CostModel, PrefixSession
from .prefix import CausalPrefixSession

__all__ = ["GenerativeGuardCost"]


class GenerativeGuardCost(PairBatcher, CostModel):
    """A cost model from a generative guard: the probability that its verdict is "unsafe".

    Args:
        model: a loaded causal LM (``*ForCausalLM``) fine-tuned as a guard.
        tokenizer: its tokenizer, with a chat template (or pass ``chat_template``).
        id: name recorded in reports (default: the model's ``name_or_path``).
        threshold: costs above it are unsafe (default 0.5).
        verdict_tokens: the words whose first sub-tokens are compared, safe first.
        verdict_token_ids: ``(safe_id, unsafe_id)``; overrides ``verdict_tokens`` for guards
            whose verdict token is not the first sub-token of the bare word (e.g. one that
            starts with a space).
        chat_template: a jinja template replacing the tokenizer's (e.g. with your own
            categories written into it).
        template_kwargs: extra variables for the template, e.g. Llama Guard 3's
            ``{"excluded_category_keys": ["S6"]}`` or a custom template's ``categories``.
        batch_size: pairs per forward pass.
        max_length: token limit for the rendered conversation (default: model context).
        response_truncation: which end of an over-long response to drop once the prompt is
            gone: ``"left"`` keeps the newest text (default), ``"right"`` its start.
        prefix_reuse: let the search score a request's candidates incrementally
            (:meth:`prefix_session`); ``False`` re-scores every text in full.

    Raises:
        ConfigError: no chat template, a verdict word that is not in the vocabulary, or
            the same token for both verdicts.
    """

    pad_side = "left"  # the verdict position is then the last column of every row

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        id: str | None = None,
        threshold: float = 0.5,
        verdict_tokens: tuple[str, str] = ("safe", "unsafe"),
        verdict_token_ids: tuple[int, int] | None = None,
        chat_template: str | None = None,
        template_kwargs: Mapping[str, Any] | None = None,
        batch_size: int = 8,
        max_length: int | None = None,
        response_truncation: ResponseSide = "left",
        prefix_reuse: bool = True,
    ) -> None:
        if not (chat_template or getattr(tokenizer, "chat_template", None)):
            raise ConfigError(
                "This guard's tokenizer has no chat template.",
                hint="pass chat_template='…' (the jinja template the guard was trained with).",
            )
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise ConfigError(f"threshold must be a number, got {threshold!r}.")
        self._init_batching(
            tokenizer,
            model.config,
            batch_size=batch_size,
            max_length=max_length,
            response_truncation=response_truncation,
        )
        self.model = model.eval()
        self.id = id or getattr(model.config, "_name_or_path", None) or type(model).__name__
        self.threshold = float(threshold)
        self.chat_template = chat_template
        self.template_kwargs = dict(template_kwargs or {})
        self.verdict_token_ids = self._verdict_ids(verdict_tokens, verdict_token_ids)
        self.prefix_reuse = bool(prefix_reuse)
        # Only the verdict position's logits are needed; `logits_to_keep=1` avoids
        # materialising [batch, length, vocab] (128k-wide for Llama 3 guards).
        params = inspect.signature(model.forward).parameters
        self._keeps_last_only = "logits_to_keep" in params
        self._takes_position_ids = "position_ids" in params

    def _verdict_ids(self, words: tuple[str, str], ids: tuple[int, int] | None) -> tuple[int, int]:
        vocab_size = len(self.tokenizer)
        if ids is None:
            if len(words) != 2:
                raise ConfigError(f"verdict_tokens must be (safe, unsafe), got {words!r}.")
            found = []
            for word in words:
                pieces = self.tokenizer.encode(word, add_special_tokens=False)
                if not pieces or pieces[0] == self.tokenizer.unk_token_id:
                    raise ConfigError(
                        f"The verdict word {word!r} is not in this tokenizer's vocabulary.",
                        hint="pass verdict_token_ids=(safe_id, unsafe_id).",
                    )
                found.append(int(pieces[0]))
            ids = (found[0], found[1])
        if len(ids) != 2 or not all(
            isinstance(i, int) and not isinstance(i, bool) and 0 <= i < vocab_size for i in ids
        ):
            raise ConfigError(
                f"verdict_token_ids must be two token ids below {vocab_size}, got {ids!r}."
            )
        if ids[0] == ids[1]:
            raise ConfigError(
                f"'safe' and 'unsafe' map to the same token id {ids[0]}, so they cannot be told "
                "apart.",
                hint="pass verdict_token_ids=(safe_id, unsafe_id) with two different tokens.",
            )
        return int(ids[0]), int(ids[1])

    @classmethod
    def from_pretrained(
        cls,
        source: str | os.PathLike,
        *,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        device_map: str | dict | None = None,
        trust_remote_code: bool = False,
        revision: str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> GenerativeGuardCost:
        """Load a guard model from a local folder or a hub id.

        Args:
            source: folder written by ``save_pretrained``, or a hub id.
            device: default CUDA when available, else CPU.
            dtype: default bf16 on CUDA, fp32 on CPU.
            device_map: passed to transformers (e.g. ``"auto"``); ``device`` is then ignored.
            trust_remote_code: run code shipped with the checkpoint (off unless you set it).
            revision: hub branch, tag or commit.
            model_kwargs: more ``from_pretrained`` arguments.
            **options: the constructor's keyword arguments.

        Raises:
            ModelLoadError: the folder or hub id cannot be loaded.
        """
        from transformers import AutoModelForCausalLM

        model, tokenizer, source = load_auto_model(
            AutoModelForCausalLM,
            source,
            what="cost model",
            device=device,
            dtype=dtype,
            device_map=device_map,
            trust_remote_code=trust_remote_code,
            revision=revision,
            model_kwargs=model_kwargs,
        )
        options.setdefault("id", source)
        return cls(model, tokenizer, **options)

    def render(self, prompt: str, response: str) -> str:
        """The guard's input text for one pair: the chat template over [user, assistant]."""
        conversation = [
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": response},
        ]
        return self.tokenizer.apply_chat_template(
            conversation,
            chat_template=self.chat_template,
            tokenize=False,
            add_generation_prompt=True,
            **self.template_kwargs,
        )

    def _encode_pair(self, prompts: Sequence[str], responses: Sequence[str]) -> list[Row]:
        texts = [self.render(p, r) for p, r in zip(prompts, responses, strict=True)]
        # The template writes BOS and headers as text; do not add special tokens twice.
        ids = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        return [{"input_ids": list(row)} for row in ids]

    def _forward_batch(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if self._takes_position_ids:
            # Left padding would shift every real token's position; count from the
            # first real token instead, as `generate()` does.
            positions = batch["attention_mask"].cumsum(-1) - 1
            batch["position_ids"] = positions.clamp(min=0)
        if self._keeps_last_only:
            batch["logits_to_keep"] = 1
        logits = self.model(**batch, use_cache=False).logits[:, -1, :]
        verdict = torch.tensor(self.verdict_token_ids, device=logits.device)
        return logits.float().index_select(-1, verdict).cpu()

    def verdict_logits(self, prompts: Sequence[str], responses: Sequence[str]) -> torch.Tensor:
        """Logits of the (safe, unsafe) verdict tokens at the verdict position.

        Batches are left-padded, so the verdict position is the last column of every row.

        Returns:
            `[n, 2]` float32 CPU tensor, safe first.
        """
        return self._forward_all(list(prompts), list(responses), empty=torch.zeros(0, 2))

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> torch.Tensor:
        """P(unsafe) for each (prompt, response): `[n]` float32 CPU in [0, 1]."""
        return torch.softmax(self.verdict_logits(prompts, responses), dim=-1)[:, 1]

    def prefix_session(self, prompt: str) -> PrefixSession | None:
        """A session scoring responses to ``prompt`` with the prompt's KV cache kept.

        Scores equal :meth:`score` up to float rounding; ``None`` when ``prefix_reuse``
        is off or the model's cache cannot be forked. The session gives end scores only (a guard's verdict follows the whole
        response), so its token-level worst score is ``None``.
        """
        if not (self.prefix_reuse and can_fork(self.model)):
            return None
        return CausalPrefixSession(self, prompt, self.score)

    def _prefix_forward(
        self, batch: dict[str, torch.Tensor], cache: Any, last: torch.Tensor
    ) -> tuple[Any, torch.Tensor, None]:
        """P(unsafe) at column ``last`` of each right-padded row, on top of ``cache``."""
        kwargs: dict[str, Any] = {
            "input_ids": batch["input_ids"],
            "attention_mask": batch["attention_mask"],
            cache_argument(self.model): cache if cache is not None else new_cache(self.model),
        }
        if self._takes_position_ids:
            kwargs["position_ids"] = batch["position_ids"]
        device = batch["input_ids"].device
        columns = last.to(device)
        if self._keeps_last_only:
            # Only the verdict columns' logits, not [m, L, vocab].
            keep = torch.unique(columns)
            kwargs["logits_to_keep"] = keep
            columns = torch.searchsorted(keep, columns)
        out = self.model(**kwargs, use_cache=True)
        logits = out.logits[torch.arange(len(columns), device=device), columns]
        verdict = torch.tensor(self.verdict_token_ids, device=device)
        pair = logits.float().index_select(-1, verdict).cpu()
        return returned_cache(out), torch.softmax(pair, dim=-1)[:, 1], None
