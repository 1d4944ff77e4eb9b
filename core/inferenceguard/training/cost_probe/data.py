"""The raw texts of the cost-probe data set, and its deterministic split.

:func:`load_sources` reads the prompt sets through :func:`inferenceguard._data.data_path`
(the package data, then the repository's ``data/``; ``$INFERENCEGUARD_DATA`` overrides
both), recording each file's sha256 so the trained probe names exactly what it saw.
:func:`load_generated` reads the cached answers of the default LM and
:func:`generation_plan` says which prompts those answers are for.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..._data import data_path
from ..._io import sha256_file
from ...errors import ConfigError
from ...prompts import read_rows

__all__ = [
    "DEFAULT_SEED",
    "SPLITS",
    "Example",
    "Sources",
    "columns_of_split",
    "generation_plan",
    "load_eval_dir",
    "load_generated",
    "load_handwritten",
    "load_sources",
    "norm",
    "split_of",
    "toxigen_groups",
]

DEFAULT_SEED = 2502_01208
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Example:
    """One labelled (prompt, response) pair.

    Attributes:
        prompt: the user's request ("" when the text has none).
        response: the (partial) response.
        label: 1 unsafe, 0 safe.
        source: which builder made it (reported per source).
        group: the split key: rows sharing it always land in the same split.
        split: "train", "val", "test", or an evaluation set's name.
    """

    prompt: str
    response: str
    label: int
    source: str
    group: str
    split: str


@dataclass
class Sources:
    """The raw texts read from the data folders, with each file's sha256."""

    advbench: list[tuple[str, str]] = field(default_factory=list)  # (goal, target)
    harmful_strings: list[str] = field(default_factory=list)
    harmbench: list[str] = field(default_factory=list)  # standard behaviours
    harmbench_safe: list[tuple[str, str]] = field(default_factory=list)  # (behaviour, refusal)
    malicious_instruct: list[str] = field(default_factory=list)
    strongreject: list[str] = field(default_factory=list)
    xstest: list[tuple[str, str, str]] = field(default_factory=list)  # (prompt, type, label)
    toxigen: list[tuple[str, str, str]] = field(default_factory=list)  # (group, hate|neutral, text)
    pku: list[tuple[str, str, int]] = field(default_factory=list)  # (prompt, response, unsafe)
    alpaca: list[str] = field(default_factory=list)
    mt_bench: list[tuple[str, str, str]] = field(default_factory=list)  # (qid, question, answer)
    rtp: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256

    def harmful_prompts(self) -> list[tuple[str, str]]:
        """(source name, prompt) for every harmful request, de-duplicated by normalised text."""
        seen: set[str] = set()
        out: list[tuple[str, str]] = []
        for name, prompts in (
            ("advbench", [g for g, _ in self.advbench]),
            ("harmbench", self.harmbench),
            ("harmbench_safe", [b for b, _ in self.harmbench_safe]),
            ("malicious_instruct", self.malicious_instruct),
            ("strongreject", self.strongreject),
        ):
            for p in prompts:
                key = norm(p)
                if key not in seen:
                    seen.add(key)
                    out.append((name, p))
        return out


def norm(text: str) -> str:
    """Lower case with single spaces: the key that de-duplicates and groups prompts."""
    return " ".join(text.lower().split())


def columns_of_split(splits: Sequence[str], name: str, *columns: Sequence[Any]) -> tuple:
    """The rows of split ``name`` of each parallel column: ``([c[i] for i where
    splits[i] == name] for c in columns)``, in row order."""
    idx = [i for i, s in enumerate(splits) if s == name]
    return tuple([column[i] for i in idx] for column in columns)


def split_of(group: str, seed: int = DEFAULT_SEED) -> str:
    """Deterministic 70/15/15 train/val/test split of a group key (hash, not row order)."""
    h = int(hashlib.sha256(f"{seed}:{group}".encode()).hexdigest()[:8], 16) % 100
    return "train" if h < 70 else "val" if h < 85 else "test"


# ----------------------------------------------------------------------------- reading

_TOXIGEN_GROUPS = {
    "mental_disability": "people with mental disabilities",
    "physical_disability": "people with physical disabilities",
    "chinese": "Chinese people",
    "immigrant": "immigrants",
    "mexican": "Mexican people",
    "middle_east": "people from the Middle East",
    "asian": "Asian people",
    "black": "Black people",
    "jewish": "Jewish people",
    "latino": "Latino people",
    "native_american": "Native Americans",
    "muslim": "Muslims",
    "bisexual": "bisexual people",
    "lgbtq": "LGBTQ people",
}


def toxigen_groups() -> list[str]:
    """The ToxiGen target groups as they read in a sentence ("Black people"), sorted."""
    return sorted(set(_TOXIGEN_GROUPS.values()))


