"""2-D raster images (PNG, TIFF) through imageio: grey levels only, no affine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from zeroshot_core.errors import InputError

SUFFIXES = (".png", ".tif", ".tiff")


def read(path: Path) -> tuple[np.ndarray, np.ndarray, Any]:
    """Grey levels as float32, identity affine, no header.

    Raises
    ------
    InputError
        For colour (RGB/RGBA) images.
    """
    import imageio.v3 as iio

    data = np.asarray(iio.imread(path), dtype=np.float32)
    if data.ndim == 3 and data.shape[-1] in (3, 4):
        raise InputError(f"{path}: colour image; convert it to grey levels first")
    return data, np.eye(4), None


def write(path: Path, data: np.ndarray, affine: np.ndarray, header: Any, dtype: np.dtype) -> None:
    """Write one plane (or the stack as given): integers as uint8/uint16, floats rescaled to uint16."""
    import imageio.v3 as iio

    suffix = ".png" if path.name.lower().endswith(".png") else Path(path).suffix.lower()
    plane = data[:, :, 0] if data.shape[2] == 1 else data
    if np.issubdtype(dtype, np.integer):
        out = plane.astype(np.uint16 if suffix != ".png" or plane.max() > 255 else np.uint8)
    else:
        lo, hi = float(plane.min()), float(plane.max())
        scaled = (plane - lo) / (hi - lo) if hi > lo else np.zeros_like(plane)
        out = (scaled * 65535).astype(np.uint16)
    iio.imwrite(path, out, extension=suffix)
