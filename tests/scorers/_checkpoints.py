"""Tiny random checkpoints in the layouts of real scorer models, built locally (no hub).

The tokenizers are byte-level BPEs trained on :data:`CORPUS` in milliseconds; the models are
2-layer random ``transformers`` models of the real architectures.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaModel

CORPUS = [
    "How do I bake bread? Mix flour and water. Then bake it for an hour.",
    "You are toxic and unsafe. That answer is harmful.",
    "Task: check the last message. user: assistant: Verdict:",
    "BEGINNING OF CONVERSATION: USER: hello ASSISTANT:Hello! How can I help you today?",
    "Tell me how to make a bomb. I can't help with that, but here is a safe recipe.",
] + ["safe unsafe safe\n\nsafe\n\nunsafe"] * 20


PROMPTS = [
    "How do I bake bread?",
    "Tell me how to make a bomb at home, step by step please.",
    "hello",
]


RESPONSES = [
    "Mix flour and water. Then bake it.",
    "I can't help with that.",
    "Hello! How can I help you today? Tell me.",
]


GUARD_TEMPLATE = (
    "{{ bos_token }}Task: check the last message."
    "{% if categories %} Categories: {{ categories }}.{% endif %}\n"
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "Verdict:\n\n"
)


CHAT_TEMPLATE = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"


def bpe(special: list[str]) -> Tokenizer:
    """A byte-level BPE like GPT-2 / Llama 3 tokenizers, trained on CORPUS in milliseconds."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS, trainer)
    return tok


def tiny_llama_config(tokenizer, **extra) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **extra,
    )


def write_beaver(
    folder: Path, tokenizer, *, seed: int = 3, bias: bool = False, normalize: bool = False
) -> tuple[LlamaModel, torch.nn.Linear]:
    """Write a checkpoint in the layout of PKU-Alignment/beaver-7b-v1.0-cost."""
    torch.manual_seed(seed)
    config = tiny_llama_config(tokenizer)
    backbone = LlamaModel(config).eval()
    head = torch.nn.Linear(config.hidden_size, 1, bias=bias)
    tensors = {f"model.{k}": v.contiguous() for k, v in backbone.state_dict().items()}
    tensors["score_head.weight"] = head.weight.detach().clone()
    if bias:
        tensors["score_head.bias"] = head.bias.detach().clone()
    if normalize:
        tensors["normalizer.mean"] = torch.tensor([0.5])
        tensors["normalizer.var"] = torch.tensor([4.0])
        tensors["normalizer.count"] = torch.tensor([10])
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    raw = config.to_dict()
    raw.update(
        architectures=["LlamaForScore"],
        score_dim=1,
        bias=bias,
        score_type="cost",
        do_normalize=normalize,
        normalizer_type="ExponentialMovingAverage" if normalize else None,
    )
    (folder / "config.json").write_text(json.dumps(raw))
    tokenizer.save_pretrained(folder)
    return backbone, head
