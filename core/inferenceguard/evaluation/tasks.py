"""Prompt sets for the evaluation: the built-in benchmarks, local files, hub datasets.

A :class:`PromptSet` is a named, ordered tuple of prompts with a ``kind``
(``"harmful"``, ``"benign"`` or ``"unknown"``) that the report groups by. Each prompt
gets a stable key (set name, index, and a hash of its text), so results of a resumed run
never attach to a different prompt.

Built-in sets read the prompt files shipped with the package, or the repository's ``data/``
folder for the few whose license keeps them out of the wheel (see
:func:`inferenceguard._data.data_path`):

=====================  =======  ==========================================================
name                   kind     source
=====================  =======  ==========================================================
``advbench``           harmful  AdvBench harmful behaviors (``goal``), 520
``harmbench_val``      harmful  HarmBench validation, standard behaviors, 41
``harmbench_test``     harmful  HarmBench test, standard behaviors, 159
``malicious_instruct`` harmful  MaliciousInstruct, 100
``strongreject``       harmful  StrongREJECT forbidden prompts, 313
``xstest_unsafe``      harmful  XSTest unsafe prompts, 200
``xstest_safe``        benign   XSTest safe-but-scary prompts (over-refusal), 250
``mt_bench``           benign   MT-Bench first turns, 80
``vicuna_bench``       benign   Vicuna-bench questions, 80
``alpaca``             benign   harmless Alpaca instructions (refusal-direction split), 6266
=====================  =======  ==========================================================

With ``limit``, a built-in set takes ``limit`` prompts spread evenly over the whole file
(MT-Bench's first ten are all "writing"); a user file takes its first ``limit`` rows.

Usage::

    advbench = load_prompt_set("advbench", limit=8)
    mine = load_prompt_set("prompts.csv:question", kind="benign")
    hub = load_prompt_set("walledai/AdvBench:prompt", kind="harmful")  # needs `datasets`
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .._data import data_path
from ..errors import ConfigError, InputError
from ..prompts import load_prompts, prompt_rows, read_rows

__all__ = [
    "BUILTIN_SETS",
    "PromptSet",
    "load_prompt_set",
    "parse_prompt_spec",
    "prompt_key",
]

Kind = Literal["harmful", "benign", "unknown"]
KINDS: tuple[str, ...] = ("harmful", "benign", "unknown")


def prompt_key(prompt_set: str, index: int, text: str) -> str:
    """Stable key of one prompt: ``"<set>/<index>/<sha1(text)[:10]>"``."""
    digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:10]
    return f"{prompt_set}/{index}/{digest}"


@dataclass(frozen=True)
class PromptSet:
    """A named, ordered set of prompts.

    Attributes:
        name: used in record keys, tables and plots (letters, digits, ``._-``).
        prompts: the prompt texts, in order.
        kind: ``"harmful"`` (safety is the point), ``"benign"`` (helpfulness and
            over-refusal are the point) or ``"unknown"``.
        source: where the prompts came from (a path, a built-in name, a hub id).
        indices: each prompt's row index in the source (differs from ``range`` when a
            limit spread the selection).
    """

    name: str
    prompts: tuple[str, ...]
    kind: Kind = "unknown"
    source: str = ""
    indices: tuple[int, ...] = field(default=())

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9._-]+", self.name):
            raise ConfigError(
                f"Prompt set name {self.name!r} may only hold letters, digits, '.', '_' and '-'.",
                hint="name it with NAME=SOURCE, e.g. --prompts mine=prompts.csv:question",
            )
        if self.kind not in KINDS:
            raise ConfigError(f"Prompt set kind must be one of {KINDS}, got {self.kind!r}.")
        if not self.prompts:
            raise InputError(f"Prompt set {self.name!r} ({self.source}) holds no prompts.")
        if not self.indices:
            object.__setattr__(self, "indices", tuple(range(len(self.prompts))))
        if len(self.indices) != len(self.prompts):
            raise ValueError("indices and prompts must have the same length")

    def __len__(self) -> int:
        return len(self.prompts)

    def prompt_keys(self) -> list[str]:
        """The stable key of every prompt (see :func:`prompt_key`)."""
        return [
            prompt_key(self.name, i, p) for i, p in zip(self.indices, self.prompts, strict=True)
        ]

    def to_dict(self) -> dict[str, Any]:
        """Metadata for ``run.json`` (not the prompts themselves)."""
        digest = hashlib.sha256("\n".join(self.prompts).encode("utf-8")).hexdigest()[:16]
        return {
            "name": self.name,
            "kind": self.kind,
            "source": self.source,
            "n": len(self),
            "sha256_16": digest,
        }


@dataclass(frozen=True)
class _Builtin:
    path: str
    column: str | None
    kind: Kind
    description: str
    keep: Callable[[Mapping[str, Any]], bool] | None = None


#: Built-in prompt sets: name -> (file under :func:`data_root`, column, kind, filter).
BUILTIN_SETS: dict[str, _Builtin] = {
    "advbench": _Builtin(
        "advbench/harmful_behaviors.csv", "goal", "harmful", "AdvBench harmful behaviors"
    ),
    "harmbench_val": _Builtin(
        "harmbench/harmbench_behaviors_text_val.csv",
        "Behavior",
        "harmful",
        "HarmBench validation split, standard behaviors (no context, no copyright)",
        keep=lambda row: row.get("FunctionalCategory") == "standard",
    ),
    "harmbench_test": _Builtin(
        "harmbench/harmbench_behaviors_text_test.csv",
        "Behavior",
        "harmful",
        "HarmBench test split, standard behaviors (no context, no copyright)",
        keep=lambda row: row.get("FunctionalCategory") == "standard",
    ),
    "malicious_instruct": _Builtin(
        "malicious_instruct/MaliciousInstruct.txt", None, "harmful", "MaliciousInstruct"
    ),
    "strongreject": _Builtin(
        "strongreject/strongreject_dataset.csv",
        "forbidden_prompt",
        "harmful",
        "StrongREJECT forbidden prompts",
    ),
    "xstest_unsafe": _Builtin(
        "xstest/xstest_prompts.csv",
        "prompt",
        "harmful",
        "XSTest v2 unsafe prompts",
        keep=lambda row: row.get("label") == "unsafe",
    ),
    "xstest_safe": _Builtin(
        "xstest/xstest_prompts.csv",
        "prompt",
        "benign",
        "XSTest v2 safe prompts that sound unsafe (over-refusal test)",
        keep=lambda row: row.get("label") == "safe",
    ),
    "mt_bench": _Builtin(
        "mt_bench/mt_bench_question.jsonl", "turns", "benign", "MT-Bench questions, first turn"
    ),
    "vicuna_bench": _Builtin(
        "mt_bench/vicuna_bench_question.jsonl", "turns", "benign", "Vicuna-bench questions"
    ),
    "alpaca": _Builtin(
        "alpaca_harmless/harmless_test.json",
        "instruction",
        "benign",
        "Harmless Alpaca instructions (refusal-direction test split)",
    ),
}


# --------------------------------------------------------------------------- sources


def _split(pairs: list[tuple[int, str]]) -> tuple[list[str], list[int]]:
    return [text for _, text in pairs], [index for index, _ in pairs]


def _read_hub(
    dataset_id: str, column: str | None, split: str | None
) -> tuple[list[str], list[int]]:
    try:
        import datasets
    except ImportError:
        raise ConfigError(
            f"{dataset_id!r} is neither a file, nor a built-in prompt set "
            f"({', '.join(BUILTIN_SETS)}); loading it as a Hugging Face dataset needs the "
            "`datasets` package, which is not installed.",
            hint="pip install datasets (and have the hub reachable), or download the prompts "
            "to a CSV/JSONL file and pass --prompts FILE:COLUMN.",
        ) from None
    try:
        if split is None:
            loaded = datasets.load_dataset(dataset_id)
            split = "test" if "test" in loaded else next(iter(loaded))
            table = loaded[split]
        else:
            table = datasets.load_dataset(dataset_id, split=split)
    except Exception as exc:  # network, missing dataset, bad split: one clear message
        raise ConfigError(
            f"Could not load the Hugging Face dataset {dataset_id!r} (split {split!r}): {exc}",
            hint="check the id and split, and that the hub is reachable (HF_HUB_OFFLINE unset).",
        ) from exc
    return _split(prompt_rows(iter(table), column, source=f"{dataset_id}[{split}]"))


# --------------------------------------------------------------------------- specs


def parse_prompt_spec(spec: str) -> tuple[str | None, str, str | None]:
    """Split ``[NAME=]SOURCE[:COLUMN]`` into ``(name, source, column)``.

    ``SOURCE`` is a file, a built-in name or a hub dataset id. The ``:COLUMN`` suffix is
    only split off when the whole string is not itself an existing path.
    """
    name = None
    head, sep, tail = spec.partition("=")
    if sep and re.fullmatch(r"[A-Za-z0-9._-]+", head) and not Path(spec).exists():
        name, spec = head, tail
    if Path(spec).exists() or ":" not in spec:
        return name, spec, None
    source, _, column = spec.rpartition(":")
    if "/" in column or "\\" in column:  # "C:\\data.csv": the colon is part of the path
        return name, spec, None
    if not source or not column:
        raise InputError(f"Bad prompt spec {spec!r}; expected [NAME=]SOURCE[:COLUMN].")
    return name, source, column


def _spread(n_total: int, limit: int) -> list[int]:
    """``limit`` indices spread evenly over ``range(n_total)``, first one 0."""
    if limit >= n_total:
        return list(range(n_total))
    return [i * n_total // limit for i in range(limit)]


def _default_name(source: str) -> str:
    stem = Path(source).stem if Path(source).suffix else source.rsplit("/", 1)[-1]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem) or "prompts"


def _from_file(path: Path, column: str | None, limit: int | None) -> tuple[list[str], list[int]]:
    """A user's file: its first ``limit`` prompts, indexed by position among the prompts."""
    prompts = load_prompts(path, column, limit)
    return prompts, list(range(len(prompts)))


