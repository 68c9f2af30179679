"""Whole-head validation: simulated PD/T2 of held-out IXI subjects → T1, scored by K-Means Dice.

The validation set is built here, never trained on: the last two IXI subjects of
``../shared/data/ixi_t1`` in sorted order (IXI049, IXI051) are held out of training. Their
real T1 and DLMUSE labels give whole-head tissue maps (brain from the labels, fat, muscle,
bone and CSF from the T1 outside the brain), from which PD- and T2-weighted heads are
simulated with the spin-echo equation, bias field and Rician noise
(:mod:`zeroshot_core.samples.head_simulation`). Every output — the baselines, each model's
translation and the real T1 (the ceiling) — is labelled by ONE K-Means state fitted on the
brains of the eight training subjects (T1 inside DLMUSE > 0), and scored against the
DLMUSE-derived CSF/GM/WM inside the brain on central slices. The bundled phantom (PD→T1,
T2→T1) is scored the same way.

    .venv/bin/python benchmarks/bench_wholehead.py --out bench_wholehead \
        --model lmi=src/zeroshot_core/model/bundled/t1-lmi \
        --model lmi-wholehead=runs/t1-lmi-wholehead:cfg=2 --steps 25 --slices 12

``--model NAME=FOLDER[:KEY=VALUE...]`` may repeat; NAME is a row label, the guidance comes from
the model card; KEY is ``cfg`` (classifier-free guidance scale), ``samples`` (draws averaged per
slice), ``steps``, ``scheduler`` or ``denoise`` (``off``, ``nlm`` or ``auto``, the ``translate`` default), overriding the command's sampling settings for that row. Each
row's time and network evaluations per slice are printed. ``--sources pd`` (or ``t2``) scores
one source contrast only. Prints one Markdown table per case
and a summary (mean Dice over the validation heads, against 90 % of the real T1's score and the
shape-only control + 0.15).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

from zeroshot_core.choices import BASELINES
from zeroshot_core.diffusion.native_grid import cfg_scale_for, steps_for
from zeroshot_core.diffusion.refiner import resolve_refiner
from zeroshot_core.diffusion.translation import TranslateOptions
from zeroshot_core.evaluation.evaluator import evaluate
from zeroshot_core.evaluation.report import write_report
from zeroshot_core.imaging.head_mask import head_mask
from zeroshot_core.imaging.intensity import Normalisation
from zeroshot_core.imaging.orientation import (
    central_slices,
    slicing_axis,
    volume_slices,
)
from zeroshot_core.io.formats import save_volume, to_volume
from zeroshot_core.io.volume import Volume
from zeroshot_core.model.acceleration import Acceleration
from zeroshot_core.model.prediction import guided_step_count
from zeroshot_core.model.store import read_card
from zeroshot_core.plugins.manager import segmenter_registry
from zeroshot_core.samples.head_simulation import (
    HeadSimulationParams,
    dlmuse_tissue_labels,
    head_tissue_maps,
    simulate_head,
)
from zeroshot_core.samples.sample_data import load_sample

HELD_OUT = 2
PERCENTILES = (0.5, 99.5)


def _subjects(shared: Path) -> list[tuple[str, Path, Path]]:
    images = sorted((shared / "nifti").glob("*T1_ds.nii.gz"))
    return [(p.name.split("-T1")[0], p, shared / "dlmuse" / p.name.replace(".nii.gz", "_DLMUSE.nii.gz"))
            for p in images]


def build_validation(shared: Path, work: Path) -> list[Path]:
    """Write ``t1``, ``pd``, ``t2``, ``labels`` NIfTI files of each held-out subject (cached)."""
    folders = []
    for name, t1_path, labels_path in _subjects(shared)[-HELD_OUT:]:
        folder = work / "validation" / name
        folders.append(folder)
        if (folder / "labels.nii.gz").is_file():
            continue
        folder.mkdir(parents=True, exist_ok=True)
        image = nib.load(t1_path)
        t1 = np.asarray(image.dataobj, np.float32)
        tissue = dlmuse_tissue_labels(np.asarray(nib.load(labels_path).dataobj))
        axis = slicing_axis(image.affine, t1.shape)
        spacing = tuple(float(s) for s in np.linalg.norm(image.affine[:3, :3], axis=0))
        maps = head_tissue_maps(t1, tissue, head_mask(t1, axis), spacing, HeadSimulationParams())
        volume = Volume(t1, image.affine)
        save_volume(volume, folder / "t1.nii.gz")
        for modality in ("pd", "t2"):
            save_volume(volume.with_data(simulate_head(maps, modality)), folder / f"{modality}.nii.gz")
        save_volume(volume.with_data(tissue.astype(np.float32)), folder / "labels.nii.gz", dtype=np.int16)
    return folders


def fit_kmeans(shared: Path) -> dict:
    """K-Means state fitted on the brains (DLMUSE > 0) of the training subjects' T1."""
    images, masks = [], []
    for _, t1_path, labels_path in _subjects(shared)[:-HELD_OUT]:
        image = nib.load(t1_path)
        data = np.asarray(image.dataobj, np.float32)
        brain = np.asarray(nib.load(labels_path).dataobj) > 0
        normalised = Normalisation.fit(data, PERCENTILES, brain).apply(data)
        axis = slicing_axis(image.affine, data.shape)
        for plane, mask in zip(volume_slices(normalised, axis), volume_slices(brain, axis)):
            if mask.sum() > 200:
                images.append(plane)
                masks.append(mask)
    segmenter = segmenter_registry().create("kmeans", state=None)
    segmenter.fit(images, masks)
    return segmenter.state()


