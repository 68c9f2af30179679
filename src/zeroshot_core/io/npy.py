"""NumPy ``.npy`` arrays (never pickles): no affine, 1 mm voxels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from zeroshot_core.errors import InputError

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
    return data.astype(np.float32), np.eye(4), None


def write(path: Path, data: np.ndarray, affine: np.ndarray, header: Any, dtype: np.dtype) -> None:
    """Write ``data`` as ``dtype``; affine and header are not stored."""
    with open(path, "wb") as handle:
        np.save(handle, data.astype(dtype), allow_pickle=False)
