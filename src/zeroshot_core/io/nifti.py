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
          description: str = "", intent: str = "none") -> None:
    """Write ``data`` as ``dtype`` with ``affine``, reusing the geometry of ``header``.

    What belongs to the grid is kept (affine, qform/sform codes, xyzt units, slice
    timing); what describes the source's values is reset: slope 1, intercept 0,
    ``cal_min``/``cal_max`` 0 (viewers window the data themselves), ``descrip`` set to
    ``description``, ``aux_file`` cleared and the intent set to ``intent``
    (``"none"``, or ``"label"`` for label maps).
    """
    header = header.copy() if isinstance(header, nib.Nifti1Header) else None
    image = nib.Nifti1Image(data.astype(dtype), affine, header)
    image.set_data_dtype(dtype)
    out = image.header
    out.set_slope_inter(1.0, 0.0)
    out["cal_min"], out["cal_max"] = 0.0, 0.0
    out["descrip"] = description.encode("ascii", "replace")[:79]
    out["aux_file"] = b""
    out.set_intent(intent, (), name="")
    nib.save(image, str(path))
