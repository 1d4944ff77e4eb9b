"""Rollouts of the base model for critic training: what the search will see, with outcomes.

For every prompt, ``samples_per_prompt`` responses are sampled by the search's own steps
(:mod:`inferenceguard.search.steps`: one prefill, rows expanded, blocks of ``block_len``
tokens sampled and verified by :func:`~inferenceguard.search.steps.sample_verified` with the
same sampler, safety state and budget). After each block we record the critic's inputs
exactly as the search computes them (:func:`~inferenceguard.search.steps.critic_features`):

* the final-layer hidden state at the block's last token, float16;
* the safety state ``z`` (budget − tracked cost) and the step fraction
  ``tokens so far / max_new_tokens``;

and per response its final verified cost, whether it ended within budget, and its final
reward (one batched reward call per prompt).

Files (no pickle anywhere)::

    OUT/rollouts.json                 settings; a resumed run must use the same ones
    OUT/hidden/<prompt_id>.safetensors  per prompt: hidden [b, H] f16, z, step_frac, sample, block
    OUT/parts/index.rank<r>.jsonl     per-rank records, appended one prompt at a time
    OUT/index.jsonl                   all records in prompt order (rank 0 merges at the end)

Every prompt gets its own random generator, seeded from ``seed`` and the prompt's hash, so
the records do not depend on how prompts are spread over ranks
(``accelerate launch --num_processes P``), and a resumed run skips the prompts whose record
is already on disk.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from ..._data import prompt_seed
from ..._distributed import (
    ProcessInfo,
    ResumableShards,
    init_distributed,
    process_info,
    read_jsonl,
    wait_for_everyone,
)
from ..._io import atomic_write_bytes, atomic_write_text, sha256_file
from ..._version import __version__
from ...config import GuardConfig
from ...errors import ArtifactError, ConfigError
from ...lm import LocalLM, SamplerSettings
from ...prompts import PromptSpec
from ...scorers.base import CostModel, RewardModel
from ...search.context import SearchContext
from ...search.events import BlockEvent
from ...search.scheduler import StepScheduler
from ...search.steps import (
    Beam,
    Candidates,
    critic_features,
    expand,
    extend_beams,
    finished_rows,
    sample_verified,
)

__all__ = [
    "PromptItem",
    "RolloutData",
    "RolloutSettings",
    "collect_rollouts",
    "load_rollouts",
    "prompt_id",
    "prompt_items",
    "rollout_context",
    "rollout_prompt",
]

logger = logging.getLogger(__name__)

SETTINGS_FILE = "rollouts.json"
INDEX_FILE = "index.jsonl"
FORMAT = "inferenceguard-rollouts"
FORMAT_VERSION = 1


def prompt_id(text: str) -> str:
    """Stable id of a prompt: the first 16 hex digits of the sha256 of its text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class PromptItem:
    """A prompt to roll out.

    Attributes:
        id: :func:`prompt_id` of ``text``.
        text: the user turn.
        source: where it came from (file stem), recorded for the data summary.
    """

    id: str
    text: str
    source: str


def _load_spec(spec: PromptSpec | str, limit: int | None) -> tuple[str, list[str]]:
    """(source name, prompts) of one spec: a prompt file, or a built-in prompt set's name."""
    if isinstance(spec, str) and not Path(spec).exists():
        from ...evaluation.tasks import BUILTIN_SETS, load_prompt_set

        if spec in BUILTIN_SETS:
            # The evaluation's own loader: its filters (XSTest's safe prompts only,
            # HarmBench's standard behaviours) and ``limit`` spread over the whole file.
            prompt_set = load_prompt_set(spec, limit=limit)
            return prompt_set.name, list(prompt_set.prompts)
    spec = PromptSpec.parse(spec) if isinstance(spec, str) else spec
    return spec.name, spec.load(limit)


