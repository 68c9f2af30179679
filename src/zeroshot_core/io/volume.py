"""The :class:`Volume`: a 3-D float array on a voxel grid with its 4×4 affine."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from zeroshot_core.errors import InputError


@dataclass(frozen=True, eq=False)
class Volume:
    """A 3-D image on a voxel grid.

    Attributes
    ----------
    data : ndarray, shape (X, Y, Z), float32
        Voxel intensities in the file's units (after NIfTI ``scl_slope``/``scl_inter``).
    affine : ndarray, shape (4, 4)
        Voxel index → world (mm, RAS+) transform.
    header : nibabel.Nifti1Header or None
        Original header, reused on writing.
    path : Path or None
        Where it was read from.

    Raises
    ------
    InputError
        If ``data`` is not 3-D or ``affine`` is not 4×4.
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
        """Voxel size in mm along each array axis (norms of the affine's columns)."""
        return tuple(float(s) for s in np.linalg.norm(np.asarray(self.affine)[:3, :3], axis=0))

    def with_data(self, data: np.ndarray) -> "Volume":
        """Same grid, other voxels (``path`` dropped)."""
        return replace(self, data=data, path=None)


def as_volume(array: np.ndarray, affine: np.ndarray | None = None) -> Volume:
    """Wrap a 2-D or 3-D array (a 2-D image becomes one slice).

    Parameters
    ----------
    array : ndarray, shape (H, W) or (X, Y, Z)
        Intensities; stored as float32.
    affine : ndarray, shape (4, 4), optional
        Voxel → world (mm) transform; identity (1 mm voxels) when omitted.

    Raises
    ------
    InputError
        If the array is neither 2-D nor 3-D.

    Examples
    --------
    >>> as_volume(np.zeros((4, 5))).data.shape
    (4, 5, 1)
    """
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3:
        raise InputError(f"expected a 2-D or 3-D image, got shape {array.shape}; "
                         "split 4-D series into 3-D volumes first")
    return Volume(array.astype(np.float32), np.eye(4) if affine is None else np.asarray(affine, float))
