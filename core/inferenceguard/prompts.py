"""Prompt files: the one reader for the formats the shipped data and users' own sets come in.

:func:`read_rows` reads a file's rows, :func:`prompt_rows` picks the prompt of each row
(with its row index), and :func:`load_prompts` does both. The evaluation's prompt sets
and the critic's rollouts read files through them; offline jobs need no reader of their own.

Supported formats, picked by the file's suffix:

=========  ==============================================  ==============================
suffix     layout                                          default column
=========  ==============================================  ==============================
``.csv``   header row, read with :class:`csv.DictReader`   ``goal``, ``prompt``, … (below)
``.tsv``   the same, tab-separated                         as for ``.csv``
``.json``  a list of objects (or of strings)               ``instruction``, ``prompt``, …
``.jsonl`` one object (or string) per line                 ``turns[0]``, ``prompt``, …
``.txt``   one prompt per line                             (none)
=========  ==============================================  ==============================

A column may be a plain key (``goal``), a dotted path (``meta.text``) or index into a list
(``turns[0]``: the first turn of an MT-Bench question). Without one, the first of
:data:`DEFAULT_COLUMNS` that the first row has is used.

Example::

    load_prompts("data/advbench/harmful_behaviors.csv")            # column "goal"
    load_prompts("data/mt_bench/mt_bench_question.jsonl")         # "turns[0]"
    load_prompts("my_prompts.csv", column="question", limit=20)
    spec = PromptSpec.parse("data/mt_bench/mt_bench_question.jsonl:turns[0]")
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError, InputError

__all__ = ["DEFAULT_COLUMNS", "PromptSpec", "load_prompts", "prompt_rows", "read_rows"]

#: Columns tried, in order, when none is given (covers every built-in prompt set).
DEFAULT_COLUMNS: tuple[str, ...] = (
    "prompt",
    "goal",
    "instruction",
    "forbidden_prompt",
    "Behavior",
    "question",
    "turns[0]",
    "text",
    "input",
    "behavior",
    "query",
)

_STEP = re.compile(r"([^.\[\]]+)|\[(-?\d+)\]")


def _parse_column(column: str) -> list[str | int]:
    """``"turns[0]"`` → ``["turns", 0]``; ``"a.b"`` → ``["a", "b"]``."""
    steps: list[str | int] = []
    pos = 0
    for match in _STEP.finditer(column):
        if match.start() != pos and column[pos : match.start()] != ".":
            raise ConfigError(
                f"Cannot parse the column {column!r}.", hint="use e.g. goal or turns[0]."
            )
        key, index = match.groups()
        steps.append(int(index) if index is not None else key)
        pos = match.end()
    if not steps or pos != len(column):
        raise ConfigError(f"Cannot parse the column {column!r}.", hint="use e.g. goal or turns[0].")
    return steps


def _get(row: Any, steps: Sequence[str | int]) -> Any:
    """Follow ``steps`` into ``row``; ``None`` when a key or index is missing."""
    value = row
    for step in steps:
        if isinstance(step, int):
            if not isinstance(value, list) or not -len(value) <= step < len(value):
                return None
            value = value[step]
        else:
            if not isinstance(value, Mapping) or step not in value:
                return None
            value = value[step]
    return value


def _read_csv(path: Path, delimiter: str) -> list[Any]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter=delimiter))


def _read_jsonl(path: Path) -> list[Any]:
    rows = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise InputError(f"{path}:{number} is not valid JSON: {exc}.") from exc
    return rows


def _read_json(path: Path) -> list[Any]:
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    if isinstance(data, Mapping):  # {"data": [...]} style wrappers
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise InputError(f"{path} holds an object, not a list of prompts.")
        data = lists[0]
    if not isinstance(data, list):
        raise InputError(f"{path} must hold a JSON list, got {type(data).__name__}.")
    return data


def _read_txt(path: Path) -> list[Any]:
    with open(path, encoding="utf-8") as fh:
        return [line.rstrip("\r\n") for line in fh if line.strip()]


_READERS: dict[str, Callable[[Path], list[Any]]] = {
    ".csv": lambda path: _read_csv(path, ","),
    ".tsv": lambda path: _read_csv(path, "\t"),
    ".jsonl": _read_jsonl,
    ".json": _read_json,
    ".txt": _read_txt,
}


def read_rows(path: str | os.PathLike[str]) -> list[Any]:
    """Every row of a prompt file, as the file holds it: the one reader of prompt files.

    CSV/TSV rows are dicts (header keys), JSON and JSONL rows are whatever each element or
    line holds (objects or strings), TXT rows are the lines, blank ones left out.

    Raises:
        InputError: the file is missing, malformed, or of an unknown type.
    """
    path = Path(path)
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise InputError(
            f"Unknown prompt file type {path.suffix.lower()!r} ({path}).",
            hint="use .csv, .tsv, .json, .jsonl or .txt.",
        )
    if not path.is_file():
        raise InputError(f"Prompt file {str(path)!r} does not exist.")
    return reader(path)


def _text(value: Any) -> str | None:
    """A prompt from a cell: a string, or a list's first string (MT-Bench ``turns``)."""
    if isinstance(value, list | tuple) and value:
        value = value[0]
    return value.strip() if isinstance(value, str) and value.strip() else None


