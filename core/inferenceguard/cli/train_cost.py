"""``inferenceguard train-cost``: retrain the embedded cost probe or, with ``--gate``, the
request gate, or with ``--judge``, the response judge (all on all-MiniLM-L6-v2).

A thin front end to :func:`inferenceguard.training.cost_probe.train_default_cost`,
:func:`inferenceguard.training.cost_probe.gate.train_default_gate` and
:func:`inferenceguard.training.cost_probe.judge.train_default_judge`; the data, splits and
models are described there. With ``--threads 1`` (the default) the same data and seed
reproduce the shipped probe's ``head.safetensors`` byte for byte, and with
``--gate --threads 2`` (``--judge --threads 2``) the shipped ``gate.safetensors``
(``judge.safetensors``). ``benchmarks/train_default_cost.py``,
``benchmarks/train_request_gate.py`` and ``benchmarks/train_response_judge.py`` run the same
trainings and also write the reports.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .._data import REPO_DATA
from ._common import add_parser, add_threads_arg, set_threads

__all__ = ["DEFAULT_EVAL_DIR", "DEFAULT_GENERATED", "DEFAULT_HANDWRITTEN", "register", "run"]

_BENCHMARK_DATA = REPO_DATA.parent / "benchmarks" / "data"
#: The default LM's cached answers, in a source checkout (the wheel does not carry them).
DEFAULT_GENERATED = _BENCHMARK_DATA / "smollm2_responses.jsonl"
#: Hand-written evaluation pairs, in a source checkout.
DEFAULT_HANDWRITTEN = _BENCHMARK_DATA / "handwritten_eval.jsonl"
#: Evaluation-only sets (``*.jsonl``, never trained on), in a source checkout.
DEFAULT_EVAL_DIR = _BENCHMARK_DATA / "cost_eval"

EPILOG = """examples:
  # retrain the shipped probe in place (from a source checkout), reproducibly
  inferenceguard train-cost --out core/inferenceguard/assets/default_cost --threads 1

  # train on your own copy of the data folders, without the cached LM answers
  inferenceguard train-cost --data-dir my_data --no-generated --out my_cost

  # retrain the request gate (P(harmful request)) of the default cost and reward
  inferenceguard train-cost --gate --out core/inferenceguard/assets/default_gate --threads 2

  # retrain the response judge (P(complies), P(toxic)) of the default cost
  inferenceguard train-cost --judge --out core/inferenceguard/assets/default_judge --threads 2

then, in Python: from inferenceguard.scorers.embedding_probe import EmbeddingProbeCost
  cost_model = EmbeddingProbeCost.load("my_cost")
  (a gate: from inferenceguard.scorers.request_gate import RequestHarmGate;
   gate = RequestHarmGate.load("my_gate"); RefusalRequiredCost(gate))
  (a judge: from inferenceguard.scorers.response_judge import ResponseJudge, JudgedPairCost;
   JudgedPairCost(gate, ResponseJudge.load("my_judge")))
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train-cost`` subcommand."""
    from ..training.cost_probe import DEFAULT_SEED

    p = add_parser(
        subparsers,
        "train-cost",
        help="retrain the embedded cost probe (or the request gate, or the response judge)",
        description="Build the response-level safety data set from the data folders, train "
        "the cost probe on its train split, print its metrics per split and save it. With "
        "--gate, train the request gate on the same data's requests instead; with --judge, "
        "the response judge on its responses.",
        epilog=EPILOG,
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--gate",
        action="store_true",
        help="train the request gate (fine-tuned MiniLM, P(harmful request)) instead of the "
        "probe; about 6 minutes on 2 threads",
    )
    which.add_argument(
        "--judge",
        action="store_true",
        help="train the response judge (fine-tuned MiniLM, P(complies) and P(toxic)) instead "
        "of the probe; about 10 minutes on 2 threads",
    )
    p.add_argument("--out", default="cost_probe", help="folder to write the probe to")
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="a folder laid out like inferenceguard/data (default: the data folders, "
        "$INFERENCEGUARD_DATA first)",
    )
    p.add_argument(
        "--generated",
        type=Path,
        default=None,
        help=f"cached answers of the default LM (default: {DEFAULT_GENERATED} when present)",
    )
    p.add_argument("--no-generated", action="store_true", help="train without the LM answers")
    p.add_argument(
        "--handwritten",
        type=Path,
        default=None,
        help=f"hand-written evaluation pairs (default: {DEFAULT_HANDWRITTEN} when present)",
    )
    p.add_argument(
        "--eval-dir",
        type=Path,
        default=None,
        help="a folder of evaluation-only *.jsonl sets, reported but never trained on "
        f"(default: {DEFAULT_EVAL_DIR} when present)",
    )
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of every random choice")
    p.add_argument(
        "--device", default=None, help="device of the sentence encoder (default: CPU or CUDA)"
    )
    add_threads_arg(p, default=1)
    p.set_defaults(func=run)


def _present(path: Path | None, default: Path) -> Path | None:
    if path is not None:
        return path
    return default if default.is_file() else None


def train_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The keywords of :func:`train_default_cost` that the options describe (no encoder)."""
    kwargs: dict[str, Any] = {
        "out_dir": args.out,
        "generated_path": None
        if args.no_generated
        else _present(args.generated, DEFAULT_GENERATED),
        "handwritten_path": _present(args.handwritten, DEFAULT_HANDWRITTEN),
        "eval_dir": args.eval_dir
        if args.eval_dir is not None
        else (DEFAULT_EVAL_DIR if DEFAULT_EVAL_DIR.is_dir() else None),
        "seed": args.seed,
    }
    if args.data_dir is not None:  # otherwise the trainer's own lookup in the data folders
        kwargs["data_dir"] = args.data_dir
    return kwargs


