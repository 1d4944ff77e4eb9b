"""Loaders for real scorer checkpoints, each exercised on a tiny random model of the same
architecture that is built here, saved with ``save_pretrained`` (or written in the exact
on-disk layout of the real checkpoint) and loaded back by path. No hub, no network.
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
    DebertaV2Config,
    DebertaV2ForSequenceClassification,
    LlamaConfig,
    LlamaForCausalLM,
    LlamaModel,
    PreTrainedTokenizerFast,
)

from inferenceguard.errors import ConfigError, InputError, ModelLoadError
from inferenceguard.scorers.base import CostModel, RewardModel, checked_scores
from inferenceguard.scorers.guard_model import GenerativeGuardCost
from inferenceguard.scorers.hf_classifier import SequenceClassifierCost, SequenceClassifierReward
from inferenceguard.scorers.pku import PKU_PROMPT_FORMAT, PKUCost, PKUReward, PKUScoreModel
from inferenceguard.scorers.registry import fit_pair, load_cost_model, load_reward_model

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


def _bpe(special: list[str]) -> Tokenizer:
    """A byte-level BPE like GPT-2 / Llama 3 tokenizers, trained on CORPUS in milliseconds."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS, trainer)
    return tok


@pytest.fixture(scope="module")
def bert_tokenizer() -> PreTrainedTokenizerFast:
    """BERT-style: [CLS] a [SEP] b [SEP] with token type ids."""
    tok = _bpe(["[PAD]", "[UNK]", "[CLS]", "[SEP]"])
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


@pytest.fixture(scope="module")
def llama_tokenizer() -> PreTrainedTokenizerFast:
    """Llama-style: BOS prepended, EOS and PAD tokens, a chat template."""
    tok = _bpe(["<pad>", "<s>", "</s>"])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    fast.chat_template = GUARD_TEMPLATE
    return fast


@pytest.fixture(scope="module")
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


@pytest.fixture(scope="module")
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


def _tiny_llama_config(tokenizer, **extra) -> LlamaConfig:
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


@pytest.fixture(scope="module")
def guard_dir(tmp_path_factory, llama_tokenizer) -> Path:
    torch.manual_seed(2)
    folder = tmp_path_factory.mktemp("tiny-guard")
    LlamaForCausalLM(_tiny_llama_config(llama_tokenizer)).save_pretrained(folder)
    llama_tokenizer.save_pretrained(folder)
    return folder


def _write_beaver(
    folder: Path, tokenizer, *, seed: int = 3, bias: bool = False, normalize: bool = False
) -> tuple[LlamaModel, torch.nn.Linear]:
    """Write a checkpoint in the layout of PKU-Alignment/beaver-7b-v1.0-cost."""
    torch.manual_seed(seed)
    config = _tiny_llama_config(tokenizer)
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


@pytest.fixture(scope="module")
def beaver(tmp_path_factory, llama_tokenizer) -> tuple[Path, LlamaModel, torch.nn.Linear]:
    folder = tmp_path_factory.mktemp("beaver-cost")
    backbone, head = _write_beaver(folder, llama_tokenizer)
    return folder, backbone, head


# ------------------------------------------------------------------- classifiers ----


@torch.inference_mode()
def _manual_logits(folder: Path, model_cls, texts_a, texts_b=None) -> torch.Tensor:
    """Reference: one unpadded forward per pair, straight through transformers."""
    tok = AutoTokenizer.from_pretrained(folder)
    model = model_cls.from_pretrained(folder).eval()
    rows = []
    for i, a in enumerate(texts_a):
        enc = tok(a, texts_b[i], return_tensors="pt") if texts_b else tok(a, return_tensors="pt")
        rows.append(model(**enc).logits[0])
    return torch.stack(rows)


