"""Shared by the cookbook scripts: the ``--tiny`` switch, model construction, report printing.

Every example runs the same code in both modes; only what :func:`load_lm` (and, where a
script says so, a scorer) builds differs:

* default mode: the embedded SmolLM2-135M-Instruct, offline;
* ``--tiny`` (or ``INFERENCEGUARD_COOKBOOK_TINY=1``): a random 2-layer Llama with the same
  tokenizer and chat template, so a script finishes in seconds. Its text is gibberish; it
  exists so that ``tests/cookbook`` can run every example and keep it from rotting.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from inferenceguard import GuardConfig, InferenceGuard, LocalLM, SafetyReport, build_guard
from inferenceguard.testing import ScriptedLM, tiny_random_lm

TINY_ENV = "INFERENCEGUARD_COOKBOOK_TINY"


def parse_args(
    description: str | None,
    argv: Sequence[str] | None = None,
    parser: argparse.ArgumentParser | None = None,
) -> argparse.Namespace:
    """Parse the command line; every script accepts ``--tiny`` and ``--threads``.

    ``args.tiny`` is also set by ``INFERENCEGUARD_COOKBOOK_TINY=1``. In tiny mode torch
    uses one thread unless ``--threads`` says otherwise: a tiny model's forwards take about
    a millisecond, and thread start-up would dominate them.
    """
    parser = parser or argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--tiny",
        action="store_true",
        help=f"use a tiny random model instead of the embedded SmolLM2 (or set {TINY_ENV}=1)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads; 1 is much faster on a machine busy with other work",
    )
    args = parser.parse_args(argv)
    args.tiny = args.tiny or os.environ.get(TINY_ENV, "").strip() in {"1", "true", "yes"}
    threads = args.threads or (1 if args.tiny else None)
    if threads:
        torch.set_num_threads(threads)
    return args


def load_lm(tiny: bool, source: str | None = None) -> LocalLM:
    """The base model: ``source`` (default: the embedded SmolLM2-135M-Instruct), or the
    tiny random stand-in."""
    if not tiny:
        return LocalLM.from_pretrained(source)  # None/"default": the embedded model, offline
    from transformers import AutoTokenizer

    from inferenceguard import embedded_lm_dir

    # SmolLM2's own tokenizer and chat template: rendering and tool calls stay real.
    return tiny_random_lm(AutoTokenizer.from_pretrained(embedded_lm_dir()))


def load_guard(tiny: bool, config: GuardConfig | None = None) -> InferenceGuard:
    """The embedded defaults (model, default cost and reward, shipped critic), or the
    same cost and reward models around the tiny model (no critic: it is SmolLM2's)."""
    if not tiny:
        return InferenceGuard.from_defaults(config=config)
    return build_guard(model=load_lm(tiny=True), critic=None, config=config)


def save_tiny_scorers(folder: str | os.PathLike[str]) -> dict[str, str]:
    """Random stand-ins for real scorer checkpoints, saved like the real ones (``--tiny``).

    Each is a 2-layer model (hidden 32) written with ``save_pretrained``, so the loaders
    read it by path exactly as they read a download:

    * ``"guard"``: a ``LlamaForCausalLM`` with SmolLM2's tokenizer and a chat template that
      ends where a Llama Guard writes its verdict (``safe`` / ``unsafe``);
    * ``"toxicity"``: a ``BertForSequenceClassification`` with labels non-toxic / toxic;
    * ``"reward"``: a ``BertForSequenceClassification`` with one output (a reward head).

    The classifiers use MiniLM's BERT tokenizer (``[CLS] prompt [SEP] response [SEP]``),
    like the BERT/RoBERTa/DeBERTa checkpoints they stand in for.

    Returns:
        The folder of each, by name.
    """
    from transformers import (
        AutoTokenizer,
        BertConfig,
        BertForSequenceClassification,
        LlamaConfig,
        LlamaForCausalLM,
    )

    from inferenceguard import embedded_lm_dir
    from inferenceguard.scorers.embedding import default_encoder_path

    llama_tokenizer = AutoTokenizer.from_pretrained(embedded_lm_dir())
    llama_tokenizer.chat_template = (
        "Task: is the assistant's last message unsafe?\n"
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}Verdict:"
    )
    bert_tokenizer = AutoTokenizer.from_pretrained(default_encoder_path())
    small = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2}

    def bert(**labels: Any) -> BertForSequenceClassification:
        config = BertConfig(
            vocab_size=len(bert_tokenizer), num_attention_heads=2, **small, **labels
        )
        return BertForSequenceClassification(config)

    torch.manual_seed(0)
    llama = LlamaConfig(
        vocab_size=len(llama_tokenizer),
        num_attention_heads=4,
        num_key_value_heads=2,
        pad_token_id=llama_tokenizer.pad_token_id,
        **small,
    )
    checkpoints = {
        "guard": (LlamaForCausalLM(llama), llama_tokenizer),
        "toxicity": (bert(id2label={0: "non-toxic", 1: "toxic"}), bert_tokenizer),
        "reward": (bert(num_labels=1), bert_tokenizer),
    }
    paths = {}
    for name, (model, tokenizer) in checkpoints.items():
        path = os.path.join(folder, f"tiny-{name}")
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)
        paths[name] = path
    return paths


class ScriptedTurns(ScriptedLM):
    """A model whose decisions are scripted: it writes ``turns[i]`` on its i-th request.

    The base model still runs every forward pass and the guarded search still samples,
    scores and verifies every block; only the logits are forced, so the cost model judges
    exactly the text below. Agents need this with a 135M model, which cannot be relied on
    to write a valid tool call.
    """

    def __init__(self, base: LocalLM, turns: Sequence[str]) -> None:
        super().__init__(base, turns[0])
        self.turns = list(turns)
        self.requests = 0

    def prefill(self, prompt_ids: Sequence[int]) -> Any:
        # Each request prefills its prompt exactly once: that is where a turn begins.
        self.set_script(self.turns[min(self.requests, len(self.turns) - 1)])
        self.requests += 1
        return super().prefill(prompt_ids)


def format_report(report: SafetyReport | Mapping[str, Any]) -> str:
    """One line from a ``SafetyReport`` (or its dict): the proof first, then the work done."""
    if isinstance(report, SafetyReport):
        report = report.model_dump()
    return (
        f"safe={report['safe']} (verified cost {report['cost']:.3f} <= budget "
        f"{report['budget']:.3f}), exhausted={report['exhausted']}, steps={report['steps']}, "
        f"candidates={report['candidates_sampled']}, resample rounds={report['resample_rounds']}, "
        f"critic_used={report['critic_used']}, {report['wall_time_s']:.1f} s"
    )
