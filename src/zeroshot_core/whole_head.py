"""Whole-head slices at a fixed in-plane pixel spacing, and random crops of them.

The default training pipeline (:func:`zeroshot_core.training_data.load_training_set`)
pads every slice to a square and resizes it to the model size, so the pixel spacing
depends on the field of view. In the *native-spacing* mode each slice is instead
resampled in-plane to ``spacing_mm`` and training draws random ``crop``-pixel windows
from it, so a step costs the same whatever the field of view, and the network always
sees anatomy at one physical scale. The mask is the whole head (:func:`head_mask`):
skull, scalp and neck are foreground, only the air around the head is background.
At translation time the same resampling is applied to the source, the network runs
on the whole (padded) slice, and the result is resampled back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage as ndi
from skimage import filters, morphology

from zeroshot_core.errors import InputError
from zeroshot_core.guidance.base import Guidance
from zeroshot_core.training_data import TrainingSet
from zeroshot_core.volumes import Normalisation, Reorientation, load_volume, slicing_axis, volume_slices


def head_mask(data: np.ndarray, axis: int, threshold_factor: float = 0.7, closing_radius: int = 3) -> np.ndarray:
    """Whole-head foreground of a 3-D volume: everything but the surrounding air.

    Voxels above ``threshold_factor`` times the lowest 3-class multi-Otsu threshold are
    foreground; a radius-1 opening removes noise, the largest 3-D component is kept,
    and each slice along ``axis`` is closed (disk of ``closing_radius``) and has all its
    holes filled, so dark skull, sinuses and CSF inside the head are foreground too.

    Parameters
    ----------
    data : ndarray (X, Y, Z)
        Intensities in any unit.
    axis : int
        Slicing axis (holes are filled slice by slice along it).

    Returns
    -------
    ndarray (X, Y, Z) bool
    """
    data = np.asarray(data, np.float32)
    finite = data[np.isfinite(data)]
    if finite.size == 0 or float(finite.max()) == float(finite.min()):
        return np.zeros(data.shape, bool)
    try:
        threshold = float(filters.threshold_multiotsu(finite, classes=3)[0])
    except ValueError:
        threshold = float(filters.threshold_otsu(finite))
    low = float(finite.min())
    fg = data > low + threshold_factor * (threshold - low)
    if min(data.shape) >= 3:
        fg = ndi.binary_opening(fg, morphology.ball(1))
    labels, count = ndi.label(fg)
    if count > 1:
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        fg = labels == int(np.argmax(sizes))
    pad = closing_radius + 1
    out = np.moveaxis(fg, axis, 0).copy()
    for k in range(out.shape[0]):
        closed = ndi.binary_closing(np.pad(out[k], pad), morphology.disk(closing_radius))
        out[k] = ndi.binary_fill_holes(closed)[pad:-pad, pad:-pad]
    return np.moveaxis(out, 0, axis)


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
    axis : int
        Slicing axis in voxel order.
    """
    canonical = [0.0, 0.0, 0.0]
    for voxel_axis in range(3):
        canonical[reorient.axis(voxel_axis)[0]] = float(volume_spacing[voxel_axis])
    slicing = reorient.axis(axis)[0]
    rest = [canonical[i] for i in range(3) if i != slicing]
    return rest[0], rest[1]


def load_native_training_set(files: Sequence[Path], guidance: Guidance, spacing_mm: float, crop: int,
                             percentiles: tuple[float, float] = (0.5, 99.5),
                             min_foreground: float = 0.05) -> TrainingSet:
    """Whole-head slices at ``spacing_mm``, padded to one common shape of at least ``crop``.

    Each volume gets a :func:`head_mask`, is normalised by its percentiles inside it,
    turned to the canonical orientation and cut along its through-plane axis; slices
    with less than ``min_foreground`` head are skipped. Static guidance channels are
    computed on the whole resampled slice (before cropping).

    Returns
    -------
    TrainingSet
        ``images`` of shape (N, 1 + static_channels, H, W) with ``H, W >= crop``.

    Raises
    ------
    InputError
        If no slice has enough foreground.
    """
    kept: list[tuple[np.ndarray, np.ndarray]] = []
    lows: list[float] = []
    highs: list[float] = []
    for path in files:
        volume = load_volume(path)
        axis = slicing_axis(volume.affine, volume.data.shape)
        mask = head_mask(volume.data, axis)
        if not mask.any():
            continue
        norm = Normalisation.fit(volume.data, percentiles, mask)
        lows.append(norm.low)
        highs.append(norm.high)
        reorient = Reorientation.for_affine(volume.affine, volume.data.shape)
        canonical_axis, _ = reorient.axis(axis)
        slices = volume_slices(reorient.apply(norm.apply(volume.data)), canonical_axis)
        mask_slices = volume_slices(reorient.apply(mask), canonical_axis)
        keep = mask_slices.reshape(len(mask_slices), -1).mean(axis=1) >= min_foreground
        if not keep.any():
            continue
        shape = resampled_shape(slices.shape[1:], inplane_spacing(volume.spacing, reorient, axis), spacing_mm)
        masks = resample_slices(mask_slices[keep].astype(np.float32), shape) > 0.5
        images = np.where(masks, resample_slices(slices[keep], shape), -1.0).astype(np.float32)
        kept.extend(zip(images, masks))
    if not kept:
        raise InputError("no training slice has enough foreground; check the images")
    common = padded_shape((max(i.shape[0] for i, _ in kept), max(i.shape[1] for i, _ in kept)), 1, crop)
    images, masks = [], []
    for image, image_mask in kept:
        image = pad_to(image[None], common, -1.0)[0][0]
        image_mask = pad_to(image_mask[None], common, False)[0][0]
        static = guidance.static_condition(image, image_mask)
        images.append(np.concatenate([image[None], static], axis=0))
        masks.append(image_mask)
    intensity = Normalisation(float(np.median(lows)), float(np.median(highs)))
    return TrainingSet(torch.from_numpy(np.stack(images)), np.stack(masks), list(files), intensity)


def random_crops(batch: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """One random ``size`` × ``size`` window per sample, the same for all its channels.

    Parameters
    ----------
    batch : Tensor (B, C, H, W) with ``H, W >= size``
    generator : torch.Generator

    Returns
    -------
    Tensor (B, C, size, size)
    """
    _, _, height, width = batch.shape
    if height == size and width == size:
        return batch
    ys = torch.randint(0, height - size + 1, (batch.shape[0],), generator=generator).tolist()
    xs = torch.randint(0, width - size + 1, (batch.shape[0],), generator=generator).tolist()
    return torch.stack([batch[i, :, y:y + size, x:x + size] for i, (y, x) in enumerate(zip(ys, xs))])
