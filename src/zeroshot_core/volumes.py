"""Reading, writing, slicing and normalising image volumes.

A :class:`Volume` is a 3-D float array on a voxel grid with its 4×4 affine. NIfTI
files keep their affine and header; 2-D PNG/TIFF/NPY images become one-slice
volumes with an identity affine. Every output is written atomically (temporary
file + rename) and never over its input.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import torch
import torch.nn.functional as F

from zeroshot_core.errors import ConfigError, InputError

NIFTI_SUFFIXES = (".nii", ".nii.gz")
IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".npy")
SUPPORTED_SUFFIXES = NIFTI_SUFFIXES + IMAGE_SUFFIXES


@dataclass(frozen=True, eq=False)
class Volume:
    """A 3-D image on a voxel grid.

    Attributes
    ----------
    data : ndarray, shape (X, Y, Z), float32
    affine : ndarray, shape (4, 4)
        Voxel → world (mm) transform.
    header : nibabel.Nifti1Header or None
        Original header, reused on writing.
    path : Path or None
        Where it was read from.
    """

    data: np.ndarray
    affine: np.ndarray = field(default_factory=lambda: np.eye(4))
    header: Any = None
    path: Path | None = None

    def __post_init__(self) -> None:
        if self.data.ndim != 3:
            raise InputError(f"a volume must be 3-D, got shape {self.data.shape}")
        if np.asarray(self.affine).shape != (4, 4):
            raise InputError(f"affine must be 4x4, got {np.asarray(self.affine).shape}")

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along each array axis."""
        return tuple(float(s) for s in np.linalg.norm(np.asarray(self.affine)[:3, :3], axis=0))

    def with_data(self, data: np.ndarray) -> "Volume":
        """Same grid, other voxels (``path`` dropped)."""
        return replace(self, data=data, path=None)


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in SUPPORTED_SUFFIXES:
        if name.endswith(suffix):
            return suffix
    return path.suffix.lower()


def is_supported(path: str | os.PathLike) -> bool:
    """Whether ``path`` has a readable image suffix."""
    return _suffix(Path(path)) in SUPPORTED_SUFFIXES


def as_volume(array: np.ndarray, affine: np.ndarray | None = None) -> Volume:
    """Wrap a 2-D or 3-D array (a 2-D image becomes one slice)."""
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3:
        raise InputError(f"expected a 2-D or 3-D image, got shape {array.shape}; "
                         "split 4-D series into 3-D volumes first")
    return Volume(array.astype(np.float32), np.eye(4) if affine is None else np.asarray(affine, float))


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
        if suffix in NIFTI_SUFFIXES:
            image = nib.load(str(path))
            data = np.asarray(image.dataobj, dtype=np.float32)
            affine, header = np.asarray(image.affine, float), image.header.copy()
        elif suffix == ".npy":
            data = np.load(path, allow_pickle=False).astype(np.float32)
            affine, header = np.eye(4), None
        else:
            import imageio.v3 as iio

            data = np.asarray(iio.imread(path), dtype=np.float32)
            if data.ndim == 3 and data.shape[-1] in (3, 4):
                raise InputError(f"{path}: colour image; convert it to grey levels first")
            affine, header = np.eye(4), None
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
    if not np.isfinite(data).all():
        raise InputError(f"{path}: contains NaN or Inf voxels; replace them (e.g. with 0) first")
    return Volume(data, affine, header, path)


def check_output_path(out: str | os.PathLike, *inputs: str | os.PathLike | None) -> Path:
    """Validate an output path: writable folder, supported suffix, not an input.

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


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` and rename the temporary file onto ``path``."""
    path = Path(path)
    suffix = "".join(path.suffixes[-2:]) if path.name.endswith(".nii.gz") else path.suffix
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent or ".")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_volume(volume: Volume, path: str | os.PathLike, dtype: np.dtype | type | None = None) -> Path:
    """Write ``volume`` atomically (NIfTI keeps affine and header).

    Parameters
    ----------
    volume : Volume
    path : path-like
    dtype : dtype, optional
        Stored data type (default float32; labels use an integer type).

    Raises
    ------
    InputError
        If the output equals the volume's own input path or the type is unsupported.
    """
    path = check_output_path(path, volume.path)
    data = np.asarray(volume.data)
    dtype = np.dtype(dtype or np.float32)
    suffix = _suffix(path)

    def write(tmp: Path) -> None:
        if suffix in NIFTI_SUFFIXES:
            header = volume.header.copy() if volume.header is not None else None
            image = nib.Nifti1Image(data.astype(dtype), volume.affine, header)
            image.set_data_dtype(dtype)
            image.header.set_slope_inter(1.0, 0.0) if hasattr(image.header, "set_slope_inter") else None
            nib.save(image, str(tmp))
        elif suffix == ".npy":
            with open(tmp, "wb") as handle:
                np.save(handle, data.astype(dtype), allow_pickle=False)
        else:
            import imageio.v3 as iio

            plane = data[:, :, 0] if data.shape[2] == 1 else data
            if np.issubdtype(dtype, np.integer):
                out = plane.astype(np.uint16 if suffix != ".png" or plane.max() > 255 else np.uint8)
            else:
                lo, hi = float(plane.min()), float(plane.max())
                scaled = (plane - lo) / (hi - lo) if hi > lo else np.zeros_like(plane)
                out = (scaled * 65535).astype(np.uint16)
            iio.imwrite(tmp, out, extension=suffix)

    atomic_write(path, write)
    return path


