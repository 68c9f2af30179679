"""Where a translation loses Dice: tissue intensities and the label confusion, per validation case.

Reads the report folders ``bench_wholehead.py`` writes (``OUT/reports/CASE/ROW/nifti``) and,
for each case and row, prints inside the scoring region (the brain, central slices)

- the mean ± SD of the translation and of the real T1 in each reference tissue (DLMUSE-derived
  CSF, GM, WM), so a grey/white contrast that is too small, or tissue that is too bright,
  shows as numbers;
- the confusion of the reference labels (rows) with the translation's K-Means labels
  (columns), in voxels.

    .venv/bin/python benchmarks/tissue_contrast.py --out bench_wholehead --row 2mm-4000 --row lmi
"""

from __future__ import annotations

import argparse
from pathlib import Path

import nibabel as nib
import numpy as np

TISSUES = ("CSF", "GM", "WM")


def _load(path: Path) -> np.ndarray:
    return np.asarray(nib.load(str(path)).dataobj)


def case_report(case: Path, row: str, validation: Path) -> list[str]:
    """Markdown lines for one case folder and one row, or none if the row is missing there."""
    nifti = case / row / "nifti"
    labels_path = nifti / f"{row}_labels.nii.gz"
    if not labels_path.is_file():
        return []
    reference = _load(nifti / "target_labels.nii.gz").astype(int)
    region = _load(nifti / "scoring_region.nii.gz") > 0
    labels = _load(labels_path).astype(int)
    translation = _load(nifti / f"{row}_translation.nii.gz").astype(np.float64)
    subject = case.name.split("_")[0]
    real = validation / subject / "t1.nii.gz"
    t1 = _load(real).astype(np.float64) if real.is_file() else None
    lines = [f"#### {case.name}, {row}", "", "| tissue | translation mean ± SD | real T1 mean ± SD | "
             + " | ".join(f"labelled {t}" for t in TISSUES) + " |", "|---|---|---|" + "---|" * len(TISSUES)]
    for code, name in enumerate(TISSUES, start=1):
        inside = region & (reference == code)
        counts = [int(np.count_nonzero(inside & (labels == k))) for k in range(1, len(TISSUES) + 1)]
        real_cell = f"{t1[inside].mean():.0f} ± {t1[inside].std():.0f}" if t1 is not None else "–"
        lines.append(f"| {name} | {translation[inside].mean():.0f} ± {translation[inside].std():.0f} | {real_cell} | "
                     + " | ".join(str(c) for c in counts) + " |")
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench_wholehead"), help="bench_wholehead.py's --out")
    parser.add_argument("--row", action="append", required=True, help="row name (a --model NAME), repeatable")
    args = parser.parse_args()
    cases = sorted(p for p in (args.out / "reports").iterdir() if p.is_dir())
    if not cases:
        raise SystemExit(f"{args.out}/reports holds no case folders; run bench_wholehead.py --out {args.out} first")
    for case in cases:
        for row in args.row:
            for line in case_report(case, row, args.out / "validation"):
                print(line)


if __name__ == "__main__":
    main()
