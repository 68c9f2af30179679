"""Noise of each validation source relative to its intensity range (why PD suffers at 2 mm).

For every volume — the simulated PD/T2 heads and real T1 of the held-out validation subjects
(``bench_wholehead.build_validation``), the bundled phantom and the real IXI PD/T2 slice —
prints the median over slices (with at least 20 % foreground) of Donoho's noise estimate
(:func:`zeroshot_core.imaging.denoise.noise_sigma`) divided by the 0.5–99.5 % intensity range
inside the filter mask (erosion 1, the bundled models' setting).

With ``--model FOLDER`` (repeatable) it also prints, per model, the measure
``translate --denoise auto`` decides by: the noise of the 12 central slices on the model's
own grid (:mod:`zeroshot_core.diffusion.auto_denoise`; one sampling step is run to get
there), against the level recorded in the model card, and what ``auto`` chose.

    .venv/bin/python benchmarks/noise_levels.py --work bench_wholehead \
        --model src/zeroshot_core/model/bundled/t1-lmi
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_wholehead import build_validation
from real_slice import load_slice

from zeroshot_core.diffusion.running import run_translation
from zeroshot_core.diffusion.translation import TranslateOptions
from zeroshot_core.imaging.denoise import noise_sigma
from zeroshot_core.imaging.mask import MaskParams, source_mask
from zeroshot_core.imaging.orientation import slicing_axis
from zeroshot_core.io.formats import to_volume
from zeroshot_core.io.volume import Volume
from zeroshot_core.samples.sample_data import load_sample


def file_grid_noise(volume: Volume) -> float:
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
    parser.add_argument("--model", type=Path, action="append", default=[],
                        help="model folder: also print what --denoise auto measures and chooses (repeatable)")
    args = parser.parse_args()
    sources: list[tuple[str, Volume]] = []
    for folder in build_validation(args.shared / "ixi_t1", args.work):
        for modality in ("pd", "t2", "t1"):
            sources.append((f"{folder.name} {modality.upper()}" + (" (real)" if modality == "t1" else " (simulated)"),
                            to_volume(folder / f"{modality}.nii.gz")))
    for modality in ("pd", "t2", "t1"):
        sources.append((f"phantom {modality.upper()}", to_volume(load_sample(modality))))
    for modality in ("PD", "T2"):
        sources.append((f"IXI040 {modality} slice (real)", load_slice(args.shared / "ixi_t2_pd_slice", modality)))
    header = "| source | noise σ / intensity range |" + "".join(f" {m.name}: on its grid | auto |" for m in args.model)
    print(header + "\n|" + "---|" * (header.count("|") - 1))
    for name, volume in sources:
        cells = [f"{file_grid_noise(volume):.1%}"]
        for model in args.model:
            axis = slicing_axis(volume.affine, volume.data.shape)
            count = volume.data.shape[axis]
            central = tuple(range(max(0, count // 2 - 6), min(count, count // 2 + 6)))
            choice = run_translation(volume, model, options=TranslateOptions(
                steps=1, slices=central, denoise="auto", device="cpu")).denoise
            cells += [f"{choice.source_noise:.1%} (card {choice.training_noise:.1%})", choice.applied]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
