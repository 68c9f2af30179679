"""Throughput of LMI maps: ``local_mutual_information`` vs. a plain loop.

All are measured in the same run on the same kind of image (a smooth two-tissue
phantom with noise, against a non-monotone remapping of itself): the plain reference
loop (numpy, one pixel and one search offset at a time; the reference of
``tests/test_local_mi.py``) on a small image, and ``local_mutual_information`` on
128² and 256² images with each backend: ``native`` (the fused C kernel, forward
only, CPU) and ``torch`` (tensor operations, forward and forward + backward), on CPU
and on CUDA when available. The issue's goal is a ratio ≥ 100 on CPU. Both backends
skip histogram bins that carry no weight, so they are faster on images with uniform
regions; the ``noise`` rows (uniform noise, every bin used everywhere) show the worst
case. The reference's cost does not depend on the image.

Usage::

    python benchmarks/bench_lmi.py [--threads 1] [--size 128 256] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_local_mi import reference_lmi  # noqa: E402

from zeroshot_core.lmi import native as local_mi_native  # noqa: E402
from zeroshot_core.lmi.dispatch import local_mutual_information  # noqa: E402

OPTIONS = {"patch_size": 3, "search_radius": 1, "bins": 16}


def phantom(size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = (np.mgrid[:size, :size] - size / 2) / size
    image = np.where(xx**2 + yy**2 < 0.16, 0.1 + 0.3 * np.sin(9 * xx) * np.cos(7 * yy), -1.0)
    image = np.where((xx + 0.1) ** 2 + (yy - 0.05) ** 2 < 0.01, 0.8, image)
    return np.clip(image + 0.05 * rng.standard_normal(image.shape), -1, 1)


def timed(fn, repeats: int, device: torch.device, warm_up: bool = True) -> float:
    """Median time of ``fn`` over ``repeats`` runs.

    On CPU this is the process's CPU time (the runs are single-threaded unless
    ``--threads`` says otherwise), which other jobs on a shared machine disturb far
    less than wall time; on CUDA it is wall time with synchronisation.
    """
    if device.type == "cuda":
        clock, sync = time.perf_counter, torch.cuda.synchronize
    else:
        clock, sync = time.process_time, (lambda: None)
    if warm_up:
        fn()
        sync()
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        sync()
        times.append(clock() - start)
    return statistics.median(times)


def bench_reference(size: int, repeats: int) -> float:
    x = phantom(size, 1)
    y = np.cos(3 * x)  # another "modality": non-monotone remapping
    seconds = timed(lambda: reference_lmi(x, y, **OPTIONS), repeats, torch.device("cpu"), warm_up=False)
    return size * size / seconds / 1e6


def bench_vectorised(device: torch.device, image: str, size: int, batch: int, repeats: int,
                     backward: bool, backend: str) -> float:
    if image == "phantom":
        x = torch.tensor(phantom(size, 1), dtype=torch.float32, device=device)
        y = torch.cos(3 * x)
    else:
        generator = torch.Generator().manual_seed(0)
        x, y = (torch.rand(2, size, size, generator=generator) * 2 - 1).to(device)
    x = x.expand(batch, 1, size, size).contiguous()
    y = y.expand(batch, 1, size, size).contiguous()

    def run() -> None:
        if backward:
            yg = y.clone().requires_grad_(True)
            local_mutual_information(x, yg, backend=backend, **OPTIONS).mean().backward()
        else:
            with torch.no_grad():
                local_mutual_information(x, y, backend=backend, **OPTIONS)

    return batch * size * size / timed(run, repeats, device) / 1e6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--size", type=int, nargs="+", default=[128, 256], help="image sizes for the vectorised runs")
    parser.add_argument("--reference-size", type=int, default=24, help="image size for the plain loop")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    small = torch.tensor(phantom(args.reference_size, 1), dtype=torch.float32)
    expected = reference_lmi(small.double().numpy(), np.cos(3 * small.double().numpy()), **OPTIONS)
    backends = ["native", "torch"] if local_mi_native.available() else ["torch"]
    errors = ", ".join(
        f"{backend} {np.abs(local_mutual_information(small, torch.cos(3 * small), backend=backend, **OPTIONS).numpy() - expected).max():.1e}"
        for backend in backends)
    print(f"LMI {OPTIONS}, torch {torch.__version__}, {args.threads} CPU thread(s), "
          f"load average {os.getloadavg()[0]:.2f} (CPU rates from process CPU time)")
    print(f"max |float32 map - float64 reference|: {errors}")
    reference = bench_reference(args.reference_size, args.repeats)
    print(f"reference loop (numpy, {args.reference_size}², CPU): {reference:.5f} MP/s")

    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    print(f"{'device':<6} {'image':<8} {'size':>5} {'batch':>5} {'backend':<7} {'pass':<8} {'MP/s':>9} "
          f"{'× reference':>12}")
    for device in devices:
        runs = [(backend, False) for backend in (backends if device.type == "cpu" else ["torch"])]
        for image in ("phantom", "noise"):
            for size in args.size:
                for batch in (1, 8):
                    for backend, backward in [*runs, ("torch", True)]:
                        mps = bench_vectorised(device, image, size, batch, args.repeats, backward, backend)
                        label = "fwd+bwd" if backward else "forward"
                        print(f"{device.type:<6} {image:<8} {size:>5} {batch:>5} {backend:<7} {label:<8} {mps:>9.4f} "
                              f"{mps / reference:>12.1f}", flush=True)


if __name__ == "__main__":
    main()