def test_classifier_cost_is_the_unsafe_probability_of_each_pair(bert_dir):
    cost = SequenceClassifierCost.from_pretrained(bert_dir, batch_size=2, device="cpu")
    # "non-toxic" contains "toxic" but is negated: only index 1 counts as unsafe.
    assert cost.unsafe_indices == [1]
    assert cost.threshold == 0.5 and cost.id == str(bert_dir)
    expected = torch.softmax(
        _manual_logits(bert_dir, BertForSequenceClassification, PROMPTS, RESPONSES), -1
    )[:, 1]
    got = cost(PROMPTS, RESPONSES)  # batches of 2 with padding and token type ids
    assert got.dtype == torch.float32 and got.device.type == "cpu"
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_classifier_response_only_ignores_the_prompt(bert_dir):
    cost = SequenceClassifierCost.from_pretrained(bert_dir, input_format="response")
    expected = torch.softmax(
        _manual_logits(bert_dir, BertForSequenceClassification, RESPONSES), -1
    )[:, 1]
    torch.testing.assert_close(cost(PROMPTS, RESPONSES), expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(cost(["other"] * 3, RESPONSES), expected, atol=1e-5, rtol=1e-5)


def test_classifier_labels_modes_and_their_errors(bert_dir):
    both = SequenceClassifierCost.from_pretrained(bert_dir, unsafe_labels=["toxic", 0])
    torch.testing.assert_close(both(PROMPTS, RESPONSES), torch.ones(3))  # all classes
    logit = SequenceClassifierCost.from_pretrained(
        bert_dir, unsafe_labels="TOXIC", mode="logit", threshold=1.5
    )
    raw = _manual_logits(bert_dir, BertForSequenceClassification, PROMPTS, RESPONSES)[:, 1]
    torch.testing.assert_close(logit(PROMPTS, RESPONSES), raw, atol=1e-5, rtol=1e-5)
    assert logit.threshold == 1.5
    with pytest.raises(ConfigError, match="Did you mean 'toxic'"):
        SequenceClassifierCost.from_pretrained(bert_dir, unsafe_labels=["toxc"])
    with pytest.raises(ConfigError, match="out of range"):
        SequenceClassifierCost.from_pretrained(bert_dir, unsafe_labels=[2])
    with pytest.raises(ConfigError, match="no natural threshold"):
        SequenceClassifierCost.from_pretrained(bert_dir, mode="logit")
    with pytest.raises(ConfigError, match="Did you mean 'pair'"):
        SequenceClassifierCost.from_pretrained(bert_dir, input_format="pairs")
    with pytest.raises(ConfigError, match="chat template"):
        SequenceClassifierCost.from_pretrained(bert_dir, input_format="chat")
    with pytest.raises(ConfigError, match="which one is the reward"):
        SequenceClassifierReward.from_pretrained(bert_dir)


def test_classifier_multi_label_head_uses_the_largest_sigmoid(bert_dir, tmp_path):
    model = BertForSequenceClassification.from_pretrained(bert_dir)
    model.config.problem_type = "multi_label_classification"
    model.config.id2label = {0: "insult", 1: "threat"}
    model.config.label2id = {"insult": 0, "threat": 1}
    cost = SequenceClassifierCost(
        model, AutoTokenizer.from_pretrained(bert_dir), unsafe_labels=["insult", "threat"]
    )
    logits = _manual_logits(bert_dir, BertForSequenceClassification, PROMPTS, RESPONSES)
    expected = torch.sigmoid(logits).amax(-1)
    torch.testing.assert_close(cost(PROMPTS, RESPONSES), expected, atol=1e-5, rtol=1e-5)


def test_deberta_reward_is_the_single_logit(deberta_dir):
    reward = SequenceClassifierReward.from_pretrained(deberta_dir, batch_size=2)
    assert isinstance(reward, RewardModel) and reward.label_index == 0
    expected = _manual_logits(deberta_dir, DebertaV2ForSequenceClassification, PROMPTS, RESPONSES)[
        :, 0
    ]
    torch.testing.assert_close(reward(PROMPTS, RESPONSES), expected, atol=1e-5, rtol=1e-5)


def test_deberta_single_logit_cost_defaults(deberta_dir):
    prob = SequenceClassifierCost.from_pretrained(deberta_dir)
    logit = SequenceClassifierCost.from_pretrained(deberta_dir, mode="logit")
    assert prob.unsafe_indices == [0] and logit.threshold == 0.0
    # sigmoid(logit) > 0.5 exactly when logit > 0: both modes make the same decision.
    torch.testing.assert_close(
        prob(PROMPTS, RESPONSES), torch.sigmoid(logit(PROMPTS, RESPONSES)), atol=1e-6, rtol=0
    )


def test_classifier_chat_format_renders_the_template(deberta_dir):
    reward = SequenceClassifierReward.from_pretrained(
        deberta_dir, input_format="chat", chat_template=CHAT_TEMPLATE
    )
    texts = [f"user: {p}\nassistant: {r}\n" for p, r in zip(PROMPTS, RESPONSES, strict=True)]
    tok = AutoTokenizer.from_pretrained(deberta_dir)
    model = DebertaV2ForSequenceClassification.from_pretrained(deberta_dir).eval()
    with torch.inference_mode():
        expected = torch.stack(
            [
                model(**tok(t, add_special_tokens=False, return_tensors="pt")).logits[0, 0]
                for t in texts
            ]
        )
    torch.testing.assert_close(reward(PROMPTS, RESPONSES), expected, atol=1e-5, rtol=1e-5)


def test_classifier_truncates_the_prompt_before_the_response(bert_dir, bert_tokenizer):
    prompt = "How do I bake bread? " * 20
    response = RESPONSES[0]
    short = SequenceClassifierCost.from_pretrained(bert_dir, max_length=32)
    full = SequenceClassifierCost.from_pretrained(bert_dir)

    def count(p, r):
        return len(bert_tokenizer(p, r)["input_ids"])

    kept, kept_response, dropped = fit_pair(
        prompt, response, count=count, tokenizer=bert_tokenizer, max_length=32, response_side="left"
    )
    assert prompt.endswith(kept) and 0 < len(kept) < len(prompt)
    assert kept_response == response and dropped == 0
    assert count(kept, response) <= 32 < count(prompt, response)
    torch.testing.assert_close(short([prompt], [response]), full([kept], [response]))


def test_fit_pair_cuts_the_response_on_the_chosen_side(bert_tokenizer):
    response = "Mix flour and water. Then bake it for an hour. " * 6

    def count(p, r):
        return len(bert_tokenizer(p, r)["input_ids"])

    p, r, dropped = fit_pair(
        "a prompt",
        response,
        count=count,
        tokenizer=bert_tokenizer,
        max_length=20,
        response_side="left",
    )
    assert p == "" and response.endswith(r) and dropped == len(response) - len(r) > 0
    assert count(p, r) <= 20
    p, r, dropped = fit_pair(
        "a prompt",
        response,
        count=count,
        tokenizer=bert_tokenizer,
        max_length=20,
        response_side="right",
    )
    assert p == "" and response.startswith(r) and dropped == 0 and count(p, r) <= 20
    with pytest.raises(InputError, match="template alone"):
        fit_pair(
            "a", "b", count=count, tokenizer=bert_tokenizer, max_length=1, response_side="left"
        )


def test_mismatched_lengths_are_rejected_by_checked_scores(bert_dir):
    cost = SequenceClassifierCost.from_pretrained(bert_dir)
    with pytest.raises(InputError, match="same length"):
        checked_scores(cost, PROMPTS, RESPONSES[:2])


# ---------------------------------------------------------------- guard models ----


def _manual_p_unsafe(folder: Path, prompt: str, response: str, **template_kwargs) -> float:
    tok = AutoTokenizer.from_pretrained(folder)
    model = LlamaForCausalLM.from_pretrained(folder).eval()
    conversation = [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
    text = tok.apply_chat_template(
        conversation, tokenize=False, add_generation_prompt=True, **template_kwargs
    )
    ids = tok(text, add_special_tokens=False, return_tensors="pt")
    safe, unsafe = tok.convert_tokens_to_ids(["safe", "unsafe"])
    with torch.inference_mode():
        logits = model(**ids).logits[0, -1]
    return torch.softmax(logits[[safe, unsafe]], -1)[1].item()


def test_guard_cost_is_p_unsafe_at_the_verdict_position(guard_dir, llama_tokenizer):
    assert llama_tokenizer.convert_ids_to_tokens(
        llama_tokenizer.encode("unsafe", add_special_tokens=False)
    ) == ["unsafe"]  # the fixture's vocabulary has whole verdict words, as Llama Guard 3's
    cost = GenerativeGuardCost.from_pretrained(guard_dir, batch_size=3)
    assert cost.threshold == 0.5 and cost.id == str(guard_dir)
    assert cost.verdict_token_ids == tuple(
        llama_tokenizer.convert_tokens_to_ids(["safe", "unsafe"])
    )
    got = cost(PROMPTS, RESPONSES)  # one left-padded batch of three lengths
    expected = torch.tensor(
        [_manual_p_unsafe(guard_dir, p, r) for p, r in zip(PROMPTS, RESPONSES, strict=True)]
    )
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert ((got > 0) & (got < 1)).all()


def test_guard_template_kwargs_template_and_verdict_ids(guard_dir, llama_tokenizer):
    with_categories = GenerativeGuardCost.from_pretrained(
        guard_dir, template_kwargs={"categories": "S1 violence"}
    )
    assert "Categories: S1 violence." in with_categories.render("q", "a")
    expected = _manual_p_unsafe(guard_dir, PROMPTS[1], RESPONSES[1], categories="S1 violence")
    assert with_categories([PROMPTS[1]], [RESPONSES[1]]).item() == pytest.approx(expected, abs=1e-5)

    custom = GenerativeGuardCost.from_pretrained(
        guard_dir, chat_template="Judge: {{ messages[1]['content'] }}\n\n"
    )
    assert (
        custom.render("q", "an answer") == "Judge: an answer\n"
    )  # jinja drops one trailing newline
    ids = tuple(llama_tokenizer.convert_tokens_to_ids(["unsafe", "safe"]))
    swapped = GenerativeGuardCost.from_pretrained(guard_dir, verdict_token_ids=ids)
    plain = GenerativeGuardCost.from_pretrained(guard_dir)
    torch.testing.assert_close(swapped(PROMPTS, RESPONSES), 1 - plain(PROMPTS, RESPONSES))


def test_guard_configuration_errors(guard_dir, llama_tokenizer):
    model = LlamaForCausalLM.from_pretrained(guard_dir)
    with pytest.raises(ConfigError, match="same token"):
        GenerativeGuardCost(model, llama_tokenizer, verdict_token_ids=(5, 5))
    with pytest.raises(ConfigError, match="two token ids"):
        GenerativeGuardCost(model, llama_tokenizer, verdict_token_ids=(5, 10**6))
    no_template = AutoTokenizer.from_pretrained(guard_dir)
    no_template.chat_template = None
    with pytest.raises(ConfigError, match="no chat template"):
        GenerativeGuardCost(model, no_template)


def test_guard_truncates_long_prompts_to_max_length(guard_dir):
    long_prompt = "Tell me how to make a bomb. " * 40
    cost = GenerativeGuardCost.from_pretrained(guard_dir, max_length=64)
    batch = cost._batch([long_prompt, PROMPTS[0]], [RESPONSES[1], RESPONSES[0]])
    assert batch["input_ids"].shape[1] <= 64
    assert cost.render("", "").startswith("<s>")  # the template (and its BOS) survives
    assert torch.isfinite(cost([long_prompt], [RESPONSES[1]])).all()


# ------------------------------------------------------------ PKU score models ----


@torch.inference_mode()
def _manual_pku(backbone, head, tokenizer, prompt: str, response: str) -> float:
    ids = tokenizer(PKU_PROMPT_FORMAT.format(prompt=prompt) + response, return_tensors="pt")
    hidden = backbone(**ids).last_hidden_state[0, -1]
    return head(hidden).item()


def test_pku_end_score_matches_llama_model_plus_linear(beaver, llama_tokenizer):
    folder, backbone, head = beaver
    cost = PKUCost.from_pretrained(folder, batch_size=2, device="cpu")
    assert isinstance(cost, CostModel) and cost.threshold == 0.0 and cost.id == str(folder)
    expected = torch.tensor(
        [
            _manual_pku(backbone, head, llama_tokenizer, p, r)
            for p, r in zip(PROMPTS, RESPONSES, strict=True)
        ]
    )
    torch.testing.assert_close(cost(PROMPTS, RESPONSES), expected, atol=1e-5, rtol=1e-5)
    reward = PKUReward.from_pretrained(folder)
    torch.testing.assert_close(reward(PROMPTS, RESPONSES), expected, atol=1e-5, rtol=1e-5)


def test_pku_prefix_scores_come_from_one_pass(beaver):
    folder, _, _ = beaver
    cost = PKUCost.from_pretrained(folder, batch_size=2)
    response = RESPONSES[0]  # "Mix flour and water. Then bake it."
    ends = [[0, 3, 9, 19, 20, len(response)], [len(RESPONSES[1])], [5, len(RESPONSES[2])]]
    prefixes = cost.score_prefixes(PROMPTS, RESPONSES, ends)
    assert [p.shape for p in prefixes] == [torch.Size([6]), torch.Size([1]), torch.Size([2])]
    assert all(p.dtype == torch.float32 for p in prefixes)
    end = cost(PROMPTS, RESPONSES)
    for i in range(3):
        assert prefixes[i][-1].item() == pytest.approx(end[i].item(), abs=1e-5)
    # At word boundaries a prefix's score equals scoring that prefix alone (causal model).
    alone = cost([PROMPTS[0]] * 6, [response[:e] for e in ends[0]])
    torch.testing.assert_close(prefixes[0], alone, atol=1e-5, rtol=1e-5)
    # Inside a token ("Mix |flour"), the score is that of the text before the token.
    inside = cost.score_prefixes(PROMPTS[:1], [response], [[4, 3]])[0]
    assert inside[0].item() == pytest.approx(inside[1].item(), abs=1e-6)


def test_pku_prefix_scores_skip_an_appended_eos(tmp_path, llama_tokenizer):
    backend = Tokenizer.from_str(llama_tokenizer.backend_tokenizer.to_str())
    bos, eos = backend.token_to_id("<s>"), backend.token_to_id("</s>")
    backend.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", bos), ("</s>", eos)]
    )
    with_eos = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    _write_beaver(tmp_path / "plain", llama_tokenizer)
    _write_beaver(tmp_path / "eos", with_eos)  # same seed: same weights
    plain = PKUScoreModel.from_pretrained(tmp_path / "plain")
    eos_model = PKUScoreModel.from_pretrained(tmp_path / "eos")
    ends = [[len(r)] for r in RESPONSES]
    at_text_end = torch.cat(eos_model.prefix_scores(PROMPTS, RESPONSES, ends))
    torch.testing.assert_close(
        at_text_end, plain.end_scores(PROMPTS, RESPONSES), atol=1e-5, rtol=1e-5
    )
    # end_scores reads the EOS position, as safe-rlhf does.
    assert not torch.allclose(eos_model.end_scores(PROMPTS, RESPONSES), at_text_end, atol=1e-4)


def test_pku_prefix_scores_under_left_truncation(tmp_path, llama_tokenizer):
    _write_beaver(tmp_path, llama_tokenizer)
    model = PKUScoreModel.from_pretrained(tmp_path, max_length=24)
    response = "Mix flour and water. Then bake it for an hour. How can I help you today?"
    ends = [0, 9, 20, len(response)]
    prefixes = model.prefix_scores(["hello"], [response], [ends])[0]
    # Early prefixes were cut from the one-pass input; each is scored on its own instead.
    alone = model.end_scores(["hello"] * len(ends), [response[:e] for e in ends])
    torch.testing.assert_close(prefixes, alone, atol=1e-5, rtol=1e-5)
    assert model._count("", response) > 24  # the response really was cut


def test_pku_sharded_bias_and_normalizer(tmp_path, llama_tokenizer):
    folder = tmp_path / "beaver"
    backbone, head = _write_beaver(folder, llama_tokenizer, bias=True, normalize=True)
    single = PKUCost.from_pretrained(folder)
    raw = torch.tensor(
        [
            _manual_pku(backbone, head, llama_tokenizer, p, r)
            for p, r in zip(PROMPTS, RESPONSES, strict=True)
        ]
    )
    # score_type "cost" normalises by scale only: x / std, std = sqrt(4).
    torch.testing.assert_close(single(PROMPTS, RESPONSES), raw / (2.0 + 1e-8), atol=1e-5, rtol=1e-5)

    from safetensors.torch import load_file

    tensors = load_file(folder / "model.safetensors")
    names = sorted(tensors)
    shards = {
        "model-00001-of-00002.safetensors": names[::2],
        "model-00002-of-00002.safetensors": names[1::2],
    }
    sharded = tmp_path / "sharded"
    sharded.mkdir()
    weight_map = {}
    for file, keys in shards.items():
        save_file({k: tensors[k] for k in keys}, sharded / file, metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(keys, file))
    (sharded / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": weight_map})
    )
    for extra in folder.iterdir():
        if extra.suffix != ".safetensors":
            (sharded / extra.name).write_bytes(extra.read_bytes())
    torch.testing.assert_close(
        PKUCost.from_pretrained(sharded)(PROMPTS, RESPONSES), single(PROMPTS, RESPONSES)
    )


def test_pku_refuses_pickle_and_incomplete_checkpoints(tmp_path, beaver, llama_tokenizer):
    folder, _, _ = beaver
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_bytes((folder / "config.json").read_bytes())
    (pickled / "pytorch_model.bin").write_bytes(b"never unpickled")
    with pytest.raises(ModelLoadError, match="only pickle weights") as err:
        PKUCost.from_pretrained(pickled)
    assert "safetensors" in str(err.value)
    with pytest.raises(ModelLoadError, match="only pickle"):
        load_cost_model(pickled)  # the registry picks the PKU loader from config.json

    no_head = tmp_path / "no-head"
    _write_beaver(no_head, llama_tokenizer)
    from safetensors.torch import load_file

    tensors = load_file(no_head / "model.safetensors")
    del tensors["score_head.weight"]
    save_file(tensors, no_head / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ModelLoadError, match="score_head"):
        PKUCost.from_pretrained(no_head)

    del tensors["model.norm.weight"]
    save_file(tensors, no_head / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ModelLoadError, match=r"norm\.weight"):
        PKUCost.from_pretrained(no_head)


def test_pku_prefix_input_errors(beaver):
    cost = PKUCost.from_pretrained(beaver[0])
    with pytest.raises(InputError, match="one list per response"):
        cost.score_prefixes(PROMPTS, RESPONSES, [[1]])
    with pytest.raises(InputError, match="not a character offset"):
        cost.score_prefixes(PROMPTS[:1], RESPONSES[:1], [[len(RESPONSES[0]) + 1]])
    with pytest.raises(InputError, match="same length"):
        cost.score_prefixes(PROMPTS[:2], RESPONSES[:1], [[1]])
    with pytest.raises(InputError, match="same length"):
        checked_scores(cost, PROMPTS, RESPONSES[:1])


# ------------------------------------------------------------------- registry ----


def test_registry_picks_the_loader_from_config_json(bert_dir, deberta_dir, guard_dir, beaver):
    assert isinstance(load_cost_model(bert_dir), SequenceClassifierCost)
    assert isinstance(load_cost_model(str(guard_dir)), GenerativeGuardCost)
    pku = load_cost_model(beaver[0], threshold=-1.0)
    assert isinstance(pku, PKUCost) and pku.threshold == -1.0 and pku.id == str(beaver[0])
    assert isinstance(load_reward_model(deberta_dir), SequenceClassifierReward)
    assert isinstance(load_reward_model(beaver[0]), PKUReward)
    # kind= overrides the guess: a classifier folder read as a guard is a load error,
    # a guard LM cannot be a reward model.
    with pytest.raises(ModelLoadError):
        load_cost_model(bert_dir, kind="pku")
    with pytest.raises(ConfigError, match="cannot be a reward model"):
        load_reward_model(guard_dir)


def test_registry_objects_callables_and_kinds():
    fn_cost = load_cost_model(lambda p, r: float("bomb" in r), threshold=0.5, id="bomb")
    assert fn_cost.threshold == 0.5 and fn_cost.id == "bomb"
    assert load_cost_model(fn_cost) is fn_cost
    reward = load_reward_model(lambda p, r: float(len(r)))
    assert load_reward_model(reward) is reward
    assert reward(["q"], ["abc"]).tolist() == [3.0]
    with pytest.raises(ConfigError, match="needs a threshold"):
        load_cost_model(lambda p, r: 0.0)
    with pytest.raises(ConfigError, match="got a reward model"):
        load_cost_model(reward)
    with pytest.raises(ConfigError, match="got a cost model"):
        load_reward_model(fn_cost)
    with pytest.raises(ConfigError, match="Did you mean 'guard'") as err:
        load_cost_model("anything", kind="gaurd")
    assert "'classifier', 'guard', 'pku'" in str(err.value)
    with pytest.raises(ConfigError, match="only yields costs"):
        load_reward_model("anything", kind="guard")


def test_registry_default_is_imported_lazily(monkeypatch):
    calls = []
    fake = types.ModuleType("inferenceguard.scorers.defaults")
    fake.load_default_cost_model = lambda **kw: (
        calls.append(("cost", kw))
        or CostModel.from_callable(lambda p, r: 0.0, threshold=kw.get("threshold", 0.5))
    )
    fake.load_default_reward_model = lambda **kw: (
        calls.append(("reward", kw)) or RewardModel.from_callable(lambda p, r: 0.0)
    )
    monkeypatch.setitem(sys.modules, "inferenceguard.scorers.defaults", fake)
    assert load_cost_model("default", threshold=0.3).threshold == 0.3
    load_reward_model("default", device="cpu")
    assert calls == [("cost", {"device": None}), ("reward", {"device": "cpu"})]


def test_registry_missing_paths_and_offline_hub(monkeypatch, tmp_path):
    with pytest.raises(ModelLoadError, match="No folder"):
        load_cost_model(tmp_path / "missing")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ModelLoadError, match="is a file"):
        load_cost_model(tmp_path / "file.txt")
    with pytest.raises(ModelLoadError, match=r"no config\.json"):
        load_cost_model(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="offline") as err:
        load_cost_model("inferenceguard-tests/no-such-model")
    assert "hf download" in str(err.value)
    unknown = tmp_path / "unknown"
    unknown.mkdir()
    (unknown / "config.json").write_text(json.dumps({"architectures": ["BertModel"]}))
    with pytest.raises(ConfigError, match="pass kind="):
        load_cost_model(unknown)


def test_empty_response_scores_with_tokenizers_that_add_no_special_tokens(
    tmp_path, smollm2_tokenizer
):
    from transformers import LlamaConfig, LlamaForSequenceClassification

    from inferenceguard.scorers.registry import load_cost_model

    config = LlamaConfig(
        vocab_size=len(smollm2_tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        num_labels=2,
        pad_token_id=smollm2_tokenizer.eos_token_id,
    )
    LlamaForSequenceClassification(config).save_pretrained(tmp_path)
    smollm2_tokenizer.save_pretrained(tmp_path)
    cost = load_cost_model(tmp_path, input_format="response", device="cpu")
    scores = cost(["hi", "hi"], ["", "hello"])
    assert scores.shape == (2,) and bool(((scores >= 0) & (scores <= 1)).all())
    assert cost(["hi"], [""]).shape == (1,)