def slicing_axis(affine: np.ndarray, shape: tuple[int, ...] | None = None) -> int:
    """The through-plane axis: largest spacing, ties broken by alignment with world S–I.

    Parameters
    ----------
    affine : ndarray (4, 4)
    shape : tuple, optional
        A one-slice axis (2-D image) always wins.
    """
    if shape is not None and 1 in shape[:3]:
        return int(list(shape[:3]).index(1))
    columns = np.asarray(affine, float)[:3, :3]
    spacing = np.linalg.norm(columns, axis=0)
    superior = np.abs(columns[2]) / np.maximum(spacing, 1e-12)
    largest = spacing.max()
    candidates = [i for i in range(3) if spacing[i] >= largest * 0.99]
    return int(max(candidates, key=lambda i: superior[i]))


def volume_slices(data: np.ndarray, axis: int) -> np.ndarray:
    """Stack of 2-D slices along ``axis`` (shape ``(n, H, W)``)."""
    if axis not in (0, 1, 2):
        raise ConfigError(f"slicing axis must be 0, 1 or 2, got {axis}")
    return np.moveaxis(np.asarray(data), axis, 0)


def stack_slices(slices: np.ndarray, axis: int) -> np.ndarray:
    """Inverse of :func:`volume_slices`."""
    return np.moveaxis(np.asarray(slices), 0, axis)


@dataclass(frozen=True)
class Normalisation:
    """Linear map of intensities between percentiles ``low`` and ``high`` to [-1, 1].

    Attributes
    ----------
    low, high : float
        Intensities mapped to -1 and 1 (values outside are clipped).
    """

    low: float
    high: float

    def __post_init__(self) -> None:
        if not np.isfinite([self.low, self.high]).all() or self.high <= self.low:
            raise InputError("the image is constant (no contrast to normalise); check the input")

    @classmethod
    def fit(cls, data: np.ndarray, percentiles: tuple[float, float] = (0.5, 99.5),
            mask: np.ndarray | None = None) -> "Normalisation":
        """Robust percentiles of ``data`` (inside ``mask`` if given and non-empty).

        Raises
        ------
        InputError
            If the image is constant.
        """
        values = np.asarray(data, np.float32)
        if mask is not None and mask.any():
            values = values[mask]
        if values.size == 0 or float(values.max()) == float(values.min()):
            raise InputError("the image is constant (no contrast to normalise); check the input")
        low, high = np.percentile(values, percentiles)
        if high <= low:
            low, high = float(values.min()), float(values.max())
        return cls(float(low), float(high))

    def apply(self, data: np.ndarray) -> np.ndarray:
        """Map to [-1, 1] with clipping."""
        out = (np.asarray(data, np.float32) - self.low) / (self.high - self.low)
        return np.clip(out * 2.0 - 1.0, -1.0, 1.0).astype(np.float32)

    def invert(self, data: np.ndarray) -> np.ndarray:
        """Map [-1, 1] back to intensities."""
        return ((np.asarray(data, np.float32) + 1.0) / 2.0 * (self.high - self.low) + self.low).astype(np.float32)

    def to_dict(self) -> dict[str, float]:
        return {"low": self.low, "high": self.high}


