"""npe2 writers: an image or labels layer as a NIfTI file on its physical grid.

The layer transform is turned back into a NIfTI affine (inverse of the reader's
axis reversal); when the layer carries the NIfTI affine and header of its source
(``metadata["nifti"]``, set by the reader and by the translation widget) and they
agree with the transform, those are written unchanged, so a translation or a
segmentation lands exactly on the source grid. A translation's provenance record (layer
metadata ``"provenance"``) is written as the file's JSON sidecar and NIfTI ``descrip``, as
the CLI does. Files are written atomically
(:func:`zeroshot_core.io.formats.save_volume`) and never over the source file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from napari_zeroshot._layers import PROVENANCE_KEY, data_to_volume, meta_transform
from zeroshot_core.api import NIFTI_SUFFIXES, descrip, save_volume, write_provenance


def _nifti_path(path: str) -> Path:
    """``path`` with ``.nii.gz`` appended when it has no NIfTI suffix."""
    if str(path).lower().endswith(NIFTI_SUFFIXES):
        return Path(path)
    return Path(f"{path}.nii.gz")


def _label_dtype(data: np.ndarray) -> np.dtype:
    """Smallest signed integer type among int16/int32 that holds ``data``."""
    if data.size == 0:
        return np.dtype(np.int16)
    low, high = int(data.min()), int(data.max())
    info = np.iinfo(np.int16)
    return np.dtype(np.int16 if info.min <= low and high <= info.max else np.int32)


def _provenance(meta: Mapping[str, Any]) -> dict | None:
    """A translation's provenance record from the layer metadata, or ``None``."""
    record = (meta.get("metadata") or {}).get(PROVENANCE_KEY)
    return record if isinstance(record, dict) else None


def _save(volume: Any, path: str, meta: Mapping[str, Any], dtype: np.dtype, labels: bool = False) -> list[str]:
    """Save once (with the provenance's ``descrip`` for a translation's layers), then its sidecar."""
    record = _provenance(meta)
    written = save_volume(volume, _nifti_path(path), dtype=dtype, labels=labels,
                          description=descrip(record) if record else None)
    if record:
        write_provenance(written, record)
    return [str(written)]


def write_image(path: str, data: Any, meta: Mapping[str, Any]) -> list[str]:
    """Write an image layer as float32 NIfTI.

    Voxels that are not finite (the NaN a partial translation shows as transparent)
    are written as the smallest finite value of the layer, so the file reads back
    (NIfTI readers refuse or mishandle NaN).

    Parameters
    ----------
    path : str
        Output ``.nii`` or ``.nii.gz`` file (``.nii.gz`` is appended if missing).
    data : array-like, 2-D or 3-D
        Layer data.
    meta : mapping
        Layer state (``affine``, ``scale``, ``translate``, ``rotate``, ``shear``,
        ``metadata``).

    Returns
    -------
    list of str
        The written path.

    Raises
    ------
    zeroshot_core.errors.InputError
        Not 2-D/3-D, RGB, or the path is the source file.
    """
    if meta.get("rgb"):
        from zeroshot_core.errors import InputError

        raise InputError("RGB images cannot be written as NIfTI; convert to grey levels first")
    array = np.asarray(data)
    finite = np.isfinite(array)
    if not finite.all():  # untranslated slices are NaN in the viewer; files hold numbers
        array = np.where(finite, array, array[finite].min() if finite.any() else 0.0)
    volume = data_to_volume(array, meta_transform(meta, array.ndim), meta.get("metadata"), np.float32)
    return _save(volume, path, meta, np.dtype(np.float32))


def write_labels(path: str, data: Any, meta: Mapping[str, Any]) -> list[str]:
    """Write a labels layer as an integer NIfTI (int16, or int32 for large labels).

    The file carries the intent code ``NIFTI_INTENT_LABEL``, so it opens as labels
    again. Parameters and return value as :func:`write_image`.
    """
    array = np.asarray(data)
    volume = data_to_volume(array, meta_transform(meta, array.ndim), meta.get("metadata"), np.int32)
    return _save(volume, path, meta, _label_dtype(volume.data), labels=True)
