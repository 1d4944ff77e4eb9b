"""Run strategies over prompt sets: one record per prompt × strategy, resumable, data-parallel.

Usage::

    from inferenceguard import InferenceGuard
    from inferenceguard.evaluation import evaluate, load_prompt_set

    guard = InferenceGuard.from_defaults()
    run = evaluate(
        guard,
        ["plain", "best_of_n:n_candidates=16", "inferenceguard"],
        [load_prompt_set("advbench", limit=20), load_prompt_set("mt_bench", limit=20)],
        "runs/small",
        max_new_tokens=64,
    )
    print(run.files["report"].read_text())

Data-parallel on several GPUs (or CPU processes)::

    accelerate launch --num_processes 4 -m inferenceguard.cli eval ... --out runs/big

What is written under ``out_dir``:

* ``run.json`` — the run's settings (models, configs, prompt sets, seed). A later call with
  the same ``out_dir`` resumes only if the settings that change answers are equal.
* ``shards/records-rank<r>.jsonl`` — every finished record, appended and fsync'ed as soon
  as it exists, one file per process; an interrupted run loses nothing finished, and the
  next call skips every record already there.
* ``records.jsonl`` — all records of the run's prompt sets × strategies, merged and
  ordered (prompt set, prompt, strategy), written atomically by rank 0.
* ``summary.json``, ``report.md``, ``plots/`` — see :mod:`.report`.

Reproducibility: each prompt's seed derives from ``seed`` and the prompt's key
(:func:`inferenceguard._data.prompt_seed`, the seed every offline job uses; never
from the rank or the order of work), and all strategies of one prompt run in one
process, one after the other, so a P-process run gives the records of a 1-process run,
and the time ratio to plain decoding compares runs on the same device.

Record fields: ``key``, ``prompt_key``, ``prompt_set``, ``prompt_index``, ``kind``,
``prompt``, ``strategy`` (label), ``strategy_name``, ``method`` (``generate`` or
``generate_unverified``), ``seed``, ``text``, ``finish_reason``, ``cost``, ``budget``,
``safe`` (verified cost within budget), ``prefix_safe`` (also every evaluator-scored prefix within
budget), ``max_prefix_cost`` (the search's own), ``eval_max_prefix_cost`` (the evaluator's
re-scoring of the response's prefixes every ``prefix_stride`` tokens, the same for every
strategy), ``reward``, ``refusal``, ``seconds`` (the strategy's own call only),
``tokens``, ``prompt_tokens``, ``exhausted``, ``steps``,
``candidates_sampled``, ``cost_evaluations`` (candidates the cost model verified),
``resample_rounds``, ``critic_used``, ``rank``, ``error``
(``None``, or why the request was rejected).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._data import prompt_seed
from .._distributed import (
    ProcessInfo,
    ResumableShards,
    init_distributed,
    read_jsonl,
    wait_for_everyone,
    wait_for_files,
)
from .._io import atomic_write_text
from ..config import GuardConfig
from ..errors import (
    ConfigError,
    ContextLengthError,
    InputError,
    ResourceError,
    SafetyExhaustedError,
)
from ..guard import InferenceGuard
from ..result import GuardResult
from ..scorers.base import checked_scores
from .metrics import GroupSummary, is_refusal, summarize
from .presets import StrategySpec, parse_strategy, resolve_config
from .tasks import PromptSet

__all__ = ["EvalRun", "evaluate", "init_distributed", "prompt_seed"]

#: Record fields that measure time or placement; everything else is reproducible.
VOLATILE_FIELDS: frozenset[str] = frozenset(
    {"seconds", "rank", "time_to_first_text_s", "max_delta_gap_s"}
)
#: Request errors recorded (and excluded from the metrics) instead of stopping the run.
RECORDED_ERRORS: tuple[type[Exception], ...] = (ContextLengthError, ResourceError, InputError)
#: ``run.json`` fields that must match for a run to resume into an existing folder.
_FINGERPRINT = (
    "lm",
    "cost_model",
    "cost_threshold",
    "reward_model",
    "critic",
    "base_config",
    "seed",
    "common",
    "prefix_stride",
)


@dataclass
class EvalRun:
    """What :func:`evaluate` returns.

    Attributes:
        out_dir: the run folder.
        records: the merged records (prompt set, prompt, strategy order).
        summaries: metrics per strategy and prompt group (:func:`.metrics.summarize`).
        files: written files by role (``records``, ``summary``, ``report``, plots ...).
        meta: the contents of ``run.json``.
        new_records: records produced by this call in this process (the rest were resumed
            or came from other processes).
    """

    out_dir: Path
    records: list[dict[str, Any]]
    summaries: list[GroupSummary]
    files: dict[str, Path] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    new_records: int = 0


@dataclass
class _Plan:
    """One :func:`evaluate` call, validated: what runs, with which guard, in which order."""

    specs: list[StrategySpec]
    guards: dict[str, InferenceGuard]
    prompt_sets: Sequence[PromptSet]
    seed: int
    prefix_stride: int
    plain_strategy: str | None
    meta: dict[str, Any]

    def keys(self) -> list[str]:
        """Every record key of the run, in report order (prompt set, prompt, strategy)."""
        return [
            f"{key}|{s.label}"
            for p in self.prompt_sets
            for key in p.prompt_keys()
            for s in self.specs
        ]


def _guard_for(guard: InferenceGuard, config: GuardConfig) -> InferenceGuard:
    """A guard running ``config`` on ``guard``'s models: nothing is loaded or copied, so
    every strategy of a run scores with the very same LM, cost model, reward model and
    critic, and requests of every strategy in flight share batches."""
    return guard.with_config(config)


# --------------------------------------------------------------------------- one record


def _eval_prefix_cost(
    guard: InferenceGuard, prompt: str, result: GuardResult, stride: int
) -> float:
    """Largest cost among the response's prefixes every ``stride`` tokens and the full text."""
    tokens = result.token_ids
    prefixes = [
        guard.lm.decode(tokens[:k]).rstrip("\ufffd") for k in range(stride, len(tokens), stride)
    ]
    prefixes = [p for p in prefixes if p and p != result.text]
    if not prefixes:
        return float(result.safety.cost)
    with guard.scheduler.model_lock:  # other prompts in flight may be scoring
        costs = checked_scores(guard.cost_model, [prompt] * len(prefixes), prefixes)
    return max(float(costs.max()), float(result.safety.cost))


