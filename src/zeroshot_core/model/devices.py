"""The compute device: ``auto`` resolved to CUDA, MPS or the CPU."""

from __future__ import annotations

import torch

from zeroshot_core.choices import DEVICE_NAMES
from zeroshot_core.errors import ConfigError


def resolve_device(device: str) -> torch.device:
    """``auto`` → CUDA, then MPS, then CPU; an unavailable explicit choice is an error.

    Raises
    ------
    ConfigError
    """
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("CUDA was requested but no CUDA GPU is available; use --device cpu or auto")
    if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("MPS was requested but is not available; use --device cpu or auto")
    if device not in DEVICE_NAMES:
        raise ConfigError(f"unknown device {device!r}; use {', '.join(DEVICE_NAMES)}")
    return torch.device(device)
