"""PKU Safe-RLHF score models, written in the exact on-disk layout of
``PKU-Alignment/beaver-7b-v1.0-cost`` (a tiny random Llama backbone + ``score_head``)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, processors
from transformers import PreTrainedTokenizerFast

from inferenceguard.errors import InputError, ModelLoadError
from inferenceguard.scorers._hf import fit_pair
from inferenceguard.scorers.base import CostModel, checked_scores
from inferenceguard.scorers.pku import PKU_PROMPT_FORMAT, PKUCost, PKUReward, PKUScoreModel
from inferenceguard.scorers.registry import load_cost_model

from ._checkpoints import PROMPTS, RESPONSES, write_beaver


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
    write_beaver(tmp_path / "plain", llama_tokenizer)
    write_beaver(tmp_path / "eos", with_eos)  # same seed: same weights
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
    write_beaver(tmp_path, llama_tokenizer)
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
    backbone, head = write_beaver(folder, llama_tokenizer, bias=True, normalize=True)
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
    write_beaver(no_head, llama_tokenizer)
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


def test_pku_truncated_pairs_score_as_their_kept_text_alone(beaver, llama_tokenizer):
    """Cut to max_length in one right-padded batch = the reference on the kept text."""
    folder, backbone, head = beaver

    def count(prompt: str, response: str) -> int:
        return len(llama_tokenizer(PKU_PROMPT_FORMAT.format(prompt=prompt) + response)["input_ids"])

    pairs = [
        ("How do I bake bread? " * 6, "Mix."),  # the prompt is cut
        ("hello", RESPONSES[2] * 3),  # the prompt is not enough: the response's start goes
        ("hi", "Mix."),  # fits as it is
    ]
    expected = []
    for prompt, response in pairs:
        kept = fit_pair(
            prompt,
            response,
            count=count,
            tokenizer=llama_tokenizer,
            max_length=24,
            response_side="left",
        )
        assert count(kept[0], kept[1]) <= 24
        expected.append(_manual_pku(backbone, head, llama_tokenizer, kept[0], kept[1]))
    assert count(*pairs[0]) > 24 and count("", pairs[1][1]) > 24 >= count(*pairs[2])
    cost = PKUCost.from_pretrained(folder, max_length=24, batch_size=3)
    got = cost([p for p, _ in pairs], [r for _, r in pairs])
    torch.testing.assert_close(got, torch.tensor(expected), atol=1e-5, rtol=1e-5)