def prompt_items(
    specs: Iterable[PromptSpec | str],
    limit: int | Sequence[int | None] | None = None,
) -> list[PromptItem]:
    """Load prompt files or built-in prompt sets into unique :class:`PromptItem` s, in order.

    Args:
        specs: ``FILE[:COLUMN]`` strings, :class:`PromptSpec` s, or names of built-in prompt
            sets (:data:`inferenceguard.evaluation.tasks.BUILTIN_SETS`, e.g. ``"xstest_safe"``).
        limit: at most this many prompts from each spec (a file's first ones; a built-in
            set's spread evenly over it), or one limit per spec.

    Returns:
        The prompts; a prompt that appears twice is kept once, with its first source (the
        file stem, or the built-in set's name).
    """
    specs = list(specs)
    limits = list(limit) if isinstance(limit, Sequence) else [limit] * len(specs)
    if len(limits) != len(specs):
        raise ConfigError(f"{len(limits)} limits were given for {len(specs)} prompt specs.")
    items: list[PromptItem] = []
    seen: set[str] = set()
    for spec, n in zip(specs, limits, strict=True):
        source, texts = _load_spec(spec, n)
        for text in texts:
            pid = prompt_id(text)
            if pid not in seen:
                seen.add(pid)
                items.append(PromptItem(pid, text, source))
    return items


@dataclass(frozen=True)
class RolloutSettings:
    """How responses are sampled; must match the search the critic will serve.

    Attributes:
        samples_per_prompt: responses sampled per prompt (the paper: 5).
        block_len: B, tokens per block (the search's ``block_len``).
        max_new_tokens: D, the response length limit (the search's ``max_new_tokens``).
        sampler: the base sampler (the search's temperature / top-p / top-k).
        budget: d; ``None`` uses the cost model's threshold.
        safety_mode: ``"prefix"`` (the search's default) or ``"final"``.
        seed: base seed; each prompt's generator is seeded from it and the prompt's id.
    """

    samples_per_prompt: int = 4
    block_len: int = 16
    max_new_tokens: int = 64
    sampler: SamplerSettings = field(default_factory=SamplerSettings)
    budget: float | None = None
    safety_mode: Literal["prefix", "final"] = "prefix"
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("samples_per_prompt", "block_len", "max_new_tokens"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}.")
        if self.block_len > self.max_new_tokens:
            raise ConfigError(
                f"block_len ({self.block_len}) cannot exceed max_new_tokens ({self.max_new_tokens})."
            )
        if self.safety_mode not in ("prefix", "final"):
            raise ConfigError(f"safety_mode must be 'prefix' or 'final', got {self.safety_mode!r}.")
        if self.budget is not None and not math.isfinite(self.budget):
            raise ConfigError(f"budget must be finite, got {self.budget!r}.")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the sampler as a nested dict)."""
        data = asdict(self)
        data["sampler"] = asdict(self.sampler)
        return data


def rollout_context(
    lm: LocalLM,
    cost_model: CostModel,
    reward_model: RewardModel,
    item: PromptItem,
    settings: RolloutSettings,
) -> SearchContext:
    """The search context one prompt's rollouts sample in: the search's sampler, block
    length, safety mode and budget, with ``samples_per_prompt`` candidates and the
    prompt's own seed (:func:`inferenceguard._data.prompt_seed`)."""
    sampler, n = settings.sampler, settings.samples_per_prompt
    config = GuardConfig(
        n_candidates=n,
        n_beams=n,
        block_len=settings.block_len,
        max_new_tokens=settings.max_new_tokens,
        resample_rounds=0,
        do_sample=sampler.do_sample,
        # Greedy ignores the temperature, which GuardConfig still wants positive.
        temperature=sampler.temperature if sampler.do_sample else 1.0,
        top_p=sampler.top_p,
        top_k=sampler.top_k,
        budget=settings.budget,
        safety_mode=settings.safety_mode,
        seed=settings.seed,
    )
    budget = cost_model.threshold if settings.budget is None else float(settings.budget)
    seed = prompt_seed(settings.seed, item.id)
    return SearchContext(
        lm=lm,
        cost_model=cost_model,
        reward_model=reward_model,
        critic=None,
        config=config,
        prompt=item.text,
        prompt_ids=lm.encode(lm.render(item.text)),
        budget=budget,
        generator=torch.Generator(device=lm.device).manual_seed(seed),
    )