SPEC_KEYS = {"cfg": ("cfg_scale", float), "samples": ("samples", int), "steps": ("steps", int),
             "scheduler": ("scheduler", str), "denoise": ("denoise", str), "cfg_steps": ("cfg_steps", float),
             "autocast": ("acceleration", lambda name: Acceleration(autocast=name)),
             "refiner": ("refiner", str), "refine": ("refine_steps", int), "seed": ("seed", int)}


def _model_spec(text: str) -> tuple[str, Path, dict]:
    """``NAME=FOLDER[:cfg=2:cfg_steps=0.5:samples=4:steps=10:scheduler=dpm:denoise=nlm:autocast=bf16:refiner=t1-lmi:refine=1:seed=1]``
    → name, folder, overrides."""
    name, _, rest = text.partition("=")
    folder, *options = rest.split(":")
    overrides = {}
    for option in options:
        key, _, value = option.partition("=")
        if key not in SPEC_KEYS:
            raise SystemExit(f"--model {text}: unknown key {key!r}; valid: {', '.join(SPEC_KEYS)}")
        field_name, kind = SPEC_KEYS[key]
        overrides[field_name] = kind(value)
    return name, Path(folder), overrides


def network_evaluations(options: TranslateOptions, card, folder: Path) -> str:
    """UNet evaluations per slice: steps × samples × (1 + the guided share of the steps with classifier-free
    guidance, the card's default included); with a refiner, the model's and the refiner's apart."""
    steps = steps_for(card, options.steps)
    found = resolve_refiner(folder, card, options.refiner, options.refine_steps, steps)
    refine, refiner_card = (found[1], found[2]) if found else (0, None)
    own = steps - refine
    calls = (own + guided_step_count(cfg_scale_for(card, options.cfg_scale), options.cfg_steps, own)) * options.samples
    if refiner_card is None:
        return str(calls)
    extra = (refine + guided_step_count(cfg_scale_for(refiner_card, None), 1.0, refine)) * options.samples
    return f"{calls} + {extra} of the refiner"


