"""Cost of one score-network call per UNet size, in float32 and under bfloat16 autocast.

What a wider or deeper student would cost at sampling, before any training: each size's
``diffusers.UNet2DModel`` (random weights; the cost does not depend on them) is called on a
batch of slices the size a 2 mm head gives (8 × 128 × 128 by default: 120 × 120 padded to the
network's multiple), without gradients, in float32 and under ``torch.autocast`` bfloat16, the
two alternating. Prints the median seconds per call, the ratio to the first size and the
bf16 speed-up, all measured in this run.

    .venv/bin/python benchmarks/bench_network_cost.py --threads 2 \\
        --size lite --size lite:channels=24,48,72,96 --size lite:layers=2 --size small

``--size NAME[:channels=A,B,...][:layers=N][:groups=G]`` starts from a named size
(``zeroshot_core.model.store.MODEL_SIZES``) and changes its widths, layers per block or
GroupNorm groups.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from diffusers import UNet2DModel

from zeroshot_core.model.store import unet_config


def size_config(text: str, in_channels: int) -> dict:
    """``NAME[:channels=..][:layers=N][:groups=G]`` → UNet2DModel keyword arguments."""
    name, *changes = text.split(":")
    config = unet_config(name, 64, in_channels)
    for change in changes:
        key, _, value = change.partition("=")
        if key == "channels":
            widths = tuple(int(v) for v in value.split(","))
            if len(widths) != len(config["block_out_channels"]):
                raise SystemExit(f"--size {text}: {name} has {len(config['block_out_channels'])} levels")
            config["block_out_channels"] = widths
        elif key == "layers":
            config["layers_per_block"] = int(value)
        elif key == "groups":
            config["norm_num_groups"] = int(value)
        else:
            raise SystemExit(f"--size {text}: unknown key {key!r}; valid: channels, layers, groups")
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", action="append", default=[], help="NAME[:channels=..][:layers=N] (repeat)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--pixels", type=int, default=128)
    parser.add_argument("--in-channels", type=int, default=3, help="image + condition channels (lmi: 3)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sizes = args.size or ["lite", "small"]
    x = torch.randn(args.batch, args.in_channels, args.pixels, args.pixels, generator=torch.Generator().manual_seed(0))
    t = torch.randint(0, 1000, (args.batch,), generator=torch.Generator().manual_seed(1))
    print(f"{args.threads} torch threads; batch {args.batch} × {args.in_channels} × {args.pixels}²; "
          f"median of {args.repeats} calls after one")
    print("| size | parameters (M) | float32 s/call | ratio | bf16 s/call | ratio | bf16 speed-up |\n"
          "|---|---|---|---|---|---|---|")
    first = None
    for text in sizes:
        unet = UNet2DModel(**size_config(text, args.in_channels)).eval()
        times: dict[bool, list[float]] = {False: [], True: []}
        with torch.no_grad():
            for repeat in range(args.repeats + 1):
                for bf16 in (False, True):
                    started = time.perf_counter()
                    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                        unet(x, t)
                    if repeat:
                        times[bf16].append(time.perf_counter() - started)
        plain, half = statistics.median(times[False]), statistics.median(times[True])
        first = first or (plain, half)
        params = sum(p.numel() for p in unet.parameters()) / 1e6
        print(f"| {text} | {params:.2f} | {plain:.3f} | {plain / first[0]:.2f} | {half:.3f} | {half / first[1]:.2f} "
              f"| {plain / half:.2f}× |", flush=True)


if __name__ == "__main__":
    main()