@dataclass
class _Responses:
    """Per response: its latest beam, finish reason and cost; per block: the critic rows."""

    beams: list[Beam]
    finish: list[str]
    last_cost: list[float]
    events: list[tuple[BlockEvent, torch.Tensor]] = field(default_factory=list)
    """Per block: the critic's inputs and which response `[n]` each row is."""

    def update(
        self, live: torch.Tensor, beams: list[Beam], cands: Candidates, unsafe: torch.Tensor
    ) -> None:
        """Record the block's beams, costs and finish reasons of responses ``live`` `[n]`."""
        for row, (s, beam) in enumerate(zip(live.tolist(), beams, strict=True)):
            self.beams[s], self.last_cost[s] = beam, float(cands.cost[row])
            # An unsafe response's outcome is decided, even if EOS came too.
            self.finish[s] = "unsafe" if bool(unsafe[row]) else (beam.finish or "length")

    def tensors(self) -> dict[str, torch.Tensor]:
        """The per-block tensors of the file format (hidden float16 on the CPU)."""
        rows = [
            (e.hidden.detach().to("cpu", torch.float16), e.z, e.step_frac, s, torch.full_like(s, b))
            for b, (e, s) in enumerate(self.events)
        ]
        hidden, z, frac, sample, block = (torch.cat(col) for col in zip(*rows, strict=True))
        return {
            "hidden": hidden.contiguous(),
            "z": z.float().contiguous(),
            "step_frac": frac.float().contiguous(),
            "sample": sample.long().contiguous(),
            "block": block.long().contiguous(),
        }


def _sample_responses(ctx: SearchContext) -> _Responses:
    """Sample every response block by block with the search's own steps.

    A response leaves the batch when it ends (EOS, or ``max_new_tokens``) and, in prefix
    mode, as soon as it goes over budget: its outcome is then fixed (z never rises), so
    sampling it further would only cost time.
    """
    cfg = ctx.config
    n, max_new = cfg.n_candidates, cfg.max_new_tokens
    out = _Responses(beams=[Beam() for _ in range(n)], finish=["length"] * n, last_cost=[0.0] * n)
    state = ctx.lm.prefill(ctx.prompt_ids)
    state.select(expand(1, n))
    live = torch.arange(n)  # response index of each state row
    used = 0
    while live.numel():
        this_block = min(cfg.block_len, max_new - used)
        beams = [out.beams[s] for s in live.tolist()]
        rows = torch.arange(live.numel())
        cands = sample_verified(ctx, state, beams, rows, this_block, resample_rounds=0)
        out.events.append((critic_features(cands.block, cands.z, used + this_block, max_new), live))
        ended = finished_rows(cands, used, max_new)
        unsafe = ~cands.safe if cfg.safety_mode == "prefix" else torch.zeros_like(ended)
        out.update(live, extend_beams(beams, cands, rows, cands.z, finished=True), cands, unsafe)
        keep = (~(ended | unsafe)).nonzero().flatten()
        if 0 < keep.numel() < live.numel():
            state.select(keep)
        live = live[keep]
        used += this_block
    return out


def _sample_and_reward(
    ctx: SearchContext, scheduler: StepScheduler | None
) -> tuple[_Responses, list[float]]:
    """The responses and their final rewards, batched with other prompts' via ``scheduler``."""
    if scheduler is None:
        out = _sample_responses(ctx)
        return out, ctx.scores(ctx.reward_model, [b.text for b in out.beams]).tolist()
    n = ctx.config.n_candidates
    ticket = scheduler.admit(n, n * (len(ctx.prompt_ids) + ctx.config.max_new_tokens))
    ctx.batcher, ctx.lm = ticket, ticket.attach(ctx.lm)
    try:
        with ticket.active():
            out = _sample_responses(ctx)
            rewards = ctx.scores(ctx.reward_model, [b.text for b in out.beams]).tolist()
    finally:
        ticket.release()
    return out, rewards


