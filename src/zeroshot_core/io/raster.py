"""2-D raster images (PNG, TIFF): grey levels, by each format's own layout; no affine.

Reading
    * PNG: grey ``(H, W)``; grey + alpha ``(H, W, 2)`` gives the grey channel (alpha is
      transparency, not a slice); RGB/RGBA whose colour channels are equal gives one of
      them; a real colour image is refused.
    * TIFF: pages are slices. A stack of ``Z`` pages of ``(H, W)`` becomes a volume
      ``(H, W, Z)`` (page ``k`` is slice ``k`` along the last axis); samples per pixel
      (``S`` in the TIFF layout) are colour channels, handled as for PNG.

Writing
    One slice only (a multi-slice volume is refused: use NIfTI or NumPy). PNG holds
    unsigned 16-bit integers: values are rounded when they all lie in 0..65535, and
    refused otherwise; TIFF stores floats as float32, unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from zeroshot_core.errors import InputError

SUFFIXES = (".png", ".tif", ".tiff")


def _grey(path: Path, data: np.ndarray) -> np.ndarray:
    """Grey levels of a ``(H, W, C)`` image with C = 2 (grey + alpha), 3 or 4 (RGB[A])."""
    channels = data.shape[-1]
    if channels == 2:
        return data[..., 0]
    colour = data[..., :3]
    if np.array_equal(colour[..., 0], colour[..., 1]) and np.array_equal(colour[..., 0], colour[..., 2]):
        return colour[..., 0]
    raise InputError(f"{path}: colour image (RGB); convert it to grey levels first "
                     "(e.g. PIL: Image.open(path).convert('L'))")


def read(path: Path) -> tuple[np.ndarray, np.ndarray, Any]:
    """Grey levels as float32 ``(H, W)`` or ``(H, W, Z)``, identity affine, no header.

    Raises
    ------
    InputError
        For colour images and layouts other than slices of grey (+ alpha) pixels.
    """
    if path.name.lower().endswith(".png"):
        import imageio.v3 as iio

        data = np.asarray(iio.imread(path))
        axes = "YXS" if data.ndim == 3 else "YX"
    else:
        import tifffile

        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            data, axes = np.asarray(series.asarray()), series.axes
    if axes.endswith("S") or (axes.endswith("C") and data.shape[-1] in (2, 3, 4)):
        if data.shape[-1] not in (2, 3, 4):
            raise InputError(f"{path}: {data.shape[-1]} samples per pixel; give grey-level images")
        data, axes = _grey(path, data), axes[:-1]
    if data.ndim == 3:  # pages (slices) first, as TIFF stores them
        data = np.moveaxis(data, 0, -1)
    elif data.ndim > 3:
        raise InputError(f"{path}: image of layout {axes} and shape {data.shape}; give one 2-D image "
                         "or a stack of 2-D pages")
    return data.astype(np.float32), np.eye(4), None


def check_writable(path: Path, shape: tuple[int, ...]) -> None:
    """Refuse, before any work, a result that a raster file cannot hold.

    Raises
    ------
    InputError
        If the volume of ``shape`` (X, Y, Z) has more than one slice.
    """
    if len(shape) == 3 and shape[2] > 1:
        raise InputError(f"{path}: a {Path(path).suffix} file holds one 2-D slice, the result is a volume of "
                         f"{shape[2]} slices ({shape[0]}x{shape[1]}x{shape[2]}); write .nii.gz, .nii or .npy")


def write(path: Path, data: np.ndarray, affine: np.ndarray, header: Any, dtype: np.dtype) -> None:
    """Write one slice: PNG as uint8/uint16 integers, TIFF as the integer type or float32.

    Raises
    ------
    InputError
        For a multi-slice volume, or PNG values outside 0..65535.
    """
    import imageio.v3 as iio

    check_writable(path, data.shape)
    plane = data[:, :, 0] if data.ndim == 3 else data
    if path.name.lower().endswith(".png"):
        if plane.size and (float(plane.min()) < 0 or float(plane.max()) > 65535):
            raise InputError(f"{path}: values {float(plane.min()):g}..{float(plane.max()):g} do not fit a PNG "
                             "(0..65535); write .tif, .npy or .nii.gz")
        out = np.rint(plane).astype(np.uint8 if np.issubdtype(dtype, np.integer) and plane.max() <= 255
                                    else np.uint16)
        iio.imwrite(path, out, extension=".png")
        return
    import tifffile

    out = plane.astype(dtype) if np.issubdtype(dtype, np.integer) else plane.astype(np.float32)
    tifffile.imwrite(path, out)