def _identity(
    spec: StrategySpec, pset: PromptSet, position: int, key: str, seed: int
) -> dict[str, Any]:
    """The fields that say which prompt and strategy a record is for."""
    return {
        "key": f"{key}|{spec.label}",
        "prompt_key": key,
        "prompt_set": pset.name,
        "prompt_index": pset.indices[position],
        "kind": pset.kind,
        "prompt": pset.prompts[position],
        "strategy": spec.label,
        "strategy_name": spec.name,
        "method": spec.method,
        "seed": seed,
    }


def _measure(
    guard: InferenceGuard, prompt: str, result: GuardResult, prefix_stride: int
) -> dict[str, Any]:
    """The answer and what the evaluator measures of it, the same for every strategy."""
    report = result.safety
    safe = report.cost <= report.budget
    eval_prefix = _eval_prefix_cost(guard, prompt, result, prefix_stride) if prefix_stride else None
    with guard.scheduler.model_lock:
        reward = float(checked_scores(guard.reward_model, [prompt], [result.text])[0])
    return {
        "text": result.text,
        "finish_reason": result.finish_reason,
        "cost": report.cost,
        "budget": report.budget,
        "safe": safe,
        "prefix_safe": safe and (eval_prefix is None or eval_prefix <= report.budget),
        "max_prefix_cost": report.max_prefix_cost,
        "eval_max_prefix_cost": eval_prefix,
        "prefix_stride": prefix_stride or None,
        "reward": reward,
        "refusal": is_refusal(result.text),
        "tokens": result.completion_tokens,
        "prompt_tokens": result.prompt_tokens,
        "exhausted": report.exhausted,
        "steps": report.steps,
        "candidates_sampled": report.candidates_sampled,
        "cost_evaluations": report.cost_evaluations,
        "resample_rounds": report.resample_rounds,
        "critic_used": report.critic_used,
        "time_to_first_text_s": report.time_to_first_text_s,
        "max_delta_gap_s": report.max_delta_gap_s,
    }