def rollout_prompt(
    lm: LocalLM,
    cost_model: CostModel,
    reward_model: RewardModel,
    item: PromptItem,
    settings: RolloutSettings,
    *,
    scheduler: StepScheduler | None = None,
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Sample ``samples_per_prompt`` responses to one prompt, block by block, exactly as the
    search samples and verifies candidates (:mod:`inferenceguard.search.steps`). With a
    ``scheduler``, its forwards and scorer calls join those of other prompts in flight.

    Returns:
        (record, tensors): the JSON record (responses with text, tokens, finish, final
        cost, max prefix cost, within-budget flag, reward) and the per-block tensors
        ``hidden`` `[b, H]` float16, ``z`` `[b]`, ``step_frac`` `[b]`, ``sample`` `[b]`
        (which response), ``block`` `[b]` (block number).
    """
    ctx = rollout_context(lm, cost_model, reward_model, item, settings)
    out, rewards = _sample_and_reward(ctx, scheduler)
    responses = [
        {
            "text": beam.text,
            "tokens": len(beam.tokens),
            "token_ids": beam.tokens,
            "finish": finish,
            "final_cost": cost,
            "max_prefix_cost": beam.tracked_cost,
            # The search's own verdict: z after the response's last block (every response
            # has at least one).
            "within_budget": bool(beam.z_trace[-1] >= 0),
            "reward": float(reward),
        }
        for beam, finish, cost, reward in zip(
            out.beams, out.finish, out.last_cost, rewards, strict=True
        )
    ]
    tensors = out.tensors()
    record = {
        "prompt_id": item.id,
        "prompt": item.text,
        "source": item.source,
        "budget": ctx.budget,
        "n_blocks": int(tensors["z"].numel()),
        "responses": responses,
    }
    return record, tensors


def _settings_doc(
    lm: LocalLM, cost_model: CostModel, reward_model: RewardModel, settings: RolloutSettings
) -> dict[str, Any]:
    budget = cost_model.threshold if settings.budget is None else float(settings.budget)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "base_model": {"id": lm.model_id, "hidden_size": lm.hidden_size},
        "cost_model": {"id": cost_model.id, "threshold": float(cost_model.threshold)},
        "reward_model": {"id": reward_model.id},
        "budget": budget,
        "settings": settings.to_dict(),
    }


def _check_settings(out: Path, doc: dict[str, Any], info: ProcessInfo) -> None:
    path = out / SETTINGS_FILE
    if path.exists():
        try:
            existing = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ArtifactError(f"{path} is unreadable: {exc}.") from exc
        existing.pop("library_version", None)
        if existing != doc:
            diff = sorted(k for k in set(existing) | set(doc) if existing.get(k) != doc.get(k))
            raise ConfigError(
                f"{out} holds rollouts made with other settings (differing: {diff}; "
                f"there: {[existing.get(k) for k in diff]}, now: {[doc.get(k) for k in diff]}).",
                hint="use another output folder, or delete this one to start over.",
            )
    elif info.is_main:
        text = json.dumps({**doc, "library_version": __version__}, indent=2, sort_keys=True)
        atomic_write_text(path, text + "\n")


def _parts(out: Path, info: ProcessInfo) -> ResumableShards:
    """Each rank's records, appended to its own file under ``parts/`` until the merge."""
    return ResumableShards(out / "parts", info, key="prompt_id", pattern="index.rank{rank}.jsonl")


def _finished(out: Path) -> dict[str, dict[str, Any]]:
    """Records already on disk whose hidden-state file is intact, by prompt id."""
    paths = [out / INDEX_FILE, *_parts(out, process_info()).files()]
    done: dict[str, dict[str, Any]] = {}
    for record in read_jsonl(paths):
        pid = record.get("prompt_id")
        if pid in done or not isinstance(pid, str):
            continue
        file = out / record.get("hidden_file", "")
        if file.is_file() and sha256_file(file) == record.get("hidden_sha256"):
            done[pid] = record
    return done


def _checked_ids(prompts: Sequence[PromptItem], in_flight: int) -> list[str]:
    """The prompts' ids, refusing repeated ids and a non-positive ``in_flight``."""
    if in_flight < 1:
        raise ConfigError(f"in_flight must be at least 1, got {in_flight}.", hint="e.g. 8.")
    ids = [p.id for p in prompts]
    if len(set(ids)) != len(ids):
        raise ConfigError("Prompt ids repeat; build the list with prompt_items() to dedupe.")
    return ids


def collect_rollouts(
    prompts: Sequence[PromptItem],
    lm: LocalLM,
    cost_model: CostModel,
    reward_model: RewardModel,
    settings: RolloutSettings,
    out_dir: str | os.PathLike[str],
    *,
    progress: bool = True,
    on_prompt: Callable[[PromptItem], None] | None = None,
    in_flight: int = 1,
) -> Path:
    """Roll out every prompt into ``out_dir`` (returned), resuming and sharding as the
    module docstring describes.

    Under ``accelerate launch`` each rank takes every ``world_size``-th prompt; rank 0
    merges the per-rank records into ``index.jsonl`` once all ranks are done. Call it on
    every rank with the same arguments.

    Args:
        prompts: the prompts (ids must be unique: see :func:`prompt_items`).
        lm, cost_model, reward_model: the models the search will use.
        settings: the sampling settings.
        out_dir: output folder (created; reused to resume).
        progress: show a tqdm bar per rank (responses done, responses/s, time left).
        on_prompt: called after each finished prompt (tests use it to interrupt a run).
        in_flight: prompts rolled out at once, sharing batched forwards and scorer calls;
            the records do not depend on it (every prompt has its own generator).

    Raises:
        ConfigError: ``out_dir`` holds rollouts made with other settings, ids repeat, or
            ``in_flight`` < 1.
    """
    from tqdm.auto import tqdm

    ids = _checked_ids(prompts, in_flight)
    out = Path(out_dir)
    info = init_distributed()
    out.mkdir(parents=True, exist_ok=True)
    _check_settings(out, _settings_doc(lm, cost_model, reward_model, settings), info)
    done = _finished(out)
    parts = _parts(out, info)
    mine = [p for p in parts.mine(prompts) if p.id not in done]
    if info.is_main and len(done):
        logger.warning("Resuming in %s: %d of %d prompts already done.", out, len(done), len(ids))
    bar = tqdm(  # counts responses, the unit the recipe is sized in
        total=len(mine) * settings.samples_per_prompt,
        desc=f"rollouts[rank {info.rank}]" if info.world_size > 1 else "rollouts",
        position=info.rank,
        disable=not progress,
        unit="response",
    )
    with bar:
        _roll_out_all(mine, (lm, cost_model, reward_model), settings, out, parts, bar, on_prompt, in_flight)  # fmt: skip
    wait_for_everyone()
    if info.is_main:
        _merge(out, ids)
    wait_for_everyone()
    return out


def _roll_out_all(
    items: Sequence[PromptItem],
    models: tuple[LocalLM, CostModel, RewardModel],
    settings: RolloutSettings,
    out: Path,
    parts: ResumableShards,
    bar: Any,
    on_prompt: Callable[[PromptItem], None] | None,
    in_flight: int,
) -> None:
    """Roll out ``items``, ``in_flight`` at a time, writing each prompt as it finishes."""
    scheduler = StepScheduler(device=models[0].device) if in_flight > 1 else None
    lock = threading.Lock()

    def one(item: PromptItem) -> None:
        batched = {"scheduler": scheduler} if scheduler is not None else {}
        record, tensors = rollout_prompt(*models, item, settings, **batched)
        with lock:
            _write_prompt(out, parts, item, record, tensors)
            bar.update(len(record["responses"]))
            if on_prompt is not None:
                on_prompt(item)

    if scheduler is None:
        for item in items:
            one(item)
        return
    with ThreadPoolExecutor(in_flight, thread_name_prefix="rollouts") as pool:
        list(pool.map(one, items))


def _write_prompt(
    out: Path,
    parts: ResumableShards,
    item: PromptItem,
    record: dict[str, Any],
    tensors: dict[str, torch.Tensor],
) -> None:
    """Save one prompt's tensors, then append its record (pointing at them) to the rank's part."""
    from safetensors.torch import save

    rel = f"hidden/{item.id}.safetensors"
    blob = save(tensors, metadata={"format": f"{FORMAT}/{FORMAT_VERSION}"})
    # The tensors first, then the record that points at them: a crash in between
    # leaves an orphan file that the resumed run overwrites, never a dangling record.
    atomic_write_bytes(out / rel, blob)
    record["hidden_file"] = rel
    record["hidden_sha256"] = hashlib.sha256(blob).hexdigest()
    parts.append(record)


def _merge(out: Path, order: Sequence[str]) -> None:
    """Write every finished record into ``index.jsonl`` in prompt order; drop the parts."""
    done = _finished(out)
    position = {pid: i for i, pid in enumerate(order)}
    # Records of prompts not in this run (an earlier, larger run) are kept, after ours.
    ordered = sorted(
        done.values(), key=lambda r: (position.get(r["prompt_id"], len(order)), r["prompt_id"])
    )
    lines = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in ordered)
    atomic_write_text(out / INDEX_FILE, lines)
    for part in _parts(out, process_info()).files():
        part.unlink()


