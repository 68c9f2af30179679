"""Segmentation and image-similarity metrics.

Overlap (:func:`dice`, :func:`mean_dice`), boundary distance (:func:`assd`, in mm using the
voxel spacing) and intensity similarity (:func:`psnr`, :func:`ssim`, optionally restricted
to a mask). All functions accept 2-D slices and 3-D volumes.

Conventions for empty structures
--------------------------------
- :func:`dice` of a label absent from both masks is ``nan`` (undefined); a label present in
  only one of them scores ``0.0``. :func:`mean_dice` ignores ``nan`` entries.
- :func:`assd` is ``nan`` when the label is absent from both masks and ``inf`` when it is
  absent from exactly one of them.

Examples
--------
>>> import numpy as np
>>> a = np.zeros((10, 10), int); a[2:6, 2:6] = 1
>>> b = np.zeros((10, 10), int); b[2:6, 4:8] = 1
>>> dice(a, b)
{1: 0.5}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from scipy import ndimage as ndi
from skimage.metrics import structural_similarity

from zeroshot_core.errors import ConfigError, InputError

__all__ = ["dice", "mean_dice", "assd", "psnr", "ssim"]


def _pair(a: np.ndarray, b: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise InputError(f"{what}: shapes differ ({a.shape} vs {b.shape}); resample one onto the other's grid")
    if a.ndim not in (2, 3):
        raise InputError(f"{what}: expected 2-D or 3-D arrays, got {a.ndim}-D")
    return a, b


def _mask(mask: np.ndarray | None, shape: tuple[int, ...], what: str) -> np.ndarray | None:
    if mask is None:
        return None
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != shape:
        raise InputError(f"{what}: mask shape {mask.shape} differs from image shape {shape}")
    if not mask.any():
        raise InputError(f"{what}: the mask is empty; give a mask with at least one voxel")
    return mask


def dice(pred: np.ndarray, ref: np.ndarray, labels: Iterable[int] | None = None) -> dict[int, float]:
    """Dice overlap ``2|P∩R| / (|P| + |R|)`` per label.

    Parameters
    ----------
    pred, ref : ndarray of int or bool, 2-D or 3-D, same shape
        Label maps (0 = background). Boolean masks count as label 1.
    labels : iterable of int, optional
        Labels to score. Default: every non-zero label in ``pred`` or ``ref``.

    Returns
    -------
    dict of int to float
        Dice per label, in ascending label order; ``nan`` for a label absent from both.

    Raises
    ------
    InputError
        If the shapes differ or the arrays are not 2-D/3-D.

    Examples
    --------
    >>> import numpy as np
    >>> ref = np.array([[1, 1, 2, 2]])
    >>> dice(np.array([[1, 2, 2, 2]]), ref)
    {1: 0.6666666666666666, 2: 0.8}
    """
    pred, ref = _pair(pred, ref, "dice")
    pred = pred.astype(np.int64) if pred.dtype == bool else pred
    ref = ref.astype(np.int64) if ref.dtype == bool else ref
    if labels is None:
        labels = sorted(int(v) for v in np.union1d(np.unique(pred), np.unique(ref)) if v != 0)
    scores: dict[int, float] = {}
    for label in labels:
        p, r = pred == label, ref == label
        total = int(p.sum()) + int(r.sum())
        scores[int(label)] = float("nan") if total == 0 else 2.0 * int(np.logical_and(p, r).sum()) / total
    return scores


def mean_dice(scores: Mapping[int, float]) -> float:
    """Mean of the defined (non-``nan``) per-label Dice scores.

    Parameters
    ----------
    scores : mapping of int to float
        Output of :func:`dice`.

    Returns
    -------
    float
        ``nan`` if no score is defined.

    Examples
    --------
    >>> mean_dice({1: 0.5, 2: 1.0, 3: float("nan")})
    0.75
    """
    values = np.array([v for v in scores.values() if not np.isnan(v)], dtype=float)
    return float(values.mean()) if values.size else float("nan")


def _spacing(spacing: Sequence[float] | None, ndim: int) -> tuple[float, ...]:
    if spacing is None:
        return (1.0,) * ndim
    spacing = tuple(float(s) for s in spacing)
    if len(spacing) != ndim:
        raise ConfigError(f"spacing needs {ndim} values (one per axis), got {len(spacing)}")
    if not all(np.isfinite(s) and s > 0 for s in spacing):
        raise ConfigError(f"spacing values must be positive, got {spacing}")
    return spacing


def _surface(mask: np.ndarray) -> np.ndarray:
    """Voxels of ``mask`` with a face-neighbour outside it (the image edge counts as outside)."""
    structure = ndi.generate_binary_structure(mask.ndim, 1)
    return mask & ~ndi.binary_erosion(mask, structure=structure, border_value=0)


def assd(pred: np.ndarray, ref: np.ndarray, spacing: Sequence[float] | None = None, label: int = 1) -> float:
    """Average symmetric surface distance (mm) of one label.

    The surface of a mask is its voxels with a face-neighbour outside the mask (the image
    edge counts as outside). Every surface voxel of each mask is assigned the Euclidean
    distance, in mm with the voxel ``spacing``, to the nearest surface voxel of the other;
    the result is the mean over both surfaces together.

    Parameters
    ----------
    pred, ref : ndarray of int or bool, 2-D or 3-D, same shape
        Predicted and reference label maps on the same voxel grid (0 = background).
    spacing : sequence of float, optional
        Voxel size in mm along each array axis (default 1).
    label : int
        Label to compare (``True`` counts as 1 in boolean masks).

    Returns
    -------
    float
        ``0.0`` for identical masks; ``nan`` if the label is absent from both masks;
        ``inf`` if it is absent from exactly one.

    Raises
    ------
    InputError
        If the shapes differ or the arrays are not 2-D/3-D.
    ConfigError
        If ``spacing`` has the wrong length or a non-positive value.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.zeros((9, 9), bool); a[4, 2] = True
    >>> b = np.zeros((9, 9), bool); b[4, 6] = True
    >>> assd(a, b, spacing=(1.0, 0.5))
    2.0
    """
    pred, ref = _pair(pred, ref, "assd")
    spacing = _spacing(spacing, pred.ndim)
    a, b = pred == label, ref == label
    if not a.any() and not b.any():
        return float("nan")
    if not a.any() or not b.any():
        return float("inf")
    surf_a, surf_b = _surface(a), _surface(b)
    dist_to_b = ndi.distance_transform_edt(~surf_b, sampling=spacing)
    dist_to_a = ndi.distance_transform_edt(~surf_a, sampling=spacing)
    total = float(dist_to_b[surf_a].sum()) + float(dist_to_a[surf_b].sum())
    return total / (int(surf_a.sum()) + int(surf_b.sum()))


def _data_range(ref: np.ndarray, data_range: float | None, what: str) -> float:
    if data_range is None:
        data_range = float(ref.max()) - float(ref.min())
        if data_range <= 0:
            raise InputError(f"{what}: the reference is constant; pass data_range explicitly")
        return data_range
    data_range = float(data_range)
    if not np.isfinite(data_range) or data_range <= 0:
        raise ConfigError(f"{what}: data_range must be positive, got {data_range}")
    return data_range


def psnr(img: np.ndarray, ref: np.ndarray, mask: np.ndarray | None = None,
         data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio ``10 log10(data_range² / MSE)`` in dB.

    Parameters
    ----------
    img, ref : ndarray, 2-D or 3-D, same shape
        Image to score (e.g. a translation) and reference (e.g. the real target image),
        on the same grid and in the same intensity units.
    mask : ndarray of bool, optional
        Only voxels inside the mask enter the mean squared error.
    data_range : float, optional
        Peak-to-peak intensity range; default ``ref.max() - ref.min()`` over the whole
        reference. Pass ``2.0`` for images normalised to [-1, 1].

    Returns
    -------
    float
        ``inf`` for identical images.

    Raises
    ------
    InputError
        Shape mismatch, empty mask, or constant reference without ``data_range``.
    ConfigError
        Non-positive ``data_range``.

    Examples
    --------
    >>> import numpy as np
    >>> ref = np.zeros((8, 8)); img = ref + 0.1
    >>> round(psnr(img, ref, data_range=1.0), 6)
    20.0
    """
    img, ref = _pair(img, ref, "psnr")
    mask = _mask(mask, ref.shape, "psnr")
    data_range = _data_range(ref, data_range, "psnr")
    diff = img.astype(np.float64) - ref.astype(np.float64)
    mse = float(np.mean(diff[mask] ** 2 if mask is not None else diff ** 2))
    if mse == 0.0:
        return float("inf")
    return float(10.0 * np.log10(data_range ** 2 / mse))


