"""ContourDiff's background filter mask.

``threshold_multiotsu`` → ``binary_erosion`` → ``remove_small_objects`` →
``remove_small_holes``, on 2-D slices or 3-D volumes. Erosion strips thin bright
structures attached to the body (a CT table, a head coil) and the thresholds drop air.

A volume is eroded in millimetres, not voxels: the structuring element is an
ellipsoid whose radius along each axis is ``erosion_radius`` voxels of the finest
spacing, so across 5 mm slices of a 1 mm in-plane volume there is no erosion at
all and end slices and thin slabs keep their tissue. Erosion does not eat tissue
at the first and last slices (the volume counts as continuing beyond them), and
background that touches the in-plane edge is never filled as a hole. Out-of-field-of-view
padding (a constant plateau at the minimum, e.g. −3024 HU or zero-filled corners,
surrounded by a thick layer of darker-than-tissue air) is left out of the
threshold and of the mask, so air is never taken for tissue.

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
from typing import Any, Callable, Mapping

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

    @classmethod
    def resolve(cls, chosen: "MaskParams | None", card_mask: Mapping[str, Any] | None) -> "MaskParams":
        """The mask rule every command follows: the user's settings, else the model card's.

        Parameters
        ----------
        chosen : MaskParams or None
            Settings the user gave; ``None`` means "the model's".
        card_mask : mapping or None
            The ``mask`` entry of a model card (the settings the model was trained
            with); unknown keys are ignored, missing ones take the defaults.

        Examples
        --------
        >>> MaskParams.resolve(None, {"erosion_radius": 1}).erosion_radius
        1
        """
        if chosen is not None:
            return chosen
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in dict(card_mask or {}).items() if k in names})


def _lowest_threshold(values: np.ndarray, classes: int) -> float:
    try:
        return float(filters.threshold_multiotsu(values, classes=classes)[0])
    except ValueError:  # too few distinct values for that many classes
        return float(filters.threshold_otsu(values))


def _in_plane(mask: np.ndarray, function: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Apply a 2-D ``function`` to every slice of a (X, Y, Z) ``mask`` along its last axis."""
    if mask.ndim == 2:
        return function(mask)
    return np.stack([function(mask[:, :, k]) for k in range(mask.shape[2])], axis=2)


def padding_plateau(image: np.ndarray, classes: int = 3) -> np.ndarray | None:
    """Out-of-field-of-view padding of an image, or ``None`` when it has none.

    Padding is the image's minimum value held by at least 1 % of the voxels (−3024 HU
    outside a CT's reconstruction circle, zero-filled corners of an MR) whose
    in-plane border is mostly darker than tissue and belongs to a thick layer of
    such voxels (the air inside the field of view). A plain zero background around
    a head (bordered by tissue or a thin shell) is not padding.

    Parameters
    ----------
    image : ndarray, (H, W) or (X, Y, Z), slices along the last axis
    classes : int
        Multi-Otsu classes used to tell air from tissue.

    Returns
    -------
    ndarray of bool, shape of ``image``, or None
    """
    low = float(image.min())
    plateau = image == low
    if plateau.mean() < 0.01 or plateau.all():
        return None
    rest = image[~plateau]
    if np.ptp(rest) == 0:
        return None
    threshold = _lowest_threshold(rest, classes)
    rim = _in_plane(plateau, lambda m: ndi.binary_dilation(m, morphology.disk(1))) & ~plateau
    if not rim.any() or float(np.median(image[rim])) >= threshold:
        return None
    air = (image < threshold) & ~plateau
    thick = _in_plane(air, lambda m: ndi.binary_opening(m, morphology.disk(2)))
    return plateau if thick[rim].mean() >= 0.5 else None


def _structure(radius: int, spacing: tuple[float, ...]) -> np.ndarray:
    """Ellipsoid of ``radius`` voxels of the finest spacing, in voxels of each axis."""
    spacing = np.asarray(spacing, float)
    radii = radius * spacing.min() / spacing
    grid = np.ogrid[tuple(slice(-int(r), int(r) + 1) for r in radii)]
    return sum((g / max(r, 1e-6)) ** 2 for g, r in zip(grid, radii)) <= 1.0 + 1e-9


