"""Resizing slice stacks to a model's square size and back (centred padding)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class SliceGeometry:
    """How a slice of shape ``shape`` was padded to a square and resized to ``size``."""

    shape: tuple[int, int]
    size: int

    @property
    def side(self) -> int:
        return max(self.shape)

    @property
    def offsets(self) -> tuple[int, int]:
        return ((self.side - self.shape[0]) // 2, (self.side - self.shape[1]) // 2)


def to_model_size(slices: np.ndarray, size: int, fill: float = -1.0, mode: str = "bilinear") -> np.ndarray:
    """Pad ``(n, H, W)`` slices to squares (centred, value ``fill``) and resize to ``size``."""
    slices = np.asarray(slices, np.float32)
    geometry = SliceGeometry(tuple(slices.shape[1:3]), size)
    side, (oy, ox) = geometry.side, geometry.offsets
    padded = np.full((slices.shape[0], side, side), fill, np.float32)
    padded[:, oy:oy + slices.shape[1], ox:ox + slices.shape[2]] = slices
    return _resize(padded, size, mode)


def from_model_size(slices: np.ndarray, shape: tuple[int, int], mode: str = "bilinear") -> np.ndarray:
    """Inverse of :func:`to_model_size`: back to ``(n, *shape)``."""
    geometry = SliceGeometry(tuple(shape), np.asarray(slices).shape[-1])
    side, (oy, ox) = geometry.side, geometry.offsets
    resized = _resize(np.asarray(slices, np.float32), side, mode)
    return resized[:, oy:oy + shape[0], ox:ox + shape[1]]


def _resize(stack: np.ndarray, size: int, mode: str) -> np.ndarray:
    if stack.shape[-1] == size and stack.shape[-2] == size:
        return stack.copy()
    tensor = torch.from_numpy(np.ascontiguousarray(stack))[:, None]
    kwargs = {"align_corners": False, "antialias": True} if mode == "bilinear" else {}
    out = F.interpolate(tensor, size=(size, size), mode=mode, **kwargs)
    return out[:, 0].numpy()


