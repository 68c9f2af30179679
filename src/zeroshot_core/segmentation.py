"""Segmenting target-modality images and translations with a fitted segmenter.

One rule for every caller (the API, the CLI, the napari widget, evaluation): the
image is normalised with the model card's percentiles inside the region, the
segmenter labels the region, and everything outside is background (0). A
translation is segmented inside the filter mask it was translated with, or inside
a region the user gives (:func:`zeroshot_core.imaging.region.as_region`); a partial
translation (some slices) slice by slice, so that the untranslated slices, which
hold background, neither shift the intensity normalisation nor get labels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from zeroshot_core.imaging.intensity import Normalisation
from zeroshot_core.imaging.region import RegionLike, as_region
from zeroshot_core.plugins.manager import fitted_segmenter

if TYPE_CHECKING:
    from zeroshot_core.diffusion.translation import TranslationResult


def segment_region(image: np.ndarray, region: np.ndarray, segmenter: Any,
                   percentiles: Sequence[float]) -> np.ndarray:
    """Label ``image`` inside ``region`` with a ready segmenter.

    Parameters
    ----------
    image : ndarray, shape (X, Y, Z) or (H, W)
        Intensities in the target modality's units.
    region : ndarray of bool, same shape
        Where to segment; labels outside are 0.
    segmenter : Segmenter
        A fitted segmenter instance (:func:`zeroshot_core.plugins.manager.fitted_segmenter`).
    percentiles : (low, high)
        Percentiles (0–100) mapped to -1 and 1 before segmenting, fitted inside ``region``.

    Returns
    -------
    ndarray of int16, shape of ``image``
        0 is background; class numbers are the segmenter's.

    Raises
    ------
    InputError
        If the image is constant inside the region.
    """
    image = np.asarray(image, np.float32)
    region = np.asarray(region, bool)
    normalised = Normalisation.fit(image, tuple(percentiles), region).apply(image)
    labels = np.asarray(segmenter.segment(normalised, region), np.int16).reshape(image.shape)
    return np.where(region, labels, 0).astype(np.int16)


def segment_translation(result: "TranslationResult", segmenter: str = "kmeans",
                        segmenter_params: Mapping[str, Any] | None = None,
                        region: RegionLike | None = None) -> np.ndarray:
    """Segment the translated slices of a translation with the model's fitted segmenter.

    Parameters
    ----------
    result : TranslationResult
        From :func:`zeroshot_core.diffusion.translation.translate_iter`; its filter
        ``mask`` is the region unless ``region`` is given, its model card supplies
        the segmenter state and the normalisation percentiles.
    segmenter : str
        Registered segmenter name.
    segmenter_params : mapping, optional
        Parameters for the segmenter's factory.
    region : ndarray, Volume or path-like, optional
        Where to segment instead of the filter mask: an array of shape
        ``result.volume.data.shape`` (X, Y, Z) on the translation's voxel grid, or a
        Volume or image file with the translation's shape and affine (mm). Non-zero
        values are inside; the region is not modified. Labels stay 0 on the slices
        that were not translated.

    Returns
    -------
    ndarray of int16, shape of ``result.volume.data``
        Labels on the translated slices inside the region, 0 elsewhere. A
        whole-volume translation is segmented as one volume; a partial one slice by
        slice.

    Raises
    ------
    InputError
        If ``region`` has another shape or affine, is unreadable or empty, or the
        translation is constant inside it.
    ModelError
        If the model holds no state for a segmenter that needs fitting.
    PluginError
        If the segmenter is unknown.
    """
    chosen = np.asarray(result.mask, bool) if region is None else as_region(region, result.volume)
    card = result.model.card
    instance = fitted_segmenter(segmenter, card.segmenters, **dict(segmenter_params or {}))
    return segment_slices(result.volume.data, chosen, result.axis, result.slices, instance, card.percentiles)


def segment_slices(image: np.ndarray, region: np.ndarray, axis: int, slices: Sequence[int] | None,
                   segmenter: Any, percentiles: Sequence[float]) -> np.ndarray:
    """Label ``slices`` of a volume inside ``region``: as one volume when every slice is
    wanted, else slice by slice (untranslated slices neither shift the normalisation
    nor get labels).

    Parameters
    ----------
    image : ndarray, shape (X, Y, Z)
    region : ndarray of bool, same shape
    axis : int
        Slicing axis.
    slices : sequence of int or None
        Slices to label along ``axis``; ``None``: those holding region voxels.
    segmenter : Segmenter
        Fitted segmenter instance.
    percentiles : (low, high)

    Returns
    -------
    ndarray of int16, shape of ``image``; 0 outside ``region`` and the slices.
    """
    image, region = np.asarray(image, np.float32), np.asarray(region, bool)
    labels = np.zeros(image.shape, np.int16)
    if slices is None:
        slices = [k for k in range(image.shape[axis]) if np.take(region, k, axis=axis).any()]
    if not region.any() or not len(slices):
        return labels
    if len(slices) == image.shape[axis]:
        return segment_region(image, region, segmenter, percentiles)
    view = np.moveaxis(labels, axis, 0)
    for index in slices:
        plane = np.take(region, index, axis=axis)
        if plane.any():
            view[index] = segment_region(np.take(image, index, axis=axis), plane, segmenter, percentiles)
    return labels