def _erode(mask: np.ndarray, structure: np.ndarray) -> np.ndarray:
    """Binary erosion in which the first and last slices (last axis) continue beyond the volume."""
    if mask.ndim == 2 or structure.shape[2] == 1:
        return ndi.binary_erosion(mask, structure=structure)
    depth = structure.shape[2] // 2
    padded = np.pad(mask, ((0, 0), (0, 0), (depth, depth)), mode="edge")
    return ndi.binary_erosion(padded, structure=structure)[:, :, depth:-depth]


def filter_mask(image: np.ndarray, params: MaskParams | None = None,
                spacing: tuple[float, ...] | None = None) -> np.ndarray:
    """Foreground mask of a 2-D slice or of a 3-D volume (slices along its last axis).

    Parameters
    ----------
    image : ndarray, (H, W) or (X, Y, Z)
        Intensities in any unit (HU, MR signal, normalised).
    params : MaskParams, optional
        Otsu classes, erosion radius, minimum object size and hole area (voxels);
        ``None`` uses ``MaskParams()`` defaults. With ``enabled=False`` the mask is all
        true.
    spacing : tuple of float, optional
        Voxel size (mm) along each axis; the erosion radius is in voxels of the finest
        one (default: isotropic).

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
    padding = padding_plateau(np.where(np.isfinite(image), image, float(finite.min())), params.classes)
    values = finite if padding is None else image[~padding & np.isfinite(image)]
    mask = image > _lowest_threshold(values, params.classes)
    if padding is not None:
        mask &= ~padding
    if params.erosion_radius > 0:
        mask = _erode(mask, _structure(params.erosion_radius, tuple(spacing or (1.0,) * image.ndim)))
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
    """Fill enclosed holes smaller than ``area``; background touching the in-plane edge is no hole."""
    labels, count = ndi.label(~mask)
    if count == 0:
        return mask
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    edge = np.zeros(count + 1, bool)
    for side in (labels[0], labels[-1], labels[:, 0], labels[:, -1]):
        edge[np.unique(side)] = True
    small = (sizes < area) & ~edge
    small[0] = False
    return mask | small[labels]


def source_mask(volume: Volume, axis: int, params: MaskParams) -> np.ndarray:
    """Filter mask of a volume; a one-slice volume is masked as a 2-D image.

    Parameters
    ----------
    volume : Volume
        Source volume, data of shape (X, Y, Z).
    axis : int
        Slicing axis (0, 1 or 2).
    params : MaskParams
        Filter-mask settings (see :func:`filter_mask`), eroded in millimetres
        (``volume.spacing``).

    Returns
    -------
    ndarray of bool, shape (X, Y, Z)
    """
    return slice_mask(volume.data, axis, params, volume.spacing)


def slice_mask(data: np.ndarray, axis: int, params: MaskParams | None = None,
               spacing: tuple[float, ...] | None = None) -> np.ndarray:
    """Filter mask of a (X, Y, Z) array worked out slice by slice along ``axis``.

    Parameters
    ----------
    data : ndarray, shape (X, Y, Z)
    axis : int
        Slicing axis (0, 1 or 2).
    params : MaskParams, optional
    spacing : tuple of float, optional
        Voxel size (mm) along each axis of ``data``.

    Returns
    -------
    ndarray of bool, shape of ``data``

    Raises
    ------
    ConfigError
        If ``data`` is not 3-D or ``axis`` is not 0, 1 or 2.
    """
    data = np.asarray(data)
    if data.ndim != 3 or axis not in (0, 1, 2):
        raise ConfigError(f"slice mask needs a 3-D array and an axis 0..2, got shape {data.shape}, axis {axis}")
    if data.shape[axis] == 1:
        return np.expand_dims(filter_mask(np.take(data, 0, axis=axis), params), axis)
    order = [i for i in range(3) if i != axis] + [axis]
    spacing = tuple(spacing[i] for i in order) if spacing is not None else None
    return np.moveaxis(filter_mask(np.moveaxis(data, axis, -1), params, spacing), -1, axis)
