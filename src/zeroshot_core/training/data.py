"""Training slices from target images: find files, mask, normalise, slice, resize.

Each volume is masked with the ContourDiff filter mask, normalised with robust
percentiles inside the mask, turned to the canonical orientation
(:data:`zeroshot_core.imaging.orientation.CANONICAL_CODES`), cut into 2-D slices along its
through-plane axis,
slices with too little foreground are skipped, and the rest are padded to squares
and resized to the model size. Static guidance channels are computed once here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from zeroshot_core.errors import InputError
from zeroshot_core.guidance.base import Guidance
from zeroshot_core.imaging.intensity import Normalisation
from zeroshot_core.imaging.mask import MaskParams, slice_mask
from zeroshot_core.imaging.orientation import Reorientation, slicing_axis, volume_slices
from zeroshot_core.imaging.resize import to_model_size
from zeroshot_core.io.formats import is_supported, load_volume


def collect_files(targets: Iterable[str | os.PathLike]) -> list[Path]:
    """Expand files and folders (recursively) into a sorted list of image files.

    Raises
    ------
    InputError
        If a target does not exist or no image file is found.
    """
    files: list[Path] = []
    for target in targets:
        path = Path(target)
        if not path.exists():
            raise InputError(f"{path}: no such file or folder")
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file() and is_supported(p)))
        elif is_supported(path):
            files.append(path)
        else:
            raise InputError(f"{path}: unsupported file type (use NIfTI, PNG, TIFF or NPY)")
    if not files:
        raise InputError("no training images found in " + ", ".join(str(t) for t in targets))
    return files


@dataclass(frozen=True, eq=False)
class TrainingSet:
    """Preprocessed training slices.

    Attributes
    ----------
    images : Tensor (N, 1 + static_channels, S, S)
        Normalised slice and its static condition channels.
    masks : ndarray (N, S, S) bool
    files : list of Path
    intensity : Normalisation
        Median of the per-volume percentile intensities (the target's units).
    """

    images: torch.Tensor
    masks: np.ndarray
    files: list[Path]
    intensity: Normalisation

    def __len__(self) -> int:
        return int(self.images.shape[0])


def load_training_set(
    files: Sequence[Path],
    guidance: Guidance,
    image_size: int,
    mask_params: MaskParams,
    percentiles: tuple[float, float] = (0.5, 99.5),
    min_foreground: float = 0.05,
) -> TrainingSet:
    """Load, mask, normalise and slice every file.

    Raises
    ------
    InputError
        If a file is unreadable, or no slice has enough foreground.
    """
    images: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    lows: list[float] = []
    highs: list[float] = []
    for path in files:
        volume = load_volume(path)
        mask = slice_mask(volume.data, slicing_axis(volume.affine, volume.data.shape), mask_params, volume.spacing)
        norm = Normalisation.fit(volume.data, percentiles, mask)
        lows.append(norm.low)
        highs.append(norm.high)
        reorient = Reorientation.for_affine(volume.affine, volume.data.shape)
        axis, _ = reorient.axis(slicing_axis(volume.affine, volume.data.shape))
        slices = volume_slices(reorient.apply(norm.apply(volume.data)), axis)
        mask_slices = volume_slices(reorient.apply(mask), axis)
        keep = mask_slices.reshape(len(mask_slices), -1).mean(axis=1) >= min_foreground
        if not keep.any():
            continue
        resized = to_model_size(slices[keep], image_size, fill=-1.0)
        resized_masks = to_model_size(mask_slices[keep].astype(np.float32), image_size, fill=0.0) > 0.5
        resized = np.where(resized_masks, resized, -1.0).astype(np.float32)
        for image, image_mask in zip(resized, resized_masks):
            static = guidance.static_condition(image, image_mask)
            images.append(np.concatenate([image[None], static], axis=0))
            masks.append(image_mask)
    if not images:
        raise InputError("no training slice has enough foreground; check the images or lower the mask thresholds")
    intensity = Normalisation(float(np.median(lows)), float(np.median(highs)))
    return TrainingSet(torch.from_numpy(np.stack(images)), np.stack(masks), list(files), intensity)


def augment(batch: torch.Tensor, generator: torch.Generator, max_rotation_deg: float = 8.0,
            max_scale: float = 0.06, max_shift: float = 0.04) -> torch.Tensor:
    """Random left-right flips and small affine transforms, the same for all channels.

    Background (-1) fills the borders.
    """
    n = batch.shape[0]
    device = batch.device
    flip = torch.rand(n, generator=generator) < 0.5
    batch = torch.where(flip.to(device)[:, None, None, None], batch.flip(-1), batch)
    angle = (torch.rand(n, generator=generator) * 2 - 1) * np.deg2rad(max_rotation_deg)
    scale = 1.0 + (torch.rand(n, generator=generator) * 2 - 1) * max_scale
    shift = (torch.rand(n, 2, generator=generator) * 2 - 1) * max_shift * 2
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = torch.nn.functional.affine_grid(theta.to(device, batch.dtype), list(batch.shape), align_corners=False)
    moved = torch.nn.functional.grid_sample(batch + 1.0, grid, mode="bilinear", padding_mode="zeros",
                                            align_corners=False)
    return moved - 1.0