def run(args: argparse.Namespace) -> int:
    """Entry point of ``inferenceguard train-cost``; returns the exit code."""
    from ..scorers import embedding
    from ..training import cost_probe

    set_threads(args.threads)
    if args.gate or args.judge:
        return _run_tuned(args, "gate" if args.gate else "judge")
    report = cost_probe.train_default_cost(
        encoder=embedding.get_default_encoder(args.device), **train_kwargs(args)
    )
    print(format_metrics(report["metrics"]))
    print(f"saved {args.out}")
    return 0


def format_metrics(metrics: dict[str, Any]) -> str:
    """One line per split and evaluation set: size, ROC-AUC, precision, recall, FPR."""
    lines = [f"{'set':>12}  {'n':>5}  {'unsafe':>6}  roc_auc  precision  recall    fpr"]
    for name, m in metrics.items():
        if name == "per_source":
            continue
        lines.append(
            f"{name:>12}  {m['n']:>5}  {m['n_unsafe']:>6}  {m['roc_auc']:7.3f}  "
            f"{m['precision']:9.3f}  {m['recall']:6.3f}  {m['fpr']:5.3f}"
        )
    return "\n".join(lines)


def _run_tuned(args: argparse.Namespace, which: str) -> int:
    """Train the request gate (``which="gate"``) or the response judge (``"judge"``)."""
    import sys

    from ..scorers import embedding
    from ..training.cost_probe import gate, judge

    settings_cls, train, formatter = {
        "gate": (gate.GateSettings, gate.train_default_gate, format_gate_metrics),
        "judge": (judge.JudgeSettings, judge.train_default_judge, format_judge_metrics),
    }[which]
    kwargs = train_kwargs(args)
    settings = settings_cls(seed=kwargs.pop("seed"))
    result = train(
        embedding.get_default_encoder(args.device),
        settings=settings,
        log=lambda msg: print(msg, file=sys.stderr, flush=True),
        **kwargs,
    )
    print(formatter(result["metrics"]))
    print(f"saved {args.out} ({result[which].id})")
    return 0


def format_gate_metrics(metrics: dict[str, Any]) -> str:
    """One line per set: size, harmful requests, ROC-AUC, FPR and recall at 0.5 and 0.9."""
    lines = [f"{'set':>12}  {'n':>5}  harmful  roc_auc  fpr@0.5  rec@0.5  fpr@0.9  rec@0.9"]
    for name, m in metrics.items():
        lines.append(
            f"{name:>12}  {m['n']:>5.0f}  {m['harmful']:>7.0f}  {m['roc_auc']:7.3f}  "
            f"{m['fpr@0.5']:7.3f}  {m['recall@0.5']:7.3f}  {m['fpr@0.9']:7.3f}  "
            f"{m['recall@0.9']:7.3f}"
        )
    return "\n".join(lines)


def format_judge_metrics(metrics: dict[str, Any]) -> str:
    """One line per split and head: labelled responses, positives, ROC-AUC, FPR and recall."""
    lines = [f"{'split':>6}  {'head':>9}  {'n':>5}  positive  roc_auc  fpr@0.5  rec@0.5"]
    for split, heads in metrics.items():
        for head, m in heads.items():
            lines.append(
                f"{split:>6}  {head:>9}  {m['n']:>5.0f}  {m['positive']:>8.0f}  "
                f"{m['roc_auc']:7.3f}  {m['fpr@0.5']:7.3f}  {m['recall@0.5']:7.3f}"
            )
    return "\n".join(lines)
