"""Cost and reward models over any ``AutoModelForSequenceClassification`` checkpoint.

Toxicity / harm classifiers become cost models (the probability of the unsafe labels),
reward models such as the DeBERTa ones trained on human preferences become reward models
(one output logit)::

    cost = SequenceClassifierCost.from_pretrained("./toxic-classifier")        # P(toxic)
    reward = SequenceClassifierReward.from_pretrained(
        "OpenAssistant/reward-model-deberta-v3-large-v2", input_format="pair"
    )
    cost(["How do I bake bread?"], ["Mix flour, water and yeast."])   # tensor([0.0312])

Three ways to present a (prompt, response) to the model (``input_format``):

* ``"pair"`` (default): the tokenizer's text-pair encoding, ``[CLS] prompt [SEP] response [SEP]``
  for BERT-like models; what cross-encoder reward models were trained on.
* ``"response"``: the response alone; what most toxicity classifiers were trained on.
* ``"chat"``: the tokenizer's chat template over ``[user: prompt, assistant: response]``;
  for reward models built on chat LMs (e.g. ``*ForSequenceClassification`` on Llama).

Over-long inputs are cut to ``max_length`` tokens prompt first (see
:func:`~inferenceguard.scorers._hf.fit_pair`).
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Sequence
from typing import Any, Literal

import torch

from ..errors import ConfigError
from ._hf import PairBatcher, ResponseSide, Row, load_auto_model
from .base import CostModel, RewardModel

__all__ = ["InputFormat", "SequenceClassifierCost", "SequenceClassifierReward"]

InputFormat = Literal["pair", "response", "chat"]
_INPUT_FORMATS = ("pair", "response", "chat")

# A label name means "unsafe" when it contains one of these words…
_UNSAFE_WORDS = re.compile(r"toxic|unsafe|harm")
# …unless it is negated or says the opposite: "non-toxic", "not_toxic", "harmless".
_NEGATED = re.compile(r"(?<![a-z])(non|not|no)[\s_-]*(toxic|harm)|harmless")


class _SequenceClassifierScorer(PairBatcher):
    """Shared mechanics: input formatting and label lookup; batching comes from
    :class:`~inferenceguard.scorers._hf.PairBatcher` (right padding)."""

    id: str

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        id: str | None = None,
        input_format: InputFormat = "pair",
        chat_template: str | None = None,
        batch_size: int = 16,
        max_length: int | None = None,
        response_truncation: ResponseSide = "left",
    ) -> None:
        if input_format not in _INPUT_FORMATS:
            close = difflib.get_close_matches(str(input_format), _INPUT_FORMATS, n=1)
            raise ConfigError(
                f"Unknown input_format {input_format!r}."
                + (f" Did you mean {close[0]!r}?" if close else ""),
                hint=f"use one of {', '.join(map(repr, _INPUT_FORMATS))}.",
            )
        if input_format == "chat" and not (chat_template or tokenizer.chat_template):
            raise ConfigError(
                "input_format='chat' needs a chat template, and this tokenizer has none.",
                hint="pass chat_template='…' (a jinja string) or use input_format='pair'.",
            )
        self._init_batching(
            tokenizer,
            model.config,
            batch_size=batch_size,
            max_length=max_length,
            response_truncation=response_truncation,
        )
        self.model = model.eval()
        self.id = id or getattr(model.config, "_name_or_path", None) or type(model).__name__
        self.input_format: InputFormat = input_format
        self.chat_template = chat_template
        # Decoder-only classifiers (Llama/Qwen …ForSequenceClassification) read the logit at
        # the last token that is not `config.pad_token_id`; without it batches > 1 fail.
        if getattr(model.config, "pad_token_id", None) is None:
            model.config.pad_token_id = self._pad_id

    @property
    def num_labels(self) -> int:
        """Number of output logits of the classification head."""
        return int(self.model.config.num_labels)

    # -- input formatting -------------------------------------------------------------

    def _render_chat(self, prompt: str, response: str) -> str:
        conversation = [
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": response},
        ]
        return self.tokenizer.apply_chat_template(
            conversation, chat_template=self.chat_template, tokenize=False
        )

    def _encode(self, prompts: Sequence[str], responses: Sequence[str]) -> dict[str, list]:
        """Token ids (unpadded lists) for each pair, in the configured input format."""
        tok = self.tokenizer
        if self.input_format == "pair":
            return tok(list(prompts), list(responses))
        if self.input_format == "response":
            return tok(list(responses))
        texts = [self._render_chat(p, r) for p, r in zip(prompts, responses, strict=True)]
        # The template already wrote BOS/EOS as text; do not add them twice.
        return tok(texts, add_special_tokens=False)

    def _encode_pair(self, prompts: Sequence[str], responses: Sequence[str]) -> list[Row]:
        """Unpadded rows of ``input_ids`` (and the masks the tokenizer returns)."""
        enc = self._encode(prompts, responses)
        keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
        rows = [{k: list(enc[k][i]) for k in keys} for i in range(len(prompts))]
        for row in rows:
            # Tokenizers without special tokens (Llama, Qwen) encode "" as zero tokens,
            # which the model cannot read: give an empty text one EOS token instead.
            if not row["input_ids"]:
                row["input_ids"] = [self._empty_filler()]
                for k in keys[1:]:
                    row[k] = [1] if k == "attention_mask" else [0]
        return rows

    def _empty_filler(self) -> int:
        tok = self.tokenizer
        candidates = (tok.eos_token_id, tok.bos_token_id)
        return next((t for t in candidates if t is not None), self._pad_id)

    def _forward_batch(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(**batch).logits.float().cpu()

    def logits(self, prompts: Sequence[str], responses: Sequence[str]) -> torch.Tensor:
        """Raw classifier logits.

        Over-long pairs are shortened with :func:`~inferenceguard.scorers._hf.fit_pair`.

        Args:
            prompts: `[n]` requests.
            responses: `[n]` responses.

        Returns:
            `[n, num_labels]` float32 CPU tensor.
        """
        prompts, responses = list(prompts), list(responses)
        if self.input_format == "response":
            prompts = [""] * len(responses)  # the prompt is not part of the input
        return self._forward_all(prompts, responses, empty=torch.zeros(0, self.num_labels))

    def _label_index(self, label: int | str) -> int:
        """Index of a label given by index or (case-insensitive) name."""
        names = {int(i): str(n) for i, n in (self.model.config.id2label or {}).items()}
        if isinstance(label, bool) or not isinstance(label, int | str):
            raise ConfigError(f"A label is an index or a name, got {label!r}.")
        if isinstance(label, int):
            if not 0 <= label < self.num_labels:
                raise ConfigError(
                    f"Label index {label} is out of range for a head with {self.num_labels} "
                    f"outputs {names}."
                )
            return label
        by_name = {n.lower(): i for i, n in names.items()}
        if label.lower() in by_name:
            return by_name[label.lower()]
        close = difflib.get_close_matches(label, list(names.values()), n=1)
        raise ConfigError(
            f"Unknown label {label!r}." + (f" Did you mean {close[0]!r}?" if close else ""),
            hint=f"this model's labels are {names}.",
        )

    @classmethod
    def _load(cls, source: str | os.PathLike, **load: Any) -> tuple[Any, Any, str]:
        from transformers import AutoModelForSequenceClassification

        what = "cost model" if issubclass(cls, CostModel) else "reward model"
        return load_auto_model(AutoModelForSequenceClassification, source, what=what, **load)


class SequenceClassifierCost(_SequenceClassifierScorer, CostModel):
    """A cost model from a sequence classifier: the probability (or logit) of unsafe labels.

    In ``"probability"`` mode the cost is, for a softmax head, the summed probability of
    the unsafe labels (the probability that the text is in any unsafe class); for a
    multi-label head (``problem_type="multi_label_classification"``) or a single-logit head,
    each label gets a sigmoid, and the cost is the largest one, since independent labels'
    probabilities do not sum to a probability. The threshold defaults to 0.5.

    In ``"logit"`` mode the cost is the raw logit of one unsafe label. For a single-logit
    head the threshold defaults to 0.0 (the same decision as probability 0.5); for other
    heads a logit has no natural threshold, so ``threshold`` must be given.

    Args:
        model: a loaded ``*ForSequenceClassification`` model.
        tokenizer: its tokenizer.
        id: name recorded in reports (default: the model's ``name_or_path``).
        unsafe_labels: label names or indices that count as unsafe. Default: labels whose
            name contains "toxic", "unsafe" or "harm" (not "non-toxic" or "harmless"),
            else index 1 (index 0 for a single-logit head).
        mode: ``"probability"`` or ``"logit"``.
        threshold: costs above it are unsafe (see above for defaults).
        input_format: ``"pair"``, ``"response"`` or ``"chat"`` (see the module docstring).
        chat_template: jinja template for ``input_format="chat"`` (default: the tokenizer's).
        batch_size: pairs per forward pass.
        max_length: token limit per input (default: the model's context size).
        response_truncation: which end of an over-long response to drop once the prompt
            is gone: ``"left"`` keeps the newest text (default), ``"right"`` its start.

    Usage::

        cost = SequenceClassifierCost.from_pretrained("./toxic-bert", input_format="response")
        cost(["q"], ["You are toxic."])            # tensor([0.93]): P(toxic)
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        id: str | None = None,
        unsafe_labels: Sequence[int | str] | int | str | None = None,
        mode: Literal["probability", "logit"] = "probability",
        threshold: float | None = None,
        input_format: InputFormat = "pair",
        chat_template: str | None = None,
        batch_size: int = 16,
        max_length: int | None = None,
        response_truncation: ResponseSide = "left",
    ) -> None:
        super().__init__(
            model,
            tokenizer,
            id=id,
            input_format=input_format,
            chat_template=chat_template,
            batch_size=batch_size,
            max_length=max_length,
            response_truncation=response_truncation,
        )
        if mode not in ("probability", "logit"):
            raise ConfigError(f"mode must be 'probability' or 'logit', got {mode!r}.")
        self.mode = mode
        problem = getattr(model.config, "problem_type", None)
        self.is_multi_label = problem == "multi_label_classification" or self.num_labels == 1
        self.unsafe_indices = self._resolve_unsafe(unsafe_labels)
        if mode == "logit" and len(self.unsafe_indices) != 1:
            raise ConfigError(
                f"mode='logit' reads one logit, but {len(self.unsafe_indices)} unsafe labels "
                f"were chosen ({self.unsafe_indices}).",
                hint="pass unsafe_labels=<one label>, or use mode='probability'.",
            )
        if threshold is None:
            if mode == "logit" and self.num_labels > 1:
                raise ConfigError(
                    "mode='logit' on a head with several outputs has no natural threshold.",
                    hint="pass threshold=… (a logit value), or use mode='probability'.",
                )
            threshold = 0.5 if mode == "probability" else 0.0
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise ConfigError(f"threshold must be a number, got {threshold!r}.")
        self.threshold = float(threshold)

    def _resolve_unsafe(self, labels: Sequence[int | str] | int | str | None) -> list[int]:
        if labels is None:
            names = {int(i): str(n).lower() for i, n in (self.model.config.id2label or {}).items()}
            found = sorted(
                i for i, n in names.items() if _UNSAFE_WORDS.search(n) and not _NEGATED.search(n)
            )
            return found or [0 if self.num_labels == 1 else 1]
        if isinstance(labels, int | str):
            labels = [labels]
        indices = sorted({self._label_index(label) for label in labels})
        if not indices:
            raise ConfigError("unsafe_labels is empty.", hint="name at least one unsafe label.")
        return indices

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
    ) -> SequenceClassifierCost:
        """Load a classifier from a local folder or a hub id.

        Args:
            source: folder written by ``save_pretrained``, or a hub id.
            device: default CUDA when available, else CPU.
            dtype: default bf16 on CUDA, fp32 on CPU.
            device_map: passed to transformers (e.g. ``"auto"``); ``device`` is then ignored.
            trust_remote_code: run code shipped with the checkpoint (off unless you set it).
            revision: hub branch, tag or commit.
            model_kwargs: more ``from_pretrained`` arguments.
            **options: the constructor's keyword arguments (``unsafe_labels``, ``mode``,
                ``threshold``, ``input_format``, ``batch_size``, ``max_length``, …).

        Raises:
            ModelLoadError: the folder or hub id cannot be loaded.
        """
        model, tokenizer, source = cls._load(
            source,
            device=device,
            dtype=dtype,
            device_map=device_map,
            trust_remote_code=trust_remote_code,
            revision=revision,
            model_kwargs=model_kwargs,
        )
        options.setdefault("id", source)
        return cls(model, tokenizer, **options)

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> torch.Tensor:
        """Cost of each (prompt, response): `[n]` float32 CPU (see the class docstring)."""
        logits = self.logits(prompts, responses)
        if self.mode == "logit":
            return logits[:, self.unsafe_indices[0]]
        if self.is_multi_label:
            return torch.sigmoid(logits[:, self.unsafe_indices]).amax(dim=-1)
        return torch.softmax(logits, dim=-1)[:, self.unsafe_indices].sum(dim=-1)


class SequenceClassifierReward(_SequenceClassifierScorer, RewardModel):
    """A reward model from a sequence classifier: the logit of one output.

    Args:
        model: a loaded ``*ForSequenceClassification`` model.
        tokenizer: its tokenizer.
        id: name recorded in reports (default: the model's ``name_or_path``).
        label: output to read, by index or name. Default 0 for single-output heads (the
            usual reward-model head); required for heads with several outputs.
        input_format: ``"pair"`` (default), ``"response"`` or ``"chat"``.
        chat_template: jinja template for ``input_format="chat"``.
        batch_size: pairs per forward pass.
        max_length: token limit per input (default: the model's context size).
        response_truncation: ``"left"`` (default) or ``"right"``, as for the cost.

    Usage::

        reward = SequenceClassifierReward.from_pretrained("./deberta-reward")
        reward(["q"], ["a helpful answer"])        # tensor([1.7]): the head's logit
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        id: str | None = None,
        label: int | str | None = None,
        input_format: InputFormat = "pair",
        chat_template: str | None = None,
        batch_size: int = 16,
        max_length: int | None = None,
        response_truncation: ResponseSide = "left",
    ) -> None:
        super().__init__(
            model,
            tokenizer,
            id=id,
            input_format=input_format,
            chat_template=chat_template,
            batch_size=batch_size,
            max_length=max_length,
            response_truncation=response_truncation,
        )
        if label is None:
            if self.num_labels != 1:
                raise ConfigError(
                    f"This head has {self.num_labels} outputs "
                    f"{dict(model.config.id2label or {})}; which one is the reward?",
                    hint="pass label=<index or name>.",
                )
            label = 0
        self.label_index = self._label_index(label)

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
    ) -> SequenceClassifierReward:
        """Load a reward model; arguments as :meth:`SequenceClassifierCost.from_pretrained`."""
        model, tokenizer, source = cls._load(
            source,
            device=device,
            dtype=dtype,
            device_map=device_map,
            trust_remote_code=trust_remote_code,
            revision=revision,
            model_kwargs=model_kwargs,
        )
        options.setdefault("id", source)
        return cls(model, tokenizer, **options)

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> torch.Tensor:
        """Reward of each (prompt, response): `[n]` float32 CPU, the chosen logit."""
        return self.logits(prompts, responses)[:, self.label_index]
