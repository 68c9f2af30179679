"""NIfTI-1/2 files (``.nii``, ``.nii.gz``) through nibabel: affine and header kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

SUFFIXES = (".nii", ".nii.gz")

LABEL_INTENT = "label"
"""NIfTI intent of label maps (code 1002, ``NIFTI_INTENT_LABEL``)."""


def read(path: Path) -> tuple[np.ndarray, np.ndarray, Any]:
    """Voxels (float32, scaled by ``scl_slope``/``scl_inter``), affine (4, 4) and a header copy."""
    image = nib.load(str(path))
    data = np.asarray(image.dataobj, dtype=np.float32)
    return data, np.asarray(image.affine, float), image.header.copy()


def write(path: Path, data: np.ndarray, affine: np.ndarray, header: Any, dtype: np.dtype,
          description: str | None = None, intent: str | None = None) -> None:
    """Write ``data`` as ``dtype`` with ``affine``, reusing the geometry of ``header``.

    What belongs to the grid is always kept (affine, qform/sform codes, xyzt units,
    slice timing) and the scaling reset (slope 1, intercept 0). A new result (a
    ``description`` or an ``intent`` given) also drops what described the source's
    values: ``cal_min``/``cal_max`` 0 (viewers window the data themselves), ``descrip``
    set to ``description``, ``aux_file`` cleared, intent set to ``intent`` (``"none"``
    by default, ``"label"`` for label maps). With neither, the header is kept as it is
    (the same image written again).
    """
    header = header.copy() if isinstance(header, nib.Nifti1Header) else None
    image = nib.Nifti1Image(data.astype(dtype), affine, header)
    image.set_data_dtype(dtype)
    out = image.header
    out.set_slope_inter(1.0, 0.0)
    if description is not None or intent is not None:
        out["cal_min"], out["cal_max"] = 0.0, 0.0
        out["descrip"] = (description or "").encode("ascii", "replace")[:79]
        out["aux_file"] = b""
        out.set_intent(intent or "none", (), name="")
    nib.save(image, str(path))
