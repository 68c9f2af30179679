"""Noise of each validation source relative to its intensity range (why PD suffers at 2 mm).

For every volume — the simulated PD/T2 heads and real T1 of the held-out validation subjects
(``bench_wholehead.build_validation``), the bundled phantom and the real IXI PD/T2 slice —
prints the median over slices (with at least 20 % foreground) of Donoho's noise estimate
(:func:`zeroshot_core.imaging.denoise.noise_sigma`) divided by the 0.5–99.5 % intensity range
inside the filter mask (erosion 1, the bundled models' setting).

    .venv/bin/python benchmarks/noise_levels.py --work bench_wholehead
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_wholehead import build_validation
from real_slice import load_slice

from zeroshot_core.imaging.denoise import noise_sigma
from zeroshot_core.imaging.mask import MaskParams, source_mask
from zeroshot_core.imaging.orientation import slicing_axis
from zeroshot_core.io.formats import to_volume
from zeroshot_core.io.volume import Volume
from zeroshot_core.samples.sample_data import load_sample


def relative_noise(volume: Volume) -> float:
    """Median per-slice noise σ over the 0.5–99.5 % intensity range inside the filter mask."""
    axis = slicing_axis(volume.affine, volume.data.shape)
    mask = source_mask(volume, axis, MaskParams(erosion_radius=1))
    low, high = np.percentile(volume.data[mask], (0.5, 99.5))
    planes, masks = np.moveaxis(volume.data, axis, 0), np.moveaxis(mask, axis, 0)
    sigmas = [noise_sigma(p) for p, m in zip(planes, masks) if m.mean() > 0.2] or [noise_sigma(planes[0])]
    return float(np.median(sigmas) / (high - low))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path("../shared/data"))
    parser.add_argument("--work", type=Path, default=Path("bench_wholehead"), help="validation cache folder")
    args = parser.parse_args()
    rows: list[tuple[str, float]] = []
    for folder in build_validation(args.shared / "ixi_t1", args.work):
        for modality in ("pd", "t2", "t1"):
            rows.append((f"{folder.name} {modality.upper()}" + (" (real)" if modality == "t1" else " (simulated)"),
                         relative_noise(to_volume(folder / f"{modality}.nii.gz"))))
    for modality in ("pd", "t2", "t1"):
        rows.append((f"phantom {modality.upper()}", relative_noise(to_volume(load_sample(modality)))))
    for modality in ("PD", "T2"):
        rows.append((f"IXI040 {modality} slice (real)", relative_noise(load_slice(args.shared / "ixi_t2_pd_slice",
                                                                                  modality))))
    print("| source | noise σ / intensity range |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value:.1%} |")


if __name__ == "__main__":
    main()
