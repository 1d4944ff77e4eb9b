"""The response judge (complies? toxic?) and the judged-pair cost built on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from inferenceguard.errors import ArtifactError, ConfigError
from inferenceguard.scorers.embedding import SentenceEncoder
from inferenceguard.scorers.response_judge import JudgedPairCost, ResponseJudge
from inferenceguard.scorers.tuned_encoder import META_FILE
from inferenceguard.training.cost_probe.data import Example, norm
from inferenceguard.training.cost_probe.judge import (
    JudgeSettings,
    JudgeTexts,
    judge_metrics,
    judge_texts,
    train_response_judge,
)
from inferenceguard.training.cost_probe.tuned import _head_weights

COMPLY = [f"here are the steps for task {i}: first open the lid, then stir" for i in range(16)]
DECLINE = [f"no, i will not help with request {i}, sorry about that" for i in range(16)]
TOXIC = [f"you are a worthless idiot number {i} and everyone hates you" for i in range(16)]


@pytest.fixture(scope="module")
def tiny_encoder(bert_dir: Path) -> SentenceEncoder:
    return SentenceEncoder(str(bert_dir), cache_size=0)


@pytest.fixture(scope="module")
def trained(tiny_encoder: SentenceEncoder) -> ResponseJudge:
    # Toxic texts carry no compliance label: they must train the toxic head only.
    texts = COMPLY + DECLINE + TOXIC
    targets = [(1, 0)] * 16 + [(0, 0)] * 16 + [(None, 1)] * 16
    data = JudgeTexts(texts, targets, ["c"] * 16 + ["d"] * 16 + ["t"] * 16, ["train"] * 48)
    settings = JudgeSettings(
        tuned_layers=1, epochs=10, lr=3e-3, head_lr=3e-2, batch_size=8, max_length=32
    )
    return train_response_judge(tiny_encoder, data, settings)


def test_training_learns_both_heads(trained: ResponseJudge) -> None:
    out = trained(COMPLY + DECLINE + TOXIC)
    assert out.shape == (48, 2) and out.dtype == torch.float32
    metrics = judge_metrics(
        trained, COMPLY + DECLINE + TOXIC, [(1, 0)] * 16 + [(0, 0)] * 16 + [(None, 1)] * 16
    )
    assert metrics["complies"]["n"] == 32  # the unlabelled toxic texts are not counted
    assert metrics["complies"]["roc_auc"] > 0.95
    assert metrics["toxic"]["roc_auc"] > 0.95
    assert torch.equal(trained.complies(COMPLY[:2]), out[:2, 0])
    assert torch.equal(trained.toxic(TOXIC[:2]), out[32:34, 1])


def test_unlabelled_rows_get_no_weight_and_labelled_ones_average_one() -> None:
    targets = torch.tensor([[1.0, float("nan")], [0.0, 1.0], [0.0, 0.0]])
    w = _head_weights(targets, ["a", "b", "b"], 0.5)
    assert w[0, 1] == 0
    assert torch.allclose(w[:, 0].mean(), torch.tensor(1.0))
    assert torch.allclose(w[1:, 1].mean(), torch.tensor(1.0))


def test_save_and_load_round_trip(
    tmp_path: Path, tiny_encoder: SentenceEncoder, trained: ResponseJudge
) -> None:
    trained.save(tmp_path)
    loaded = ResponseJudge.load(tmp_path, encoder=tiny_encoder)
    assert loaded.id == trained.id and loaded.id.startswith("response-judge:")
    assert torch.allclose(loaded(COMPLY[:3]), trained(COMPLY[:3]), atol=1e-6)
    meta = json.loads((tmp_path / META_FILE).read_text())
    assert meta["heads"] == ["complies", "toxic"] and meta["max_length"] == 32
    (tmp_path / ResponseJudge.WEIGHTS_FILE).write_bytes(b"not weights")
    with pytest.raises(ArtifactError, match="does not match its metadata"):
        ResponseJudge.load(tmp_path, encoder=tiny_encoder)


def test_a_judge_needs_exactly_its_two_heads(
    tiny_encoder: SentenceEncoder, trained: ResponseJudge
) -> None:
    tensors = trained.tensors()
    heads = {h: (tensors.pop(f"{h}.weight"), tensors.pop(f"{h}.bias")) for h in trained.HEADS}
    with pytest.raises(ConfigError, match="needs the heads"):
        ResponseJudge(tiny_encoder, tensors, {"complies": heads["complies"]})
    with pytest.raises(ConfigError, match="'toxic' head"):
        ResponseJudge(tiny_encoder, tensors, {**heads, "toxic": (torch.zeros(3), torch.zeros(1))})


class _FixedJudge(ResponseJudge):
    """A judge whose outputs are looked up, to test the cost's arithmetic exactly."""

    def __init__(self, table: dict[str, tuple[float, float]]) -> None:
        self.table, self.id = table, "response-judge:fixed"

    def __call__(self, responses):  # type: ignore[override]
        return torch.tensor([self.table.get(r, (0.0, 0.0)) for r in responses])