def prompt_rows(
    rows: Iterable[Any],
    column: str | None = None,
    *,
    source: str = "the prompts",
    keep: Callable[[Mapping[str, Any]], bool] | None = None,
) -> list[tuple[int, str]]:
    """``(row index, prompt)`` of every row that holds a non-empty prompt, in order.

    Args:
        rows: from :func:`read_rows` (or any rows of strings and objects).
        column: see :func:`load_prompts`; ignored for rows that are plain strings.
        source: named in error messages (the file, a dataset id).
        keep: an object row is used only when ``keep(row)`` is true (its index still
            counts, so indices stay row numbers of the source).

    Raises:
        InputError: the first object row has no such column, or no default column.
        ConfigError: ``column`` cannot be parsed.
    """
    steps = _parse_column(column) if column else None
    found: list[tuple[int, str]] = []
    checked = False
    for index, row in enumerate(rows):
        if isinstance(row, str):
            found += [(index, t) for t in [_text(row)] if t is not None]
            continue
        if keep is not None and isinstance(row, Mapping) and not keep(row):
            continue
        if steps is None:
            steps = _pick_default(row, source)
        value = _get(row, steps)
        if value is None and not checked:
            keys = sorted(row) if isinstance(row, Mapping) else type(row).__name__
            raise InputError(
                f"{source} has no column {column or steps!r}; its first row has {keys}.",
                hint="name the column, e.g. FILE:goal or column='turns[0]'.",
            )
        checked = True
        text = _text(value)
        if text is not None:
            found.append((index, text))
    return found


def load_prompts(
    path: str | os.PathLike[str], column: str | None = None, limit: int | None = None
) -> list[str]:
    """Read prompts from a CSV, TSV, JSON, JSONL or TXT file.

    Empty prompts are skipped; order is kept; duplicates are kept (callers that need
    unique prompts dedupe).

    Args:
        path: the file.
        column: key of the prompt in each row (``goal``, ``turns[0]``, ``meta.text``);
            ``None`` picks the first of :data:`DEFAULT_COLUMNS` present. Ignored for TXT.
            A cell holding a list gives its first string (``turns``: the first turn).
        limit: keep at most this many prompts (the first ones).

    Returns:
        The prompts, stripped of surrounding whitespace.

    Raises:
        InputError: the file is missing, malformed, or has no such column.
        ConfigError: ``limit`` is negative or ``column`` cannot be parsed.
    """
    if limit is not None and limit < 0:
        raise ConfigError(f"limit must be >= 0, got {limit}.")
    rows = read_rows(path)
    prompts = [text for _, text in prompt_rows(rows, column, source=str(path))]
    return prompts if limit is None else prompts[:limit]


def _pick_default(row: Any, source: str) -> list[str | int]:
    for candidate in DEFAULT_COLUMNS:
        steps = _parse_column(candidate)
        if isinstance(_get(row, steps), str):
            return steps
    keys = sorted(row) if isinstance(row, Mapping) else type(row).__name__
    raise InputError(
        f"Cannot tell which column of {source} holds the prompt; its first row has {keys}.",
        hint=f"name the column, e.g. {Path(source).name}:COLUMN.",
    )


@dataclass(frozen=True)
class PromptSpec:
    """A prompt file and, optionally, its column: the CLI's ``FILE[:COLUMN]``.

    Attributes:
        path: the file.
        column: the column, or ``None`` for the default.
    """

    path: Path
    column: str | None = None

    @classmethod
    def parse(cls, text: str) -> PromptSpec:
        """Split ``FILE[:COLUMN]``; a colon that is part of an existing path is kept.

        Raises:
            ConfigError: the text is empty.
        """
        if not text:
            raise ConfigError("An empty prompt file was given.", hint="use FILE or FILE:COLUMN.")
        if Path(text).exists() or ":" not in text:
            return cls(Path(text))
        head, _, tail = text.rpartition(":")
        # "C:\\x.csv" or a column that looks like a path: keep the whole string as the path.
        if not head or "/" in tail or "\\" in tail:
            return cls(Path(text))
        return cls(Path(head), tail or None)

    def load(self, limit: int | None = None) -> list[str]:
        """:func:`load_prompts` on this file and column."""
        return load_prompts(self.path, self.column, limit)

    @property
    def name(self) -> str:
        """Short source name recorded with each prompt (the file name without suffix)."""
        return self.path.stem

    def __str__(self) -> str:
        return f"{self.path}:{self.column}" if self.column else str(self.path)
