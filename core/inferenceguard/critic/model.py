"""`LatentCritic`: a small MLP on the base model's latent state and the safety state.

Input, per candidate after a block (DESIGN.md §5):

* ``hidden`` `[n, H]` — the final-layer hidden state at the block's last token;
* ``z`` `[n]` — the raw safety state (budget − tracked cost), divided by ``z_scale``;
* ``step_frac`` `[n]` — tokens generated so far / ``max_new_tokens``.

Output: two heads — the logit of P(the response ends within budget) and the expected final
task reward (standardised during training, returned in reward units by
:meth:`LatentCritic.predict`). Each head has its own small MLP trunk: the two targets need
different features and different regularisation (with a shared trunk the reward loss
shaped the features and the safety head overfitted the latent state: 4-fold CV by prompt
on the shipped critic's rollouts gave a safety ROC-AUC of 0.86 shared vs 0.94 separate). ``predict`` is the :class:`~inferenceguard.search.context.Critic`
protocol the search calls.

Example::

    critic = LatentCritic(CriticArchitecture(hidden_size=576), z_scale=0.5)
    p_safe, value = critic.predict(torch.randn(8, 576), torch.zeros(8), torch.full((8,), 0.25))
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError, CriticMismatchError

__all__ = ["CriticArchitecture", "LatentCritic"]

#: |z / z_scale| is clipped here: a safety state far outside what training saw carries no
#: more information than "very safe" / "very unsafe", and must not blow up the trunk.
Z_CLIP = 4.0


@dataclass(frozen=True)
class CriticArchitecture:
    """Shape of the critic network (stored in ``critic.json``)."""

    hidden_size: int  # H: width of the base model's final hidden state (checked on load)
    width: int = 128  # per-trunk width: training sets are thousands of blocks, not millions
    depth: int = 2  # hidden layers per trunk
    dropout: float = 0.1  # on trunk activations; the data is small and correlated per prompt
    safety_input_dropout: float = 0.9  # on the hidden state, safety trunk: z carries most signal
    value_input_dropout: float = 0.5  # on the hidden state, value trunk: reward needs content
    skip: bool = True  # linear path from [z, step_frac] to each head (see LatentCritic)

    def __post_init__(self) -> None:
        for name in ("hidden_size", "width", "depth"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(
                    f"CriticArchitecture.{name} must be a positive int, got {value!r}."
                )
        for name in ("dropout", "safety_input_dropout", "value_input_dropout"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ConfigError(f"CriticArchitecture.{name} must be in [0, 1), got {value!r}.")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; :meth:`from_dict` inverts it."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CriticArchitecture:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


class LatentCritic(nn.Module):
    """Two-head MLP on ``[standardised hidden, z / z_scale, step_frac]``.

    Parameters are named by head (``safety_*`` / ``value_*``), so training can keep each
    head's best epoch. With ``arch.skip`` each head also gets a linear function of
    ``[z / z_scale, step_frac]`` directly. The safety state alone already predicts the outcome well (a response far
    inside its budget rarely leaves it); the skip path lets the critic start from that
    and spend the MLP, which sees hundreds of hidden dimensions but only ~100 prompts, on
    what the latent state adds.

    Buffers (saved with the weights) hold what turns raw inputs into the trunk's input and
    the value head's output back into reward units, so a loaded critic needs nothing else:
    ``h_mean``/``h_std`` `[H]`, ``z_scale`` `[1]`, ``reward_mean``/``reward_std`` `[1]`.

    Args:
        arch: the network shape.
        z_scale: the budget scale that divides the raw safety state (see
            :func:`inferenceguard.training.critic.train.z_scale_for`).
        metadata: what ``critic.json`` records (base model, block length, cost model, …);
            filled by training and loading.
    """

    def __init__(
        self,
        arch: CriticArchitecture,
        *,
        z_scale: float = 1.0,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if not z_scale > 0:
            raise ConfigError(f"z_scale must be > 0, got {z_scale!r}.")
        self.arch = arch
        self.metadata: dict[str, Any] = dict(metadata or {})
        h = arch.hidden_size
        self.register_buffer("h_mean", torch.zeros(h))
        self.register_buffer("h_std", torch.ones(h))
        self.register_buffer("z_scale", torch.tensor([float(z_scale)]))
        self.register_buffer("reward_mean", torch.zeros(1))
        self.register_buffer("reward_std", torch.ones(1))
        self.safety_trunk = self._trunk(arch, arch.safety_input_dropout)
        self.value_trunk = self._trunk(arch, arch.value_input_dropout)
        self.safety_head = nn.Linear(arch.width, 1)
        self.value_head = nn.Linear(arch.width, 1)
        # [z / z_scale, step_frac] -> each head's output, added to the trunk's.
        self.safety_skip = nn.Linear(2, 1) if arch.skip else None
        self.value_skip = nn.Linear(2, 1) if arch.skip else None

    @staticmethod
    def _trunk(arch: CriticArchitecture, input_dropout: float) -> nn.Sequential:
        """``[h, z, frac]`` -> `[n, width]`; dropout hits the hidden part of the input only."""
        layers: list[nn.Module] = [_HiddenDropout(input_dropout)]
        width_in = arch.hidden_size + 2  # + z/z_scale and step_frac
        for _ in range(arch.depth):
            layers += [nn.Linear(width_in, arch.width), nn.GELU(), nn.Dropout(arch.dropout)]
            width_in = arch.width
        return nn.Sequential(*layers)

    @property
    def hidden_size(self) -> int:
        """H: the base model hidden width this critic reads."""
        return self.arch.hidden_size

    def set_normalisation(
        self,
        *,
        h_mean: torch.Tensor,
        h_std: torch.Tensor,
        reward_mean: float,
        reward_std: float,
    ) -> None:
        """Store the training set's input and reward statistics (done once by training)."""
        self.h_mean.copy_(h_mean.to(self.h_mean))
        # A constant feature has std 0; 1e-4 keeps it from exploding to inf after division.
        self.h_std.copy_(h_std.to(self.h_std).clamp_min(1e-4))
        self.reward_mean.fill_(float(reward_mean))
        self.reward_std.fill_(max(float(reward_std), 1e-6))

    def features(
        self, hidden: torch.Tensor, z: torch.Tensor, step_frac: torch.Tensor
    ) -> torch.Tensor:
        """The trunk's input `[n, H + 2]` from raw `[n, H]`, `[n]`, `[n]` (on the critic's device)."""
        ref = self.h_mean
        if hidden.dim() != 2 or hidden.shape[-1] != self.hidden_size:
            raise CriticMismatchError(
                f"The critic reads hidden states of width {self.hidden_size}, got a tensor of "
                f"shape {tuple(hidden.shape)}.",
                hint="use a critic trained for this base model (inferenceguard train-critic).",
            )
        h = (hidden.to(device=ref.device, dtype=ref.dtype) - self.h_mean) / self.h_std
        z = z.to(device=ref.device, dtype=ref.dtype).reshape(-1, 1)
        # +inf (no block scored yet) or NaN must not reach the trunk: clip, then zero NaNs.
        z_norm = torch.nan_to_num(z / self.z_scale, nan=0.0).clamp(-Z_CLIP, Z_CLIP)
        frac = step_frac.to(device=ref.device, dtype=ref.dtype).reshape(-1, 1).clamp(0.0, 2.0)
        return torch.cat([h, z_norm, frac], dim=-1)

    def forward(
        self, hidden: torch.Tensor, z: torch.Tensor, step_frac: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Training-time outputs.

        Args:
            hidden: `[n, H]` final-layer hidden states.
            z: `[n]` raw safety states.
            step_frac: `[n]` fraction of ``max_new_tokens`` generated.

        Returns:
            (safety logit `[n]`, standardised value `[n]`).
        """
        x = self.features(hidden, z, step_frac)
        logit = self.safety_head(self.safety_trunk(x)).squeeze(-1)
        value = self.value_head(self.value_trunk(x)).squeeze(-1)
        if self.safety_skip is not None and self.value_skip is not None:
            state = x[:, -2:]
            logit = logit + self.safety_skip(state).squeeze(-1)
            value = value + self.value_skip(state).squeeze(-1)
        return logit, value

    def predict(
        self, hidden: torch.Tensor, z: torch.Tensor, step_frac: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The search's call: P(ends within budget) and expected final reward.

        Inputs may live on any device and dtype (e.g. bf16 hidden states on CUDA); they are
        moved to the critic's. Dropout is off whatever mode the module is in.

        Args:
            hidden: `[n, H]` final-layer hidden state at each candidate's last token.
            z: `[n]` raw safety state (budget − tracked cost).
            step_frac: `[n]` tokens generated so far / ``max_new_tokens``.

        Returns:
            (p_safe `[n]`, value `[n]`) float32 on the CPU, where the safety state lives.
        """
        # A loaded critic is already in eval mode, so concurrent requests never flip modes;
        # only a critic caught mid-training is switched, and switched back.
        was_training = self.training
        if was_training:
            self.eval()
        try:
            with torch.inference_mode():
                logit, value = self.forward(hidden, z, step_frac)
                value = value * self.reward_std + self.reward_mean
        finally:
            if was_training:
                self.train()
        return torch.sigmoid(logit).float().cpu(), value.float().cpu()

    def extra_repr(self) -> str:
        base = self.metadata.get("base_model", {}).get("id", "?")
        return f"base_model={base!r}, z_scale={float(self.z_scale):g}"


class _HiddenDropout(nn.Module):
    """Dropout on all but the last two input columns (z and step_frac always get through)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.dropout(x[:, :-2]), x[:, -2:]], dim=-1)
