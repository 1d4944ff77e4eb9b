"""Rollouts of the base model for critic training: what the search will see, with outcomes.

For every prompt, ``samples_per_prompt`` responses are sampled exactly as the search samples
candidates (one prefill, rows expanded with :meth:`DecodeState.select`, blocks of
``block_len`` tokens from :meth:`LocalLM.sample_block` with the same
:class:`SamplerSettings`). After each block the cost model scores every live response in one
batched call and the safety state is updated as in the search; we record, per block,

* the final-layer hidden state at the block's last token (``block.hidden``), float16;
* the safety state ``z`` (budget − tracked cost) and the step fraction
  ``tokens so far / max_new_tokens`` (the search's exact formula);

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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from ..._distributed import (
    ProcessInfo,
    append_jsonl,
    process_info,
    read_jsonl,
    shard,
    wait_for_everyone,
)
from ..._io import atomic_write_bytes, atomic_write_text, sha256_file
from ..._version import __version__
from ...errors import ArtifactError, ConfigError
from ...lm import LocalLM, SamplerSettings
from ...prompts import PromptSpec
from ...safety import advance_max_cost
from ...scorers.base import CostModel, RewardModel, checked_scores

__all__ = [
    "PromptItem",
    "RolloutData",
    "RolloutSettings",
    "collect_rollouts",
    "init_distributed",
    "load_rollouts",
    "prompt_id",
    "prompt_items",
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


def prompt_items(specs: Iterable[PromptSpec | str], limit: int | None = None) -> list[PromptItem]:
    """Load prompt files into unique :class:`PromptItem` s, in file order.

    Args:
        specs: ``FILE[:COLUMN]`` strings or :class:`PromptSpec` s.
        limit: at most this many prompts from each file (the first ones).

    Returns:
        The prompts; a prompt that appears twice is kept once, with its first source.
    """
    items: list[PromptItem] = []
    seen: set[str] = set()
    for spec in specs:
        spec = PromptSpec.parse(spec) if isinstance(spec, str) else spec
        for text in spec.load(limit):
            pid = prompt_id(text)
            if pid not in seen:
                seen.add(pid)
                items.append(PromptItem(pid, text, spec.name))
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


def init_distributed() -> ProcessInfo:
    """This process's rank and world size; sets ``accelerate`` up for CPU-only runs.

    ``PartialState()`` chooses the gloo CPU backend only when asked for the CPU explicitly;
    without a GPU it would otherwise give every rank "rank 0 of 1" and each would do all the
    work. The state is a singleton, so later ``PartialState()`` calls see this one.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from accelerate import PartialState

        PartialState(cpu=not torch.cuda.is_available())
    return process_info()


