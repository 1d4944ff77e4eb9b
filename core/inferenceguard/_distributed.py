"""Data parallelism under ``accelerate launch`` or on Ray: shard work by rank, merge on rank 0.

Results travel through per-rank JSONL files rather than collective ops, so the same code
runs on CPU processes and GPUs, and every finished record is already on disk if a run is
interrupted (resume skips what is there). :class:`ResumableShards` is that pattern in one
place: per-rank record files in a folder, the keys already done, this rank's share of the
work, and the merge in a fixed order.

On Ray (:func:`run_on_ray`), each rank is a Ray task: the tasks are placed together (one
placement group, so none waits for a rank that cannot start), see their rank through
:func:`process_info`, and meet at :func:`wait_for_everyone` through a barrier actor. The
run folder must be on a filesystem every node sees (one node: always).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

__all__ = [
    "ProcessInfo",
    "ResumableShards",
    "append_jsonl",
    "init_distributed",
    "process_info",
    "read_jsonl",
    "resolve_factory",
    "run_on_ray",
    "shard",
    "wait_for_everyone",
    "wait_for_files",
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


# Set in each Ray task by run_on_ray: its rank, the world size, the barrier actor's name.
_RAY_RANK, _RAY_WORLD, _RAY_BARRIER = (
    "INFERENCEGUARD_RAY_RANK",
    "INFERENCEGUARD_RAY_WORLD_SIZE",
    "INFERENCEGUARD_RAY_BARRIER",
)


def process_info() -> ProcessInfo:
    """Rank and world size from ``accelerate launch`` (or ``torchrun``) or a Ray task of
    :func:`run_on_ray`; 0/1 otherwise."""
    if _RAY_WORLD in os.environ:
        return ProcessInfo(int(os.environ[_RAY_RANK]), int(os.environ[_RAY_WORLD]))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        import torch
        from accelerate import PartialState

        # Without cpu=True on a machine with no GPU, accelerate reports one process per
        # rank instead of initialising the gloo backend.
        state = PartialState(cpu=not torch.cuda.is_available())
        return ProcessInfo(state.process_index, state.num_processes)
    return ProcessInfo(0, 1)


def init_distributed() -> ProcessInfo:
    """This process's rank and world size (CPU-only runs included); call before loading models.

    The one set-up every offline job shares: under ``accelerate launch`` it creates the
    process group (gloo on CPU) before any model is placed on a device.
    """
    return process_info()


def wait_for_everyone() -> None:
    """Barrier across processes (no-op in a single process)."""
    if _RAY_BARRIER in os.environ:
        import ray

        barrier = ray.get_actor(os.environ[_RAY_BARRIER])
        ray.get(barrier.wait.remote(int(os.environ[_RAY_RANK])))
        return
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


def wait_for_files(paths: Sequence[Path], poll_s: float = 0.2) -> None:
    """Block until every path exists: a barrier without a collective op's timeout, so ranks
    with uneven work (hours apart on a long run) still meet."""
    while not all(p.exists() for p in paths):
        time.sleep(poll_s)


@dataclass(frozen=True)
class ResumableShards:
    """Keyed records in per-rank JSONL files under one folder: resume, shard and merge.

    Each rank appends to its own file, so no two processes write one file; a record on disk
    is finished, so a resumed run skips its key; rank 0 merges the files in the run's order.

    Attributes:
        folder: where the per-rank files live (created on the first append).
        info: this process's rank and world size.
        key: the record field that identifies a record.
        pattern: file name of a rank's records; ``{rank}`` is replaced by the rank.

    Example::

        shards = ResumableShards(out / "shards", init_distributed())
        done = shards.done_keys()
        for item in shards.mine([i for i in items if i.key not in done]):
            shards.append(run(item))
    """

    folder: Path
    info: ProcessInfo
    key: str = "key"
    pattern: str = "records-rank{rank}.jsonl"

    @property
    def path(self) -> Path:
        """This rank's file."""
        return self.folder / self.pattern.format(rank=self.info.rank)

    def files(self) -> list[Path]:
        """Every rank's file that exists, in name order."""
        return sorted(self.folder.glob(self.pattern.format(rank="*")))

    def records(self) -> Iterator[dict[str, Any]]:
        """Every finished record of every rank (a torn last line is skipped)."""
        return read_jsonl(self.files())

    def done_keys(self) -> set[str]:
        """Keys of the records already on disk."""
        return {r[self.key] for r in self.records() if self.key in r}

    def mine(self, items: Sequence[T]) -> list[T]:
        """This rank's share of ``items`` (see :func:`shard`)."""
        return shard(items, self.info)

    def append(self, record: dict[str, Any]) -> None:
        """Write one finished record to this rank's file, flushed to disk."""
        append_jsonl(self.path, record)

    def merged(self, order: Sequence[str], *, keep_unlisted: bool = False) -> list[dict[str, Any]]:
        """One record per key of ``order``, in that order.

        A key written twice (two runs raced into one folder) keeps its first record. Keys
        not in ``order`` (an earlier, larger run's) are left out, or with ``keep_unlisted``
        follow the listed ones in key order.
        """
        position = {k: i for i, k in enumerate(order)}
        first: dict[str, dict[str, Any]] = {}
        for record in self.records():
            key = record.get(self.key)
            if key in position or (keep_unlisted and isinstance(key, str)):
                first.setdefault(key, record)
        return sorted(
            first.values(), key=lambda r: (position.get(r[self.key], len(order)), r[self.key])
        )

    def clear(self) -> None:
        """Delete every rank's records (a run started afresh)."""
        shutil.rmtree(self.folder, ignore_errors=True)


