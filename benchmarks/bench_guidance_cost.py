"""Per-step cost of each guidance strategy relative to ``none`` (SDEdit), same network.

Each strategy gets an untrained ``small`` UNet with its channel count (timing does not
depend on the weights) and translates the same central slices of the bundled PD phantom,
all starting from pure noise (strength 1) so every run does the same number of steps.
Timed in one run, alternating strategies, median of ``--repeats``.

    .venv/bin/python benchmarks/bench_guidance_cost.py [--device cpu] [--steps 10] [--slices 8]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from zeroshot_core.diffusion.translation import TranslateOptions, translate_iter
from zeroshot_core.imaging.orientation import central_slices, slicing_axis
from zeroshot_core.model.devices import resolve_device
from zeroshot_core.model.loading import load_model
from zeroshot_core.model.store import ModelCard, build_unet, save_model, unet_config
from zeroshot_core.plugins.manager import guidance_registry
from zeroshot_core.samples.sample_data import load_sample

CASES = {
    "none": ("none", {"strength": 1.0}),
    "contour": ("contour", {}),
    "lmi (channels)": ("lmi", {}),
    "lmi (gradient)": ("lmi", {"channels": False, "gradient_scale": 0.05, "strength": 1.0}),
    "lmi (both)": ("lmi", {"gradient_scale": 0.05}),
}


def make_model(directory: Path, guidance_name: str, params: dict, size: int) -> Path:
    guidance = guidance_registry().create(guidance_name, **params)
    trained_as = guidance_name if guidance.condition_channels else "none"
    config = unet_config("small", size, 1 + guidance.condition_channels)
    torch.manual_seed(0)
    card = ModelCard(guidance=trained_as, guidance_params=guidance.params() if trained_as == guidance_name else {},
                     condition_channels=guidance.condition_channels, image_size=size, model_size="small",
                     unet=config)
    return save_model(directory, build_unet(config), card)


def run_once(volume, model, guidance_name, options) -> float:
    start = time.perf_counter()
    for _ in translate_iter(volume, model, guidance_name, options):
        pass
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--slices", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    volume = load_sample("pd")
    axis = slicing_axis(volume.affine, volume.data.shape)
    slices = central_slices(volume.data > 0, axis, args.slices)
    times: dict[str, list[float]] = {name: [] for name in CASES}
    with tempfile.TemporaryDirectory() as tmp:
        models = {name: load_model(make_model(Path(tmp) / str(i), g, p, args.image_size), device=device)
                  for i, (name, (g, p)) in enumerate(CASES.items())}
        options = {name: TranslateOptions(steps=args.steps, device=args.device, batch_size=args.slices,
                                          slices=slices, guidance_params=p) for name, (g, p) in CASES.items()}
        for name, (g, _) in CASES.items():  # warm-up
            run_once(volume, models[name], g, options[name])
        for _ in range(args.repeats):
            for name, (g, _) in CASES.items():
                times[name].append(run_once(volume, models[name], g, options[name]))
    base = statistics.median(times["none"])
    print(f"device={device} threads={torch.get_num_threads()} small@{args.image_size}px steps={args.steps} "
          f"slices={args.slices} (one batch)")
    print(f"{'guidance':<16} {'s/step':>8} {'ratio to none':>14}")
    for name in CASES:
        median = statistics.median(times[name])
        print(f"{name:<16} {median / args.steps:>8.3f} {median / base:>14.2f}")
    print("goal for lmi: <= 1.5x none")


if __name__ == "__main__":
    main()