def _prompt_seed(seed: int, pid: str) -> int:
    digest = hashlib.sha256(f"{seed}:{pid}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & ((1 << 63) - 1)


def rollout_prompt(
    lm: LocalLM,
    cost_model: CostModel,
    reward_model: RewardModel,
    item: PromptItem,
    settings: RolloutSettings,
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Sample ``samples_per_prompt`` responses to one prompt, block by block.

    In prefix mode a response stops as soon as it goes over budget: its outcome is then
    fixed (z never rises), so sampling it further would only cost time.

    Returns:
        (record, tensors): the JSON record (responses with text, tokens, finish, final
        cost, max prefix cost, within-budget flag, reward) and the per-block tensors
        ``hidden`` `[b, H]` float16, ``z`` `[b]`, ``step_frac`` `[b]`, ``sample`` `[b]`
        (which response), ``block`` `[b]` (block number).
    """
    budget = cost_model.threshold if settings.budget is None else float(settings.budget)
    n, max_new = settings.samples_per_prompt, settings.max_new_tokens
    generator = torch.Generator(device=lm.device).manual_seed(_prompt_seed(settings.seed, item.id))
    state = lm.prefill(lm.encode(lm.render(item.text)))
    state.select(torch.zeros(n, dtype=torch.long))
    tokens: list[list[int]] = [[] for _ in range(n)]
    texts = [""] * n
    last_cost = [0.0] * n
    tracked = torch.full((n,), float("-inf"))
    finish: list[str] = ["length"] * n
    live = list(range(n))  # response index of each state row
    hidden, zs, fracs, samples, blocks = [], [], [], [], []
    used, step = 0, 0
    while live:
        this_block = min(settings.block_len, max_new - used)
        block = lm.sample_block(state, this_block, sampler=settings.sampler, generator=generator)
        lengths = block.lengths.tolist()
        for row, s in enumerate(live):
            tokens[s] += block.tokens[row, : lengths[row]].tolist()
            texts[s] = lm.decode(tokens[s])
        live_t = torch.tensor(live)
        cost = checked_scores(cost_model, [item.text] * len(live), [texts[s] for s in live])
        tracked[live_t] = advance_max_cost(tracked[live_t], cost, settings.safety_mode)
        z = budget - tracked[live_t]
        used += this_block
        hidden.append(block.hidden.detach().to("cpu", torch.float16))
        zs.append(z)
        # The search's formula, for rows that ended early too: (used + this_block) / D.
        fracs.append(torch.full((len(live),), used / max_new))
        samples.append(live_t)
        blocks.append(torch.full((len(live),), step))
        step += 1
        keep: list[int] = []
        for row, s in enumerate(live):
            last_cost[s] = float(cost[row])
            if settings.safety_mode == "prefix" and float(z[row]) < 0:
                finish[s] = "unsafe"  # the outcome is decided, even if EOS came too
            elif bool(block.finished[row]):
                finish[s] = "stop"
            elif used >= max_new:
                finish[s] = "length"
            else:
                keep.append(row)
        if keep and len(keep) < len(live):
            state.select(torch.tensor(keep))
        live = [live[row] for row in keep]
    del state
    rewards = checked_scores(reward_model, [item.text] * n, texts).tolist()
    z_final = (budget - tracked).tolist()
    responses = [
        {
            "text": texts[s],
            "tokens": len(tokens[s]),
            "token_ids": tokens[s],
            "finish": finish[s],
            "final_cost": last_cost[s],
            "max_prefix_cost": float(tracked[s]),
            "within_budget": bool(z_final[s] >= 0),
            "reward": float(rewards[s]),
        }
        for s in range(n)
    ]
    tensors = {
        "hidden": torch.cat(hidden).contiguous(),
        "z": torch.cat(zs).float().contiguous(),
        "step_frac": torch.cat(fracs).float().contiguous(),
        "sample": torch.cat(samples).long().contiguous(),
        "block": torch.cat(blocks).long().contiguous(),
    }
    record = {
        "prompt_id": item.id,
        "prompt": item.text,
        "source": item.source,
        "budget": budget,
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


def _part_path(out: Path, rank: int) -> Path:
    return out / "parts" / f"index.rank{rank}.jsonl"


def _finished(out: Path) -> dict[str, dict[str, Any]]:
    """Records already on disk whose hidden-state file is intact, by prompt id."""
    paths = [out / INDEX_FILE, *sorted((out / "parts").glob("index.rank*.jsonl"))]
    done: dict[str, dict[str, Any]] = {}
    for record in read_jsonl(paths):
        pid = record.get("prompt_id")
        if pid in done or not isinstance(pid, str):
            continue
        file = out / record.get("hidden_file", "")
        if file.is_file() and sha256_file(file) == record.get("hidden_sha256"):
            done[pid] = record
    return done


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
) -> Path:
    """Roll out every prompt, resuming and sharding as described in the module docstring.

    Under ``accelerate launch`` each rank takes every ``world_size``-th prompt; rank 0
    merges the per-rank records into ``index.jsonl`` once all ranks are done. Call it on
    every rank with the same arguments.

    Args:
        prompts: the prompts (ids must be unique: see :func:`prompt_items`).
        lm, cost_model, reward_model: the models the search will use.
        settings: the sampling settings.
        out_dir: output folder (created; reused to resume).
        progress: show a tqdm bar per rank.
        on_prompt: called after each finished prompt (tests use it to interrupt a run).

    Returns:
        ``out_dir``.

    Raises:
        ConfigError: ``out_dir`` holds rollouts made with other settings, or ids repeat.
    """
    from safetensors.torch import save
    from tqdm.auto import tqdm

    out = Path(out_dir)
    ids = [p.id for p in prompts]
    if len(set(ids)) != len(ids):
        raise ConfigError("Prompt ids repeat; build the list with prompt_items() to dedupe.")
    info = init_distributed()
    out.mkdir(parents=True, exist_ok=True)
    _check_settings(out, _settings_doc(lm, cost_model, reward_model, settings), info)
    done = _finished(out)
    mine = [p for p in shard(prompts, info) if p.id not in done]
    if info.is_main and len(done):
        logger.warning("Resuming in %s: %d of %d prompts already done.", out, len(done), len(ids))
    bar = tqdm(
        mine,
        desc=f"rollouts[rank {info.rank}]" if info.world_size > 1 else "rollouts",
        position=info.rank,
        disable=not progress,
        unit="prompt",
    )
    for item in bar:
        record, tensors = rollout_prompt(lm, cost_model, reward_model, item, settings)
        rel = f"hidden/{item.id}.safetensors"
        blob = save(tensors, metadata={"format": f"{FORMAT}/{FORMAT_VERSION}"})
        # The tensors first, then the record that points at them: a crash in between
        # leaves an orphan file that the resumed run overwrites, never a dangling record.
        atomic_write_bytes(out / rel, blob)
        record["hidden_file"] = rel
        record["hidden_sha256"] = hashlib.sha256(blob).hexdigest()
        append_jsonl(_part_path(out, info.rank), record)
        if on_prompt is not None:
            on_prompt(item)
    bar.close()
    wait_for_everyone()
    if info.is_main:
        _merge(out, ids)
    wait_for_everyone()
    return out


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
    for part in (out / "parts").glob("index.rank*.jsonl"):
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
    paths = [out / INDEX_FILE, *sorted((out / "parts").glob("index.rank*.jsonl"))]
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
