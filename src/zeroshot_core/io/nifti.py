"""NIfTI-1/2 files (``.nii``, ``.nii.gz``) through nibabel: affine and header kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

SUFFIXES = (".nii", ".nii.gz")


def read(path: Path) -> tuple[np.ndarray, np.ndarray, Any]:
    """Voxels (float32, scaled by ``scl_slope``/``scl_inter``), affine (4, 4) and a header copy."""
    image = nib.load(str(path))
    data = np.asarray(image.dataobj, dtype=np.float32)
    return data, np.asarray(image.affine, float), image.header.copy()


def write(path: Path, data: np.ndarray, affine: np.ndarray, header: Any, dtype: np.dtype) -> None:
    """Write ``data`` as ``dtype`` with ``affine``, reusing ``header`` (slope 1, intercept 0)."""
    header = header.copy() if header is not None else None
    image = nib.Nifti1Image(data.astype(dtype), affine, header)
    image.set_data_dtype(dtype)
    image.header.set_slope_inter(1.0, 0.0) if hasattr(image.header, "set_slope_inter") else None
    nib.save(image, str(path))
