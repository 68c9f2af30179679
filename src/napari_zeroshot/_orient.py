"""Reordering NIfTI voxels to the closest canonical (RAS+) orientation and back.

napari draws a 3-D layer by slicing its data along one data axis and showing the
other two through the layer affine; an affine that swaps axes (a sagittally or
coronally stored scan) makes the drawn plane's matrix singular and the viewer
aborts. The reader therefore hands napari the voxels reordered (transposed and
flipped, never resampled) so that the voxel axes run closest to R, A and S, with
the residual rotation (an oblique acquisition) left in the affine, as
``nibabel.as_closest_canonical`` does. The orientation used is kept with the
layer so the writer puts the voxels back in the file's order with the file's own
affine and header: the round trip is exact.

An orientation is nibabel's ``(3, 2)`` array: row ``i`` says that voxel axis ``i``
of the file becomes canonical axis ``ornt[i, 0]``, reversed when ``ornt[i, 1]`` is
``-1``.
"""

from __future__ import annotations

import numpy as np
from nibabel.orientations import (
    apply_orientation,
    inv_ornt_aff,
    io_orientation,
    ornt_transform,
)

from zeroshot_core.api import Volume

#: The orientation that changes nothing.
IDENTITY = np.array([[0.0, 1.0], [1.0, 1.0], [2.0, 1.0]])


def closest_canonical(affine: np.ndarray) -> np.ndarray:
    """Orientation taking a file's voxel axes to the closest RAS+ axes.

    Parameters
    ----------
    affine : ndarray, shape (4, 4)
        NIfTI voxel ``(i, j, k)`` → RAS+ world (mm) transform.

    Returns
    -------
    ndarray, shape (3, 2)
        :data:`IDENTITY` when the axes already run closest to R, A, S, or when the
        affine is degenerate (a zero column) and no orientation can be read from it.
    """
    ornt = io_orientation(np.asarray(affine, dtype=float))
    return IDENTITY.copy() if np.isnan(ornt).any() else ornt


def to_canonical(data: np.ndarray, affine: np.ndarray, ornt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Voxels and affine reordered by ``ornt`` (the same voxels in the same places).

    Parameters
    ----------
    data : ndarray, shape (X, Y, Z)
        Voxels in the file's order.
    affine : ndarray, shape (4, 4)
        The file's voxel → world affine (mm).
    ornt : ndarray, shape (3, 2)
        Orientation from :func:`closest_canonical`.

    Returns
    -------
    data : ndarray, shape permuted like the axes
        A view of ``data`` (no copy).
    affine : ndarray, shape (4, 4)
        Voxel → world affine of the reordered voxels.
    """
    shape = np.asarray(data).shape
    return apply_orientation(data, ornt), np.asarray(affine, dtype=float) @ inv_ornt_aff(ornt, shape)


def file_shape(canonical_shape: tuple[int, ...], ornt: np.ndarray) -> tuple[int, ...]:
    """Shape of the file whose voxels, reordered by ``ornt``, have ``canonical_shape``."""
    shape = [0, 0, 0]
    for axis, (target, _) in enumerate(np.asarray(ornt, dtype=int)):
        shape[axis] = canonical_shape[target]
    return tuple(shape)


def from_canonical(data: np.ndarray, ornt: np.ndarray) -> np.ndarray:
    """Undo :func:`to_canonical` on voxels: back to the file's order.

    Parameters
    ----------
    data : ndarray, shape (X', Y', Z')
        Voxels in canonical order.
    ornt : ndarray, shape (3, 2)
        The orientation that :func:`to_canonical` applied.

    Returns
    -------
    ndarray, shape :func:`file_shape`
    """
    return apply_orientation(data, ornt_transform(IDENTITY, np.asarray(ornt, dtype=float)))


def canonical_affine(affine: np.ndarray, ornt: np.ndarray, canonical_shape: tuple[int, ...]) -> np.ndarray:
    """Affine of the canonical voxels, given the file's affine and the canonical shape."""
    return np.asarray(affine, dtype=float) @ inv_ornt_aff(ornt, file_shape(canonical_shape, ornt))


def canonical_shape(shape: tuple[int, ...], ornt: np.ndarray) -> tuple[int, ...]:
    """Shape of a file's voxels of ``shape`` once reordered by ``ornt``."""
    out = [0, 0, 0]
    for axis, (target, _) in enumerate(np.asarray(ornt, dtype=int)):
        out[target] = shape[axis]
    return tuple(out)


def canonical_volume(volume: Volume) -> tuple[Volume, np.ndarray]:
    """``volume`` reordered to its closest canonical orientation, and the orientation.

    Parameters
    ----------
    volume : Volume
        Voxels ``(X, Y, Z)`` in the file's order with the file's affine.

    Returns
    -------
    volume : Volume
        The same voxels transposed/flipped so their axes run closest to R, A, S, with
        the matching affine; the header is kept only when nothing was reordered (a
        reordered volume's header would describe the wrong axes).
    ornt : ndarray, shape (3, 2)
        The reordering (``nibabel`` orientation; identity when none was needed).
    """
    ornt = closest_canonical(volume.affine)
    if np.array_equal(ornt, IDENTITY):
        return volume, ornt
    data, affine = to_canonical(np.asarray(volume.data), volume.affine, ornt)
    return Volume(np.ascontiguousarray(data), affine, None, volume.path), ornt
