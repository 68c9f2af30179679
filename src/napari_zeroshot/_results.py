"""Showing a finished translation as layers on the source's grid.

The translation becomes an Image layer named ``"<source> → <target modality>"`` and
the segmentation a Labels layer ``"<source> → <target modality> labels"``. Both get
the source layer's transform (so they overlay it exactly) and the NIfTI affine and
header of the source in their metadata (so the writer saves them on the source
grid). They are marked as the plugin's own: a new run on the same source replaces
them in place of the old ones, and a user's layer with the same name is never
touched.

A segmented run also shows the region its labels were worked out in (the filter
mask on the translated slices) as a Labels layer ``"<source> segmentation region"``
(1 inside, 0 outside) with the same grid and voxel order, so the user can paint or
erase it and segment again inside it (:func:`layer_region` maps it back).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from napari_zeroshot._layers import (
    NIFTI_KEY,
    OWNER_KEY,
    PROVENANCE_KEY,
    is_owned,
    nifti_metadata,
    transform_kwargs,
    volume_to_layer_data,
)
from zeroshot_core.api import Volume

TRANSLATION_ROLE = "translation"
SEGMENTATION_ROLE = "segmentation"
REGION_ROLE = "segmentation region"


def result_names(source_name: str, target: str) -> tuple[str, str]:
    """Names of the translation and segmentation layers."""
    base = f"{source_name} → {target}"
    return base, f"{base} labels"


def region_name(source_name: str) -> str:
    """Name of the segmentation region layer of a source."""
    return f"{source_name} segmentation region"


def _metadata(source: Any, volume: Volume, role: str, provenance: dict[str, Any] | None = None) -> dict[str, Any]:
    # The source's file grid (affine, header, voxel reordering) goes with the result so
    # the writer saves it exactly like the source file; the source file stays the
    # layer's origin, so saving over it is refused.
    source_nifti = source.metadata.get(NIFTI_KEY)
    if isinstance(source_nifti, dict) and source_nifti.get("affine") is not None:
        metadata = {NIFTI_KEY: dict(source_nifti)}
    else:
        metadata = nifti_metadata(volume)
    metadata[OWNER_KEY] = {"role": role, "source": source.name}
    if provenance is not None:
        metadata[PROVENANCE_KEY] = provenance
    return metadata


def _replace(viewer: Any, role: str, source_name: str, layer: Any) -> Any:
    """Add ``layer`` in place of this plugin's previous ``role`` layer for the source."""
    old = [existing for existing in viewer.layers
           if is_owned(existing, role) and existing.metadata[OWNER_KEY].get("source") == source_name]
    if not old:
        return viewer.add_layer(layer)
    index = viewer.layers.index(old[0])
    for existing in old:
        viewer.layers.remove(existing)
    viewer.layers.insert(min(index, len(viewer.layers)), layer)
    return layer


def _blank_untranslated(data: np.ndarray, slices: tuple[int, ...] | None, axis: int | None) -> np.ndarray:
    """Layer data with the slices that were not translated set to NaN (drawn transparent)."""
    if slices is None or axis is None or data.ndim != 3:
        return data
    layer_axis = 2 - axis  # layer axes are the volume's reversed
    keep = np.zeros(data.shape[layer_axis], bool)
    keep[list(slices)] = True
    if keep.all():
        return data
    out = np.array(data, dtype=np.float32, copy=True)
    index = [slice(None)] * 3
    index[layer_axis] = ~keep
    out[tuple(index)] = np.nan
    return out


def show_result(viewer: Any, source: Any, volume: Volume, labels: np.ndarray | None,
                target: str, slices: tuple[int, ...] | None = None,
                axis: int | None = None, provenance: dict[str, Any] | None = None) -> tuple[Any, Any | None]:
    """Add (or replace) the translation and segmentation layers.

    Parameters
    ----------
    viewer : napari.Viewer
        Viewer to add the layers to; layers this plugin made earlier for the same
        source (same role) are replaced at their position in the layer list.
    source : napari.layers.Image
        The layer that was translated (its transform is copied).
    volume : Volume
        The translation, on the source grid.
    labels : ndarray (X, Y, Z) of int or None
        Segmentation of the translation.
    target : str
        Target modality, used in the names.
    slices : tuple of int, optional
        Indices (along the volume ``axis``) that were translated; the others hold
        NaN in the image layer, which napari draws transparent, so the source stays
        visible wherever there is no translation. ``None``: all of them.
    axis : int, optional
        Volume axis ``slices`` index (``0``–``2`` of ``(X, Y, Z)``).
    provenance : dict, optional
        The translation's provenance record, kept under :data:`PROVENANCE_KEY` in both
        layers' metadata.

    Returns
    -------
    (Image layer, Labels layer or None)
    """
    from napari.layers import Image

    image_name, _ = result_names(source.name, target)
    grid = transform_kwargs(source)
    data, _ = volume_to_layer_data(volume, ndim=source.ndim)
    data = _blank_untranslated(np.asarray(data), slices, axis)
    image = Image(np.ascontiguousarray(data), name=image_name, colormap="gray",
                  metadata=_metadata(source, volume, TRANSLATION_ROLE, provenance), **grid)
    image = _replace(viewer, TRANSLATION_ROLE, source.name, image)
    label_layer = None
    if labels is not None:
        label_layer = show_labels(viewer, source, volume, labels, target, provenance)
    return image, label_layer