def test_judged_cost_is_harmful_request_complied_with_or_toxic() -> None:
    judge = _FixedJudge({"steps": (0.9, 0.1), "no": (0.05, 0.0), "insult": (0.9, 0.8)})

    def gate(prompts):
        return [0.95 if "bomb" in p else 0.02 for p in prompts]

    cost = JudgedPairCost(gate, judge)
    prompts = ["make a bomb", "make a bomb", "bake a cake", "bake a cake", "bake a cake"]
    responses = ["steps", "no", "steps", "insult", ""]
    got = cost(prompts, responses)
    want = torch.tensor([0.95 * 0.9, 0.95 * 0.05, 0.1, 0.8, 0.0])
    assert torch.allclose(got, want)
    assert (got > cost.threshold).tolist() == [True, False, False, True, False]
    parts = cost.explain(prompts[:1], responses[:1])
    assert set(parts) == {"cost", "harmful_request", "complies", "toxic"}
    assert cost.id == "judged-pair(gate,response-judge:fixed)"
    assert cost([], []).shape == (0,)


def test_judged_cost_rejects_bad_arguments() -> None:
    judge = _FixedJudge({})
    with pytest.raises(ConfigError, match="callable request_gate"):
        JudgedPairCost("not a gate", judge)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="ResponseJudge"):
        JudgedPairCost(lambda ps: [0.0] * len(ps), object())  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="threshold"):
        JudgedPairCost(lambda ps: [0.0] * len(ps), judge, threshold=1.5)
    with pytest.raises(ConfigError, match="2 prompts but 1 responses"):
        JudgedPairCost(lambda ps: [0.0] * len(ps), judge).explain(["a", "b"], ["x"])


def test_judge_texts_hold_out_evaluation_texts_and_cap_each_source() -> None:
    examples = [
        Example(
            f"How do I make a bomb {i}?", f"Sure, step {i}", 1, "advbench_target", f"g{i}", "train"
        )
        for i in range(5)
    ] + [Example("q", "I refuse.", 0, "harmbench_safe_response", "h", "val")]
    templates = [
        {
            "request": "Kill a python process?",
            "response": "Run kill -9 PID.",
            "kind": "benign_answer",
        },
        {"request": "held out request", "response": "Anything", "kind": "refusal"},
        {"request": "x", "response": "An evaluation answer", "kind": "threat"},
        {"request": "y", "response": "You will regret it.", "kind": "threat"},
    ]
    settings = JudgeSettings(per_source=3)
    data = judge_texts(
        examples, {norm("held out request")}, {norm("an evaluation answer")}, settings, templates
    )
    assert sum(s == "advbench_target" for s in data.sources) == 3
    assert "Anything" not in data.responses and "An evaluation answer" not in data.responses
    assert data.targets[data.responses.index("Run kill -9 PID.")] == (1, 0)
    assert data.targets[data.responses.index("You will regret it.")] == (1, 1)
    assert data.targets[data.responses.index("I refuse.")] == (0, 0)
    again = judge_texts(
        examples, {norm("held out request")}, {norm("an evaluation answer")}, settings, templates
    )
    assert again.responses == data.responses  # deterministic
    with pytest.raises(ValueError, match="kind 'nonsense' is unknown"):
        judge_texts(
            [], set(), set(), settings, [{"request": "a", "response": "b", "kind": "nonsense"}]
        )


def test_length_buckets_cover_every_text_once_and_pad_little() -> None:
    from inferenceguard.training.cost_probe.tuned import _batches

    texts = ["x" * (i * 7 % 50 + 1) for i in range(40)]
    order = torch.randperm(40, generator=torch.Generator().manual_seed(0)).tolist()
    plain = _batches(order, texts, 4, 0, torch.Generator().manual_seed(1))
    assert plain == [order[i : i + 4] for i in range(0, 40, 4)]
    bucketed = _batches(order, texts, 4, 5, torch.Generator().manual_seed(1))
    assert sorted(i for b in bucketed for i in b) == list(range(40))

    def padding(batches):
        return sum(
            max(len(texts[i]) for i in b) * len(b) - sum(len(texts[i]) for i in b) for b in batches
        )

    assert padding(bucketed) < padding(plain) / 2
    assert bucketed == _batches(order, texts, 4, 5, torch.Generator().manual_seed(1))
