"""The Python parts of ``benchmarks/gpu_check.sh``: environment, training speed, CPU-vs-device agreement.

Each sub-command prints Markdown table rows ``| part | case | result | status |`` and
appends them to ``--rows`` as soon as each is known. Run through ``gpu_check.sh``;
alone, e.g.::

    PYTHONPATH=src python benchmarks/gpu_check.py agree --device cuda --rows rows.md
"""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

NEEDED = ("numpy", "scipy", "diffusers", "safetensors", "nibabel", "pluggy", "skimage", "sklearn", "tqdm",
          "pytest")


def row(cells: list[str], rows_file: str | None) -> None:
    """Print a Markdown table row, and append it to ``rows_file`` at once (a later kill keeps it)."""
    line = "| " + " | ".join(cells) + " |"
    print(line, flush=True)
    if rows_file:
        with open(rows_file, "a") as handle:
            handle.write(line + "\n")


def environment(args: argparse.Namespace) -> int:
    """torch, the device, and the modules the project imports."""
    missing = []
    for name in NEEDED:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            missing.append(f"{name} ({str(exc).splitlines()[0][:60]})")
    text = f"python {sys.version.split()[0]}, torch {torch.__version__}"
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        text += (f", CUDA {torch.version.cuda}, {torch.cuda.device_count()} x {props.name} "
                 f"({props.total_memory / 2**30:.0f} GiB, sm_{props.major}{props.minor}), cuDNN "
                 f"{torch.backends.cudnn.version()}, bf16 {torch.cuda.is_bf16_supported()}, TF32 conv "
                 f"{torch.backends.cudnn.allow_tf32} / matmul {torch.backends.cuda.matmul.allow_tf32}")
    else:
        text += ", no CUDA GPU"
    status = "ok"
    if args.device == "cuda" and not torch.cuda.is_available():
        status = "FAILED: no CUDA GPU visible to torch"
    row(["environment", "torch and device", text, status], args.rows)
    if missing:
        row(["environment", "modules", "missing: " + ", ".join(missing),
             "FAILED: put their wheels in .whl/ (see docs/scaling.md)"], args.rows)
    else:
        row(["environment", "modules", ", ".join(NEEDED) + " import", "ok"], args.rows)
    return 1 if missing or status != "ok" else 0


def _train_speed(targets: list[str], out: Path, args: argparse.Namespace, mixed: bool) -> tuple[float, float, int]:
    from zeroshot_core.training.loop import TrainConfig, train_iter

    config = TrainConfig(guidance="contour", model_size=args.model_size, image_size=args.image_size,
                         max_steps=args.steps, batch_size=args.batch_size, checkpoint_every=0,
                         device=args.device, mixed_precision=mixed, segmenters=())
    started = time.perf_counter()
    stamps = []
    for _ in train_iter(targets, out, config):
        stamps.append(time.perf_counter())  # each step yields its loss as a float: the device has finished it
    wall = time.perf_counter() - started
    steps = len(stamps)
    rate = (steps - 1) / (stamps[-1] - stamps[0]) if steps > 1 else float("nan")
    return rate, wall, steps