def show_labels(viewer: Any, source: Any, volume: Volume, labels: np.ndarray, target: str,
                provenance: dict[str, Any] | None = None) -> Any:
    """Add (or replace) the segmentation layer of a translation.

    Parameters
    ----------
    viewer, source, volume, target, provenance
        As :func:`show_result`.
    labels : ndarray of int, shape (X, Y, Z) of ``volume``
        The segmentation, in the translation's voxel order.

    Returns
    -------
    napari.layers.Labels
    """
    from napari.layers import Labels

    data, _ = volume_to_layer_data(volume.with_data(labels), ndim=source.ndim)
    layer = Labels(np.ascontiguousarray(data).astype(np.int32), name=result_names(source.name, target)[1],
                   opacity=0.5, metadata=_metadata(source, volume, SEGMENTATION_ROLE, provenance),
                   **transform_kwargs(source))
    return _replace(viewer, SEGMENTATION_ROLE, source.name, layer)


def used_region(mask: np.ndarray, slices: tuple[int, ...] | None, axis: int | None) -> np.ndarray:
    """The voxels a translation's segmentation was worked out in: ``mask`` on the translated slices.

    Parameters
    ----------
    mask : ndarray of bool, shape (X, Y, Z)
        The translation's filter mask.
    slices : tuple of int or None
        Translated indices along ``axis``; ``None``: all.
    axis : int or None
        Volume axis of ``slices``.

    Returns
    -------
    ndarray of bool, shape (X, Y, Z) (a new array)
    """
    region = np.array(mask, dtype=bool, copy=True)
    if slices is None or axis is None:
        return region
    keep = np.zeros(region.shape[axis], bool)
    keep[list(slices)] = True
    np.moveaxis(region, axis, 0)[~keep] = False
    return region


def show_region(viewer: Any, source: Any, volume: Volume, region: np.ndarray,
                provenance: dict[str, Any] | None = None) -> Any:
    """Add (or replace) the editable segmentation region layer of a source.

    Parameters
    ----------
    viewer, source, provenance
        As :func:`show_result`.
    volume : Volume
        The translation (its grid and voxel order).
    region : ndarray of bool, shape (X, Y, Z) of ``volume``
        Where the segmentation was worked out (:func:`used_region`).

    Returns
    -------
    napari.layers.Labels
        Data 1 inside, 0 outside, in the layer order of the translation layers,
        named :func:`region_name`, drawn as a thin outline over the labels.
    """
    from napari.layers import Labels
    from napari.utils.colormaps import DirectLabelColormap

    data, _ = volume_to_layer_data(volume.with_data(np.asarray(region, np.uint8)), ndim=source.ndim)
    every_label_yellow = DirectLabelColormap(color_dict={None: "yellow", 0: "transparent"})
    layer = Labels(np.ascontiguousarray(data, dtype=np.uint8), name=region_name(source.name), opacity=0.9,
                   colormap=every_label_yellow, metadata=_metadata(source, volume, REGION_ROLE, provenance),
                   **transform_kwargs(source))
    layer.contour = 1
    return _replace(viewer, REGION_ROLE, source.name, layer)


def layer_region(data: Any) -> np.ndarray:
    """A region layer's data back in the translation's voxel order (inverse of :func:`show_region`).

    Parameters
    ----------
    data : array-like, shape (Z, Y, X) or (Y, X)
        Layer data; non-zero is inside.

    Returns
    -------
    ndarray of bool, shape (X, Y, Z) (``(X, Y, 1)`` for a 2-D layer)
    """
    array = np.asarray(data)
    return np.transpose(array[None] if array.ndim == 2 else array, (2, 1, 0)) != 0
