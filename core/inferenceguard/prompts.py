"""Prompt files: one loader for the formats the shared data and users' own sets come in.

Supported formats, picked by the file's suffix:

=========  ==============================================  ==============================
suffix     layout                                          default column
=========  ==============================================  ==============================
``.csv``   header row, read with :class:`csv.DictReader`   ``goal``, ``prompt``, … (below)
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
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError, InputError

__all__ = ["DEFAULT_COLUMNS", "PromptSpec", "load_prompts"]

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


def _rows(path: Path) -> Iterator[Any]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with open(path, encoding="utf-8", newline="") as fh:
            yield from csv.DictReader(fh)
    elif suffix == ".jsonl":
        with open(path, encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise InputError(f"{path}:{number} is not valid JSON: {exc}.") from exc
    elif suffix == ".json":
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        if isinstance(data, Mapping):  # {"data": [...]} style wrappers
            lists = [v for v in data.values() if isinstance(v, list)]
            if len(lists) != 1:
                raise InputError(f"{path} holds an object, not a list of prompts.")
            data = lists[0]
        if not isinstance(data, list):
            raise InputError(f"{path} must hold a JSON list, got {type(data).__name__}.")
        yield from data
    elif suffix == ".txt":
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                yield line.rstrip("\r\n")
    else:
        raise InputError(
            f"Unknown prompt file type {suffix!r} ({path}).",
            hint="use .csv, .json, .jsonl or .txt.",
        )


def load_prompts(
    path: str | os.PathLike[str], column: str | None = None, limit: int | None = None
) -> list[str]:
    """Read prompts from a CSV, JSON, JSONL or TXT file.

    Empty prompts are skipped; order is kept; duplicates are kept (callers that need
    unique prompts dedupe).

    Args:
        path: the file.
        column: key of the prompt in each row (``goal``, ``turns[0]``, ``meta.text``);
            ``None`` picks the first of :data:`DEFAULT_COLUMNS` present. Ignored for TXT.
        limit: keep at most this many prompts (the first ones).

    Returns:
        The prompts, stripped of surrounding whitespace.

    Raises:
        InputError: the file is missing, malformed, or has no such column.
        ConfigError: ``limit`` is negative or ``column`` cannot be parsed.
    """
    path = Path(path)
    if limit is not None and limit < 0:
        raise ConfigError(f"limit must be >= 0, got {limit}.")
    if not path.is_file():
        raise InputError(f"Prompt file {str(path)!r} does not exist.")
    steps = _parse_column(column) if column else None
    prompts: list[str] = []
    for number, row in enumerate(_rows(path)):
        if limit is not None and len(prompts) >= limit:
            break
        if isinstance(row, str):
            value: Any = row
        else:
            if steps is None:
                steps = _pick_default(row, path)
            value = _get(row, steps)
            if value is None and number == 0:
                keys = sorted(row) if isinstance(row, Mapping) else type(row).__name__
                raise InputError(
                    f"{path} has no column {column or steps!r}; its first row has {keys}.",
                    hint="name the column, e.g. FILE:goal or column='turns[0]'.",
                )
        if isinstance(value, str) and value.strip():
            prompts.append(value.strip())
    return prompts


def _pick_default(row: Any, path: Path) -> list[str | int]:
    for candidate in DEFAULT_COLUMNS:
        steps = _parse_column(candidate)
        if isinstance(_get(row, steps), str):
            return steps
    keys = sorted(row) if isinstance(row, Mapping) else type(row).__name__
    raise InputError(
        f"Cannot tell which column of {path} holds the prompt; its first row has {keys}.",
        hint=f"name the column, e.g. {path.name}:COLUMN.",
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