# --------------------------------------------------------------------------- Ray
# "package.module:function", as uvicorn and Serve name an app.
_FACTORY = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


def resolve_factory(spec: Any) -> Any:
    """``"package.module:function"`` → what ``function()`` returns; anything else unchanged.

    Ray ships arguments to its workers by pickling, and a config file holds only text: a
    factory builds an object (a LocalLM, a cost model...) in the worker itself.

    Raises:
        ConfigError: the factory cannot be imported.
    """
    if not isinstance(spec, str) or not _FACTORY.fullmatch(spec) or Path(spec).exists():
        return spec
    from .errors import ConfigError
    from .scorers.registry import resolve

    try:
        factory = resolve(spec)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"Cannot import the factory {spec!r}: {exc}.",
            hint="name an importable 'package.module:function' on every node's Python path.",
        ) from None
    return factory()


class _Barrier:
    """A reusable barrier for ``world_size`` Ray tasks (an async actor: waits overlap)."""

    def __init__(self, world_size: int) -> None:
        import asyncio

        self.world_size = world_size
        self.passes = [0] * world_size  # barriers each rank has entered
        self.events: dict[int, asyncio.Event] = {}

    async def wait(self, rank: int) -> None:
        import asyncio

        self.passes[rank] += 1
        generation = self.passes[rank]
        event = self.events.setdefault(generation, asyncio.Event())
        if sum(p >= generation for p in self.passes) == self.world_size:
            event.set()
        await event.wait()


def _ray_rank(fn: Callable[..., T], rank: int, world_size: int, barrier: str, *args: Any) -> T:
    """One rank of :func:`run_on_ray`, inside its Ray task (a worker may be reused)."""
    saved = {k: os.environ.get(k) for k in (_RAY_RANK, _RAY_WORLD, _RAY_BARRIER)}
    os.environ.update({_RAY_RANK: str(rank), _RAY_WORLD: str(world_size), _RAY_BARRIER: barrier})
    try:
        return fn(*args)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _gather(refs: list[Any]) -> list[Any]:
    """Every task's result; on the first failure the others are cancelled (they would wait
    at a barrier for the failed rank forever) and its error is raised."""
    import ray

    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        try:
            ray.get(done[0])
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
    return ray.get(refs)


def run_on_ray(
    fn: Callable[..., T],
    *args: Any,
    world_size: int,
    resources: Mapping[str, float],
    timeout_s: float = 600.0,
) -> list[T]:
    """Run ``fn(*args)`` as ``world_size`` Ray tasks, ranks 0..n-1; their results by rank.

    Inside each task :func:`process_info` gives its rank and :func:`wait_for_everyone`
    waits for all of them, so code written for ``accelerate launch`` runs unchanged.
    Needs ``ray.init()`` first (a local cluster or ``address="auto"``).

    Args:
        resources: what each rank reserves, e.g. ``{"GPU": 1}`` or ``{"CPU": 2}``.
        timeout_s: how long to wait for the cluster to fit every rank at once.

    Raises:
        ResourceError: the cluster cannot place ``world_size`` ranks of ``resources``.
    """
    import ray
    from ray.util.placement_group import placement_group, remove_placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    from .errors import ResourceError

    group = placement_group([dict(resources)] * world_size, strategy="PACK")
    if not group.wait(timeout_seconds=timeout_s):
        remove_placement_group(group)
        raise ResourceError(
            f"The Ray cluster cannot run {world_size} ranks of {dict(resources)} at once.",
            hint="use fewer ranks, or add nodes (ray.cluster_resources() shows what exists).",
        )
    name = f"inferenceguard-barrier-{uuid.uuid4().hex}"
    barrier = ray.remote(num_cpus=0)(_Barrier).options(name=name).remote(world_size)
    task = ray.remote(_ray_rank)
    try:
        refs = [
            task.options(
                num_cpus=resources.get("CPU", 0),
                num_gpus=resources.get("GPU", 0),
                scheduling_strategy=PlacementGroupSchedulingStrategy(group, rank),
            ).remote(fn, rank, world_size, name, *args)
            for rank in range(world_size)
        ]
        return _gather(refs)
    finally:
        ray.kill(barrier)
        remove_placement_group(group)