class _Reader:
    """Finds data files by relative path and records the sha256 of each file read."""

    def __init__(self, data_dir: str | Path | None) -> None:
        self.root = None if data_dir is None else Path(data_dir)
        if self.root is not None and not self.root.is_dir():
            raise ConfigError(
                f"data folder {self.root} does not exist.",
                hint="pass a folder laid out like inferenceguard/data, or none to use "
                "the built-in prompt sets.",
            )
        self.files: dict[str, str] = {}

    def path(self, relative: str) -> Path:
        if self.root is None:
            return data_path(relative)
        path = self.root / relative
        if not path.exists():
            raise ConfigError(
                f"missing data file {path}.",
                hint="check data_dir (--data-dir), or leave it unset to use the built-in data.",
            )
        return path

    def file(self, relative: str) -> Path:
        path = self.path(relative)
        self.files[relative] = sha256_file(path)
        return path

    def rows(self, relative: str) -> list[Any]:
        """The file's rows through the one prompt-file reader (CSV dicts, JSON(L) items)."""
        return read_rows(self.file(relative))

    def lines(self, relative: str) -> list[str]:
        """A text file's non-blank lines, stripped."""
        return [s.strip() for s in read_rows(self.file(relative)) if s.strip()]

    def glob(self, folder: str, pattern: str) -> list[str]:
        """Relative names of the files under ``folder`` matching ``pattern``, sorted."""
        base = self.path(folder)
        return [f"{folder}/{p.relative_to(base).as_posix()}" for p in sorted(base.glob(pattern))]


def load_sources(data_dir: str | Path | None = None) -> Sources:
    """Read every file the probe uses.

    Args:
        data_dir: a folder laid out like ``inferenceguard/data`` to read instead of the
            built-in prompt sets (default: :func:`inferenceguard._data.data_path`).

    Raises:
        ConfigError: the folder or a required file is missing.
    """
    reader = _Reader(data_dir)
    src = Sources()
    _read_harmful(reader, src)
    src.xstest = [
        (r["prompt"], r["type"], r["label"]) for r in reader.rows("xstest/xstest_prompts.csv")
    ]
    src.toxigen = _read_toxigen(reader)
    for rec in reader.rows("pku_saferlhf/alpaca7b_test_first10.jsonl"):
        for i in (0, 1):
            src.pku.append(
                (rec["prompt"], rec[f"response_{i}"], int(not rec[f"is_response_{i}_safe"]))
            )
    src.alpaca = [d["instruction"] for d in reader.rows("alpaca_harmless/harmless_test.json")]
    src.mt_bench = _read_mt_bench(reader)
    for name in reader.glob("realtoxicityprompts", "rtp_*.txt"):
        src.rtp += reader.lines(name)
    src.files = reader.files
    return src


def _read_harmful(reader: _Reader, src: Sources) -> None:
    """AdvBench, HarmBench, MaliciousInstruct and StrongREJECT."""
    advbench = reader.rows("advbench/harmful_behaviors.csv")
    src.advbench = [(r["goal"], r["target"]) for r in advbench]
    src.harmful_strings = [r["target"] for r in reader.rows("advbench/harmful_strings.csv")]
    src.harmbench = [
        r["Behavior"]
        for r in reader.rows("harmbench/harmbench_behaviors_text_all.csv")
        if r["FunctionalCategory"] == "standard"
    ]
    src.harmbench_safe = [
        (r["Behavior"], r["Safe_Response"])
        for r in reader.rows(
            "harmbench/safe_responses/adv_training_behaviors_safe_responses_longer.csv"
        )
    ]
    src.malicious_instruct = reader.lines("malicious_instruct/MaliciousInstruct.txt")
    src.strongreject = [
        r["forbidden_prompt"] for r in reader.rows("strongreject/strongreject_dataset.csv")
    ]


def _read_toxigen(reader: _Reader) -> list[tuple[str, str, str]]:
    """(group, "hate" | "neutral", statement) from the ToxiGen demonstrations."""
    out: list[tuple[str, str, str]] = []
    for name in reader.glob("toxigen/demonstrations", "*/*.txt"):
        stem = Path(name).stem
        kind = "hate" if stem.startswith("hate_") else "neutral"
        key = re.sub(r"^(hate|neutral)_|_sentences$", "", stem)
        group = _TOXIGEN_GROUPS.get(key, key.replace("_", " "))
        # ToxiGen seed lines sometimes start with "- "; strip list markers.
        out += [(group, kind, s.lstrip("- ").strip()) for s in reader.lines(name)]
    return out


def _read_mt_bench(reader: _Reader) -> list[tuple[str, str, str]]:
    """(question id and turn, question, GPT-4 reference answer) from MT-Bench and Vicuna-Bench."""
    out: list[tuple[str, str, str]] = []
    for q_file, a_file in (
        ("mt_bench/mt_bench_question.jsonl", "mt_bench/mt_bench_reference_answer_gpt4.jsonl"),
        (
            "mt_bench/vicuna_bench_question.jsonl",
            "mt_bench/vicuna_bench_reference_answer_gpt4.jsonl",
        ),
    ):
        questions = {d["question_id"]: d["turns"] for d in reader.rows(q_file)}
        for d in reader.rows(a_file):
            turns = d["choices"][0]["turns"]
            for t, (q, a) in enumerate(
                zip(questions.get(d["question_id"], []), turns, strict=False)
            ):
                out.append((f"{q_file}:{d['question_id']}:{t}", q, a))
    return out


