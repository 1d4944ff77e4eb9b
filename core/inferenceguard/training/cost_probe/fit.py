"""The fit: weighted logistic regressions by L-BFGS, and the three auxiliary heads.

Default model (``features=("gct",)``): three auxiliary logistic probes are fitted first on
the train split (g: is the prompt a harmful request, c: does the response comply rather
than refuse, t: is the response abusive or hateful), and the shipped head is a logistic
regression over ``[g, c, g*c, t]``. Heads that also see raw embeddings score ~0.01 higher
on in-distribution validation but learn topic shortcuts (see DEFAULT_COST_MODEL.md).
Everything is float64 and full-batch, so a fit is deterministic for a thread count.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import torch

from ...scorers.embedding import SentenceEncoder
from ...scorers.embedding_probe import aux_shapes
from .data import Example

__all__ = [
    "AUX_L2",
    "DEFAULT_FEATURES",
    "DEFAULT_L2",
    "DEFAULT_SOURCE_POWER",
    "aux_targets",
    "embed_pairs",
    "fit_aux_heads",
    "fit_logistic",
    "sample_weights",
]

#: Chosen on the validation split (see benchmarks/DEFAULT_COST_MODEL.md).
DEFAULT_FEATURES: tuple[str, ...] = ("gct",)
DEFAULT_L2 = 1e-2
#: L2 of the auxiliary gate (harmful request?), comply (complies or refuses?) and tox heads.
AUX_L2 = 1e-2
DEFAULT_SOURCE_POWER = 0.5


def fit_logistic(
    x: torch.Tensor,
    y: torch.Tensor,
    sample_weight: torch.Tensor,
    l2: float = DEFAULT_L2,
    max_iter: int = 500,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted, L2-regularised logistic regression by full-batch L-BFGS (deterministic).

    Features are standardised (train mean/std) for conditioning, and the returned
    parameters are folded back so that ``sigmoid(x @ w + b)`` works on raw features.

    Args:
        x: `[n, d]` features.
        y: `[n]` labels in {0, 1}.
        sample_weight: `[n]` non-negative weights (normalised to mean 1).
        l2: penalty on the standardised weights (``l2/2 * ||w||^2``); the bias is free.
        max_iter: L-BFGS iterations.

    Returns:
        ``(w [d], b [1])`` as float64.
    """
    x = x.to(torch.float64)
    y = y.to(torch.float64)
    sw = sample_weight.to(torch.float64)
    sw = sw / sw.mean()
    mean, std = x.mean(0), x.std(0).clamp(min=1e-6)
    z = (x - mean) / std
    w = torch.zeros(z.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS(
        [w, b],
        lr=1.0,
        max_iter=max_iter,
        tolerance_grad=1e-9,
        tolerance_change=1e-12,
        history_size=20,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        logits = z @ w + b
        loss = (
            sw * torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")
        ).mean()
        loss = loss + 0.5 * l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    w_raw = (w.detach() / std).contiguous()
    b_raw = b.detach() - (w.detach() * mean / std).sum()
    return w_raw, b_raw


def sample_weights(
    labels: torch.Tensor, sources: Sequence[str], source_power: float
) -> torch.Tensor:
    """Per-row weights: each source weighted by ``count ** -source_power``, then the two
    classes rescaled to equal total weight (so that P = 0.5 is a meaningful threshold).

    ``source_power=0`` weights rows equally; ``1`` gives every source the same total, so
    the big templated sources do not drown the small real ones.
    """
    base = [s.removesuffix("+prefix") for s in sources]
    counts = Counter(base)
    w = torch.tensor([counts[b] ** -source_power for b in base], dtype=torch.float64)
    y = labels.to(torch.float64)
    pos, neg = (w * y).sum().clamp(min=1e-12), (w * (1 - y)).sum().clamp(min=1e-12)
    return torch.where(y == 1, w * 0.5 / pos, w * 0.5 / neg) * len(w)


def embed_pairs(
    encoder: SentenceEncoder, examples: Sequence[Example]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompt and response views `[n, 2, d]` each, every distinct text encoded once."""
    texts = sorted({ex.prompt for ex in examples} | {ex.response for ex in examples})
    index = {t: i for i, t in enumerate(texts)}
    emb = encoder.encode_views(texts)
    p = emb[[index[ex.prompt] for ex in examples]]
    r = emb[[index[ex.response] for ex in examples]]
    return p, r


# Which sources say what about the auxiliary targets (prefix copies inherit them).
_HARMFUL_PROMPT_SOURCES = ("advbench_target", "harmbench_safe_response", "lm_harmful_forced")
_HARMFUL_PROMPT_PREFIXES = (
    "advbench_",
    "harmbench",
    "malicious_instruct_",
    "strongreject_",
    "lm_harmful_free",
    "hx_",
    "groupq_",
)
_BENIGN_PROMPT_PREFIXES = ("alpaca_", "mt_bench_", "lm_benign_", "scary_safe_", "howto_")
_COMPLY_SOURCES = (
    "advbench_target",
    "lm_harmful_forced",
    "lm_harmful_free_comply",
    "mt_bench_reference",
)
_REFUSE_SOURCES = ("harmbench_safe_response", "lm_harmful_free_refusal")
_TOXIC_SOURCES = ("advbench_harmful_string", "toxigen_hate", "abuse_tpl", "group_hate_tpl")
#: Compliant answers that are abusive by their language (threats, harassment, stereotypes);
#: phishing, scams and encouragement are unsafe for what they do, so they get no tox label.
_TOXIC_PREFIXES = ("hx_threat_", "hx_harassment_", "groupq_comply")
_NOT_TOXIC_SOURCES = (
    "toxigen_neutral",
    "civil_tpl",
    "group_neutral_tpl",
    "neutral_reply",
    "lm_benign_forced",
    "lm_benign_free",
    "mt_bench_reference",
    "alpaca_comply_tpl",
    "harmbench_safe_response",
)


def aux_targets(ex: Example) -> tuple[int | None, int | None, int | None]:
    """(harmful request?, response complies?, response toxic?), None where unknown.

    Used to fit the auxiliary heads of the ``gc``/``gct`` blocks. Harmful *compliance*
    has no toxicity label (it is unsafe for what it does, not for its language) unless
    it is abuse itself (threats, harassment, stereotypes). Compliance is fail-closed:
    a disclaimer or a refusal followed by the content (``hedged_``/``rtc_comply_tpl``)
    counts as complying.
    """
    src = ex.source.removesuffix("+prefix")
    harm: int | None = None
    if src in _HARMFUL_PROMPT_SOURCES or (
        src.startswith(_HARMFUL_PROMPT_PREFIXES) and src != "advbench_harmful_string"
    ):
        harm = 1
    elif src.startswith(_BENIGN_PROMPT_PREFIXES):
        harm = 0
    comply: int | None = None
    if src in _COMPLY_SOURCES or src.endswith("_comply_tpl") or src.startswith("lm_benign_"):
        comply = 1
    elif src in _REFUSE_SOURCES or src.endswith("_refusal_tpl"):
        comply = 0
    toxic: int | None = None
    if src in _TOXIC_SOURCES or (src.startswith(_TOXIC_PREFIXES) and comply == 1):
        toxic = 1
    elif src in _NOT_TOXIC_SOURCES or src.endswith("_refusal_tpl") or src.startswith("howto_"):
        toxic = 0
    return harm, comply, toxic


def fit_aux_heads(
    examples: Sequence[Example],
    p: torch.Tensor,
    r: torch.Tensor,
    l2: float = AUX_L2,
    gate_power: float = DEFAULT_SOURCE_POWER,
) -> dict[str, torch.Tensor]:
    """Fit the gate, comply and tox heads on ``examples`` (the train split).

    The gate sees each distinct prompt once (harmful request vs benign request); the
    comply and tox heads see every response with a known label, over both views.

    Args:
        examples: training rows.
        p: `[n, 2, d]` their prompt views.
        r: `[n, 2, d]` their response views.
        l2: penalty of the three heads.
        gate_power: the gate's source re-weighting exponent (see :func:`sample_weights`).

    Returns:
        Float32 tensors named as in :func:`~.embedding_probe.aux_shapes`.
    """
    targets = [aux_targets(ex) for ex in examples]
    first: dict[str, tuple[int, int]] = {}
    for i, (ex, (harm, _, _)) in enumerate(zip(examples, targets, strict=True)):
        if harm is not None:
            first.setdefault(ex.prompt, (i, harm))
    gi = torch.tensor([i for i, _ in first.values()], dtype=torch.long)
    gy = torch.tensor([h for _, h in first.values()], dtype=torch.float64)
    # Sources re-weighted like the other heads, so that the few procedural requests and
    # group questions are not drowned by the thousands of Alpaca and AdvBench prompts.
    gsrc = [examples[i].source for i in gi.tolist()]
    gw, gb = fit_logistic(p[gi, 0], gy, sample_weights(gy, gsrc, gate_power), l2)
    aux = {"gate.weight": gw, "gate.bias": gb}
    for name, k in (("comply", 1), ("tox", 2)):
        rows = torch.tensor(
            [i for i, t in enumerate(targets) if t[k] is not None], dtype=torch.long
        )
        ys = torch.tensor([targets[i][k] for i in rows.tolist()], dtype=torch.float64)
        srcs = [examples[i].source for i in rows.tolist()]
        xs = torch.cat([r[rows, 0], r[rows, 1]], dim=1)
        w, b = fit_logistic(xs, ys, sample_weights(ys, srcs, DEFAULT_SOURCE_POWER), l2)
        aux[f"{name}.weight"], aux[f"{name}.bias"] = w, b
    shapes = aux_shapes(p.shape[-1])
    return {k: v.float().reshape(shapes[k]).contiguous() for k, v in aux.items()}
