"""Skull-strip and crop the IXI T1 training volumes with their DLMUSE label maps.

    .venv/bin/python scripts/prepare_ixi_brain.py ../shared/data/ixi_t1 OUT_DIR

The bundled T1 models are trained on brain-only images so that they (and their K-Means
state: CSF, GM, WM) match skull-stripped inputs such as the bundled phantom. The brain mask
is DLMUSE labels > 0, holes filled and dilated by one voxel (to keep sulcal CSF); voxels
outside are set to 0 and each volume is cropped to the mask's bounding box plus a 2-voxel
margin (the affine is shifted accordingly, so the grid stays in scanner space).
Development tool: reads ../shared, never shipped data.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage as ndi


def main(source: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for image_path in sorted((source / "nifti").glob("*T1_ds.nii.gz")):
        labels_path = source / "dlmuse" / image_path.name.replace(".nii.gz", "_DLMUSE.nii.gz")
        image = nib.load(image_path)
        brain = np.asarray(nib.load(labels_path).dataobj) > 0
        brain = ndi.binary_dilation(ndi.binary_fill_holes(brain), iterations=1)
        data = np.where(brain, np.asarray(image.dataobj, np.float32), 0.0).astype(np.float32)
        lo = np.maximum(np.argwhere(brain).min(0) - 2, 0)
        hi = np.minimum(np.argwhere(brain).max(0) + 3, brain.shape)
        crop = data[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        affine = image.affine.copy()
        affine[:3, 3] = image.affine[:3, :3] @ lo + image.affine[:3, 3]
        nib.save(nib.Nifti1Image(crop, affine), out / image_path.name.replace("_ds", "_ds_brain"))
        print(image_path.name, crop.shape)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
