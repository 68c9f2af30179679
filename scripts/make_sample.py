"""Build the shipped brain phantom sample from the MNI ICBM152 2009a templates.

Needs the optional extra ``phantom`` (nilearn), used only here: nilearn's wheel bundles the
ICBM152 2009a T1, grey-matter and white-matter maps, read without network access.

Steps
-----
1. Load T1, GM and WM at 1 mm (``nilearn.datasets.load_mni152_*``, rescaled to [0, 1]).
2. Brain = T1 > 0 (the template is skull-stripped); CSF = brain · clip(1 − GM − WM, 0, 1).
3. Crop to the brain plus a margin and average 2×2×2 blocks → 2 mm probability maps
   (partial volume preserved).
4. Simulate T1w, T2w, PDw with :func:`zeroshot_core.samples.phantom.make_phantom` (mild Rician noise
   and bias field, fixed seed) and write them as int16 NIfTI (scale 0.001) plus the uint8
   labels and the licence notice into ``src/zeroshot_core/samples/data/``.

Usage::

    python scripts/make_sample.py [--out src/zeroshot_core/samples/data] [--noise 0.02] [--bias 0.15]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import nibabel as nib
import numpy as np

from zeroshot_core.samples.phantom import PhantomParams, make_phantom
from zeroshot_core.samples.sample_data import SAMPLE_FILES

ROOT = Path(__file__).resolve().parents[1]
FACTOR = 2  # 1 mm -> 2 mm
MARGIN_MM = 4
SCALE = 1e-3  # stored int16 * SCALE = simulated signal

LICENSE_TEXT = """\
Brain phantom sample (brain_phantom_{t1,t2,pd,labels}.nii.gz)
=============================================================

These files are derived from the MNI ICBM 2009a Nonlinear Symmetric template
(ICBM152 2009a): its T1-weighted, grey-matter and white-matter probability maps as
bundled in the nilearn package (files mni_icbm152_{t1,gm,wm}_tal_nlin_sym_09a_converted.nii.gz).
The tissue maps were cropped to the brain, averaged onto a 2 mm grid, and converted into
simulated spin-echo T1-, T2- and PD-weighted images (BrainWeb 1.5 T tissue parameters,
signal equation S = PD (1 - exp(-TR/T1)) exp(-TE/T2), Rician noise, bias field) and crisp
labels (0 background, 1 CSF, 2 GM, 3 WM) by scripts/make_sample.py of napari-zeroshot.
They are synthetic images: no real subject was scanned for them.

Licence of the ICBM 2009a templates (as distributed by the McConnell Brain Imaging
Centre; nilearn's dataset description lists the licence as "unknown" and points to the
original distribution):

    Copyright (C) 1993-2009 Louis Collins, McConnell Brain Imaging Centre,
    Montreal Neurological Institute, McGill University. Permission to use, copy,
    modify, and distribute this software and its documentation for any purpose and
    without fee is hereby granted, provided that the above copyright notice appear in
    all copies. The authors and McGill University make no representations about the
    suitability of this software for any purpose. It is provided "as is" without
    express or implied warranty. The authors are not responsible for any data loss,
    equipment damage, property loss, or injury to subjects or patients resulting from
    the use or misuse of this software package.

Please cite
-----------
- VS Fonov, AC Evans, RC McKinstry, CR Almli, DL Collins. Unbiased nonlinear average
  age-appropriate brain templates from birth to adulthood. NeuroImage 47, Supplement 1,
  S102, 2009 (OHBM 2009). doi:10.1016/S1053-8119(09)70884-5
- VS Fonov, AC Evans, K Botteron, CR Almli, RC McKinstry, DL Collins and the Brain
  Development Cooperative Group. Unbiased average age-appropriate atlases for pediatric
  studies. NeuroImage 54(1):313-327, 2011. doi:10.1016/j.neuroimage.2010.07.033
- DL Collins, AP Zijdenbos, WFC Baare, AC Evans. ANIMAL+INSECT: Improved cortical structure
  segmentation. Information Processing in Medical Imaging (IPMI) 1999, LNCS 1613:210-223.

