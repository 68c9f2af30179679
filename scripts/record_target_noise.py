"""Measure the noise of a model's training slices and record it in its card (for ``--denoise auto``).

Models trained since ``--denoise auto`` exists record ``training["target_noise"]``
themselves. For older ones this script rebuilds the training slices exactly as ``train``
did — the files named in the card, looked for in FOLDER, loaded with the card's image
size, spacing, guidance and filter mask — measures them with
:func:`zeroshot_core.imaging.denoise.relative_noise` and rewrites ``model.json``
(atomically; the weights are not touched). The bundled models' files are the
skull-stripped IXI T1 made by ``scripts/prepare_ixi_brain.py``:

    .venv/bin/python scripts/record_target_noise.py runs/ixi_brain src/zeroshot_core/model/bundled/t1-*
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from zeroshot_core.diffusion.auto_denoise import CARD_KEY
from zeroshot_core.imaging.denoise import relative_noise
from zeroshot_core.imaging.mask import MaskParams
from zeroshot_core.model.store import CARD_FILE, read_card, write_json
from zeroshot_core.plugins.manager import guidance_registry
from zeroshot_core.training.data import load_training_set
from zeroshot_core.training.native_data import load_native_training_set


def measure(model: Path, folder: Path) -> float | None:
    """The noise level of ``model``'s training slices, rebuilt from the files in ``folder``."""
    card = read_card(model)
    files = [folder / name for name in card.training.get("files", [])]
    missing = [f.name for f in files if not f.is_file()]
    if not files or missing:
        raise SystemExit(f"{model}: training files missing from {folder}: {', '.join(missing) or 'none listed'}")
    guidance = guidance_registry().create(card.guidance, **card.guidance_params)
    spacing = card.training.get("spacing_mm")
    if spacing is not None:
        data = load_native_training_set(files, guidance, float(spacing), card.image_size)
    else:
        data = load_training_set(files, guidance, card.image_size, MaskParams.resolve(None, card.mask))
    return relative_noise(data.images[:, 0].numpy(), data.masks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="folder holding the training files the cards name")
    parser.add_argument("models", type=Path, nargs="+", help="model folders to update")
    args = parser.parse_args()
    for model in args.models:
        level = measure(model, args.folder)
        card = read_card(model).to_dict()
        card["training"][CARD_KEY] = None if level is None else round(level, 5)
        write_json(model / CARD_FILE, card)
        print(f"{model}: training slices' noise {level:.2%} of their intensity range" if level is not None
              else f"{model}: no slice with enough foreground", file=sys.stderr)


if __name__ == "__main__":
    main()
