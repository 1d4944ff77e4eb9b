"""Data parallelism under ``accelerate launch``: shard work by rank, merge on rank 0.

Results travel through per-rank JSONL files rather than collective ops, so the same code
runs on CPU processes and GPUs, and every finished record is already on disk if a run is
interrupted (resume skips what is there).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "ProcessInfo",
    "append_jsonl",
    "process_info",
    "read_jsonl",
    "shard",
    "wait_for_everyone",
]

T = TypeVar("T")


@dataclass(frozen=True)
class ProcessInfo:
    """This process's place in a data-parallel run."""

    rank: int
    world_size: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def process_info() -> ProcessInfo:
    """Rank and world size from ``accelerate launch`` (or ``torchrun``); 0/1 otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        import torch
        from accelerate import PartialState

        # Without cpu=True on a machine with no GPU, accelerate reports one process per
        # rank instead of initialising the gloo backend.
        state = PartialState(cpu=not torch.cuda.is_available())
        return ProcessInfo(state.process_index, state.num_processes)
    return ProcessInfo(0, 1)


def wait_for_everyone() -> None:
    """Barrier across processes (no-op in a single process)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from accelerate import PartialState

        PartialState().wait_for_everyone()


def shard(items: Sequence[T], info: ProcessInfo) -> list[T]:
    """Round-robin slice of ``items`` for this rank (deterministic, covers every item once)."""
    return list(items[info.rank :: info.world_size])


def append_jsonl(path: str | os.PathLike, record: dict[str, Any]) -> None:
    """Append one record and flush it to disk, so an interrupted run loses nothing finished."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A crash mid-write can leave a torn last line: start on a fresh line so it stays
    # the only record lost.
    torn = path.exists() and path.stat().st_size > 0 and _last_byte(path) != b"\n"
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(("\n" if torn else "") + json.dumps(record, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _last_byte(path: Path) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1)


def read_jsonl(paths: Iterable[str | os.PathLike]) -> Iterator[dict[str, Any]]:
    """Records of every existing file; a torn last line (a crash mid-write) is skipped."""
    for path in paths:
        path = Path(path)
        if not path.exists():
            continue
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    continue
