"""NumPy ``.npy`` arrays (never pickles): no affine, 1 mm voxels.

A 2-D array is one slice ``(H, W)``. A 3-D array is read as ``(X, Y, Z)``, the
NIfTI/nibabel order, slices along the last axis; when another axis is the shortest
(e.g. a slice-first ``(Z, H, W)`` stack) the reader warns with :class:`LayoutWarning`,
naming the axis used and the way to change it (``--axis``, or ``np.moveaxis``).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from zeroshot_core.errors import InputError, LayoutWarning

SUFFIXES = (".npy",)


def read(path: Path) -> tuple[np.ndarray, np.ndarray, Any]:
    """Voxels as float32, identity affine, no header (``allow_pickle=False``).

    Raises
    ------
    InputError
        For arrays of anything but real numbers (complex, structured, strings).
    """
    data = np.load(path, allow_pickle=False)
    if data.dtype.kind not in "biuf":
        raise InputError(f"{path}: holds {data.dtype} values, not real numbers; save the magnitude or one field")
    if data.ndim == 3 and data.shape[2] != min(data.shape):
        warnings.warn(LayoutWarning(
            f"{path}: 3-D array of shape {data.shape} read as (X, Y, Z), slices along the last axis; if its slices "
            f"run along axis {int(np.argmin(data.shape))}, pass --axis {int(np.argmin(data.shape))} (API: "
            "TranslateOptions(axis=...)) or save it with np.moveaxis"), stacklevel=2)
    return data.astype(np.float32), np.eye(4), None


def write(path: Path, data: np.ndarray, affine: np.ndarray, header: Any, dtype: np.dtype) -> None:
    """Write ``data`` as ``dtype``; affine and header are not stored."""
    with open(path, "wb") as handle:
        np.save(handle, data.astype(dtype), allow_pickle=False)
