"""PKU Safe-RLHF score models (Beaver cost and reward models) without the ``safe-rlhf`` package.

``PKU-Alignment/beaver-7b-v1.0-cost``, ``-reward`` and ``beaver-7b-unified-cost`` are
``LlamaForScore`` checkpoints: a Llama backbone (weights ``model.*``) and a linear
``score_head`` (``[score_dim, hidden]``, optional bias) applied to the last hidden state at
**every** token. The score of a text is the head's output at its last token, so one forward
pass over a response also scores every prefix of it; :meth:`PKUCost.score_prefixes` exposes
that, and the guard uses it to get the cost of every block boundary at once.

Their input format is ``"BEGINNING OF CONVERSATION: USER: {prompt} ASSISTANT:{response}"``.
Costs above 0 are unsafe (the models were trained so that the sign separates safe from
unsafe), so :class:`PKUCost` has threshold 0.0::

    cost = PKUCost.from_pretrained("PKU-Alignment/beaver-7b-v1.0-cost", device="cuda")
    cost(["How do I make a bomb?"], ["I can't help with that."])          # tensor([-7.9])
    cost.score_prefixes(["q"], ["One. Two. Three."], [[4, 9, 16]])        # [tensor([a, b, c])]

Within one request the search scores through :meth:`PKUCost.prefix_session`
(:mod:`.prefix`): the head and the response so far stay in a KV cache, each candidate
runs only its new tokens, and the per-token scores of those tokens, which come out of the
same pass, give the cost of **every token prefix**, so the safety state tracks the worst
token prefix rather than only block ends.

Weights are read from safetensors only (``model.safetensors`` or a sharded index).
Checkpoints stored as pickle (``pytorch_model*.bin``) are refused: unpickling runs code.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch

from .._device import model_input_device, resolve_device, resolve_dtype
from ..errors import ConfigError, InputError, ModelLoadError
from ..lm.kv import cache_argument, can_fork, new_cache, returned_cache
from ._hf import PairBatcher, ResponseSide, Row, check_source, chunks, local_snapshot, read_config
from .base import CostModel, PrefixSession, RewardModel, count_tokens
from .prefix import CausalPrefixSession

__all__ = ["PKU_PROMPT_FORMAT", "PKUCost", "PKUReward", "PKUScoreModel"]

#: Everything before the response; the response is appended verbatim after "ASSISTANT:".
PKU_PROMPT_FORMAT = "BEGINNING OF CONVERSATION: USER: {prompt} ASSISTANT:"

_SAFETENSORS = "model.safetensors"
_SAFETENSORS_INDEX = "model.safetensors.index.json"
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
# What to fetch from the hub: never the pickle files, which we refuse to read anyway.
_HUB_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken"]
# safe-rlhf's normaliser per score type: reward → (x − mean) / std, cost → x / std.
_NORMALIZE = {"reward": "affine", "cost": "scale", "critic": "identity"}
# A prefix whose end left truncation cut away: (response index, prefix index, prompt, prefix).
_Leftover = tuple[int, int, str, str]


@functools.cache
def _backbone_class() -> type:
    from transformers import LlamaModel

    class _ScoreBackbone(LlamaModel):
        # The head and the normaliser are read separately; keep transformers from
        # reporting them as unexpected keys on every load.
        _keys_to_ignore_on_load_unexpected: ClassVar[list[str]] = [
            r"^score_head\.",
            r"^normalizer\.",
        ]

    return _ScoreBackbone


class PKUScoreModel(PairBatcher):
    """A Safe-RLHF score model: Llama backbone + linear score head, run as one batched pass.

    Use it through :class:`PKUCost` or :class:`PKUReward`; both can share one instance.

    Args:
        backbone: a ``transformers.LlamaModel`` holding the ``model.*`` weights.
        score_head: ``torch.nn.Linear(hidden, score_dim)``; kept in float32.
        tokenizer: the checkpoint's tokenizer (a fast one for :meth:`prefix_scores`).
        id: name recorded in reports (the path or hub id).
        score_index: which of ``score_dim`` outputs is the score (0 for the Beaver models).
        normalize: ``None``, or ``(function, mean, var)`` from the checkpoint when its
            config sets ``do_normalize`` (function: ``"affine"``, ``"scale"``, ``"identity"``).
        prompt_format: text before the response, with a ``{prompt}`` field.
        batch_size: texts per forward pass.
        max_length: token limit per text (default: the model's context size, 2048 for Beaver).
        response_truncation: which end of an over-long response to drop once the prompt is
            gone: ``"left"`` keeps the newest text (default), ``"right"`` its start.
        prefix_reuse: let the search score a request's candidates incrementally
            (:meth:`prefix_session`); ``False`` re-scores every text in full.
    """

    pad_side = "right"  # every real token keeps its natural position

    def __init__(
        self,
        backbone: torch.nn.Module,
        score_head: torch.nn.Linear,
        tokenizer: Any,
        *,
        id: str = "pku-score-model",
        score_index: int = 0,
        normalize: tuple[str, torch.Tensor, torch.Tensor] | None = None,
        prompt_format: str = PKU_PROMPT_FORMAT,
        batch_size: int = 8,
        max_length: int | None = None,
        response_truncation: ResponseSide = "left",
        prefix_reuse: bool = True,
    ) -> None:
        if "{prompt}" not in prompt_format:
            raise ConfigError(
                f"prompt_format must contain '{{prompt}}', got {prompt_format!r}.",
                hint=f"the Beaver format is {PKU_PROMPT_FORMAT!r}.",
            )
        if not 0 <= score_index < score_head.out_features:
            raise ConfigError(
                f"score_index={score_index} is out of range for score_dim={score_head.out_features}."
            )
        self._init_batching(
            tokenizer,
            backbone.config,
            batch_size=batch_size,
            max_length=max_length,
            response_truncation=response_truncation,
        )
        self.backbone = backbone.eval()
        # The head is tiny; run it in float32 on the device of the last hidden state, so
        # bf16 backbones do not round the score itself.
        out_device = backbone.norm.weight.device
        self.score_head = score_head.float().to(out_device).eval()
        self.id = id
        self.score_index = score_index
        self.normalize = normalize
        self.prompt_format = prompt_format
        self.prefix_reuse = bool(prefix_reuse)

    @classmethod
    def from_pretrained(
        cls,
        source: str | os.PathLike,
        *,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        device_map: str | dict | None = None,
        revision: str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        trust_remote_code: bool = False,
        **options: Any,
    ) -> PKUScoreModel:
        """Load a ``LlamaForScore`` checkpoint from a folder or hub id (safetensors only).

        Args:
            source: folder with ``config.json``, safetensors weights and a tokenizer, or a
                hub id such as ``"PKU-Alignment/beaver-7b-v1.0-cost"``.
            device: default CUDA when available, else CPU.
            dtype: backbone dtype; default bf16 on CUDA, fp32 on CPU.
            device_map: passed to transformers (e.g. ``"auto"``); ``device`` is then ignored.
            revision: hub branch, tag or commit.
            model_kwargs: more ``LlamaModel.from_pretrained`` arguments.
            trust_remote_code: accepted for symmetry with the other loaders; a score model
                needs no remote code, so it only affects the tokenizer.
            **options: the constructor's keyword arguments (``batch_size``, ``max_length``,
                ``score_index``, ``prompt_format``, ``response_truncation``).

        Raises:
            ModelLoadError: no safetensors weights (pickle is refused), missing or
                misshapen ``score_head`` / backbone weights, or an unreadable folder.
        """
        text_source = check_source(source, what="score model")
        folder = local_snapshot(text_source, revision=revision, allow_patterns=_HUB_PATTERNS)
        config = read_config(str(folder))
        weight_files = _safetensors_files(folder)
        torch_device = resolve_device(device)
        kwargs: dict[str, Any] = {
            "dtype": resolve_dtype(dtype, torch_device),
            "use_safetensors": True,
            "output_loading_info": True,
            **(model_kwargs or {}),
        }
        if device_map is not None:
            kwargs["device_map"] = device_map
        backbone, tokenizer = _load_backbone(folder, text_source, kwargs, trust_remote_code)
        if device_map is None:
            backbone = backbone.to(torch_device)
        head = _load_score_head(weight_files, config, backbone.config.hidden_size, text_source)
        options.setdefault("id", text_source)
        return cls(
            backbone, head, tokenizer, normalize=_normalizer(weight_files, config), **options
        )

    # -- tokenisation -----------------------------------------------------------------

    def head(self, prompt: str) -> str:
        """The text before the response."""
        return self.prompt_format.format(prompt=prompt)

    def _encode_pair(self, prompts: Sequence[str], responses: Sequence[str]) -> list[Row]:
        texts = [self.head(p) + r for p, r in zip(prompts, responses, strict=True)]
        return [{"input_ids": list(ids)} for ids in self.tokenizer(texts)["input_ids"]]

    def _encode_with_offsets(self, text: str) -> Any:
        """Token ids and character offsets of ``text``."""
        try:
            return self.tokenizer(text, return_offsets_mapping=True)
        except NotImplementedError as exc:
            raise ConfigError(
                "Prefix scores need character offsets, which this (slow) tokenizer cannot give.",
                hint="load the fast tokenizer (tokenizer.json), or score prefixes with "
                "end_scores().",
            ) from exc

    # -- scoring ----------------------------------------------------------------------

    def _input_device(self) -> torch.device:
        return model_input_device(self.backbone)

    def _hidden_scores(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Score at every token of a right-padded batch on the input device: `[B, L]`."""
        # Right padding keeps every real token at its natural position, and causal
        # attention keeps the padding from affecting them.
        hidden = self.backbone(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            use_cache=False,
        ).last_hidden_state
        return self._head_scores(hidden)

    def _head_scores(self, hidden: torch.Tensor) -> torch.Tensor:
        """The score head on hidden states `[..., H]`, in float32: `[...]`."""
        scores = self.score_head(hidden.to(self.score_head.weight.device).float())
        return self._normalized(scores)[..., self.score_index]

    def prefix_session(self, prompt: str) -> PrefixSession | None:
        """A session scoring responses to ``prompt`` with their KV cache kept.

        Its end scores equal :meth:`end_scores` up to float rounding, and its worst
        scores are the largest score over every token prefix of each response (``None``
        when ``prefix_reuse`` is off or the model's cache cannot be forked).
        """
        if not (self.prefix_reuse and can_fork(self.backbone)):
            return None
        return CausalPrefixSession(self, prompt, self.end_scores)

    def _prefix_forward(
        self, batch: dict[str, torch.Tensor], cache: Any, last: torch.Tensor
    ) -> tuple[Any, torch.Tensor, torch.Tensor]:
        """Scores at every new position of right-padded rows, on top of ``cache``."""
        out = self.backbone(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            position_ids=batch["position_ids"],
            use_cache=True,
            **{
                cache_argument(self.backbone): cache
                if cache is not None
                else new_cache(self.backbone)
            },
        )
        scores = self._head_scores(out.last_hidden_state).cpu()
        end = scores[torch.arange(len(last)), last]
        return returned_cache(out), end, scores

    def _forward_batch(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Score at each row's last real token: `[B]` float32 CPU."""
        scores = self._hidden_scores(batch).cpu()
        last = batch["attention_mask"].sum(-1).cpu() - 1
        return scores[torch.arange(len(last)), last]

    @torch.inference_mode()
    def _token_scores(self, rows: list[Row]) -> tuple[torch.Tensor, torch.Tensor]:
        """Score at every token: `[B, L]` float32 CPU, and the `[B, L]` attention mask."""
        batch = self._pad(rows)
        count_tokens(int(batch["attention_mask"].sum()))
        device = self._input_device()
        scores = self._hidden_scores({k: v.to(device) for k, v in batch.items()})
        return scores.cpu(), batch["attention_mask"]

    def _normalized(self, scores: torch.Tensor) -> torch.Tensor:
        if self.normalize is None:
            return scores
        function, mean, var = self.normalize
        std = var.to(scores.device).sqrt() + 1e-8  # epsilon as in safe-rlhf
        if function == "affine":
            return (scores - mean.to(scores.device)) / std
        if function == "scale":
            return scores / std
        return scores

    def end_scores(self, prompts: Sequence[str], responses: Sequence[str]) -> torch.Tensor:
        """Score of each whole (prompt, response), at its last non-pad token (as safe-rlhf).

        Returns:
            `[n]` float32 CPU tensor.
        """
        _check_lengths(prompts, responses)
        return self._forward_all(list(prompts), list(responses), empty=torch.zeros(0))

    def prefix_scores(
        self,
        prompts: Sequence[str],
        responses: Sequence[str],
        prefix_ends: Sequence[Sequence[int]],
    ) -> list[torch.Tensor]:
        """Scores of response prefixes, all from one forward pass per batch.

        For response ``i`` and each character offset ``e`` in ``prefix_ends[i]``, the score
        of the prefix ``responses[i][:e]`` is the head's output at the last token of the
        full text that ends at or before that offset. Because the backbone is causal, this
        equals scoring the prefix on its own whenever ``e`` falls on a token boundary (e.g.
        after a word or a newline); an offset inside a token scores the text up to that
        token's start. ``e = len(response)`` gives :meth:`end_scores` (unless the tokenizer
        appends EOS, which :meth:`end_scores` includes).

        Args:
            prompts: `[n]` requests.
            responses: `[n]` responses (typically the longest candidate text so far).
            prefix_ends: for each response, character end-offsets ``0 ≤ e ≤ len(response)``
                of the prefixes to score (e.g. every block boundary); ``0`` is the empty
                response.

        Returns:
            A list of ``n`` float32 CPU tensors; tensor ``i`` has shape
            `[len(prefix_ends[i])]`, in the order given.

        Raises:
            InputError: mismatched lengths or an offset outside the response.
            ConfigError: the tokenizer cannot report character offsets (not a fast one).
        """
        ends = _checked_prefix_ends(prompts, responses, prefix_ends)
        results = [torch.zeros(len(row)) for row in ends]
        # Prefixes that left truncation cut away are scored on their own afterwards.
        leftovers: list[_Leftover] = []
        for part in chunks(len(prompts), self.batch_size):
            indices = range(part.start, part.stop)
            self._score_prefix_batch(indices, prompts, responses, ends, results, leftovers)
        if leftovers:
            values = self.end_scores([x[2] for x in leftovers], [x[3] for x in leftovers])
            for (i, j, _, _), value in zip(leftovers, values.tolist(), strict=True):
                results[i][j] = value
        return results

    def _score_prefix_batch(
        self,
        indices: range,
        prompts: Sequence[str],
        responses: Sequence[str],
        ends: list[list[int]],
        results: list[torch.Tensor],
        leftovers: list[_Leftover],
    ) -> None:
        """Fill ``results`` for the responses ``indices`` from one forward pass.

        Prefixes whose end was cut away by left truncation go to ``leftovers`` instead.
        """
        rows, offsets, targets, boundaries = [], [], [], []
        for b, i in enumerate(indices):
            prompt, response, dropped = self._fit(prompts[i], responses[i])
            head = self.head(prompt)
            enc = self._encode_with_offsets(head + response)
            rows.append({"input_ids": enc["input_ids"]})
            offsets.append(enc["offset_mapping"])
            for j, e in enumerate(ends[i]):
                if dropped and e <= dropped:  # its end was cut away with the start
                    leftovers.append((i, j, prompts[i], responses[i][:e]))
                    continue
                # Offsets beyond a right-truncated response score the kept part.
                targets.append((b, i, j))
                boundaries.append(len(head) + min(e - dropped, len(response)))
        if not targets:
            return
        scores, mask = self._token_scores(rows)
        batch_rows = [b for b, _, _ in targets]
        index = _last_token_before(offsets, mask, batch_rows, boundaries)
        picked = scores[torch.tensor(batch_rows), index]
        for (_, i, j), value in zip(targets, picked.tolist(), strict=True):
            results[i][j] = value


def _last_token_before(
    offsets: list[list[tuple[int, int]]],
    mask: torch.Tensor,
    rows: list[int],
    boundaries: list[int],
) -> torch.Tensor:
    """For each (row, boundary), the last real token whose character end ≤ boundary.

    Special tokens (empty offsets, e.g. an appended EOS) are skipped, except a leading
    one (BOS), which stands for the empty text if nothing else qualifies.

    Returns:
        `[P]` long tensor of token positions.
    """
    length = mask.shape[1]
    spans = torch.zeros(len(offsets), length, 2, dtype=torch.long)
    for b, row in enumerate(offsets):
        spans[b, : len(row)] = torch.tensor(row, dtype=torch.long).view(-1, 2)
    start, end = spans[..., 0], spans[..., 1]
    position = torch.arange(length)
    is_text = ((end > start) | (position == 0)) & mask.bool()  # `[B, L]`
    row_index = torch.tensor(rows)
    bound = torch.tensor(boundaries).unsqueeze(-1)  # `[P, 1]`
    ok = is_text[row_index] & (end[row_index] <= bound)  # `[P, L]`
    return torch.where(ok, position, -1).amax(dim=-1).clamp(min=0)


def _check_lengths(prompts: Sequence[str], responses: Sequence[str]) -> None:
    if len(prompts) != len(responses):
        raise InputError(
            f"prompts and responses must have the same length, got {len(prompts)} and "
            f"{len(responses)}."
        )


def _checked_prefix_ends(
    prompts: Sequence[str], responses: Sequence[str], prefix_ends: Sequence[Sequence[int]]
) -> list[list[int]]:
    """``prefix_ends`` as lists of ints, after checking they fit the responses."""
    _check_lengths(prompts, responses)
    if len(prefix_ends) != len(responses):
        raise InputError(
            f"prefix_ends must have one list per response, got {len(prefix_ends)} for "
            f"{len(responses)} responses."
        )
    return [
        [_check_offset(e, response) for e in row]
        for row, response in zip(prefix_ends, responses, strict=True)
    ]


def _check_offset(e: Any, response: str) -> int:
    if isinstance(e, bool) or not isinstance(e, int) or not 0 <= e <= len(response):
        raise InputError(
            f"Prefix end {e!r} is not a character offset in a response of length {len(response)}.",
            hint="pass integers 0 ≤ e ≤ len(response).",
        )
    return e


def _load_backbone(
    folder: Path, source: str, kwargs: dict[str, Any], trust_remote_code: bool
) -> tuple[torch.nn.Module, Any]:
    """The Llama backbone (``model.*`` weights only) and the tokenizer of a score model."""
    from transformers import AutoTokenizer

    try:
        backbone, info = _backbone_class().from_pretrained(folder, **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelLoadError(f"Could not load the score model at {source}: {exc}") from exc
    if info["missing_keys"] or info["mismatched_keys"]:
        raise ModelLoadError(
            f"{source} is not a complete Llama score model: missing backbone weights "
            f"{sorted(info['missing_keys'])[:5]}, misshapen {sorted(info['mismatched_keys'])[:5]}.",
            hint="pass the folder of a LlamaForScore checkpoint (keys 'model.*' and 'score_head.*').",
        )
    return backbone, tokenizer


def _safetensors_files(folder: Path) -> list[Path]:
    """The safetensors weight files of a checkpoint folder; refuse pickle-only ones."""
    index = folder / _SAFETENSORS_INDEX
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (OSError, ValueError, KeyError) as exc:
            raise ModelLoadError(f"Unreadable {index}: {exc}") from exc
        files = [folder / name for name in sorted(set(weight_map.values()))]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise ModelLoadError(
                f"{folder} lists shards that are not there: {missing[:3]}.",
                hint="download the whole checkpoint again.",
            )
        return files
    if (folder / _SAFETENSORS).is_file():
        return [folder / _SAFETENSORS]
    pickles = sorted(p.name for p in folder.iterdir() if p.suffix in _PICKLE_SUFFIXES)
    if pickles:
        raise ModelLoadError(
            f"{folder} holds only pickle weights ({', '.join(pickles[:3])}); InferenceGuard "
            "never unpickles checkpoints, since loading a pickle can run arbitrary code.",
            hint="convert them once, on a machine you trust, to safetensors, e.g. load the "
            "state dict with torch.load(path, weights_only=True) and write it with "
            "safetensors.torch.save_file(state_dict, 'model.safetensors').",
        )
    raise ModelLoadError(
        f"{folder} holds no model weights (no {_SAFETENSORS} or {_SAFETENSORS_INDEX}).",
        hint="pass the folder of a LlamaForScore checkpoint saved with safetensors.",
    )


def _read_tensors(files: list[Path], names: set[str]) -> dict[str, torch.Tensor]:
    """Read just ``names`` from the shards (the 7B backbone is not loaded twice)."""
    from safetensors import safe_open

    found: dict[str, torch.Tensor] = {}
    for file in files:
        with safe_open(str(file), framework="pt") as handle:
            for name in names & set(handle.keys()):
                found[name] = handle.get_tensor(name)
    return found


def _load_score_head(
    files: list[Path], config: dict[str, Any], hidden_size: int, source: str
) -> torch.nn.Linear:
    tensors = _read_tensors(files, {"score_head.weight", "score_head.bias"})
    weight = tensors.get("score_head.weight")
    if weight is None:
        raise ModelLoadError(
            f"{source} has no 'score_head.weight'; it is not a Safe-RLHF score model.",
            hint="for a classifier use kind='classifier', for a guard LM kind='guard'.",
        )
    score_dim = int(config.get("score_dim", weight.shape[0]))
    if tuple(weight.shape) != (score_dim, hidden_size):
        raise ModelLoadError(
            f"{source}: score_head.weight has shape {tuple(weight.shape)}, expected "
            f"({score_dim}, {hidden_size}) from config.json (score_dim, hidden_size)."
        )
    bias = tensors.get("score_head.bias")
    if config.get("bias") and bias is None:
        raise ModelLoadError(
            f"{source}: config.json sets bias=true but score_head.bias is missing."
        )
    head = torch.nn.Linear(hidden_size, score_dim, bias=bias is not None)
    with torch.no_grad():
        head.weight.copy_(weight.float())
        if bias is not None:
            head.bias.copy_(bias.float().reshape(score_dim))
    return head


def _normalizer(
    files: list[Path], config: dict[str, Any]
) -> tuple[str, torch.Tensor, torch.Tensor] | None:
    """safe-rlhf's output normalisation, when the checkpoint was saved with it switched on."""
    if not config.get("do_normalize"):
        return None
    function = _NORMALIZE.get(str(config.get("score_type", "reward")), "affine")
    tensors = _read_tensors(files, {"normalizer.mean", "normalizer.var"})
    mean = tensors.get("normalizer.mean", torch.as_tensor(config.get("mean", 0.0)))
    var = tensors.get("normalizer.var", torch.as_tensor(config.get("var", 1.0)))
    return function, mean.float().reshape(-1), var.float().reshape(-1)


class PKUCost(CostModel):
    """A Safe-RLHF cost model (e.g. ``beaver-7b-v1.0-cost``); costs above 0 are unsafe.

    Args:
        model: the loaded :class:`PKUScoreModel`.
        threshold: costs above it are unsafe (default 0.0, the models' decision boundary).
    """

    def __init__(self, model: PKUScoreModel, *, threshold: float = 0.0) -> None:
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise ConfigError(f"threshold must be a number, got {threshold!r}.")
        self.model = model
        self.id = model.id
        self.threshold = float(threshold)

    @classmethod
    def from_pretrained(
        cls, source: str | os.PathLike, *, threshold: float = 0.0, **kwargs: Any
    ) -> PKUCost:
        """Load a cost model; arguments as :meth:`PKUScoreModel.from_pretrained`."""
        return cls(PKUScoreModel.from_pretrained(source, **kwargs), threshold=threshold)

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> torch.Tensor:
        """Cost of each whole (prompt, response): `[n]` float32 CPU."""
        return self.model.end_scores(prompts, responses)

    def prefix_session(self, prompt: str) -> PrefixSession | None:
        """Incremental, token-level costs; see :meth:`PKUScoreModel.prefix_session`."""
        return self.model.prefix_session(prompt)

    def score_prefixes(
        self,
        prompts: Sequence[str],
        responses: Sequence[str],
        prefix_ends: Sequence[Sequence[int]],
    ) -> list[torch.Tensor]:
        """Costs of response prefixes from one pass; see :meth:`PKUScoreModel.prefix_scores`."""
        return self.model.prefix_scores(prompts, responses, prefix_ends)


class PKUReward(RewardModel):
    """A Safe-RLHF reward model (e.g. ``beaver-7b-v1.0-reward``); higher is more helpful.

    Args:
        model: the loaded :class:`PKUScoreModel`.
    """

    def __init__(self, model: PKUScoreModel) -> None:
        self.model = model
        self.id = model.id

    @classmethod
    def from_pretrained(cls, source: str | os.PathLike, **kwargs: Any) -> PKUReward:
        """Load a reward model; arguments as :meth:`PKUScoreModel.from_pretrained`."""
        return cls(PKUScoreModel.from_pretrained(source, **kwargs))

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> torch.Tensor:
        """Reward of each whole (prompt, response): `[n]` float32 CPU."""
        return self.model.end_scores(prompts, responses)

    def prefix_session(self, prompt: str) -> PrefixSession | None:
        """Incremental rewards; see :meth:`PKUScoreModel.prefix_session`."""
        return self.model.prefix_session(prompt)

    def score_prefixes(
        self,
        prompts: Sequence[str],
        responses: Sequence[str],
        prefix_ends: Sequence[Sequence[int]],
    ) -> list[torch.Tensor]:
        """Rewards of response prefixes from one pass; see :meth:`PKUScoreModel.prefix_scores`."""
        return self.model.prefix_scores(prompts, responses, prefix_ends)
