"""Conversion between napari layer data and :class:`zeroshot_core.io.volume.Volume`.

Axis convention
---------------
A NIfTI volume stores voxels as ``(X, Y, Z)`` (``i, j, k``) with an affine to RAS+
world millimetres. napari shows the *last two* axes of a layer as the plane and
puts a slider on the others, so a layer holds the voxels in reversed order,
``(Z, Y, X)``: the slider walks through ``k`` (axial slices for the usual
acquisition) and the plane is ``(j, i)``. The layer affine is the NIfTI affine with
rows and columns reversed the same way, so napari's world axes are ``(S, A, R)``
in millimetres and every voxel lands where the NIfTI affine puts it:

``layer_affine = P @ nifti_affine @ P`` with ``P`` the 4×4 permutation that
reverses the three spatial axes. ``P`` is its own inverse, so the conversion is
exact both ways (it only reorders numbers).

A file whose voxel axes do not run closest to R, A, S (a sagittally or coronally
stored scan, a flipped one) is first reordered to the closest canonical
orientation (:mod:`napari_zeroshot._orient`; transposes and flips only), because
napari cannot draw a layer whose affine swaps axes. The residual rotation of an
oblique scan stays in the affine.

The file's own NIfTI affine, header and the reordering are kept in
``layer.metadata[NIFTI_KEY]``, so the layer and every layer derived from it (a
translation, a segmentation) is written back in the file's voxel order, on exactly
the file's grid, with its header.

Everything here is pure (no Qt, no viewer): functions take arrays, transforms and
metadata dictionaries, or layer objects only to read those attributes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from napari_zeroshot._orient import (
    IDENTITY,
    canonical_affine,
    canonical_shape,
    closest_canonical,
    from_canonical,
)
from zeroshot_core.api import Volume
from zeroshot_core.errors import InputError

#: ``layer.metadata`` key holding ``{"affine", "header", "path", "ornt"}`` of the NIfTI
#: file (``ornt``: the reordering from the file's voxel order to the layer's).
NIFTI_KEY = "nifti"
#: ``layer.metadata`` key of a translation's provenance record
#: (:func:`zeroshot_core.api.translation_provenance`); the writer saves it as a sidecar.
PROVENANCE_KEY = "provenance"
#: ``layer.metadata`` key marking layers made by this plugin (``{"role", "source"}``).
OWNER_KEY = "napari_zeroshot"
#: World axis labels of a layer made from a NIfTI volume (RAS+ reversed).
WORLD_AXIS_LABELS = ("S", "A", "R")
#: World units of a layer made from a NIfTI volume.
WORLD_UNITS = ("mm", "mm", "mm")

_REVERSE = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=float)


def nifti_to_layer_affine(affine: np.ndarray) -> np.ndarray:
    """Layer affine (``(Z, Y, X)`` data → ``(S, A, R)`` world) of a NIfTI affine.

    Parameters
    ----------
    affine : ndarray, shape (4, 4)
        NIfTI voxel ``(i, j, k)`` → RAS+ world transform.

    Returns
    -------
    ndarray, shape (4, 4)
    """
    return _REVERSE @ np.asarray(affine, dtype=float) @ _REVERSE


def layer_to_nifti_affine(affine: np.ndarray) -> np.ndarray:
    """Inverse of :func:`nifti_to_layer_affine` (the same reversal).

    Parameters
    ----------
    affine : ndarray, shape (4, 4)
        Layer data → world transform of a 3-D layer.

    Returns
    -------
    ndarray, shape (4, 4)
    """
    return nifti_to_layer_affine(affine)


def volume_to_layer_data(volume: Volume, ndim: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Layer data and layer affine of a volume.

    Parameters
    ----------
    volume : Volume
        Voxels ``(X, Y, Z)`` and NIfTI affine.
    ndim : {2, 3}
        Dimensionality of the layer to build. ``2`` needs a one-slice volume
        (``Z == 1``) and returns ``(Y, X)`` data with a 3×3 affine.

    Returns
    -------
    data : ndarray, shape (Z, Y, X) or (Y, X)
    affine : ndarray, shape (4, 4) or (3, 3)

    Raises
    ------
    InputError
        If ``ndim`` is 2 and the volume has more than one slice.
    """
    data = np.transpose(np.asarray(volume.data), (2, 1, 0))
    affine = nifti_to_layer_affine(volume.affine)
    if ndim == 3:
        return data, affine
    if ndim != 2 or data.shape[0] != 1:
        raise InputError(f"cannot show a volume of shape {volume.data.shape} as a {ndim}-D layer")
    return data[0], affine[1:, 1:]