def train(args: argparse.Namespace) -> int:
    """Steps/s of ``train_iter`` with and without bf16 autocast, and the ``zeroshot train`` command."""
    from zeroshot_core.samples.sample_data import sample_paths

    out = Path(args.out)
    targets = [str(sample_paths()["t1"])]
    what = f"{args.model_size} UNet @ {args.image_size} px, batch {args.batch_size}, {args.steps} steps, contour"
    rates = {}
    failed = 0
    for mixed in (True, False):
        name = "bf16 autocast" if mixed else "float32"
        try:
            rate, wall, _ = _train_speed(targets, out / f"train_{'bf16' if mixed else 'fp32'}", args, mixed)
        except Exception as exc:  # noqa: BLE001 - a failed run is a FAILED row, the next one still runs
            row(["train", f"{what}, {name}", "-", f"FAILED: {type(exc).__name__}: {str(exc)[:150]}"], args.rows)
            failed = 1
            continue
        rates[mixed] = rate
        note = "" if args.device == "cuda" else " (bf16 autocast applies on CUDA only: float32 here too)"
        row(["train", f"{what}, {name}{note}",
             f"{rate:.1f} steps/s after the first step; {wall:.1f} s in all (data loading included)", "ok"],
            args.rows)
    if len(rates) == 2:
        row(["train", "bf16 speed-up", f"{rates[True] / rates[False]:.2f}x float32", "ok"], args.rows)
    command = [sys.executable, "-m", "zeroshot_core.cli", "-q", "train", *targets, "--out", str(out / "train_cli"),
               "--device", args.device, "--max-steps", str(args.steps), "--model-size", args.model_size,
               "--image-size", str(args.image_size), "--batch-size", str(args.batch_size)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    shown = " ".join(["zeroshot train PHANTOM_T1 --out OUT/train_cli", *command[8:]])
    ok = done.returncode == 0 and (out / "train_cli" / "model.json").is_file()
    reason = (done.stderr.strip().splitlines() or ["no output"])[-1][:150]
    row(["train", f"`{shown}`", f"exit {done.returncode}, {wall:.1f} s wall (start-up, data, kmeans fit included)",
         "ok" if ok else f"FAILED: {reason}"], args.rows)
    return failed or (0 if ok else 1)


def _phantom_slices(count: int, size: int) -> tuple[Any, Any]:
    """``count`` central axial slices of the PD and T1 phantoms at ``size`` px, in [-1, 1]."""
    import numpy as np

    from zeroshot_core.imaging.orientation import central_slices, slicing_axis
    from zeroshot_core.imaging.resize import to_model_size
    from zeroshot_core.samples.sample_data import load_sample

    pd, t1 = load_sample("pd"), load_sample("t1")
    axis = slicing_axis(pd.affine, pd.data.shape)
    wanted = list(central_slices(pd.data > 0, axis, count))

    def cut(data: np.ndarray) -> np.ndarray:
        scaled = data / max(float(np.percentile(data, 99.5)), 1e-6) * 2.0 - 1.0
        return to_model_size(np.moveaxis(np.take(scaled, wanted, axis=axis), axis, 0).astype(np.float32), size)

    return cut(pd.data), cut(t1.data)


def agree(args: argparse.Namespace) -> int:
    """LMI maps and a translation on the CPU and on ``--device``; host-to-device copies plain vs pinned."""
    import numpy as np
    from bench_acceleration import translate_once

    from zeroshot_core.diffusion.translation import TranslateOptions
    from zeroshot_core.imaging.orientation import central_slices, slicing_axis
    from zeroshot_core.lmi.dispatch import local_mutual_information
    from zeroshot_core.model.loading import load_model
    from zeroshot_core.samples.sample_data import load_sample

    device = torch.device(args.device)
    pair = f"cpu vs {device.type}" + (" (dry run: both on the CPU)" if device.type == "cpu" else "")
    pd, t1 = _phantom_slices(args.slices, 64)
    x, y = torch.from_numpy(pd[:, None]), torch.from_numpy(t1[:, None])
    for backend in ("auto", "torch"):
        on_cpu = local_mutual_information(x, y, backend=backend)
        on_device = local_mutual_information(x.to(device), y.to(device)).cpu()
        diff = (on_device - on_cpu).abs()
        kind = "C kernel" if backend == "auto" else "tensor ops"
        row(["agreement", f"LMI map PD vs T1 phantom, {args.slices} slices @ 64 px: {pair} ({kind} on the CPU)",
             (f"max abs diff {diff.max():.2g} nats, mean {diff.mean():.2g} (map values up to "
              f"{on_cpu.max():.2f})"), "ok"], args.rows)

    volume = load_sample("pd")
    slices = central_slices(volume.data > 0, slicing_axis(volume.affine, volume.data.shape), args.slices)
    cpu_options = TranslateOptions(steps=args.steps, device="cpu", slices=slices)
    device_options = TranslateOptions(steps=args.steps, device=device.type, slices=slices)
    cpu_s, on_cpu = translate_once(volume, load_model(None, "lmi", "cpu"), "lmi", cpu_options)
    model = load_model(None, "lmi", device)
    translate_once(volume, model, "lmi", device_options)  # warm-up
    device_s, on_device = translate_once(volume, model, "lmi", device_options)
    diff = np.abs(on_device - on_cpu)
    row(["agreement", f"translation, bundled lmi model, {args.slices} slices, {args.steps} DDIM steps: {pair}",
         (f"max abs diff {diff.max():.2g}, mean {diff.mean():.2g} (normalised units, range 2); "
          f"{cpu_s:.2f} s on the CPU, {device_s:.2f} s on {device.type}"), "ok"], args.rows)

    batch = 8
    arrays = [np.random.default_rng(0).standard_normal((batch, c, 64, 64)).astype(np.float32) for c in (1, 1, 1, 1)]

    def copy(pinned: bool) -> float:
        start = time.perf_counter()
        for _ in range(50):
            moved = [(torch.from_numpy(a).pin_memory() if pinned else torch.from_numpy(a))
                     .to(device, non_blocking=pinned) for a in arrays]
            if device.type == "cuda":
                torch.cuda.synchronize()
        del moved
        return (time.perf_counter() - start) / 50

    if device.type == "cuda":
        copy(False), copy(True)  # warm-up
        plain, pinned = copy(False), copy(True)
        per_batch = device_s / max(1, -(-len(slices) // batch))
        case = (f"host-to-device copies of one batch ({batch} slices: source, condition, mask, noise; "
                f"{sum(a.nbytes for a in arrays) // 1024} KiB)")
        row(["agreement", case,
             (f"plain {plain * 1e3:.3f} ms, pinned (pinning included) {pinned * 1e3:.3f} ms; sampling that batch "
              f"takes {per_batch * 1e3:.0f} ms"), "ok"], args.rows)
    else:
        row(["agreement", "host-to-device copies, plain vs pinned", "-", "not run: no GPU (dry run)"], args.rows)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["environment", "train", "agree"])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--rows", help="append the table rows to this file")
    parser.add_argument("--out", default=os.environ.get("OUT", "gpu_check_out"), help="folder for models")
    parser.add_argument("--steps", type=int, default=200, help="training steps / sampling steps (agree)")
    parser.add_argument("--model-size", default="small")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--slices", type=int, default=8, help="phantom slices (agree)")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    return {"environment": environment, "train": train, "agree": agree}[args.part](args)


if __name__ == "__main__":
    sys.exit(main())
