"""The whole-head mask: skull, scalp and neck are foreground, only the air around the
head (and zero-filled or padded corners) is background."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage import filters, morphology


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