@dataclass(frozen=True)
class SliceGeometry:
    """How a slice of shape ``shape`` was padded to a square and resized to ``size``."""

    shape: tuple[int, int]
    size: int

    @property
    def side(self) -> int:
        return max(self.shape)

    @property
    def offsets(self) -> tuple[int, int]:
        return ((self.side - self.shape[0]) // 2, (self.side - self.shape[1]) // 2)


def to_model_size(slices: np.ndarray, size: int, fill: float = -1.0, mode: str = "bilinear") -> np.ndarray:
    """Pad ``(n, H, W)`` slices to squares (centred, value ``fill``) and resize to ``size``."""
    slices = np.asarray(slices, np.float32)
    geometry = SliceGeometry(tuple(slices.shape[1:3]), size)
    side, (oy, ox) = geometry.side, geometry.offsets
    padded = np.full((slices.shape[0], side, side), fill, np.float32)
    padded[:, oy:oy + slices.shape[1], ox:ox + slices.shape[2]] = slices
    return _resize(padded, size, mode)


def from_model_size(slices: np.ndarray, shape: tuple[int, int], mode: str = "bilinear") -> np.ndarray:
    """Inverse of :func:`to_model_size`: back to ``(n, *shape)``."""
    geometry = SliceGeometry(tuple(shape), np.asarray(slices).shape[-1])
    side, (oy, ox) = geometry.side, geometry.offsets
    resized = _resize(np.asarray(slices, np.float32), side, mode)
    return resized[:, oy:oy + shape[0], ox:ox + shape[1]]


def _resize(stack: np.ndarray, size: int, mode: str) -> np.ndarray:
    if stack.shape[-1] == size and stack.shape[-2] == size:
        return stack.copy()
    tensor = torch.from_numpy(np.ascontiguousarray(stack))[:, None]
    kwargs = {"align_corners": False, "antialias": True} if mode == "bilinear" else {}
    out = F.interpolate(tensor, size=(size, size), mode=mode, **kwargs)
    return out[:, 0].numpy()


CANONICAL_CODES = ("P", "S", "R")
"""Orientation every slice is cut in before it meets a model: axis 0 runs anterior →
posterior, axis 1 inferior → superior, axis 2 left → right. Axial slices (along axis 1)
then show the anterior at the top and the patient's left on the left, whatever the
orientation of the file, so models see the same anatomy layout in training and use."""


@dataclass(frozen=True, eq=False)
class Reorientation:
    """Axis permutation and flips between a volume's voxel order and :data:`CANONICAL_CODES`.

    Examples
    --------
    >>> r = Reorientation.for_affine(np.diag([2.0, 2.0, 2.0, 1.0]), (4, 5, 6))
    >>> r.apply(np.zeros((4, 5, 6))).shape
    (5, 6, 4)
    """

    to_canonical: np.ndarray
    from_canonical: np.ndarray
    shape: tuple[int, int, int]

    @classmethod
    def for_affine(cls, affine: np.ndarray, shape: tuple[int, ...]) -> "Reorientation":
        current = nib.orientations.io_orientation(np.asarray(affine, float))
        canonical = nib.orientations.axcodes2ornt(CANONICAL_CODES)
        return cls(nib.orientations.ornt_transform(current, canonical),
                   nib.orientations.ornt_transform(canonical, current), tuple(int(s) for s in shape[:3]))

    def apply(self, data: np.ndarray) -> np.ndarray:
        """Voxel order → canonical order."""
        return np.ascontiguousarray(nib.orientations.apply_orientation(np.asarray(data), self.to_canonical))

    def invert(self, data: np.ndarray) -> np.ndarray:
        """Canonical order → the volume's voxel order."""
        return np.ascontiguousarray(nib.orientations.apply_orientation(np.asarray(data), self.from_canonical))

    def axis(self, axis: int) -> tuple[int, bool]:
        """Canonical axis of voxel axis ``axis`` and whether it is flipped."""
        return int(self.to_canonical[axis, 0]), bool(self.to_canonical[axis, 1] < 0)

    def index(self, axis: int, index: int) -> int:
        """Canonical slice index of slice ``index`` along voxel axis ``axis``."""
        _, flipped = self.axis(axis)
        return self.shape[axis] - 1 - index if flipped else index


def central_slices(region: np.ndarray, axis: int, count: int) -> tuple[int, ...]:
    """``count`` adjacent slices around the centre of mass of ``region`` along ``axis``.

    Examples
    --------
    >>> central_slices(np.ones((4, 4, 10), bool), 2, 4)
    (3, 4, 5, 6)
    """
    weights = np.moveaxis(np.asarray(region, bool), axis, 0).reshape(region.shape[axis], -1).sum(axis=1)
    total = region.shape[axis]
    centre = float(np.average(np.arange(total), weights=weights)) if weights.any() else (total - 1) / 2
    start = min(max(0, int(np.floor(centre - (count - 1) / 2 + 0.5))), max(0, total - count))
    return tuple(range(start, min(total, start + count)))
