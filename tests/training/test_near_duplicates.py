"""Screening new training texts for near-copies of held-out text."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest
import torch

from inferenceguard.training.cost_probe.data import Example
from inferenceguard.training.cost_probe.judge import JUDGE_TEMPLATES
from inferenceguard.training.cost_probe.near_duplicates import (
    HeldOutTexts,
    held_out_texts,
    near_duplicates,
    screen_gate_prompts,
    screen_judge_texts,
)

REPO = Path(__file__).resolve().parents[2]


class BagOfWords:
    """A stand-in encoder: word counts over a fixed vocabulary, so cosines are known."""

    def __init__(self, vocabulary: str) -> None:
        self.words = vocabulary.split()

    def encode(self, texts):
        rows = []
        for text in texts:
            tokens = re.findall(r"[a-z]+", text.lower())
            rows.append([float(tokens.count(w)) for w in self.words] + [1e-6])
        return torch.tensor(rows)


ENC = BagOfWords("kill lobster humanely python process cake bake oven stop")


def test_a_reworded_text_is_found_and_a_new_one_is_not() -> None:
    refs = ["kill a lobster humanely", "bake a cake in the oven"]
    texts = ["humanely kill the lobster", "stop a python process", "kill a python process"]
    found = near_duplicates(texts, refs, ENC, threshold=0.8)
    # Only the first is a copy (cosine 1 with the first reference); the third shares one
    # word of three with it (cosine 1/3), below the threshold.
    assert [(i, j) for i, j, _ in found] == [(0, 0)]
    assert found[0][2] == pytest.approx(1.0, abs=1e-6)


def test_each_text_is_reported_once_against_its_nearest_reference() -> None:
    refs = ["kill lobster", "kill lobster humanely"]
    found = near_duplicates(["kill lobster humanely"], refs, ENC, threshold=0.5)
    assert [(i, j) for i, j, _ in found] == [(0, 1)]


def test_chunks_do_not_change_the_answer() -> None:
    refs = ["kill a lobster humanely", "bake a cake"]
    texts = ["bake cake", "python", "lobster kill humanely", "oven"] * 5
    assert near_duplicates(texts, refs, ENC, chunk=3) == near_duplicates(texts, refs, ENC)


@pytest.mark.parametrize("threshold", [0.0, -0.1, 1.5, float("nan")])
def test_a_threshold_outside_zero_one_is_refused(threshold: float) -> None:
    with pytest.raises(ValueError, match="threshold"):
        near_duplicates(["a"], ["b"], ENC, threshold=threshold)


def test_held_out_texts_hold_evaluation_sets_and_the_probes_held_out_pairs() -> None:
    def ex(prompt: str, response: str, split: str) -> Example:
        return Example(prompt, response, 0, "src", f"g:{prompt}", split)

    examples = [
        ex("p1", "trained on", "train"),
        ex("p2", "validated", "val"),
        ex("p3", "tested", "test"),
        ex("p1", "tested too", "test"),  # p1 is also a training request: not held out
    ]
    evals = {"handwritten": [ex("eval request", "eval response", "handwritten")]}
    held = held_out_texts(examples, evals)
    assert held.requests == ["eval request", "p2", "p3"]
    assert held.responses == ["eval response", "tested", "tested too", "validated"]


def test_a_judge_text_is_dropped_for_its_request_or_its_response() -> None:
    held = HeldOutTexts(
        requests=["kill a lobster humanely"], responses=["bake the cake in the oven"]
    )
    items = [
        {"request": "how to kill a lobster humanely", "response": "stop"},
        {"request": "python", "response": "bake cake oven"},
        {"request": "python process", "response": "stop the python process"},
    ]
    found = screen_judge_texts(items, held, ENC)
    assert [(n.index, n.field) for n in found] == [(0, "request"), (1, "response")]
    assert found[0].held_out == "kill a lobster humanely"


def test_a_gate_prompt_is_screened_against_held_out_requests_only() -> None:
    held = HeldOutTexts(requests=["stop python process"], responses=["bake a cake"])
    items = [{"prompt": "bake cake"}, {"prompt": "stop the python process"}]
    assert [n.index for n in screen_gate_prompts(items, held, ENC)] == [1]


@pytest.mark.slow
def test_the_screening_command_drops_paraphrases_of_held_out_requests(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("screen", REPO / "benchmarks/screen_new_texts.py")
    assert spec is not None and spec.loader is not None
    screen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(screen)
    shipped = JUDGE_TEMPLATES.read_bytes()
    batch = tmp_path / "new.json"
    texts = [
        # A reworded request of the hand-written benign set ("kill a lobster humanely").
        {
            "request": "What's the most humane way to kill a live lobster before cooking it?",
            "response": "Chill it first, then split the head quickly.",
            "kind": "benign_answer",
        },
        {
            "request": "Any tips for repotting a fern?",
            "response": "Pick a pot one size up.",
            "kind": "benign_answer",
        },
        {"request": "Hi", "response": "Hello!", "kind": "not_a_kind"},
    ]
    batch.write_text(json.dumps({"texts": texts}), encoding="utf-8")
    assert screen.main([str(batch), "--for", "judge"]) == 0
    kept = json.loads((tmp_path / "new.kept.json").read_text(encoding="utf-8"))["texts"]
    assert [t["request"] for t in kept] == ["Any tips for repotting a fern?"]
    assert JUDGE_TEMPLATES.read_bytes() == shipped  # without --append the package is untouched
