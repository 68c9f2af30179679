"""Orientation and slicing: the canonical voxel order every slice is cut in, the
through-plane axis of a volume, and slice stacks."""

from __future__ import annotations

from dataclasses import dataclass

import nibabel as nib
import numpy as np

from zeroshot_core.errors import ConfigError


def slicing_axis(affine: np.ndarray, shape: tuple[int, ...] | None = None) -> int:
    """The through-plane axis: largest spacing, ties broken by alignment with world S–I.

    Parameters
    ----------
    affine : ndarray (4, 4)
        Voxel ``(i, j, k)`` → world (mm, RAS+) transform; the norms of its first three
        columns are the voxel spacings, and spacings within 1 % of the largest count as
        tied.
    shape : tuple, optional
        A one-slice axis (2-D image) always wins.

    Returns
    -------
    int
        Volume axis 0, 1 or 2 to cut slices along.
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