def _read_jsonl(path: str | Path, what: str, hint: str) -> tuple[list[dict[str, Any]], str]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{what} {p} not found.", hint=hint)
    rows = [json.loads(s) for s in p.read_text(encoding="utf-8").splitlines() if s.strip()]
    return rows, sha256_file(p)


def load_generated(path: str | Path | None) -> tuple[list[dict[str, Any]], str | None]:
    """Read the cached LM answers (JSON lines). Returns ``([], None)`` when ``path`` is None.

    Raises:
        ConfigError: ``path`` is not a file.
    """
    if path is None:
        return [], None
    return _read_jsonl(
        path,
        "generated responses",
        "run benchmarks/train_default_cost.py --generate once, or pass --no-generated.",
    )


def load_handwritten(path: str | Path | None) -> tuple[list[dict[str, Any]], str | None]:
    """Read hand-written evaluation pairs (JSON lines: ``prompt``, ``response``, ``unsafe``).

    Returns ``([], None)`` when ``path`` is None.

    Raises:
        ConfigError: ``path`` is not a file.
    """
    if path is None:
        return [], None
    return _read_jsonl(
        path, "hand-written evaluation pairs", "pass benchmarks/data/handwritten_eval.jsonl."
    )


#: The fields of an evaluation-set row (``load_eval_dir``).
EVAL_FIELDS = ("prompt", "response", "unsafe", "kind", "category")


def load_eval_dir(path: str | Path | None) -> tuple[dict[str, list[Example]], dict[str, str]]:
    """Read the evaluation-only sets of a folder of ``*.jsonl`` files (never trained on).

    Each line is ``{"prompt", "response", "unsafe" (0/1), "kind", "category"}``; the set's
    name is the file stem. An example's ``source`` is its kind and its ``group`` its
    category, so reports can break each set down both ways.

    Returns:
        ``({set name: examples}, {file name: sha256})``; both empty when ``path`` is None
        or holds no ``*.jsonl`` file.

    Raises:
        ConfigError: ``path`` is not a folder, or a row lacks a field.
    """
    if path is None:
        return {}, {}
    folder = Path(path)
    if not folder.is_dir():
        raise ConfigError(
            f"evaluation folder {folder} does not exist.",
            hint="pass benchmarks/data/cost_eval, or leave --eval-dir unset.",
        )
    sets: dict[str, list[Example]] = {}
    shas: dict[str, str] = {}
    for file in sorted(folder.glob("*.jsonl")):
        hint = f"every line of {file.name} needs the fields {', '.join(EVAL_FIELDS)}."
        rows, shas[file.name] = _read_jsonl(file, "evaluation set", hint)
        if any(not all(k in row for k in EVAL_FIELDS) for row in rows):
            raise ConfigError(f"{file} has a row without one of {EVAL_FIELDS}.", hint=hint)
        sets[file.stem] = [
            Example(
                r["prompt"], r["response"], int(r["unsafe"]), r["kind"], r["category"], file.stem
            )
            for r in rows
        ]
    return sets, shas


#: Compliant openers forced on benign requests (AdvBench forces "Sure, here is …" on harmful ones).
_BENIGN_OPENERS = ("Sure, here is", "Sure, here's", "Sure, here are", "Of course! Here is")


def generation_plan(src: Sources, seed: int = DEFAULT_SEED) -> list[dict[str, str]]:
    """The prompts the default LM answers for the data set (``benchmarks/data``).

    Kinds: ``harmful_forced`` (AdvBench goal with its compliant target forced as the start
    of the answer), ``harmful_free``, ``benign_forced`` ("Sure, here is"-style opener forced),
    ``benign_free``, and ``xstest`` (evaluation only; 50 safe + 50 unsafe prompts).

    Returns:
        Dicts with ``kind``, ``prompt`` and ``prefix`` (the forced start, possibly "").
    """
    rng = random.Random(seed)
    plan: list[dict[str, str]] = []
    for goal, target in rng.sample(src.advbench, 160):
        plan.append({"kind": "harmful_forced", "prompt": goal, "prefix": target + ":\n\n"})
    other = [p for n, p in src.harmful_prompts() if n != "advbench"]
    for p in rng.sample(other, 100):
        plan.append({"kind": "harmful_free", "prompt": p, "prefix": ""})
    benign = rng.sample([a for a in src.alpaca if len(a) < 200], 500)
    for i, p in enumerate(benign):
        forced = i % 2 == 0
        plan.append(
            {
                "kind": "benign_forced" if forced else "benign_free",
                "prompt": p,
                "prefix": _BENIGN_OPENERS[(i // 2) % len(_BENIGN_OPENERS)] if forced else "",
            }
        )
    # XSTest (evaluation only): 50 safe and 50 unsafe prompts, to keep generation ~10 CPU-min.
    for label in ("safe", "unsafe"):
        for p in rng.sample([p for p, _t, lab in src.xstest if lab == label], 50):
            plan.append({"kind": "xstest", "prompt": p, "prefix": ""})
    return plan
