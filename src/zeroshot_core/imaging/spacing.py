"""In-plane resampling of slice stacks to a pixel spacing (mm), and centred padding."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from zeroshot_core.imaging.orientation import Reorientation


def resampled_shape(shape: tuple[int, int], spacing: tuple[float, float], spacing_mm: float) -> tuple[int, int]:
    """In-plane shape of a slice of ``shape`` pixels of ``spacing`` mm resampled to ``spacing_mm``."""
    return tuple(max(1, int(round(n * s / spacing_mm))) for n, s in zip(shape, spacing))


def resample_slices(slices: np.ndarray, shape: tuple[int, int], mode: str = "bilinear") -> np.ndarray:
    """Resample ``(n, H, W)`` slices to ``(n, *shape)`` (antialiased when shrinking)."""
    slices = np.asarray(slices, np.float32)
    if tuple(slices.shape[1:]) == tuple(shape):
        return slices.copy()
    tensor = torch.from_numpy(np.ascontiguousarray(slices))[:, None]
    kwargs = {"align_corners": False, "antialias": True} if mode == "bilinear" else {}
    return F.interpolate(tensor, size=tuple(shape), mode=mode, **kwargs)[:, 0].numpy()


def pad_to(slices: np.ndarray, shape: tuple[int, int], fill: float) -> tuple[np.ndarray, tuple[int, int]]:
    """Centre ``(n, H, W)`` slices in ``(n, *shape)`` filled with ``fill``; also the offsets."""
    oy, ox = (shape[0] - slices.shape[1]) // 2, (shape[1] - slices.shape[2]) // 2
    out = np.full((slices.shape[0],) + tuple(shape), fill, slices.dtype)
    out[:, oy:oy + slices.shape[1], ox:ox + slices.shape[2]] = slices
    return out, (oy, ox)


def padded_shape(shape: tuple[int, int], multiple: int, minimum: int = 0) -> tuple[int, int]:
    """``shape`` rounded up to a multiple of ``multiple`` and to at least ``minimum``."""
    return tuple(max(minimum, -(-n // multiple) * multiple) for n in shape)


def inplane_spacing(volume_spacing: Sequence[float], reorient: Reorientation, axis: int) -> tuple[float, float]:
    """Pixel spacing (mm) of canonical slices cut along voxel axis ``axis``.

    Parameters
    ----------
    volume_spacing : sequence of 3 floats
        Spacing along the volume's voxel axes.
    reorient : Reorientation
        The volume's voxel order → canonical ``(P, S, R)`` mapping
        (:meth:`Reorientation.for_affine`); the two returned spacings are in canonical
        order, rows then columns of the slice.
    axis : int
        Slicing axis in voxel order.
    """
    canonical = [0.0, 0.0, 0.0]
    for voxel_axis in range(3):
        canonical[reorient.axis(voxel_axis)[0]] = float(volume_spacing[voxel_axis])
    slicing = reorient.axis(axis)[0]
    rest = [canonical[i] for i in range(3) if i != slicing]
    return rest[0], rest[1]
