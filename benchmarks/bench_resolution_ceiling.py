"""The resolution ceiling: how well K-Means can segment the *real* T1 after each model's resampling.

A translation can be no better than the real target image pushed through the same
geometry. Each pad-and-resize model pads a slice to a square and resizes it to its
``image_size`` (a 2 mm, 120×120 IXI slice at 64 px becomes 3.75 mm pixels); each
native-spacing model resamples it to its ``spacing_mm``. Here the real T1 of each held-out
validation head (the set of ``bench_wholehead.py``, same K-Means state, same 12 central
slices, same CSF/GM/WM Dice) goes through that round trip — to the model grid and back with
the engine's own functions (:func:`zeroshot_core.imaging.resize.to_model_size` /
``from_model_size``, :func:`zeroshot_core.imaging.spacing.resample_slices`) — and is scored
as if it were a perfect translation. The goal of the anatomy work (90 % of the native T1's
score) is out of reach for any model whose round trip scores below it.

    .venv/bin/python benchmarks/bench_resolution_ceiling.py --out bench_wholehead --threads 1
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_wholehead import build_validation, fit_kmeans

from zeroshot_core.diffusion.translation import TranslateOptions
from zeroshot_core.evaluation.evaluator import evaluate
from zeroshot_core.imaging.orientation import central_slices, slicing_axis
from zeroshot_core.imaging.resize import from_model_size, to_model_size
from zeroshot_core.imaging.spacing import resample_slices, resampled_shape
from zeroshot_core.io.formats import to_volume
from zeroshot_core.io.volume import Volume


def round_trips(spacing: tuple[float, float], sizes: list[int], spacings: list[float]
                ) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """Row label → function mapping ``(n, H, W)`` slices through a model grid and back."""
    rows: dict[str, Callable[[np.ndarray], np.ndarray]] = {"native (no resampling)": lambda s: s}
    for size in sizes:
        rows[f"pad and resize to {size} px"] = (
            lambda s, size=size: from_model_size(to_model_size(s, size, fill=0.0), s.shape[1:]))
    for mm in spacings:
        rows[f"resample to {mm:g} mm"] = (
            lambda s, mm=mm: resample_slices(resample_slices(s, resampled_shape(s.shape[1:], spacing, mm)),
                                             s.shape[1:]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path("../shared/data/ixi_t1"))
    parser.add_argument("--out", type=Path, default=Path("bench_wholehead"), help="validation cache folder")
    parser.add_argument("--sizes", default="64,96,128", help="pad-and-resize model sizes, px")
    parser.add_argument("--spacings", default="2.5,3,3.75", help="native model spacings, mm")
    parser.add_argument("--slices", type=int, default=12)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    state = fit_kmeans(args.shared)
    table: dict[str, dict[str, float]] = {}
    for folder in build_validation(args.shared, args.out):
        t1, labels = to_volume(folder / "t1.nii.gz"), to_volume(folder / "labels.nii.gz")
        axis = slicing_axis(labels.affine, labels.data.shape)
        spacing = tuple(float(s) for i, s in enumerate(t1.spacing) if i != axis)
        options = TranslateOptions(device="cpu", slices=central_slices(labels.data > 0, axis, args.slices))
        stack = np.moveaxis(t1.data, axis, 0).astype(np.float32)
        rows = round_trips(spacing, [int(s) for s in args.sizes.split(",")],
                           [float(s) for s in args.spacings.split(",")])
        for row, trip in rows.items():
            degraded = Volume(np.moveaxis(trip(stack), 0, axis).astype(np.float32), t1.affine)
            result = evaluate(t1, degraded, labels, methods=("identity",), options=options, segmenter_state=state)
            table.setdefault(row, {})[folder.name] = result.target.mean_dice
        print(f"  {folder.name}: " + ", ".join(f"{r} {v[folder.name]:.3f}" for r, v in table.items()), flush=True)
    subjects = list(next(iter(table.values())))
    native = float(np.mean(list(table["native (no resampling)"].values())))
    print("\n| real T1 through | " + " | ".join(subjects) + " | mean | share of native |")
    print("|---" * (len(subjects) + 3) + "|")
    for row, scores in table.items():
        mean = float(np.mean(list(scores.values())))
        print(f"| {row} | " + " | ".join(f"{scores[s]:.3f}" for s in subjects) + f" | {mean:.3f} | {mean / native:.0%} |")
    print(f"\ngoal of the anatomy work: >= {0.9 * native:.3f} (90 % of the native real T1)")


if __name__ == "__main__":
    main()