def _from_builtin(name: str, column: str | None, limit: int | None) -> tuple[list[str], list[int]]:
    """A built-in set: ``limit`` prompts spread over the file, indexed by their row."""
    builtin = BUILTIN_SETS[name]
    file = data_path(builtin.path)
    rows = read_rows(file)
    pairs = prompt_rows(rows, column or builtin.column, source=str(file), keep=builtin.keep)
    if limit is not None:
        pairs = [pairs[i] for i in _spread(len(pairs), limit)]
    return _split(pairs)


def _unknown_source(source: str, path: Path) -> ConfigError | None:
    """The error for a source that is neither a file nor a built-in nor a hub id."""
    looks_like_file = path.suffix.lower() in (".csv", ".tsv", ".json", ".jsonl", ".txt")
    if looks_like_file or source.startswith((".", "/", "~")) or os.sep + os.sep in source:
        return ConfigError(f"Prompt file {source!r} does not exist.")
    if "/" in source:
        return None  # a hub dataset id
    close = difflib.get_close_matches(source, list(BUILTIN_SETS), n=1)
    return ConfigError(
        f"Unknown prompt set {source!r}: not a file and not a built-in set."
        + (f" Did you mean {close[0]!r}?" if close else ""),
        hint=f"built-in sets: {', '.join(BUILTIN_SETS)}; or pass FILE[:COLUMN].",
    )


