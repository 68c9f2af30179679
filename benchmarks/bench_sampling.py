"""Sampling benchmark: seconds per slice of ``translate`` vs. a bare UNet + scheduler loop.

The bare loop runs the same network and diffusers scheduler on the same number of
slices, batch size and steps, with the condition channels precomputed and no volume
handling. The ratio shows the overhead of the engine (masking, normalisation,
resizing, guidance channels, progress events, writing back to the grid).

Run::

    .venv/bin/python benchmarks/bench_sampling.py [--device cpu] [--steps 10] [--slices 16]

Both are timed in the same run, alternating, and the median of ``--repeats`` is used.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from zeroshot_core.diffusion.schedulers import make_scheduler
from zeroshot_core.diffusion.translation import TranslateOptions, translate_iter
from zeroshot_core.guidance.contour import ContourGuidance
from zeroshot_core.imaging.orientation import central_slices, slicing_axis
from zeroshot_core.model.devices import resolve_device
from zeroshot_core.model.store import ModelCard, build_unet, save_model, unet_config
from zeroshot_core.samples.sample_data import load_sample


def make_model(directory: Path, model_size: str, image_size: int) -> Path:
    guidance = ContourGuidance()
    config = unet_config(model_size, image_size, 2)
    torch.manual_seed(0)
    card = ModelCard(guidance="contour", guidance_params=guidance.params(), condition_channels=1,
                     image_size=image_size, model_size=model_size, unet=config,
                     target_intensity={"low": 0.0, "high": 1.0})
    return save_model(directory, build_unet(config), card)


def time_translate(volume, model_dir, options) -> float:
    start = time.perf_counter()
    for event in translate_iter(volume, model_dir, options=options):
        pass
    if options.device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def time_bare(unet, scheduler_name, noise_schedule, n_slices, batch, size, steps, device) -> float:
    condition = torch.zeros(batch, 1, size, size, device=device)
    start = time.perf_counter()
    for first in range(0, n_slices, batch):
        count = min(batch, n_slices - first)
        scheduler = make_scheduler(scheduler_name, noise_schedule)
        scheduler.set_timesteps(steps)
        x = torch.randn(count, 1, size, size, device=device)
        with torch.no_grad():
            for t in scheduler.timesteps:
                eps = unet(torch.cat([x, condition[:count]], 1), t.expand(count).to(device)).sample
                x = scheduler.step(eps, t, x).prev_sample
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model-size", default="small")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--slices", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--scheduler", default="ddim")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave the default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    volume = load_sample("pd")
    axis = slicing_axis(volume.affine, volume.data.shape)
    slices = central_slices(volume.data > 0, axis, args.slices)
    options = TranslateOptions(steps=args.steps, scheduler=args.scheduler, device=args.device,
                               batch_size=args.batch_size, slices=slices)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = make_model(Path(tmp) / "model", args.model_size, args.image_size)
        from zeroshot_core.model.loading import load_model

        loaded = load_model(model_dir, device=device)
        time_translate(volume, loaded, options)  # warm-up
        time_bare(loaded.unet, args.scheduler, loaded.card.noise_schedule, args.slices, args.batch_size,
                  args.image_size, args.steps, device)
        ours, bare = [], []
        for _ in range(args.repeats):
            ours.append(time_translate(volume, loaded, options))
            bare.append(time_bare(loaded.unet, args.scheduler, loaded.card.noise_schedule, args.slices,
                                  args.batch_size, args.image_size, args.steps, device))
    ours_s, bare_s = statistics.median(ours), statistics.median(bare)
    print(f"device={device} threads={torch.get_num_threads()} model={args.model_size}@{args.image_size}px "
          f"scheduler={args.scheduler} steps={args.steps} slices={args.slices} batch={args.batch_size}")
    print(f"translate: {ours_s / args.slices:.4f} s/slice   bare loop: {bare_s / args.slices:.4f} s/slice")
    print(f"ratio translate / bare = {ours_s / bare_s:.3f}  (goal <= 1.10)")


if __name__ == "__main__":
    main()