@dataclass
class RolloutData:
    """Rollouts flattened into per-block training tensors.

    Attributes:
        info: ``rollouts.json`` (base model, cost and reward model, budget, settings).
        records: per prompt, the JSON record (prompt, source, responses).
        hidden: `[M, H]` float16 hidden states, one row per block.
        z: `[M]` safety state after the block.
        step_frac: `[M]` step fraction.
        within_budget: `[M]` float 0/1, the block's response ended within budget.
        reward: `[M]` the block's response's final reward.
        prompt_index: `[M]` index into ``records``.
    """

    info: dict[str, Any]
    records: list[dict[str, Any]]
    hidden: torch.Tensor
    z: torch.Tensor
    step_frac: torch.Tensor
    within_budget: torch.Tensor
    reward: torch.Tensor
    prompt_index: torch.Tensor

    def __len__(self) -> int:
        return int(self.z.numel())

    @property
    def prompt_ids(self) -> list[str]:
        """Prompt ids, in ``records`` order."""
        return [r["prompt_id"] for r in self.records]


def load_rollouts(out_dir: str | os.PathLike[str]) -> RolloutData:
    """Read a rollout folder into :class:`RolloutData` (verifying each file's sha256).

    Raises:
        ArtifactError: the folder has no settings or records, or a file is corrupted.
    """
    from safetensors.torch import load_file

    out = Path(out_dir)
    try:
        info = json.loads((out / SETTINGS_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ArtifactError(
            f"{out} is not a rollout folder ({SETTINGS_FILE}: {exc}).",
            hint="collect rollouts first (inferenceguard train-critic).",
        ) from exc
    paths = [out / INDEX_FILE, *_parts(out, process_info()).files()]
    records: list[dict[str, Any]] = []
    seen: set[str] = set()
    for record in read_jsonl(paths):
        if record["prompt_id"] not in seen:
            seen.add(record["prompt_id"])
            records.append(record)
    if not records:
        raise ArtifactError(f"{out} holds no rollout records.")
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in ("h", "z", "f", "y", "r", "p")}
    for index, record in enumerate(records):
        file = out / record["hidden_file"]
        if not file.is_file() or sha256_file(file) != record["hidden_sha256"]:
            raise ArtifactError(
                f"{file} is missing or does not match its record's sha256.",
                hint="delete the folder's index entry for it (or the folder) and re-collect.",
            )
        t = load_file(file)
        outcome = torch.tensor([float(r["within_budget"]) for r in record["responses"]])
        reward = torch.tensor([float(r["reward"]) for r in record["responses"]])
        parts["h"].append(t["hidden"])
        parts["z"].append(t["z"])
        parts["f"].append(t["step_frac"])
        parts["y"].append(outcome[t["sample"]])
        parts["r"].append(reward[t["sample"]])
        parts["p"].append(torch.full_like(t["sample"], index))
    return RolloutData(
        info=info,
        records=records,
        hidden=torch.cat(parts["h"]),
        z=torch.cat(parts["z"]),
        step_frac=torch.cat(parts["f"]),
        within_budget=torch.cat(parts["y"]),
        reward=torch.cat(parts["r"]),
        prompt_index=torch.cat(parts["p"]),
    )
