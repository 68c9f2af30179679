"""A real IXI PD and T2 slice (one dual-echo scan) translated to T1: figure and label agreement.

The slice ``../shared/data/ixi_t2_pd_slice/IXI040-Guys-0724-{PD,T2}_69.mat`` (IXI, CC BY-SA
3.0; 256×256 int16, 0.9375 mm pixels) is a real whole-head acquisition: scalp, skull and
background included. It has no T1 partner and no labels, so this script shows, rather than
scores, what each model makes of it, and measures one thing that needs no reference: PD and
T2 come from the same echo train and are pixel-aligned, so a translator that carries anatomy
gives the same T1 — and the same K-Means tissue labels — from either. The agreement (mean
Dice of CSF/GM/WM between the labels of the PD→T1 and T2→T1 translations, inside both
translations' masks) is printed per model. It is a consistency check, not accuracy: an image
that ignored its source altogether would agree perfectly, so read it next to the figure.

    .venv/bin/python benchmarks/real_slice.py --out docs/images/real_ixi_pd_t2.png \\
        --model lmi=src/zeroshot_core/model/bundled/t1-lmi \\
        --model contour=src/zeroshot_core/model/bundled/t1-contour --steps 25

``--nifti DIR`` instead writes the two slices as NIfTI (the affine below), the input of
``zeroshot demo --real``. ``--model NAME=FOLDER[:KEY=VALUE...]`` may repeat (keys as in ``bench_wholehead.py``). The figure's rows are the PD and
the T2 source; its columns the source, each model's translation, and the K-Means labels of
the first model's translation.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import scipy.io
import torch

from zeroshot_core.diffusion.running import run_translation
from zeroshot_core.diffusion.translation import TranslateOptions
from zeroshot_core.evaluation.metrics import dice
from zeroshot_core.evaluation.report import _colour, _draw_text, _grey
from zeroshot_core.io.atomic import atomic_write
from zeroshot_core.io.formats import save_volume
from zeroshot_core.io.volume import Volume
from zeroshot_core.segmentation import segment_translation

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_wholehead import (
    _model_spec as _spec,  # (the same NAME=FOLDER[:KEY=VALUE] rows)
)

PIXEL_MM, SLICE_MM = 0.9375, 1.2  # IXI T2/PD acquisition
MODALITIES = ("PD", "T2")


def load_slice(folder: Path, modality: str) -> Volume:
    """The .mat slice as a one-slice volume (256, 256, 1): rows run anterior→posterior,
    columns the patient's right→left (radiological display), so the axial plane is axis 2."""
    data = scipy.io.loadmat(next(folder.glob(f"*-{modality}_*.mat")))["dcm"].astype(np.float32)
    affine = np.array([[0, -PIXEL_MM, 0, 0], [-PIXEL_MM, 0, 0, 0], [0, 0, SLICE_MM, 0], [0, 0, 0, 1]], float)
    return Volume(data[:, :, None], affine)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/ixi_t2_pd_slice"))
    parser.add_argument("--out", type=Path, default=Path("real_ixi_pd_t2.png"))
    parser.add_argument("--nifti", type=Path, help="only write the PD and T2 slice as NIfTI into this folder "
                        "(IXI040-PD-slice69.nii.gz, IXI040-T2-slice69.nii.gz: inputs for zeroshot demo --real) and stop")
    parser.add_argument("--model", action="append", default=[],
                        help="NAME=FOLDER[:cfg=S:samples=K:steps=N:scheduler=X] (repeat)")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sources = {m: load_slice(args.data, m) for m in MODALITIES}
    if args.nifti:
        args.nifti.mkdir(parents=True, exist_ok=True)
        for modality, source in sources.items():
            print(save_volume(source, args.nifti / f"IXI040-{modality}-slice69.nii.gz"))
        return
    if not args.model:
        parser.error("--model is required (unless --nifti)")
    rows: dict[str, list[np.ndarray]] = {m: [] for m in MODALITIES}
    first_labels: dict[str, np.ndarray] = {}
    print("| model | PD→T1 vs T2→T1 label agreement (mean Dice) | seconds per slice |\n|---|---|---|")
    for number, (name, folder, overrides) in enumerate(_spec(t) for t in args.model):
        options = TranslateOptions(**{"steps": args.steps, "device": "cpu", "axis": 2, **overrides})
        labels, masks = {}, {}
        started = time.perf_counter()
        for modality, source in sources.items():
            result = run_translation(source, folder, options=options)
            labels[modality] = segment_translation(result)[:, :, 0]
            masks[modality] = np.asarray(result.mask, bool)[:, :, 0]
            rows[modality].append(_grey(result.volume.data[:, :, 0], masks[modality]))
            if number == 0:
                first_labels[modality] = labels[modality]
        seconds = (time.perf_counter() - started) / len(sources)
        both = masks["PD"] & masks["T2"]
        agreement = dice(np.where(both, labels["PD"], 0), np.where(both, labels["T2"], 0), labels=(1, 2, 3))
        print(f"| {name} | {np.mean(list(agreement.values())):.3f} | {seconds:.1f} |", flush=True)
    tiles = []
    for modality, source in sources.items():
        plane = source.data[:, :, 0]
        tiles.append([_grey(plane, plane > np.percentile(plane, 50))] + rows[modality]
                     + [_colour(first_labels[modality])])
    names = ["source"] + [_spec(t)[0] for t in args.model] + [f"{_spec(args.model[0])[0]} labels"]
    gap, left, top = 4, 40, 18
    h, w = tiles[0][0].shape[:2]
    canvas = np.full((top + len(tiles) * (h + gap), left + len(names) * (w + gap), 3), 255, np.uint8)
    for r, row in enumerate(tiles):
        for c, tile in enumerate(row):
            canvas[top + r * (h + gap):top + r * (h + gap) + h, left + c * (w + gap):left + c * (w + gap) + w] = tile
    captions = [(left + c * (w + gap) + 4, 3, n) for c, n in enumerate(names)]
    captions += [(4, top + r * (h + gap) + h // 2, m) for r, m in enumerate(MODALITIES)]
    figure = _draw_text(canvas, captions)
    atomic_write(args.out, lambda tmp: iio.imwrite(tmp, figure, extension=".png"))
    print(f"figure written to {args.out}")


if __name__ == "__main__":
    main()
