"""Quality of every method on the phantom: PD→T1 and T2→T1 (issue: measure, then decide).

Runs ``zeroshot_core.evaluation.evaluator.evaluate`` with the classical baselines (identity, histogram
matching, the shape-only control), SDEdit (``none``), ContourDiff (``contour``) and the LMI
variants: channels only (the paper), gradient only (LMI gradient step on x̂0 with the
unconditional model), and both. Writes one report folder per source under ``--out`` and
prints the Markdown tables.

    .venv/bin/python benchmarks/bench_quality.py --models-dir src/zeroshot_core/models \
        --out bench_quality --steps 25 --slices 16 --gradient-scale 0.05
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from zeroshot_core.cli.report_commands import model_folders
from zeroshot_core.diffusion.translation import TranslateOptions
from zeroshot_core.evaluation.evaluator import evaluate
from zeroshot_core.evaluation.report import write_report
from zeroshot_core.imaging.orientation import central_slices, slicing_axis
from zeroshot_core.model.loading import models_by_guidance
from zeroshot_core.samples.sample_data import load_sample

METHODS = ("identity", "histmatch", "shape", "none", "contour", "lmi", "lmi-gradient", "lmi-both")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", default=None)
    parser.add_argument("--out", type=Path, default=Path("bench_quality"))
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--slices", type=int, default=16)
    parser.add_argument("--gradient-scale", type=float, default=0.05)
    parser.add_argument("--scheduler", default="ddim")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    found = models_by_guidance(model_folders(args.models_dir))
    models = dict(found)
    if "none" in found:
        models["lmi-gradient"] = found["none"]
    if "lmi" in found:
        models["lmi-both"] = found["lmi"]
    variants = {"lmi-gradient": ("lmi", {"channels": False, "gradient_scale": args.gradient_scale, "strength": 0.5}),
                "lmi-both": ("lmi", {"gradient_scale": args.gradient_scale})}
    labels = load_sample("labels")
    axis = slicing_axis(labels.affine, labels.data.shape)
    slices = central_slices(labels.data > 0, axis, args.slices)
    options = TranslateOptions(steps=args.steps, scheduler=args.scheduler, device="cpu", slices=slices)
    for source in ("pd", "t2"):
        started = time.perf_counter()
        result = evaluate(load_sample(source), load_sample("t1"), labels, models=models, methods=METHODS,
                          options=options, variants=variants)
        paths = write_report(result, args.out / f"{source}_to_t1")
        print(f"## {source.upper()} → T1 ({time.perf_counter() - started:.0f} s, slices {slices[0]}..{slices[-1]}, "
              f"{args.steps} {args.scheduler} steps, gradient scale {args.gradient_scale})")
        print(paths["markdown"].read_text())


if __name__ == "__main__":
    main()
