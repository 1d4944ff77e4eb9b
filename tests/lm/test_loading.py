"""LocalLM.from_pretrained's errors name the real problem."""

from __future__ import annotations

import pytest
import torch

from inferenceguard import ConfigError, LocalLM, ModelLoadError


def test_a_missing_local_folder_is_reported_as_missing_not_as_a_bad_hub_id(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist") as info:
        LocalLM.from_pretrained("/nonexistent", device="cpu")
    assert "repo id" not in str(info.value).lower()
    with pytest.raises(ModelLoadError, match="does not exist"):
        LocalLM.from_pretrained(tmp_path / "missing", device="cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_asking_for_cuda_without_cuda_is_a_config_error():
    with pytest.raises(ConfigError, match="no CUDA device"):
        LocalLM.from_pretrained("default", device="cuda")
