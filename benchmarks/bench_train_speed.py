"""Training speed switches: seconds per step with ``--channels-last`` and ``--compile`` against plain.

Run::

    .venv/bin/python benchmarks/bench_train_speed.py [--model-size small] [--image-size 64] [--batch-size 8]
        [--steps 10] [--warmup 3] [--repeats 3] [--threads 1] [--device cpu]
        [--variants plain,channels_last,compile,channels_last+compile]
        [--teacher FOLDER --teacher-cfg-scale S --variants plain,teacher_bf16]

Every variant trains through :func:`zeroshot_core.training.loop.train_iter` (the product's
step: drawing the batch, forward, backward, AdamW, EMA) on the bundled T1 phantom, in a
fresh model folder, with the same seed. The first ``--warmup`` steps are timed apart
(``torch.compile`` compiles during them), then ``--steps`` steps are timed. Within each
repeat the variants run one after the other, so a change of machine load touches all
of them; the table gives the median seconds per step over the repeats and its ratio to
``plain`` (above 1: slower), and the seconds to the end of the warm-up steps in each repeat
(loading the slices included: the same for every variant; a first untimed run has paid
for the imports). The loss of the last step is printed too: the switches change
only float rounding, so it should agree to a few digits. A variant the program refuses
(``--compile`` where the compiled gradients disagree with eager ones,
:mod:`zeroshot_core.training.speed`) is reported with its one-line reason and not retried.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from zeroshot_core.errors import ConfigError
from zeroshot_core.io.formats import save_volume
from zeroshot_core.model import acceleration
from zeroshot_core.model.store import read_card
from zeroshot_core.samples.sample_data import load_sample
from zeroshot_core.training.loop import TrainConfig, train_iter


def run(targets: Path, out: Path, args: argparse.Namespace, variant: str) -> tuple[float, float, float]:
    """(seconds of the warm-up steps, seconds per timed step, last loss) of one training run."""
    switches = set(variant.split("+")) - {"plain"}
    distil = {}
    if args.teacher is not None:
        card = read_card(args.teacher)
        distil = {"teacher": str(args.teacher), "teacher_cfg_scale": args.teacher_cfg_scale,
                  "guidance": card.guidance, "spacing_mm": card.training.get("spacing_mm")}
    config = TrainConfig(model_size=args.model_size, image_size=args.image_size, batch_size=args.batch_size,
                         max_steps=args.warmup + args.steps, checkpoint_every=0, device=args.device,
                         segmenters=(), channels_last="channels_last" in switches, compile="compile" in switches,
                         **distil)
    probe = acceleration.cpu_has_bfloat16
    acceleration.cpu_has_bfloat16 = lambda: "teacher_bf16" in switches  # what load_teacher asks
    try:
        return _timed(targets, out, config, args)
    finally:
        acceleration.cpu_has_bfloat16 = probe


def _timed(targets: Path, out: Path, config: TrainConfig, args: argparse.Namespace) -> tuple[float, float, float]:
    marks: list[float] = []
    loss = float("nan")
    start = time.perf_counter()
    for event in train_iter([targets], out, config):
        if config.device == "cuda":
            torch.cuda.synchronize()
        marks.append(time.perf_counter())
        loss = event.loss
    first = marks[0] - start  # includes loading the slices (the same for every variant)
    return first + marks[args.warmup - 1] - marks[0], (marks[-1] - marks[args.warmup - 1]) / args.steps, loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model-size", default="small")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=3, help="untimed first steps per run (compilation)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave the default)")
    parser.add_argument("--variants", default="plain,channels_last,compile,channels_last+compile")
    parser.add_argument("--teacher", type=Path, help="distil from this model folder (train --teacher)")
    parser.add_argument("--teacher-cfg-scale", type=float, default=1.0)
    args = parser.parse_args()
    if args.warmup < 1 or args.steps < 1:
        parser.error("--warmup and --steps must be >= 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    variants = args.variants.split(",")
    if "plain" not in variants:
        variants.insert(0, "plain")
    warm: dict[str, list[float]] = {v: [] for v in variants}
    per_step: dict[str, list[float]] = {v: [] for v in variants}
    losses: dict[str, float] = {}
    refused: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        targets = save_volume(load_sample("t1"), Path(tmp) / "t1.nii.gz")
        quick = argparse.Namespace(**{**vars(args), "warmup": 1, "steps": 1})
        run(targets, Path(tmp) / "imports", quick, "plain")  # untimed: the first run in a process pays the imports
        for repeat in range(args.repeats):
            for variant in [v for v in variants if v not in refused]:
                try:
                    first, step_s, losses[variant] = run(targets, Path(tmp) / f"{variant}-{repeat}", args, variant)
                except ConfigError as exc:
                    refused[variant] = str(exc)
                    print(f"repeat {repeat + 1}: {variant}: refused: {exc}", flush=True)
                    continue
                warm[variant].append(first)
                per_step[variant].append(step_s)
                print(f"repeat {repeat + 1}: {variant}: first {args.warmup} steps {first:.1f} s, "
                      f"then {step_s:.4f} s/step", flush=True)
    plain = statistics.median(per_step["plain"])
    print(f"\ndevice={args.device} threads={torch.get_num_threads()} torch={torch.__version__} "
          f"model={args.model_size}@{args.image_size}px batch={args.batch_size} "
          f"steps={args.steps} (after {args.warmup} warm-up) repeats={args.repeats}")
    print("| variant | s/step (median) | ratio to plain | first steps, s (each repeat) | last loss |")
    print("|---|---|---|---|---|")
    for variant in variants:
        if variant in refused:
            print(f"| {variant} | refused | | | {refused[variant]} |")
            continue
        median = statistics.median(per_step[variant])
        firsts = ", ".join(f"{w:.1f}" for w in warm[variant])
        print(f"| {variant} | {median:.4f} | {median / plain:.3f} | {firsts} | {losses[variant]:.5f} |")


if __name__ == "__main__":
    main()