Tissue parameters: Cocosco et al., NeuroImage 5(4):S425, 1997 and Kwan et al.,
IEEE Trans Med Imaging 18(11):1085-1097, 1999 (BrainWeb).
"""


def mni_tissue_maps() -> tuple[dict[str, np.ndarray], np.ndarray]:
    """CSF/GM/WM probability maps at 1 mm and their affine (nilearn, offline)."""
    from nilearn.datasets import load_mni152_gm_template, load_mni152_template, load_mni152_wm_template

    t1_img = load_mni152_template(resolution=1)
    t1 = np.asarray(t1_img.get_fdata(), np.float64)
    gm = np.asarray(load_mni152_gm_template(resolution=1).get_fdata(), np.float64)
    wm = np.asarray(load_mni152_wm_template(resolution=1).get_fdata(), np.float64)
    brain = (t1 > 0).astype(np.float64)
    gm, wm = np.clip(gm, 0, 1) * brain, np.clip(wm, 0, 1) * brain
    total = gm + wm
    over = total > 1
    gm[over], wm[over] = gm[over] / total[over], wm[over] / total[over]
    csf = brain * np.clip(1.0 - gm - wm, 0.0, 1.0)
    return {"csf": csf, "gm": gm, "wm": wm}, np.asarray(t1_img.affine, float)


def crop_and_downsample(maps: dict[str, np.ndarray], affine: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Crop to the brain (+ margin) and block-average by FACTOR along every axis."""
    brain = sum(maps.values()) > 0
    index = np.argwhere(brain)
    shape = np.array(brain.shape)
    lo = np.maximum(index.min(0) - MARGIN_MM, 0)
    hi = np.minimum(index.max(0) + 1 + MARGIN_MM, shape)
    size = -(-(hi - lo) // FACTOR) * FACTOR  # round up to a multiple of FACTOR
    out = {}
    for key, m in maps.items():
        padded = np.zeros(tuple(size))
        region = m[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        padded[:region.shape[0], :region.shape[1], :region.shape[2]] = region
        n = size // FACTOR
        out[key] = padded.reshape(n[0], FACTOR, n[1], FACTOR, n[2], FACTOR).mean(axis=(1, 3, 5))
    new_affine = affine.copy()
    new_affine[:3, :3] = affine[:3, :3] * FACTOR
    centre = lo + (FACTOR - 1) / 2.0  # centre of the first block, in 1 mm voxels
    new_affine[:3, 3] = affine[:3, :3] @ centre + affine[:3, 3]
    return out, new_affine


def write_image(data: np.ndarray, affine: np.ndarray, path: Path, labels: bool = False) -> None:
    if labels:
        image = nib.Nifti1Image(data.astype(np.uint8), affine)
        image.set_data_dtype(np.uint8)
    else:
        stored = np.clip(np.rint(data / SCALE), 0, np.iinfo(np.int16).max).astype(np.int16)
        image = nib.Nifti1Image(stored, affine)
        image.set_data_dtype(np.int16)
        image.header.set_slope_inter(SCALE, 0.0)
    image.header.set_xyzt_units("mm")
    image.set_qform(affine, code=4)  # MNI152 space
    image.set_sform(affine, code=4)
    nib.save(image, str(path))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "src" / "zeroshot_core" / "samples" / "data")
    parser.add_argument("--noise", type=float, default=0.02)
    parser.add_argument("--bias", type=float, default=0.15)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    maps, affine = crop_and_downsample(*mni_tissue_maps())
    phantom = make_phantom(maps, PhantomParams(noise=args.noise, bias=args.bias, seed=args.seed), affine)
    for key in ("t1", "t2", "pd"):
        write_image(phantom.image(key), affine, args.out / SAMPLE_FILES[key])
    write_image(phantom.labels, affine, args.out / SAMPLE_FILES["labels"], labels=True)
    (args.out / SAMPLE_FILES["license"]).write_text(LICENSE_TEXT, encoding="utf-8")
    total = 0
    for name in SAMPLE_FILES.values():
        size = (args.out / name).stat().st_size
        total += size
        print(f"{name}: {size / 1024:.0f} KiB")
    print(f"grid {phantom.labels.shape}, spacing {np.linalg.norm(affine[:3, :3], axis=0)}, total {total / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