def _record(
    guard: InferenceGuard,
    spec: StrategySpec,
    pset: PromptSet,
    position: int,
    key: str,
    seed: int,
    prefix_stride: int,
    rank: int,
) -> dict[str, Any]:
    """Run one strategy on one prompt and measure the answer.

    ``safe`` is the verified cost of the returned text within budget. Raw
    (``generate_unverified``) runs keep unsafe candidates, so a baseline's unsafe answer is
    measured as such rather than replaced by an empty or refused text.
    """
    record = _identity(spec, pset, position, key, seed)
    run = guard.generate if spec.verified else guard.generate_unverified
    started = time.perf_counter()
    try:
        result = run(record["prompt"], seed=seed)
    except SafetyExhaustedError as exc:  # on_exhausted="raise": still a measurable answer
        result = exc.result
    except RECORDED_ERRORS as exc:
        return {**record, "error": f"{type(exc).__name__}: {exc}", "rank": rank}
    seconds = time.perf_counter() - started
    measured = _measure(guard, record["prompt"], result, prefix_stride)
    return {**record, **measured, "seconds": seconds, "rank": rank, "error": None}


# --------------------------------------------------------------------------- run settings


def _versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for name in ("inferenceguard", "torch", "transformers", "accelerate"):
        with contextlib.suppress(Exception):
            module = __import__(name)
            out[name] = str(getattr(module, "__version__", "?"))
    return out


def _meta(
    guard: InferenceGuard,
    specs: Sequence[StrategySpec],
    configs: Mapping[str, GuardConfig],
    prompt_sets: Sequence[PromptSet],
    seed: int,
    common: Mapping[str, Any],
    prefix_stride: int,
    info: ProcessInfo,
    plain_strategy: str | None,
) -> dict[str, Any]:
    critic = guard.critic
    return {
        "lm": guard.lm.model_id,
        "cost_model": guard.cost_model.id,
        "cost_threshold": guard.cost_model.threshold,
        "reward_model": guard.reward_model.id,
        "critic": None if critic is None else str(getattr(critic, "id", type(critic).__name__)),
        "base_config": {k: v for k, v in guard.config.to_dict().items() if k != "seed"},
        "seed": seed,
        "common": dict(common),
        "prefix_stride": prefix_stride,
        "strategies": [
            {
                "label": s.label,
                "name": s.name,
                "method": s.method,
                "config": configs[s.label].to_dict(),
            }
            for s in specs
        ],
        "plain_strategy": plain_strategy,
        "prompt_sets": [p.to_dict() for p in prompt_sets],
        "world_size": info.world_size,
        "device": str(guard.lm.device),
        "versions": _versions(),
    }


def _check_resumable(existing: Mapping[str, Any], meta: Mapping[str, Any], out_dir: Path) -> None:
    differ = [
        k
        for k in _FINGERPRINT
        if json.dumps(existing.get(k), sort_keys=True, default=str)
        != json.dumps(meta.get(k), sort_keys=True, default=str)
    ]
    if differ:
        details = "; ".join(f"{k}: {existing.get(k)!r} -> {meta.get(k)!r}" for k in differ)
        raise ConfigError(
            f"{out_dir} holds a run with other settings, so its records cannot be resumed "
            f"({details}).",
            hint="use a new --out folder, or overwrite=True (--overwrite) to start afresh.",
        )


# --------------------------------------------------------------------------- the four steps


def _validate(
    guard: InferenceGuard,
    strategies: Sequence[str | StrategySpec],
    prompt_sets: Sequence[PromptSet],
    prefix_stride: int,
    in_flight: int = 1,
) -> list[StrategySpec]:
    """Step 0: the parsed strategies, once every argument is known to make a run."""
    if in_flight < 1:
        raise ConfigError(f"in_flight must be at least 1, got {in_flight}.", hint="e.g. 8.")
    specs = [parse_strategy(s) for s in strategies]
    labels = [s.label for s in specs]
    if not specs:
        raise ConfigError("No strategies to evaluate.", hint="pass at least one, e.g. 'plain'.")
    if len(set(labels)) != len(labels):
        raise ConfigError(f"Duplicate strategies: {labels}.")
    names = [p.name for p in prompt_sets]
    if not prompt_sets:
        raise ConfigError("No prompt sets to evaluate.")
    if len(set(names)) != len(names):
        raise ConfigError(
            f"Duplicate prompt set names: {names}.", hint="name them with NAME=SOURCE."
        )
    for spec in specs:
        if spec.needs_critic and guard.critic is None:
            raise ConfigError(
                f"Strategy {spec.label!r} needs a critic, but the guard has none.",
                hint="load one (critic='default' or a path), or drop this strategy.",
            )
    if prefix_stride < 0:
        raise ConfigError(f"prefix_stride must be >= 0, got {prefix_stride}.")
    return specs


