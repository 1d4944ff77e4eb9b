"""Checkpoint folders shared by the loader tests (built once per run), and the real
embedded default scorers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tokenizers import processors
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    DebertaV2Config,
    DebertaV2ForSequenceClassification,
    LlamaForCausalLM,
    LlamaModel,
    PreTrainedTokenizerFast,
)

from inferenceguard.scorers.defaults import load_default_probe
from inferenceguard.scorers.embedding import SentenceEncoder, get_default_encoder
from inferenceguard.scorers.embedding_probe import EmbeddingProbeCost
from inferenceguard.scorers.relevance import RelevanceReward

from ._checkpoints import GUARD_TEMPLATE, bpe, tiny_llama_config, write_beaver


@pytest.fixture(scope="session")
def bert_tokenizer() -> PreTrainedTokenizerFast:
    """BERT-style: [CLS] a [SEP] b [SEP] with token type ids."""
    tok = bpe(["[PAD]", "[UNK]", "[CLS]", "[SEP]"])
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )


@pytest.fixture(scope="session")
def llama_tokenizer() -> PreTrainedTokenizerFast:
    """Llama-style: BOS prepended, EOS and PAD tokens, a chat template."""
    tok = bpe(["<pad>", "<s>", "</s>"])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    fast.chat_template = GUARD_TEMPLATE
    return fast


@pytest.fixture(scope="session")
def bert_dir(tmp_path_factory, bert_tokenizer) -> Path:
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(bert_tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=2,
        id2label={0: "non-toxic", 1: "toxic"},
        label2id={"non-toxic": 0, "toxic": 1},
        pad_token_id=bert_tokenizer.pad_token_id,
    )
    folder = tmp_path_factory.mktemp("bert-toxic")
    BertForSequenceClassification(config).save_pretrained(folder)
    bert_tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def deberta_dir(tmp_path_factory, bert_tokenizer) -> Path:
    """Shaped like OpenAssistant/reward-model-deberta-v3: one output logit."""
    torch.manual_seed(1)
    config = DebertaV2Config(
        vocab_size=len(bert_tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        relative_attention=True,
        position_buckets=16,
        pos_att_type=["p2c", "c2p"],
        position_biased_input=False,
        num_labels=1,
        pad_token_id=bert_tokenizer.pad_token_id,
    )
    folder = tmp_path_factory.mktemp("deberta-reward")
    DebertaV2ForSequenceClassification(config).save_pretrained(folder)
    bert_tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def guard_dir(tmp_path_factory, llama_tokenizer) -> Path:
    torch.manual_seed(2)
    folder = tmp_path_factory.mktemp("tiny-guard")
    LlamaForCausalLM(tiny_llama_config(llama_tokenizer)).save_pretrained(folder)
    llama_tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def beaver(tmp_path_factory, llama_tokenizer) -> tuple[Path, LlamaModel, torch.nn.Linear]:
    folder = tmp_path_factory.mktemp("beaver-cost")
    backbone, head = write_beaver(folder, llama_tokenizer)
    return folder, backbone, head


@pytest.fixture(scope="session")
def encoder() -> SentenceEncoder:
    return get_default_encoder()


@pytest.fixture(scope="session")
def cost() -> EmbeddingProbeCost:
    return load_default_probe()


@pytest.fixture(scope="session")
def reward(encoder: SentenceEncoder) -> RelevanceReward:
    return RelevanceReward(encoder)
