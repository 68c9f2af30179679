"""File formats by suffix: one table maps each suffix to its reader and writer.

A :class:`~zeroshot_core.io.volume.Volume` is a 3-D float array on a voxel grid with
its 4×4 affine. NIfTI files keep their affine and header; 2-D PNG/TIFF/NPY images
become one-slice volumes with an identity affine. Every output is written atomically
(temporary file + rename) and never over its input.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from zeroshot_core.errors import InputError
from zeroshot_core.io import nifti, npy, raster
from zeroshot_core.io.atomic import atomic_write
from zeroshot_core.io.volume import Volume, as_volume


@dataclass(frozen=True)
class Format:
    """How one family of suffixes is read and written.

    Attributes
    ----------
    name : str
    suffixes : tuple of str
        Lower-case suffixes, with the dot (``.nii.gz``).
    read : callable
        ``read(path) -> (data, affine (4, 4), header or None)``.
    write : callable
        ``write(path, data, affine, header, dtype)``.
    """

    name: str
    suffixes: tuple[str, ...]
    read: Callable[[Path], tuple[np.ndarray, np.ndarray, Any]]
    write: Callable[[Path, np.ndarray, np.ndarray, Any, np.dtype], None]


FORMATS: tuple[Format, ...] = (
    Format("NIfTI", nifti.SUFFIXES, nifti.read, nifti.write),
    Format("PNG/TIFF", raster.SUFFIXES, raster.read, raster.write),
    Format("NumPy", npy.SUFFIXES, npy.read, npy.write),
)
"""Every supported format; the suffix → format table is built from it."""

BY_SUFFIX: dict[str, Format] = {suffix: fmt for fmt in FORMATS for suffix in fmt.suffixes}
NIFTI_SUFFIXES = nifti.SUFFIXES
IMAGE_SUFFIXES = raster.SUFFIXES + npy.SUFFIXES
SUPPORTED_SUFFIXES = NIFTI_SUFFIXES + IMAGE_SUFFIXES


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in SUPPORTED_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    return path.suffix.lower()


def is_supported(path: str | os.PathLike) -> bool:
    """Whether ``path`` has a readable image suffix.

    Examples
    --------
    >>> is_supported("head.nii.gz"), is_supported("notes.txt")
    (True, False)
    """
    return _suffix(Path(path)) in SUPPORTED_SUFFIXES


def to_volume(item: "Volume | str | os.PathLike | np.ndarray") -> Volume:
    """A Volume as given, an array wrapped with :func:`as_volume`, or a file read with :func:`load_volume`.

    Raises
    ------
    InputError
    """
    if isinstance(item, Volume):
        return item
    if isinstance(item, np.ndarray):
        return as_volume(item)
    return load_volume(item)


def load_volume(path: str | os.PathLike) -> Volume:
    """Read a NIfTI volume or a 2-D image.

    Parameters
    ----------
    path : path-like
        A file with one of :data:`SUPPORTED_SUFFIXES`.

    Returns
    -------
    Volume
        ``data`` of shape (X, Y, Z), float32; a 2-D image has Z = 1.

    Raises
    ------
    InputError
        Missing, unreadable or corrupt file; 4-D data; NaN/Inf voxels; unknown suffix.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, expected an image file")
    suffix = _suffix(path)
    if suffix not in SUPPORTED_SUFFIXES:
        raise InputError(f"{path}: unsupported file type; use one of {', '.join(SUPPORTED_SUFFIXES)}")
    try:
        data, affine, header = BY_SUFFIX[suffix].read(path)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"{path}: cannot read ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})") from None
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim == 2:
        data = data[:, :, None]
    if data.ndim != 3:
        raise InputError(f"{path}: {data.ndim}-D image of shape {data.shape}; give one 3-D volume "
                         "(split 4-D series first)")
    if data.size == 0:
        raise InputError(f"{path}: holds no voxels (shape {data.shape}); give a non-empty image")
    if not np.isfinite(data).all():
        raise InputError(f"{path}: contains NaN or Inf voxels; replace them (e.g. with 0) first")
    return Volume(data, affine, header, path)


def check_output_path(out: str | os.PathLike, *inputs: str | os.PathLike | None) -> Path:
    """Validate an output path: writable folder, supported suffix, not an input.

    Parameters
    ----------
    out : path-like
        The file to write.
    *inputs : path-like or None
        Files the command reads; ``out`` may not be one of them.

    Raises
    ------
    InputError
    """
    out = Path(out)
    for item in inputs:
        if item is not None and Path(item).exists() and out.exists() and out.resolve() == Path(item).resolve():
            raise InputError(f"{out}: output would overwrite the input; choose another --out")
    if _suffix(out) not in SUPPORTED_SUFFIXES:
        raise InputError(f"{out}: unsupported output type; use .nii.gz, .nii, .npy, .png or .tif")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.exists():
        raise InputError(f"{out}: folder {parent} does not exist")
    return out


def save_volume(volume: Volume, path: str | os.PathLike, dtype: np.dtype | type | None = None) -> Path:
    """Write ``volume`` atomically (NIfTI keeps affine and header).

    Parameters
    ----------
    volume : Volume
        Voxels ``(X, Y, Z)`` with their voxel → world (mm) affine and header; only NIfTI
        files store the affine and header (PNG/TIFF and NumPy files keep the voxels
        only). ``volume.path``, its input file, is never overwritten.
    path : path-like
        Output file; its suffix picks the format (:data:`FORMATS`).
    dtype : dtype, optional
        Stored data type (default float32; labels use an integer type).

    Raises
    ------
    InputError
        If the output equals the volume's own input path, the type is unsupported or
        the output folder does not exist.
    """
    path = check_output_path(path, volume.path)
    data = np.asarray(volume.data)
    dtype = np.dtype(dtype or np.float32)
    writer = BY_SUFFIX[_suffix(path)].write
    atomic_write(path, lambda tmp: writer(tmp, data, volume.affine, volume.header, dtype))
    return path
