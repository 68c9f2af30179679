"""File formats by suffix: one table maps each suffix to its reader and writer.

A :class:`~zeroshot_core.io.volume.Volume` is a 3-D float array on a voxel grid with
its 4×4 affine. NIfTI files keep their affine and header; 2-D PNG/TIFF/NPY images
become one-slice volumes with an identity affine. Every output is written atomically
(temporary file + rename) and never over its input.
"""

from __future__ import annotations

import os
import shutil
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


def image_stem(path: str | os.PathLike) -> str:
    """``path``'s file name without its image suffix, in any case (``a/Head.NII.GZ`` → ``Head``).

    Examples
    --------
    >>> image_stem("/data/IXI040-PD.nii.gz"), image_stem("slice.TIFF"), image_stem("notes.txt")
    ('IXI040-PD', 'slice', 'notes')
    """
    name = Path(path).name
    return name[: len(name) - len(_suffix(Path(path)))] or name


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


def _same_file(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def _estimated_bytes(path: Path, shape: tuple[int, ...], dtype: np.dtype) -> int:
    raw = int(np.prod(shape)) * np.dtype(dtype).itemsize + 1024
    return raw // 10 if path.name.lower().endswith(".gz") else raw


def check_output_path(out: str | os.PathLike, *inputs: str | os.PathLike | None,
                      shape: tuple[int, ...] | None = None, dtype: np.dtype | type | str = np.float32) -> Path:
    """Validate an output path before any work: type, folder, room, not an input.

    Parameters
    ----------
    out : path-like
        The file to write; its suffix (any case: ``.NII.GZ`` is ``.nii.gz``) picks
        the format.
    *inputs : path-like or None
        Files the command reads; ``out`` may not be one of them.
    shape : tuple of int, optional
        Shape (X, Y, Z) of the result, when known: the format must be able to hold
        it (PNG/TIFF hold one slice) and the disk must have room for it.
    dtype : dtype
        Stored type of the result (for the room check).

    Raises
    ------
    InputError
        Unsupported suffix; ``out`` is a folder, an input, in a missing or read-only
        folder, a format that cannot hold ``shape``, or on a disk without room.
    """
    out = Path(out)
    for item in inputs:
        if item is not None and _same_file(out, Path(item)):
            raise InputError(f"{out}: would overwrite the input file {item}; choose another output name")
    suffix = _suffix(out)
    if suffix not in SUPPORTED_SUFFIXES:
        raise InputError(f"{out}: unsupported output type; use .nii.gz, .nii, .npy, .png or .tif")
    if out.is_dir():
        raise InputError(f"{out}: is a folder; give a file name such as {out / ('result' + suffix)}")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"{out}: folder {parent} does not exist; create it first")
    if not os.access(parent, os.W_OK | os.X_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise InputError(f"{out}: cannot write there (permission denied); choose a writable folder")
    if shape is not None:
        if suffix in raster.SUFFIXES:
            raster.check_writable(out, tuple(shape))
        free = shutil.disk_usage(parent).free
        needed = _estimated_bytes(out, tuple(shape), np.dtype(dtype))
        if free < needed:
            raise InputError(f"{out}: not enough free disk space in {parent} ({free // 2**20} MiB free, "
                             f"about {needed // 2**20 + 1} MiB needed); free some space or choose another folder")
    return out


def check_output_folder(folder: str | os.PathLike) -> Path:
    """Check, before any work, that ``folder`` can be created or written to.

    Raises
    ------
    InputError
        If ``folder`` is a file, or its nearest existing folder is not writable.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder}: exists and is not a folder; choose another output folder")
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"{folder}: cannot write in {existing} (permission denied); choose a writable folder")
    return folder


def check_outputs(outputs: dict[str, str | os.PathLike | None], *inputs: str | os.PathLike | None,
                  shape: tuple[int, ...] | None = None) -> dict[str, Path]:
    """Validate every output of one command: each one as :func:`check_output_path`, and no two alike.

    Parameters
    ----------
    outputs : dict
        Option name (e.g. ``"--out"``, ``"--labels"``) → path; ``None`` entries are skipped.
    *inputs : path-like or None
        Files the command reads.
    shape : tuple of int, optional
        Shape of the results (see :func:`check_output_path`).

    Returns
    -------
    dict of Path, for the entries given.

    Raises
    ------
    InputError
        Naming both options when two outputs are the same file.
    """
    checked: dict[str, Path] = {}
    for name, value in outputs.items():
        if value is None:
            continue
        path = Path(value)
        for other, seen in checked.items():
            if _same_file(path, seen):
                raise InputError(f"{path}: {name} and {other} are the same file; give them different names")
        checked[name] = check_output_path(path, *inputs, shape=shape)
    return checked


def save_volume(volume: Volume, path: str | os.PathLike, dtype: np.dtype | type | None = None,
                description: str | None = None, labels: bool = False) -> Path:
    """Write ``volume`` atomically (NIfTI keeps affine and the header's geometry).

    Parameters
    ----------
    volume : Volume
        Voxels ``(X, Y, Z)`` with their voxel → world (mm) affine and header; only NIfTI
        files store the affine and header (PNG/TIFF and NumPy files keep the voxels
        only). ``volume.path``, its input file, is never overwritten.
    path : path-like
        Output file; its suffix (any case) picks the format (:data:`FORMATS`).
    dtype : dtype, optional
        Stored data type (default float32; labels use an integer type).
    description : str, optional
        For a new result (a translation, labels): the NIfTI ``descrip`` (at most 79
        characters); the source's display range, description and intent are then not
        kept. ``None`` (default) writes the header as it is, for the same image saved
        again.
    labels : bool
        Mark a NIfTI file as a label map (intent ``label``; the source's value fields
        are dropped as for a ``description``).

    Raises
    ------
    InputError
        If the output equals the volume's own input path, the type is unsupported or
        cannot hold the volume, the folder does not exist or is not writable, or the
        write fails (disk full, ...); no partial file is left.
    """
    dtype = np.dtype(dtype or np.float32)
    path = check_output_path(path, volume.path, shape=volume.data.shape, dtype=dtype)
    data = np.asarray(volume.data)
    suffix = _suffix(path)
    fmt = BY_SUFFIX[suffix]
    if fmt.name == "NIfTI":
        def write(tmp: Path) -> None:
            nifti.write(tmp, data, volume.affine, volume.header, dtype, description,
                        nifti.LABEL_INTENT if labels else None)
    else:
        def write(tmp: Path) -> None:
            fmt.write(tmp, data, volume.affine, volume.header, dtype)
    try:
        atomic_write(path, write, suffix=suffix)
    except OSError as exc:
        raise InputError(f"{path}: cannot write ({exc.strerror or type(exc).__name__}); "
                         "free disk space or choose another folder; nothing was written") from None
    return path