def _plan(
    guard: InferenceGuard,
    specs: list[StrategySpec],
    prompt_sets: Sequence[PromptSet],
    overrides: Mapping[str, Any] | None,
    *,
    max_new_tokens: int | None,
    seed: int,
    prefix_stride: int,
    plain_strategy: str | None,
    info: ProcessInfo,
) -> _Plan:
    """Each strategy's config and guard, and the run's settings (``run.json``)."""
    common: dict[str, Any] = dict(overrides or {})
    if max_new_tokens is not None:
        common["max_new_tokens"] = max_new_tokens
    common.pop("seed", None)  # per prompt
    configs = {s.label: resolve_config(guard.config, s, common) for s in specs}
    if plain_strategy is None:
        plain_strategy = next((s.label for s in specs if s.name == "plain"), None)
    meta = _meta(
        guard, specs, configs, prompt_sets, seed, common, prefix_stride, info, plain_strategy
    )
    guards = {label: _guard_for(guard, cfg) for label, cfg in configs.items()}
    return _Plan(specs, guards, prompt_sets, seed, prefix_stride, plain_strategy, meta)


def _prepare_folder(
    out: Path, meta: dict[str, Any], shards: ResumableShards, *, overwrite: bool
) -> set[str]:
    """Steps 1-3: check, prepare and name the run folder; the record keys already done.

    Sets ``meta["invocation"]``, the id that this call's barrier files carry.
    """
    run_file, sync = out / "run.json", out / ".sync"
    # 1. Every rank checks the folder before anyone changes it.
    if run_file.exists() and not overwrite:
        _check_resumable(json.loads(run_file.read_text(encoding="utf-8")), meta, out)
    wait_for_everyone()
    # 2. Rank 0 prepares the folder and names this invocation.
    if shards.info.is_main:
        if overwrite:
            shards.clear()
            (out / "records.jsonl").unlink(missing_ok=True)
        shutil.rmtree(sync, ignore_errors=True)
        sync.mkdir(parents=True, exist_ok=True)
        meta["invocation"] = uuid.uuid4().hex
        meta["started"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        atomic_write_text(run_file, json.dumps(meta, indent=2, default=str) + "\n")
    wait_for_everyone()
    meta["invocation"] = json.loads(run_file.read_text(encoding="utf-8"))["invocation"]
    # 3. Everyone reads what is done, then waits, so nobody sees a half-updated picture.
    done = shards.done_keys()
    wait_for_everyone()
    return done


def _units(plan: _Plan, done: set[str]) -> list[tuple[PromptSet, int, str, list[StrategySpec]]]:
    """Every prompt with the strategies not yet done on it."""
    units = []
    for pset in plan.prompt_sets:
        for position, key in enumerate(pset.prompt_keys()):
            todo = [s for s in plan.specs if f"{key}|{s.label}" not in done]
            if todo:
                units.append((pset, position, key, todo))
    return units


def _run_units(
    plan: _Plan,
    shards: ResumableShards,
    done: set[str],
    *,
    progress: bool,
    on_record: Callable[[dict[str, Any]], None] | None,
    in_flight: int = 1,
) -> int:
    """This rank's prompts, every strategy not yet done on each; returns the records made.

    A unit is one prompt with all its strategies, so they run in one process one after
    the other (the time ratio to plain decoding then compares runs on the same device).
    ``in_flight`` units run at once, in threads whose requests share the guard's batches;
    records do not depend on it (each prompt's seed comes from its key, never the order).
    """
    from tqdm.auto import tqdm

    mine = shards.mine(_units(plan, done))
    info = shards.info
    desc = f"eval rank {info.rank}" if info.world_size > 1 else "eval"
    total = sum(len(todo) for *_, todo in mine)
    bar = tqdm(
        total=total,
        desc=desc,
        position=info.rank,
        disable=not progress,
        dynamic_ncols=True,
        file=sys.stderr,
    )
    lock = threading.Lock()

    def run_unit(unit: tuple[PromptSet, int, str, list[StrategySpec]]) -> None:
        pset, position, key, todo = unit
        pseed = prompt_seed(plan.seed, key)
        for spec in todo:
            guard = plan.guards[spec.label]
            record = _record(guard, spec, pset, position, key, pseed, plan.prefix_stride, info.rank)
            with lock:
                shards.append(record)
                if on_record is not None:
                    on_record(record)
                bar.set_postfix_str(
                    f"{pset.name}#{pset.indices[position]} {spec.label}", refresh=False
                )
                bar.update(1)

    with bar:
        if in_flight <= 1:
            for unit in mine:
                run_unit(unit)
        else:
            with ThreadPoolExecutor(in_flight, thread_name_prefix="eval") as pool:
                list(pool.map(run_unit, mine))
    return total


def _merge(
    out: Path, plan: _Plan, shards: ResumableShards, *, write_report: bool, plots: bool
) -> tuple[list[dict[str, Any]], list[GroupSummary], dict[str, Path]]:
    """Step 4: rank 0 merges every rank's records and writes the report; the others read.

    A file-based barrier: no collective-op timeout however uneven the shards are.
    """
    info, sync, invocation = shards.info, out / ".sync", plan.meta["invocation"]
    (sync / f"done-{invocation}-rank{info.rank}").touch()
    merged_flag = sync / f"merged-{invocation}"
    files: dict[str, Path] = {"run": out / "run.json", "records": out / "records.jsonl"}
    if not info.is_main:
        wait_for_files([merged_flag])
        records = list(read_jsonl([files["records"]]))
        summaries = summarize(records, plain_strategy=plan.plain_strategy)
        if write_report:
            files.update({"summary": out / "summary.json", "report": out / "report.md"})
        return records, summaries, files
    wait_for_files([sync / f"done-{invocation}-rank{r}" for r in range(info.world_size)])
    records = shards.merged(plan.keys())
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    atomic_write_text(files["records"], lines)
    summaries = summarize(records, plain_strategy=plan.plain_strategy)
    if write_report:
        from .report import write_report as _write_report

        files.update(_write_report(out, records, summaries, plan.meta, plots=plots))
    if info.world_size == 1:
        shutil.rmtree(sync, ignore_errors=True)  # nobody waits on the flag
    else:
        merged_flag.touch()
    return records, summaries, files


def evaluate(
    guard: InferenceGuard,
    strategies: Sequence[str | StrategySpec],
    prompt_sets: Sequence[PromptSet],
    out_dir: str | os.PathLike,
    *,
    seed: int = 0,
    max_new_tokens: int | None = None,
    overrides: Mapping[str, Any] | None = None,
    prefix_stride: int = 16,
    plain_strategy: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
    write_report: bool = True,
    plots: bool = True,
    on_record: Callable[[dict[str, Any]], None] | None = None,
    in_flight: int = 1,
) -> EvalRun:
    """Run every strategy on every prompt; write records, a summary, a report and plots.

    Args:
        guard: the models (LM, cost, reward, critic) and the base :class:`GuardConfig`.
        strategies: specs such as ``"plain"`` or ``"best_of_n:n_candidates=16"``
            (see :mod:`.presets`).
        prompt_sets: the prompts (see :func:`.tasks.load_prompt_set`).
        out_dir: the run folder; an existing one is resumed (see the module docstring).
        seed: run seed; each prompt's sampling seed derives from it and the prompt's key.
        max_new_tokens: maximum response length for every strategy (``None``: the guard's).
        overrides: other :class:`GuardConfig` fields for every strategy (a strategy's own
            options win).
        prefix_stride: re-score each response's prefixes every this many tokens with the
            cost model, alike for every strategy (``0``: off).
        plain_strategy: the label the time ratio divides by (default: the run's first
            ``plain`` strategy, if any).
        overwrite: delete the folder's previous records instead of resuming them.
        progress: show a tqdm progress bar (one per process).
        write_report: write ``summary.json`` and ``report.md`` (rank 0).
        plots: also draw the plots (needs ``matplotlib``; skipped with a message if not).
        on_record: called with each new record after it is written (in its process).
        in_flight: prompts run at once (sharing batches); records do not depend on it.

    Returns:
        :class:`EvalRun` with the merged records and the summaries (on every process).

    Raises:
        ConfigError: invalid strategies, duplicate labels or set names, a critic strategy
            without a critic, or a folder holding a different run.
    """
    specs = _validate(guard, strategies, prompt_sets, prefix_stride, in_flight)
    info = init_distributed()
    plan = _plan(
        guard, specs, prompt_sets, overrides, max_new_tokens=max_new_tokens, seed=seed,
        prefix_stride=prefix_stride, plain_strategy=plain_strategy, info=info,
    )  # fmt: skip
    out = Path(out_dir)
    shards = ResumableShards(out / "shards", info)
    done = _prepare_folder(out, plan.meta, shards, overwrite=overwrite)
    new_records = _run_units(plan, shards, done, progress=progress, on_record=on_record, in_flight=in_flight)  # fmt: skip
    records, summaries, files = _merge(out, plan, shards, write_report=write_report, plots=plots)
    return EvalRun(out, records, summaries, files, plan.meta, new_records)
