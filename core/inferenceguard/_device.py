"""Device and dtype resolution, written once for the LM and every scorer.

``None`` picks the library-wide defaults: CUDA when available, else CPU; bf16 on CUDA and
fp32 elsewhere (on CPU, bf16 matmuls and prefill are 5-6x slower: reference/models.md).
"""

from __future__ import annotations

import torch

from .errors import ConfigError

__all__ = ["model_input_device", "resolve_device", "resolve_dtype"]

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


def resolve_device(device: str | torch.device | None) -> torch.device:
    """The device to load on: ``None`` → CUDA when available, else CPU.

    Raises:
        ConfigError: ``device`` is not a device name, or names CUDA on a machine without
            it (torch would otherwise fail later with a bare ``AssertionError``).
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(
            f"Invalid device {device!r}: {exc}", hint="use 'cpu' or 'cuda:0'."
        ) from exc
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device={device!r}, but this machine has no CUDA device.",
                hint="use device='cpu', or leave device unset to pick CUDA only when present.",
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ConfigError(
                f"device={device!r}, but only {torch.cuda.device_count()} CUDA device(s) exist.",
                hint="use an index below the device count, e.g. 'cuda:0'.",
            )
    return resolved


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device | str) -> torch.dtype:
    """``None`` → bf16 on CUDA (7B models do not fit otherwise), fp32 elsewhere."""
    if dtype is None:
        return torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in _DTYPES:
        raise ConfigError(
            f"Unknown dtype {dtype!r}.", hint=f"use one of {', '.join(sorted(_DTYPES))}."
        )
    return _DTYPES[dtype]


def model_input_device(model: torch.nn.Module) -> torch.device:
    """Where input ids must go: the input embeddings' device (also under ``device_map``)."""
    try:
        return model.get_input_embeddings().weight.device
    except (AttributeError, NotImplementedError):
        return next(model.parameters()).device
