"""Wall time of translating one whole 2 mm head volume with the default settings.

The volume is the simulated PD head of the held-out subject IXI049 (120×120×90 voxels, 2 mm,
built by ``bench_wholehead.build_validation`` from ``../shared/data/ixi_t1``): every slice
the filter mask keeps is translated with ``TranslateOptions()`` defaults (DDIM, the model's default steps: 50 unless its card names fewer, one
draw per slice, batch 8, autocast ``auto``: bf16 on a CPU with bfloat16 instructions) on the CPU. Prints, per model, seconds for the volume, slices
translated and seconds per slice, next to the goal of 90 s on 2 CPU cores.

    .venv/bin/python benchmarks/bench_volume_time.py --threads 2 \\
        --model lmi=src/zeroshot_core/model/bundled/t1-lmi

``--model NAME=FOLDER`` may repeat (default: the bundled default model). The load average at
the start and end is printed: other work on the machine slows the figure down.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_wholehead import _model_spec, build_validation

from zeroshot_core.diffusion.running import run_translation
from zeroshot_core.diffusion.translation import TranslateOptions
from zeroshot_core.imaging.orientation import central_slices, slicing_axis
from zeroshot_core.io.formats import to_volume

GOAL_S = 90.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path("../shared/data/ixi_t1"))
    parser.add_argument("--work", type=Path, default=Path("bench_wholehead"),
                        help="folder holding (or receiving) the validation volumes")
    parser.add_argument("--model", action="append", default=[],
                        help="NAME=FOLDER[:cfg=S:steps=N:...] as in bench_wholehead.py (repeat)")
    parser.add_argument("--slices", type=int, help="time only this many central slices (default: the whole "
                        "volume; the per-slice figure is what to compare)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each model, interleaved (default 1)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    source = to_volume(build_validation(args.shared, args.work)[0] / "pd.nii.gz")
    specs = [_model_spec(text) for text in args.model] or [("default", None, {})]
    slices = None
    if args.slices:
        axis = slicing_axis(source.affine, source.data.shape)
        slices = central_slices(source.data > 0, axis, args.slices)
    print(f"load average at start: {os.getloadavg()[0]:.2f}; {args.threads} torch threads; "
          f"volume {source.data.shape}" + (f", central slices {slices[0]}..{slices[-1]}" if slices else ""))
    print("| model | seconds | slices translated | s/slice | goal ≤ 90 s per volume |\n|---|---|---|---|---|")
    for _ in range(args.repeat):
        for name, folder, overrides in specs:
            started = time.perf_counter()
            result = run_translation(source, folder, options=TranslateOptions(device="cpu", slices=slices,
                                                                              **overrides))
            seconds = time.perf_counter() - started
            count = len(result.slices)
            verdict = ("met" if seconds <= GOAL_S else "not met") if slices is None else "(part of a volume)"
            print(f"| {name} | {seconds:.1f} | {count} | {seconds / count:.2f} | {verdict} |", flush=True)
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