def load_prompt_set(
    spec: str,
    *,
    limit: int | None = None,
    kind: Kind | None = None,
    name: str | None = None,
    split: str | None = None,
) -> PromptSet:
    """Load a prompt set from a built-in name, a local file, or a hub dataset id.

    Args:
        spec: ``[NAME=]SOURCE[:COLUMN]``. ``SOURCE`` is tried as a local file (CSV/TSV
            with a header, JSONL, a JSON list, or TXT with one prompt per line), then as a
            built-in name (:data:`BUILTIN_SETS`), then as a Hugging Face dataset id
            (needs the ``datasets`` package and the hub). Without ``COLUMN`` the first of
            :data:`inferenceguard.prompts.DEFAULT_COLUMNS` present is used.
        limit: keep at most this many prompts (built-ins: spread evenly; files: the first).
        kind: ``"harmful"``, ``"benign"`` or ``"unknown"`` (built-ins know their kind).
        name: the set's name (default: ``NAME=`` from the spec, the built-in name, or the
            file stem).
        split: the hub dataset's split (default ``"test"`` if present, else the first).

    Returns:
        The :class:`PromptSet`.

    Raises:
        InputError: the file has no such column, or no prompts.
        ConfigError: the source is not found anywhere, or ``datasets`` is missing.
    """
    if limit is not None and limit < 1:
        raise ConfigError(f"limit must be >= 1, got {limit}.")
    spec_name, source, column = parse_prompt_spec(spec)
    name = name or spec_name
    path = Path(source).expanduser()
    if path.is_file():
        prompts, indices = _from_file(path, column, limit)
        origin, default_name, default_kind = str(path), _default_name(source), "unknown"
    elif source in BUILTIN_SETS:
        prompts, indices = _from_builtin(source, column, limit)
        origin, default_name, default_kind = f"builtin:{source}", source, BUILTIN_SETS[source].kind
    else:
        error = _unknown_source(source, path)
        if error is not None:
            raise error
        prompts, indices = _read_hub(source, column, split)
        prompts, indices = prompts[:limit], indices[:limit]
        origin, default_name, default_kind = f"hf:{source}", _default_name(source), "unknown"
    return PromptSet(
        name or default_name, tuple(prompts), kind or default_kind, origin, tuple(indices)
    )
