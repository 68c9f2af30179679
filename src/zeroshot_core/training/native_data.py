"""Whole-head slices at a fixed in-plane pixel spacing, and random crops of them.

The default training pipeline (:func:`zeroshot_core.training.data.load_training_set`)
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

from zeroshot_core.errors import InputError
from zeroshot_core.guidance.base import Guidance
from zeroshot_core.imaging.head_mask import head_mask
from zeroshot_core.imaging.intensity import Normalisation
from zeroshot_core.imaging.orientation import Reorientation, slicing_axis, volume_slices
from zeroshot_core.imaging.spacing import inplane_spacing, pad_to, padded_shape, resample_slices, resampled_shape
from zeroshot_core.io.formats import load_volume
from zeroshot_core.training.data import TrainingSet


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
        Training samples (target slice, guide and static channels stacked along ``C``)
        on the padded native-spacing grid; returned unchanged if ``H == W == size``.
    size : int
        Side of the square crop, in pixels (the model's ``image_size``).
    generator : torch.Generator
        CPU generator drawing the top-left corner of each sample's window (uniform
        over all valid positions).

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