def transform_matrix(
    affine: Any = None,
    scale: Any = None,
    translate: Any = None,
    rotate: Any = None,
    shear: Any = None,
    ndim: int = 3,
) -> np.ndarray:
    """Full data → world matrix of a layer from its transform attributes.

    napari composes ``affine @ (rotate @ shear @ scale + translate)``; the arguments
    are those of :class:`napari.layers.Layer` or of its state dictionary (what npe2
    writers receive as ``meta``). Missing ones are the identity.

    Parameters
    ----------
    affine : array-like (ndim+1, ndim+1) or napari Affine, optional
        Outer data → world affine applied after the physical transform (the layer's
        ``affine`` attribute; its ``affine_matrix`` is used). ``None`` means identity.
    scale, translate : sequence of float, optional
        Per-axis voxel size and offset of the physical transform, ``ndim`` values each
        in world units (mm for NIfTI layers), in layer axis order. ``None`` means unit
        scale and zero translation.
    rotate : array-like (ndim, ndim) or float, optional
        Rotation matrix of the physical transform (a float angle in degrees for 2-D).
        ``None`` means no rotation.
    shear : sequence of float or array-like, optional
        Shear of the physical transform, as the upper-triangular coefficients or an
        ``(ndim, ndim)`` shear matrix with ones on the diagonal. ``None`` means no shear.
    ndim : int
        Layer dimensionality.

    Returns
    -------
    ndarray, shape (ndim + 1, ndim + 1)
    """
    from napari.utils.transforms import Affine

    physical = Affine(
        scale=np.ones(ndim) if scale is None else scale,
        translate=np.zeros(ndim) if translate is None else translate,
        rotate=rotate,
        shear=shear,
        ndim=ndim,
    ).affine_matrix
    outer = getattr(affine, "affine_matrix", affine)
    outer = np.eye(ndim + 1) if outer is None else np.asarray(outer, dtype=float)
    return outer @ physical


def layer_transform(layer: Any) -> np.ndarray:
    """Data → world matrix of a napari layer (``(ndim+1, ndim+1)``)."""
    return transform_matrix(layer.affine, layer.scale, layer.translate, layer.rotate, layer.shear,
                            ndim=layer.ndim)


def meta_transform(meta: Mapping[str, Any], ndim: int) -> np.ndarray:
    """Data → world matrix from a layer state dictionary (npe2 writer ``meta``)."""
    return transform_matrix(meta.get("affine"), meta.get("scale"), meta.get("translate"),
                            meta.get("rotate"), meta.get("shear"), ndim=ndim)


def _as_nifti_affine(world: np.ndarray) -> np.ndarray:
    """NIfTI affine of a 2-D or 3-D layer transform (2-D gets a unit ``k`` axis)."""
    world = np.asarray(world, dtype=float)
    if world.shape == (3, 3):
        full = np.eye(4)
        full[1:, 1:] = world
        world = full
    return layer_to_nifti_affine(world)


def data_to_volume(
    data: Any,
    world: np.ndarray,
    metadata: Mapping[str, Any] | None = None,
    dtype: type | np.dtype = np.float32,
    file_order: bool = True,
) -> Volume:
    """Volume of 2-D or 3-D layer data.

    Parameters
    ----------
    data : array-like, shape (Z, Y, X) or (Y, X)
        Layer data (NumPy, dask, … anything ``np.asarray`` reads).
    world : ndarray, shape (ndim+1, ndim+1)
        The layer's data → world matrix (:func:`layer_transform`).
    metadata : mapping, optional
        Layer metadata; the NIfTI affine, header and reordering under
        :data:`NIFTI_KEY` are used when they agree with ``world`` and the shape (so
        the source grid is kept bit-exactly).
    dtype : dtype
        Voxel type of the returned volume.
    file_order : bool
        With matching NIfTI metadata, return the voxels in the file's order with the
        file's affine and header (what a writer saves). ``False`` keeps the layer's
        (canonical) order, with the exact canonical affine, and the header only if
        the layer was not reordered (what a translation works on, so that its slices
        are the layer's slices).

    Returns
    -------
    Volume
        Voxels ``(X, Y, Z)``; ``path`` is the file the data came from, if known.

    Raises
    ------
    InputError
        If the data is not 2-D or 3-D.
    """
    array = np.asarray(data)
    if array.ndim not in (2, 3):
        raise InputError(f"expected 2-D or 3-D layer data, got shape {array.shape}")
    voxels = np.transpose(array[None] if array.ndim == 2 else array, (2, 1, 0)).astype(dtype)
    affine = _as_nifti_affine(world)
    header, path = None, None
    nifti = (metadata or {}).get(NIFTI_KEY)
    if isinstance(nifti, Mapping) and nifti.get("affine") is not None:
        stored = np.asarray(nifti["affine"], dtype=float)
        ornt = np.asarray(nifti.get("ornt", IDENTITY), dtype=float)
        reordered = not np.array_equal(ornt, IDENTITY)
        shown = canonical_affine(stored, ornt, voxels.shape) if stored.shape == (4, 4) else None
        if shown is not None and np.allclose(shown, affine, rtol=1e-6, atol=1e-6):
            path = nifti.get("path")
            if file_order:
                voxels = np.ascontiguousarray(from_canonical(voxels, ornt)) if reordered else voxels
                affine, header = stored, nifti.get("header")
            else:
                affine, header = shown, None if reordered else nifti.get("header")
    return Volume(voxels, affine, header, Path(path) if path else None)