def run_case(title: str, source, target, labels, specs, state, args, out: Path) -> dict[str, float]:
    """Baselines once, then each model; returns mean Dice per row label."""
    axis = slicing_axis(labels.affine, labels.data.shape)
    slices = central_slices(labels.data > 0, axis, args.slices)
    options = TranslateOptions(steps=args.steps, scheduler=args.scheduler, device="cpu", slices=slices)
    scores: dict[str, float] = {}
    result = evaluate(source, target, labels, methods=BASELINES, options=options, segmenter_state=state)
    for method in result.methods:
        scores[method.method] = method.mean_dice
    scores["real T1 (ceiling)"] = result.target.mean_dice
    write_report(result, out / "baselines")
    for name, folder, overrides in specs:
        card = read_card(folder)
        guidance = card.guidance
        row_options = replace(options, **overrides)
        started = time.perf_counter()
        result = evaluate(source, target, labels, models={name: folder}, methods=(name,),
                          variants={name: (guidance, {})}, options=row_options, segmenter_state=state)
        row = result.methods[0]
        scores[name] = row.mean_dice if row.status == "ok" else float("nan")
        write_report(result, out / name)
        print(f"  {title} {name}: {row.status} mean Dice {scores[name]:.3f} "
              f"({time.perf_counter() - started:.0f} s, {network_evaluations(row_options, card, folder)} network "
              f"evaluations per slice) {row.reason}", flush=True)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=Path("../shared/data/ixi_t1"))
    parser.add_argument("--out", type=Path, default=Path("bench_wholehead"))
    parser.add_argument("--model", action="append", default=[], help="NAME=FOLDER[:cfg=S:samples=K:steps=N:scheduler=X:denoise=off|nlm|auto] (repeat)")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--slices", type=int, default=12, help="central slices per case (default 12)")
    parser.add_argument("--scheduler", default="ddim")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-phantom", action="store_true")
    parser.add_argument("--no-heads", action="store_true", help="score the phantom only")
    parser.add_argument("--sources", default="pd,t2", help="source contrasts to score, comma-separated (default pd,t2)")
    args = parser.parse_args()
    sources = [s.strip().lower() for s in args.sources.split(",") if s.strip()]
    if not sources or set(sources) - {"pd", "t2"}:
        raise SystemExit(f"--sources {args.sources}: give pd, t2 or both")
    torch.set_num_threads(args.threads)
    specs = [_model_spec(text) for text in args.model]
    state = fit_kmeans(args.shared)
    cases = []
    for folder in [] if args.no_heads else build_validation(args.shared, args.out):
        for modality in sources:
            cases.append((f"{folder.name} {modality.upper()}→T1", folder / f"{modality}.nii.gz",
                          folder / "t1.nii.gz", folder / "labels.nii.gz", "head"))
    if args.no_heads and args.no_phantom:
        raise SystemExit("--no-heads and --no-phantom leave nothing to score")
    if not args.no_phantom:
        for modality in sources:
            cases.append((f"phantom {modality.upper()}→T1", load_sample(modality), load_sample("t1"),
                          load_sample("labels"), "phantom"))
    table: dict[str, dict[str, float]] = {}
    for title, source, target, labels, _ in cases:
        out = args.out / "reports" / title.replace(" ", "_").replace("→", "_to_")
        table[title] = run_case(title, to_volume(source), to_volume(target), to_volume(labels), specs, state, args, out)
    rows = list(next(iter(table.values())))
    print("\n| case | " + " | ".join(rows) + " |")
    print("|---" * (len(rows) + 1) + "|")
    for title, scores in table.items():
        print(f"| {title} | " + " | ".join(f"{scores[r]:.3f}" for r in rows) + " |")
    for kind in ("head", "phantom"):
        titles = [c[0] for c in cases if c[4] == kind]
        if not titles:
            continue
        mean = {r: float(np.mean([table[t][r] for t in titles])) for r in rows}
        print(f"\nmean over {kind} cases ({len(titles)}): " + ", ".join(f"{r} {v:.3f}" for r, v in mean.items()))
        if kind == "head":
            print(f"goal: >= {0.9 * mean['real T1 (ceiling)']:.3f} (90 % of the real T1) and "
                  f">= {mean['shape'] + 0.15:.3f} (shape-only control + 0.15)")


if __name__ == "__main__":
    main()
