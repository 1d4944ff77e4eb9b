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
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ..errors import ConfigError
from .base import CostModel
from .registry import (
    ResponseSide,
    check_positive_int,
    check_source,
    chunks,
    default_max_length,
    fit_pair,
    is_offline,
    load_error,
    model_input_device,
    pad_batch,
    pad_token_id,
    resolve_device,
    resolve_dtype,
)

__all__ = ["GenerativeGuardCost"]


class GenerativeGuardCost(CostModel):
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

    Raises:
        ConfigError: no chat template, a verdict word that is not in the vocabulary, or
            the same token for both verdicts.
    """

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
    ) -> None:
        if not (chat_template or getattr(tokenizer, "chat_template", None)):
            raise ConfigError(
                "This guard's tokenizer has no chat template.",
                hint="pass chat_template='…' (the jinja template the guard was trained with).",
            )
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise ConfigError(f"threshold must be a number, got {threshold!r}.")
        if response_truncation not in ("left", "right"):
            raise ConfigError(
                f"response_truncation must be 'left' or 'right', got {response_truncation!r}."
            )
        check_positive_int("batch_size", batch_size)
        check_positive_int("max_length", max_length, allow_none=True)
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.id = id or getattr(model.config, "_name_or_path", None) or type(model).__name__
        self.threshold = float(threshold)
        self.chat_template = chat_template
        self.template_kwargs = dict(template_kwargs or {})
        self.batch_size = batch_size
        self.max_length = max_length or default_max_length(tokenizer, model.config)
        self.response_truncation: ResponseSide = response_truncation
        self.verdict_token_ids = self._verdict_ids(verdict_tokens, verdict_token_ids)
        self._pad_id = pad_token_id(tokenizer)
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
        from transformers import AutoModelForCausalLM, AutoTokenizer

        source = check_source(source)
        torch_device = resolve_device(device)
        kwargs: dict[str, Any] = {
            "dtype": resolve_dtype(dtype, torch_device),
            "trust_remote_code": trust_remote_code,
            "revision": revision,
            "local_files_only": is_offline(),
            **(model_kwargs or {}),
        }
        if device_map is not None:
            kwargs["device_map"] = device_map
        try:
            tokenizer = AutoTokenizer.from_pretrained(
                source,
                trust_remote_code=trust_remote_code,
                revision=revision,
                local_files_only=kwargs["local_files_only"],
            )
            model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
        except (OSError, ValueError, KeyError, RuntimeError, ImportError) as exc:
            raise load_error(source, exc) from exc
        if device_map is None:
            model = model.to(torch_device)
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

    def _ids(self, prompts: Sequence[str], responses: Sequence[str]) -> list[list[int]]:
        texts = [self.render(p, r) for p, r in zip(prompts, responses, strict=True)]
        # The template writes BOS and headers as text; do not add special tokens twice.
        return self.tokenizer(texts, add_special_tokens=False)["input_ids"]

    def _count(self, prompt: str, response: str) -> int:
        return len(self._ids([prompt], [response])[0])

    def _batch(self, prompts: Sequence[str], responses: Sequence[str]) -> dict[str, torch.Tensor]:
        rows = self._ids(prompts, responses)
        for i, ids in enumerate(rows):
            if len(ids) > self.max_length:
                p, r, _ = fit_pair(
                    prompts[i],
                    responses[i],
                    count=self._count,
                    tokenizer=self.tokenizer,
                    max_length=self.max_length,
                    response_side=self.response_truncation,
                )
                rows[i] = self._ids([p], [r])[0]
        return pad_batch(
            [{"input_ids": list(ids)} for ids in rows], pad_id=self._pad_id, side="left"
        )

    @torch.inference_mode()
    def verdict_logits(self, prompts: Sequence[str], responses: Sequence[str]) -> torch.Tensor:
        """Logits of the (safe, unsafe) verdict tokens at the verdict position.

        Returns:
            `[n, 2]` float32 CPU tensor, safe first.
        """
        out = []
        device = model_input_device(self.model)
        verdict = torch.tensor(self.verdict_token_ids)
        for part in chunks(len(prompts), self.batch_size):
            batch = {
                k: v.to(device) for k, v in self._batch(prompts[part], responses[part]).items()
            }
            if self._takes_position_ids:
                # Left padding would shift every real token's position; count from the
                # first real token instead, as `generate()` does.
                positions = batch["attention_mask"].cumsum(-1) - 1
                batch["position_ids"] = positions.clamp(min=0)
            if self._keeps_last_only:
                batch["logits_to_keep"] = 1
            logits = self.model(**batch, use_cache=False).logits[:, -1, :]
            out.append(logits.float().index_select(-1, verdict.to(logits.device)).cpu())
        if not out:
            return torch.zeros(0, 2)
        return torch.cat(out)

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> torch.Tensor:
        """P(unsafe) for each (prompt, response): `[n]` float32 CPU in [0, 1]."""
        return torch.softmax(self.verdict_logits(prompts, responses), dim=-1)[:, 1]
