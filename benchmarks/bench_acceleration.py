"""Speed-ups of the score network: seconds per translation, plain vs channels-last vs autocast vs compile.

Translates the bundled PD phantom with a bundled model per guidance on one device,
with each switch of :class:`zeroshot_core.model.acceleration.Acceleration` alone, in
one run. Every variant first runs once (its "first" time, left out of the ratio: lazy
initialisation, and for ``compile`` the compilation), then ``--repeats`` timed runs,
alternating between the variants so that machine load affects all alike (the compile
phase times plain again beside compile). The speed-up is the plain median over the
variant's median; the differences are of the translated slices against the plain
ones, in normalised units (the target intensity range mapped to [-1, 1]).

Run::

    .venv/bin/python benchmarks/bench_acceleration.py --device cpu --threads 1 --slices 4 --steps 10
    python benchmarks/bench_acceleration.py --device cuda --slices all --steps 50 --guidance lmi,contour,none --compile

``compile`` variants run after all the others (the compiler is slow); ``--deadline-s``
stops starting variants after that many seconds (they are reported as not run).
``--compile-backend eager`` runs ``torch.compile``'s graph capture without code
generation (a quick check that the switch works; not a speed measurement).
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from zeroshot_core.diffusion.running import run_translation
from zeroshot_core.diffusion.translation import TranslateOptions
from zeroshot_core.imaging.orientation import central_slices, slicing_axis
from zeroshot_core.model.acceleration import Acceleration
from zeroshot_core.model.devices import resolve_device
from zeroshot_core.model.loading import load_model
from zeroshot_core.samples.sample_data import load_sample

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_check import row  # (one table-row writer for the GPU check and this benchmark)

VARIANTS = {
    "plain": Acceleration("off"),
    "channels-last": Acceleration("off", channels_last=True),
    "bf16": Acceleration(autocast="bf16"),
    "fp16": Acceleration(autocast="fp16"),
    "compile": Acceleration("off", compile=True),
}


@dataclass
class Timing:
    """The runs of one variant for one guidance."""

    first: float = 0.0
    runs: list[float] = field(default_factory=list)
    output: np.ndarray | None = None
    error: str | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.runs) if self.runs else float("nan")


def translate_once(volume, model, guidance: str, options: TranslateOptions) -> tuple[float, np.ndarray]:
    """Seconds for one translation, and its translated slices in normalised units."""
    start = time.perf_counter()
    result = run_translation(volume, model, guidance, options)
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    low, high = model.card.target_intensity["low"], model.card.target_intensity["high"]
    data = np.take(result.volume.data, list(result.slices), axis=result.axis)
    return seconds, (data - low) / (high - low) * 2.0 - 1.0


def report(guidance: str, name: str, timing: Timing, plain: Timing, unit: str, rows_file: str | None,
           label: str = "") -> None:
    case = f"{guidance}, {name}{label}"
    if timing.error:
        row(["translate", case, "-", f"FAILED: {timing.error}"], rows_file)
        return
    text = f"first {timing.first:.2f} s, then {timing.median:.2f} s/{unit}"
    if name != "plain" and plain.runs and plain.output is not None and timing.output is not None:
        diff = np.abs(timing.output - plain.output)
        text += (f"; {plain.median / timing.median:.2f}x plain ({plain.median:.2f} s beside it); "
                 f"max abs diff {diff.max():.2g}, mean {diff.mean():.2g}")
    row(["translate", case, text, "ok"], rows_file)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    parser.add_argument("--guidance", default="lmi", help="comma-separated bundled models (lmi, contour, none)")
    parser.add_argument("--slices", default="4", help="N central slices of the phantom, or 'all' (whole volume)")
    parser.add_argument("--steps", type=int, default=10, help="DDIM steps")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per variant after the first")
    parser.add_argument("--variants", default="plain,channels-last,bf16", help=f"of {', '.join(VARIANTS)}")
    parser.add_argument("--compile", action="store_true", help="add the compile variant")
    parser.add_argument("--compile-backend", default="inductor", help="inductor (real), or eager (capture only)")
    parser.add_argument("--deadline-s", type=float, default=0.0, help="start no variant after this (0: none)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave the default)")
    parser.add_argument("--rows", help="also append the table rows to this file")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.compile_backend != "inductor":
        torch.compile = functools.partial(torch.compile, backend=args.compile_backend)
    device = resolve_device(args.device)
    names = [n for n in args.variants.split(",") if n] + (["compile"] if args.compile else [])
    if "plain" not in names:
        names.insert(0, "plain")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; use {', '.join(VARIANTS)}")
    volume = load_sample("pd")
    axis = slicing_axis(volume.affine, volume.data.shape)
    slices = None if args.slices == "all" else central_slices(volume.data > 0, axis, int(args.slices))
    unit = "volume" if slices is None else f"{len(slices)} slices"
    label = " (eager backend: capture only)" if args.compile_backend != "inductor" else ""
    guidances = [g for g in args.guidance.split(",") if g]
    print(f"device={device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}) "
          f"torch={torch.__version__} threads={torch.get_num_threads()} steps={args.steps} "
          f"slices={'all' if slices is None else len(slices)} batch={args.batch_size} repeats={args.repeats}",
          flush=True)
    print("| part | case | result | status |\n|---|---|---|---|", flush=True)

    def options(name: str) -> TranslateOptions:
        return TranslateOptions(steps=args.steps, device=device.type, batch_size=args.batch_size, slices=slices,
                                acceleration=VARIANTS[name])

    def out_of_time() -> bool:
        return bool(args.deadline_s) and time.perf_counter() - started > args.deadline_s

    def attempt(timing: Timing, name: str, model, guidance: str, first: bool) -> None:
        try:
            seconds, output = translate_once(volume, model, guidance, options(name))
        except Exception as exc:  # noqa: BLE001 - a variant that fails is reported, the others go on
            timing.error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:150] if str(exc) else ''}"
            return
        if first:
            timing.first, timing.output = seconds, output
        else:
            timing.runs.append(seconds)

    models = {g: load_model(None, g, device) for g in guidances}
    results: dict[str, dict[str, Timing]] = {g: {} for g in guidances}
    for late in (False, True):  # compile last: after every other variant of every guidance
        for guidance in guidances:
            todo = [n for n in names if (n == "compile") == late]
            if not todo:
                continue
            if out_of_time():
                for name in todo:
                    row(["translate", f"{guidance}, {name}{label if late else ''}", "-", "not run: time budget"],
                        args.rows)
                continue
            timings = {name: results[guidance].setdefault(name, Timing()) for name in todo}
            for name in todo:
                attempt(timings[name], name, models[guidance], guidance, first=True)
            # Timed runs alternate; the compile phase times plain again beside it, under the same load.
            plain = results[guidance]["plain"] if not late else Timing(output=results[guidance]["plain"].output)
            alternating = {**({"plain": plain} if late else {}), **timings}
            for _ in range(args.repeats):
                for name, timing in alternating.items():
                    if not timing.error:
                        attempt(timing, name, models[guidance], guidance, first=False)
            for name in todo:
                report(guidance, name, timings[name], plain, unit, args.rows, label if late else "")
    failed = any(t.error for per in results.values() for t in per.values())
    print(f"total {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
