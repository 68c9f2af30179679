"""Warnings about a translation's input: an almost empty mask, or anatomy the model never saw.

A model is trained on one kind of image (the bundled ones on skull-stripped adult
brains); given a CT of the abdomen or a slice where the filter mask holds a few
voxels, it still returns a picture, which should not be taken at face value.
:func:`translation_warnings` checks, on every translated slice:

* the share of the slice inside the filter mask (below :data:`MIN_MASK_SHARE`, the
  translation of that slice is mostly background);
* the physical in-plane extent of the masked foreground against what the model was
  trained on (:data:`TYPICAL_EXTENT_MM`; more than :data:`EXTENT_FACTOR` times larger
  means other anatomy).

Each message names the model and the anatomy it was trained on.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from zeroshot_core.model.summary import training_anatomy

#: Smallest share of a slice the filter mask should cover.
MIN_MASK_SHARE = 0.02
#: Largest in-plane extent (mm) of the foreground the models' anatomy has: an adult
#: brain (about 140 × 170 mm) and a whole adult head with the skull (about 200 × 240 mm).
TYPICAL_EXTENT_MM = {"brain": 180.0, "head": 240.0}
#: A foreground larger than this many times the typical extent is another anatomy.
EXTENT_FACTOR = 1.4


def _extent_mm(mask: np.ndarray, spacing: tuple[float, float]) -> float:
    """Largest side (mm) of the bounding box of ``mask`` (2-D) with pixel ``spacing``."""
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return 0.0
    return max((rows.max() - rows.min() + 1) * spacing[0], (cols.max() - cols.min() + 1) * spacing[1])


def _slice_list(indices: list[int]) -> str:
    shown = ", ".join(str(i) for i in indices[:5])
    return shown + (f" and {len(indices) - 5} more" if len(indices) > 5 else "")


def translation_warnings(result: Any) -> list[str]:
    """One-line warnings about a finished translation (empty list when all looks in domain).

    Parameters
    ----------
    result : TranslationResult
        Its filter ``mask`` (source voxels), ``slices`` and ``axis``, the source
        grid (``volume.affine``) and the ``model`` (name and card).

    Returns
    -------
    list of str
    """
    mask = np.asarray(result.mask, dtype=bool)
    axis = int(result.axis)
    spacing = [float(s) for s in result.volume.spacing]
    del spacing[axis]
    name = getattr(result.model.path, "name", "the model")
    card = result.model.card
    anatomy = training_anatomy(card.training)
    trained_on = {"brain": "skull-stripped brains", "head": "whole heads"}.get(anatomy, "its training images")
    source = f"model '{name}' ({card.target_modality}, trained on {trained_on})"
    warnings = []
    sparse, extents = [], []
    for index in result.slices:
        plane = np.take(mask, index, axis=axis)
        if plane.mean() < MIN_MASK_SHARE:
            sparse.append(int(index))
        extents.append(_extent_mm(plane, (spacing[0], spacing[1])))
    if sparse:
        warnings.append(f"the filter mask covers less than {MIN_MASK_SHARE:.0%} of slice(s) {_slice_list(sparse)}: "
                        f"their translation by {source} is mostly background; check the mask options")
    largest = max(extents, default=0.0)
    if anatomy is not None and largest > EXTENT_FACTOR * TYPICAL_EXTENT_MM[anatomy]:
        warnings.append(f"the foreground spans up to {largest:.0f} mm in-plane, far more than a "
                        f"{'brain' if anatomy == 'brain' else 'head'} (about {TYPICAL_EXTENT_MM[anatomy]:.0f} mm): "
                        f"this looks like other anatomy than {source} has seen; treat the translation "
                        "as out of domain")
    return warnings