def _ssim_map(img: np.ndarray, ref: np.ndarray, data_range: float, win_size: int) -> np.ndarray:
    if all(n >= win_size for n in img.shape):
        _, smap = structural_similarity(img, ref, data_range=data_range, win_size=win_size, full=True)
        return smap
    if img.ndim == 3:  # thin volume: 2-D maps along its thinnest axis
        axis = int(np.argmin(img.shape))
        rest = [n for i, n in enumerate(img.shape) if i != axis]
        if all(n >= win_size for n in rest):
            maps = [structural_similarity(np.take(img, k, axis), np.take(ref, k, axis), data_range=data_range,
                                          win_size=win_size, full=True)[1] for k in range(img.shape[axis])]
            return np.stack(maps, axis=axis)
    raise InputError(f"ssim: image of shape {img.shape} is smaller than the {win_size}-voxel window; "
                     "use a larger image or a smaller win_size (odd, >= 3)")


def ssim(img: np.ndarray, ref: np.ndarray, mask: np.ndarray | None = None, data_range: float | None = None,
         win_size: int = 7) -> float:
    """Structural similarity, averaged over the SSIM map (inside ``mask`` if given).

    The map is skimage's ``structural_similarity(..., full=True)`` with a uniform
    ``win_size`` window, in 2-D or 3-D. A 3-D volume thinner than the window along one axis
    (e.g. a few slices) gets 2-D maps slice by slice along that axis.

    Parameters
    ----------
    img, ref : ndarray, 2-D or 3-D, same shape
        Image to score (e.g. a translation) and reference (e.g. the real target image),
        on the same grid and in the same intensity units.
    mask : ndarray of bool, optional
        Average the SSIM map over these voxels. Without a mask the result equals skimage's
        mean SSIM, which leaves out a border of ``(win_size - 1) // 2`` voxels.
    data_range : float, optional
        Default ``ref.max() - ref.min()``; pass ``2.0`` for images normalised to [-1, 1].
    win_size : int
        Odd side of the sliding window (>= 3).

    Returns
    -------
    float
        In [-1, 1]; ``1.0`` for identical images.

    Raises
    ------
    InputError
        Shape mismatch, empty mask, constant reference without ``data_range``, or an image
        smaller than the window.
    ConfigError
        Non-positive ``data_range`` or an even / too small ``win_size``.

    Examples
    --------
    >>> import numpy as np
    >>> ref = np.random.default_rng(0).random((32, 32))
    >>> ssim(ref, ref)
    1.0
    """
    img, ref = _pair(img, ref, "ssim")
    if win_size < 3 or win_size % 2 == 0:
        raise ConfigError(f"ssim: win_size must be odd and >= 3, got {win_size}")
    mask = _mask(mask, ref.shape, "ssim")
    data_range = _data_range(ref, data_range, "ssim")
    img64, ref64 = img.astype(np.float64), ref.astype(np.float64)
    if mask is None and all(n >= win_size for n in ref.shape):
        return float(structural_similarity(img64, ref64, data_range=data_range, win_size=win_size))
    smap = _ssim_map(img64, ref64, data_range, win_size)
    return float(smap[mask].mean() if mask is not None else smap.mean())
