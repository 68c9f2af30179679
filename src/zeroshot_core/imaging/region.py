"""A region chosen by the user (a brain mask, a foreground mask), checked against an image.

A region replaces the automatic filter mask where an image is segmented: labels are
worked out inside it and are 0 outside. It is given as an array on the image's
voxel grid, a :class:`Volume` or an image file; any non-zero value is inside (a
probability map or a label image counts everywhere it is not 0).

Examples
--------
>>> import numpy as np
>>> image = Volume(np.zeros((4, 4, 2), np.float32))
>>> region = np.zeros((4, 4, 2)); region[1:3, 1:3] = 0.7
>>> int(as_region(region, image).sum())
8
"""

from __future__ import annotations

import os

import numpy as np

from zeroshot_core.errors import InputError
from zeroshot_core.io.formats import load_volume
from zeroshot_core.io.volume import Volume

#: Largest difference (mm) between a region's affine and the image's still taken as the same grid.
AFFINE_TOLERANCE_MM = 1e-3

#: What a region may be given as (see :func:`as_region`).
RegionLike = np.ndarray | Volume | str | os.PathLike


def _grid_of(image: Volume | np.ndarray) -> tuple[tuple[int, ...], np.ndarray | None]:
    if isinstance(image, Volume):
        return tuple(image.data.shape), np.asarray(image.affine, float)
    return tuple(np.shape(image)), None


def as_region(region: RegionLike, image: Volume | np.ndarray) -> np.ndarray:
    """The voxels of ``image`` inside ``region``, checked.

    Parameters
    ----------
    region : ndarray, Volume or path-like
        Where to work. An array of the image's shape, ``(X, Y, Z)`` (``(H, W)`` for a
        one-slice image), is taken on the image's voxel grid as it is. A
        :class:`Volume` or an image file (NIfTI, PNG, TIFF, NPY) must also have the
        image's affine (voxel → mm, to within :data:`AFFINE_TOLERANCE_MM`). Values
        other than 0 are inside; the region itself is never modified.
    image : Volume or ndarray, shape (X, Y, Z)
        The image to be segmented (its affine is compared when it is a Volume).

    Returns
    -------
    ndarray of bool, shape of the image
        A new array.

    Raises
    ------
    InputError
        If the file cannot be read, the shape or the affine differs from the image's,
        the region holds NaN or Inf, or it is empty (one-line message naming the file
        when there is one).
    """
    shape, affine = _grid_of(image)
    other_affine = None
    if isinstance(region, Volume):
        name = str(region.path) if region.path is not None else "the region"
        data, other_affine = np.asarray(region.data), np.asarray(region.affine, float)
    elif isinstance(region, np.ndarray):
        name, data = "the region", region
    else:
        loaded = load_volume(region)
        name, data, other_affine = str(region), loaded.data, np.asarray(loaded.affine, float)
    if data.shape != shape and not (data.ndim == 2 and shape[2:] == (1,) and data.shape == shape[:2]):
        raise InputError(f"{name}: shape {tuple(data.shape)} differs from the image's {shape}; "
                         "give a region on the image's voxel grid")
    if other_affine is not None and affine is not None:
        difference = float(np.max(np.abs(other_affine - affine)))
        if difference > AFFINE_TOLERANCE_MM:
            raise InputError(f"{name}: its affine differs from the image's (by up to {difference:.3g} mm); "
                             "resample it onto the image grid (e.g. nearest-neighbour) first")
    if data.dtype.kind in "fc" and not np.isfinite(data).all():
        raise InputError(f"{name}: holds NaN or Inf values; give 0 outside and non-zero inside the region")
    inside = np.asarray(data != 0).reshape(shape)
    if not inside.any():
        raise InputError(f"{name}: empty region (all 0), nothing to segment; "
                         "give a mask that is non-zero where to segment")
    return inside