@dataclass(frozen=True)
class SourceCheck:
    """Why a layer cannot be translated (``problem``), or ``None`` if it can."""

    problem: str | None

    @property
    def ok(self) -> bool:
        return self.problem is None


def check_source(layer: Any) -> SourceCheck:
    """Whether ``layer`` can be a translation source, with a one-line reason if not.

    A source is a single-scale, grey-level, 2-D or 3-D napari ``Image`` layer.

    Parameters
    ----------
    layer : napari layer or None
        Candidate source layer, any napari layer type; ``None`` (no layer selected)
        is reported as a problem, never raised.

    Returns
    -------
    SourceCheck
    """
    from napari.layers import Image, Labels

    if layer is None:
        return SourceCheck("no image layer selected; open a volume (File > Open) and choose it as source")
    name = getattr(layer, "name", "?")
    if isinstance(layer, Labels):
        return SourceCheck(f"'{name}' is a Labels layer; choose a grey-level image layer as source")
    if not isinstance(layer, Image):
        return SourceCheck(f"'{name}' is a {type(layer).__name__} layer; choose a grey-level image layer as source")
    if layer.rgb:
        return SourceCheck(f"'{name}' is an RGB(A) image; convert it to grey levels first")
    if layer.multiscale:
        return SourceCheck(f"'{name}' is a multiscale image; open a single-resolution volume")
    if layer.ndim not in (2, 3):
        return SourceCheck(f"'{name}' has {layer.ndim} dimensions; choose a 2-D or 3-D image "
                           "(split 4-D series into 3-D volumes first)")
    return SourceCheck(None)


def layer_to_volume(layer: Any) -> Volume:
    """The :class:`Volume` of a source image layer, in the layer's voxel order.

    Parameters
    ----------
    layer : napari.layers.Image
        Single-scale, grey-level 2-D ``(Y, X)`` or 3-D ``(Z, Y, X)`` image layer; its
        transform gives the affine (mm) and its NIfTI metadata, if any, the header.

    Returns
    -------
    Volume

    Raises
    ------
    InputError
        If :func:`check_source` refuses the layer.
    """
    check = check_source(layer)
    if not check.ok:
        raise InputError(check.problem)
    return data_to_volume(layer.data, layer_transform(layer), layer.metadata, file_order=False)


def transform_kwargs(layer: Any) -> dict[str, Any]:
    """Keyword arguments that give a new layer the same grid as ``layer``.

    Includes ``scale``, ``translate``, ``rotate``, ``shear``, ``affine``,
    ``axis_labels`` and ``units`` so world coordinates match exactly.
    """
    return {
        "scale": np.asarray(layer.scale),
        "translate": np.asarray(layer.translate),
        "rotate": np.asarray(layer.rotate),
        "shear": np.asarray(layer.shear),
        "affine": np.asarray(layer.affine.affine_matrix),
        "axis_labels": tuple(layer.axis_labels),
        "units": tuple(str(u) for u in layer.units),
    }


def nifti_metadata(volume: Volume, ornt: np.ndarray = IDENTITY) -> dict[str, Any]:
    """``layer.metadata`` entry that lets the writer reproduce ``volume``'s grid.

    Parameters
    ----------
    volume : Volume
        The volume as stored in its file (file voxel order, affine, header, path).
    ornt : ndarray, shape (3, 2)
        Reordering from the file's voxel order to the layer's
        (:func:`napari_zeroshot._orient.canonical_volume`).
    """
    return {NIFTI_KEY: {"affine": np.asarray(volume.affine, dtype=float).copy(),
                        "header": volume.header,
                        "path": str(volume.path) if volume.path else None,
                        "ornt": np.asarray(ornt, dtype=float).copy()}}


def volume_layer_kwargs(volume: Volume, name: str) -> dict[str, Any]:
    """``add_image``/``add_labels`` keyword arguments of a NIfTI volume (data aside).

    Parameters
    ----------
    volume : Volume
        Volume as read from its file, whose affine (voxel → RAS+ mm), header and path
        the layer should carry; only its shape is used of the voxels.
    name : str
        Layer name.

    Returns
    -------
    dict
        ``name``, ``affine`` (4×4 reversed NIfTI affine of the canonically reordered
        voxels, :func:`napari_zeroshot._orient.canonical_volume`), ``axis_labels``, ``units`` and ``metadata``
        (:func:`nifti_metadata`, with the reordering).
    """
    ornt = closest_canonical(volume.affine)
    affine = canonical_affine(volume.affine, ornt, canonical_shape(volume.data.shape, ornt))
    return {"name": name, "affine": nifti_to_layer_affine(affine), "axis_labels": WORLD_AXIS_LABELS,
            "units": WORLD_UNITS, "metadata": nifti_metadata(volume, ornt)}



def is_owned(layer: Any, *roles: str) -> bool:
    """Whether ``layer`` was made by this plugin (with one of ``roles`` if given)."""
    owner = layer.metadata.get(OWNER_KEY)
    return isinstance(owner, dict) and (not roles or owner.get("role") in roles)
