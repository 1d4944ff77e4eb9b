"""critic/model.py: the latent critic's forward pass and predictions."""

from __future__ import annotations

import pytest
import torch

from inferenceguard import CriticMismatchError


def test_predict_handles_devices_dtypes_and_extreme_z(trained):
    critic = trained.critic
    h = torch.randn(5, 64)
    z = torch.tensor([0.5, float("inf"), float("-inf"), float("nan"), -100.0])
    p32, v32 = critic.predict(h, z, torch.full((5,), 0.5))
    p16, _ = critic.predict(h.bfloat16(), z, torch.full((5,), 0.5))
    assert p32.dtype == torch.float32 and p32.device.type == "cpu" and p32.shape == (5,)
    assert torch.isfinite(p32).all() and torch.isfinite(v32).all()
    assert torch.allclose(p32, p16, atol=0.05)
    critic.train()
    p_again, _ = critic.predict(h, z, torch.full((5,), 0.5))  # dropout off anyway
    assert critic.training and torch.equal(p_again, p32)
    critic.eval()
    with pytest.raises(CriticMismatchError, match="width 64"):
        critic.predict(torch.randn(2, 32), torch.zeros(2), torch.zeros(2))
