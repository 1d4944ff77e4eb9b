"""Does the response comply, and is it harmful in itself? A fine-tuned MiniLM reads it.

:class:`ResponseJudge` is MiniLM with its top layers fine-tuned (:mod:`.tuned_encoder`)
and two logistic heads over the response alone:

* ``complies``: P(the response does what was asked rather than declining). A refusal
  that names the harmful topic ("I won't explain how to pick your neighbour's lock"), or
  one that redirects to protective steps, declines; a disclaimer followed by the content,
  or the content inside a role-play frame, complies.
* ``toxic``: P(the response is harmful whatever was asked: its language is abusive,
  hateful, harassing, threatening or demeaning, or it urges the reader into a dangerous or
  illegal act, as "sure, drive home, you'll be fine" does). Safe advice on the same risky
  choice is not toxic.

:class:`JudgedPairCost` turns them and a request gate into a cost with no learned
combination: ``max(g * c, t)`` with ``g`` = P(the request is harmful), ``c`` = P(complies)
and ``t`` = P(toxic). A helpful answer to a benign request is safe however procedural it
is (``g`` is small), a refusal of a harmful request is safe however much it names the
harm (``c`` is small), and abuse or egging someone on to danger is unsafe on any request,
including the innocent-sounding ones the gate passes. Why not the cost probe's
linear heads on the frozen sentence embedding: the embedding encodes the topic, so its
compliance head read refusals that name a weapon as compliance and its toxicity head
read recipes with knives as abuse (``benchmarks/DEFAULT_COST_MODEL.md``).

On disk a judge is ``judge.safetensors`` (the tuned layers and ``complies.weight``,
``complies.bias``, ``toxic.weight``, ``toxic.bias``, float16) and ``metadata.json``,
never pickle. ``benchmarks/train_response_judge.py`` trains the shipped one.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..errors import ConfigError
from .base import CostModel
from .combinators import RequestGate, gate_id, gate_values
from .tuned_encoder import TunedEncoderHeads

__all__ = ["DEFAULT_MAX_LENGTH", "FORMAT", "WEIGHTS_FILE", "JudgedPairCost", "ResponseJudge"]

FORMAT = "inferenceguard-response-judge"
WEIGHTS_FILE = "judge.safetensors"
#: Responses are truncated to this many tokens (training and scoring alike): a guarded
#: answer is scored block by block, so its beginning is what decides.
DEFAULT_MAX_LENGTH = 192


class ResponseJudge(TunedEncoderHeads):
    """P(complies) and P(toxic) of a response, from the response alone.

    Called like a function, ``judge(responses) -> [n, 2]`` (columns :attr:`HEADS`), with
    the outputs cached per distinct response; an empty response scores 0 on both.

    Attributes:
        id: ``"response-judge:<encoder>:<sha256[:12] of the weights>"``.
        tuned_layers, max_length, metadata: see :class:`~.tuned_encoder.TunedEncoderHeads`.
    """

    FORMAT = FORMAT
    WEIGHTS_FILE = WEIGHTS_FILE
    HEADS = ("complies", "toxic")
    KIND = "response-judge"
    DEFAULT_MAX_LENGTH = DEFAULT_MAX_LENGTH

    def __call__(self, responses: Sequence[str]) -> torch.Tensor:
        """`[n, 2]` float32: P(complies), P(toxic) per response."""
        return self.probabilities(responses)

    def complies(self, responses: Sequence[str]) -> torch.Tensor:
        """P(the response complies rather than declines), `[n]` float32."""
        return self.probabilities(responses)[:, 0]

    def toxic(self, responses: Sequence[str]) -> torch.Tensor:
        """P(the response is harmful whatever was asked), `[n]` float32."""
        return self.probabilities(responses)[:, 1]


class JudgedPairCost(CostModel):
    """``max(g * c, t)``: a harmful request complied with, or a response harmful in itself.

    Attributes:
        request_gate: ``prompts -> P(harmful request)`` (the embedded
            :class:`~.request_gate.RequestHarmGate` by default in
            :func:`~.defaults.load_default_cost_model`).
        judge: the :class:`ResponseJudge`.
        threshold: a cost above it is unsafe (0.5: "more likely than not").
        id: ``"judged-pair(<gate id>,<judge id>)"``: a critic trained with one gate or
            judge refuses to run with another.
    """

    def __init__(
        self, request_gate: RequestGate, judge: ResponseJudge, *, threshold: float = 0.5
    ) -> None:
        """Build the cost model.

        Raises:
            ConfigError: ``request_gate`` is not callable, ``judge`` is not a
                :class:`ResponseJudge`, or ``threshold`` is outside `(0, 1)`.
        """
        if not callable(request_gate):
            raise ConfigError(
                "JudgedPairCost needs a callable request_gate: prompts -> P(harmful request).",
                hint="e.g. JudgedPairCost(load_default_gate(), load_default_judge()).",
            )
        if not isinstance(judge, ResponseJudge):
            raise ConfigError(
                f"judge must be a ResponseJudge, got {type(judge).__name__}.",
                hint="load one with ResponseJudge.load(folder) or load_default_judge().",
            )
        if not (isinstance(threshold, int | float) and 0.0 < threshold < 1.0):
            raise ConfigError(f"threshold must be in (0, 1), got {threshold!r}.")
        self.request_gate, self.judge = request_gate, judge
        self.threshold = float(threshold)
        self.id = f"judged-pair({gate_id(request_gate)},{judge.id})"

    def explain(self, prompts: Sequence[str], responses: Sequence[str]) -> dict[str, torch.Tensor]:
        """The cost with its parts: ``cost``, ``harmful_request`` (g), ``complies`` (c) and
        ``toxic`` (t), each `[n]` float32."""
        if len(prompts) != len(responses):
            raise ConfigError(
                f"{len(prompts)} prompts but {len(responses)} responses; pass one of each per pair."
            )
        if len(prompts) == 0:
            empty = torch.empty(0, dtype=torch.float32)
            return {"cost": empty, "harmful_request": empty, "complies": empty, "toxic": empty}
        g = gate_values(self.request_gate, prompts)
        judged = self.judge(responses)
        c, t = judged[:, 0], judged[:, 1]
        return {"cost": torch.maximum(g * c, t), "harmful_request": g, "complies": c, "toxic": t}

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> torch.Tensor:
        """``max(g * c, t)`` per pair, `[n]` float32 in `[0, 1]`; 0 for an empty response."""
        return self.explain(prompts, responses)["cost"]
