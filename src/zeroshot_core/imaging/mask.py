"""ContourDiff's background filter mask.

``threshold_multiotsu`` → ``binary_erosion`` → ``remove_small_objects`` →
``remove_small_holes``, on 2-D slices or 3-D volumes. Erosion strips thin bright
structures attached to the body (a CT table, a head coil) and the thresholds drop air.

Examples
--------
>>> import numpy as np
>>> image = np.zeros((64, 64)); image[16:48, 16:48] = 1.0
>>> int(filter_mask(image).sum())
784
"""

from __future__ import annotations

import inspect
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import ndimage as ndi
from skimage import filters, morphology

from zeroshot_core.errors import ConfigError
from zeroshot_core.io.volume import Volume


@dataclass(frozen=True)
class MaskParams:
    """Parameters of :func:`filter_mask`, validated on construction.

    Attributes
    ----------
    enabled : bool
        ``False`` returns an all-true mask.
    classes : int
        Classes of the multi-Otsu threshold (2–5); voxels above the lowest threshold
        are foreground.
    erosion_radius : int
        Radius (voxels) of the disk/ball used to erode the foreground; 0 skips it.
    min_object_size : int
        Connected components smaller than this (voxels) are removed.
    hole_area : int
        Holes smaller than this (voxels) are filled.
    keep_largest : bool
        Keep only the largest connected component (removes a detached table).
    """

    enabled: bool = True
    classes: int = 3
    erosion_radius: int = 2
    min_object_size: int = 64
    hole_area: int = 1024
    keep_largest: bool = True

    def __post_init__(self) -> None:
        if not 2 <= self.classes <= 5:
            raise ConfigError(f"mask classes must be between 2 and 5, got {self.classes}")
        if self.erosion_radius < 0 or self.erosion_radius > 20:
            raise ConfigError(f"mask erosion radius must be 0..20, got {self.erosion_radius}")
        if self.min_object_size < 0:
            raise ConfigError(f"mask min object size must be >= 0, got {self.min_object_size}")
        if self.hole_area < 0:
            raise ConfigError(f"mask hole area must be >= 0, got {self.hole_area}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible copy."""
        return asdict(self)


def _structure(ndim: int, radius: int) -> np.ndarray:
    return morphology.disk(radius) if ndim == 2 else morphology.ball(radius)


def filter_mask(image: np.ndarray, params: MaskParams | None = None) -> np.ndarray:
    """Foreground mask of a 2-D slice or 3-D volume.

    Parameters
    ----------
    image : ndarray, 2-D or 3-D
        Intensities in any unit (HU, MR signal, normalised).
    params : MaskParams, optional
        Otsu classes, erosion radius, minimum object size and hole area (voxels);
        ``None`` uses ``MaskParams()`` defaults. With ``enabled=False`` the mask is all
        true.

    Returns
    -------
    ndarray of bool, same shape as ``image``.

    Raises
    ------
    ConfigError
        If ``image`` is not 2-D or 3-D.
    """
    params = params or MaskParams()
    image = np.asarray(image, dtype=np.float32)
    if image.ndim not in (2, 3):
        raise ConfigError(f"filter mask needs a 2-D or 3-D image, got {image.ndim}-D")
    if not params.enabled:
        return np.ones(image.shape, dtype=bool)
    finite = image[np.isfinite(image)].astype(np.float64)  # float32 max - min can overflow (±3.4e38)
    if finite.size == 0 or float(finite.max() - finite.min()) == 0.0:
        return np.zeros(image.shape, dtype=bool)
    try:
        thresholds = filters.threshold_multiotsu(finite, classes=params.classes)
        threshold = float(thresholds[0])
    except ValueError:  # too few distinct values for that many classes
        threshold = float(filters.threshold_otsu(finite))
    mask = image > threshold
    if params.erosion_radius > 0:
        mask = ndi.binary_erosion(mask, structure=_structure(image.ndim, params.erosion_radius))
    if params.min_object_size > 0:
        mask = _remove_small_objects(mask, params.min_object_size)
    if params.keep_largest and mask.any():
        labels, count = ndi.label(mask)
        if count > 1:
            sizes = np.bincount(labels.ravel())
            sizes[0] = 0
            mask = labels == int(np.argmax(sizes))
    if params.hole_area > 0:
        mask = _fill_holes(mask, params.hole_area)
    return mask


_NEW_API = "max_size" in inspect.signature(morphology.remove_small_objects).parameters


def _remove_small_objects(mask: np.ndarray, size: int) -> np.ndarray:
    # scikit-image >= 0.26 renamed min_size/area_threshold to max_size (inclusive).
    if _NEW_API:
        return morphology.remove_small_objects(mask, max_size=size - 1)
    return morphology.remove_small_objects(mask, min_size=size)


def _fill_holes(mask: np.ndarray, area: int) -> np.ndarray:
    if _NEW_API:
        return morphology.remove_small_holes(mask, max_size=area - 1)
    return morphology.remove_small_holes(mask, area_threshold=area)


def source_mask(volume: Volume, axis: int, params: MaskParams) -> np.ndarray:
    """Filter mask of a volume; a one-slice volume is masked as a 2-D image.

    Parameters
    ----------
    volume : Volume
        Source volume, data of shape (X, Y, Z).
    axis : int
        Slicing axis (0, 1 or 2).
    params : MaskParams
        Filter-mask settings (see :func:`filter_mask`); applied in 3-D to the whole
        volume, or in 2-D when the volume has one slice along ``axis``.

    Returns
    -------
    ndarray of bool, shape (X, Y, Z)
    """
    if volume.data.shape[axis] == 1:
        return np.expand_dims(filter_mask(np.take(volume.data, 0, axis=axis), params), axis)
    return filter_mask(volume.data, params)
