"""Copy a trained model folder into the package as a bundled model, and keep its checkpoint.

    .venv/bin/python scripts/bundle_model.py RUN_DIR NAME [--note TEXT]

writes ``src/zeroshot_core/model/bundled/NAME/{model.json, model.safetensors}`` (float16 weights)
and ``checkpoints/NAME/{training_state-STEP.safetensors, training_state.json}`` (float32 raw
weights, bfloat16 AdamW moments; the run's state-file name is kept), replacing the previous
ones so history does not grow with every retraining. ``--cfg-scale S --cfg-note TEXT`` records the model's measured default classifier-free
guidance scale in the card (``sampling``), ``--steps N --steps-note TEXT`` its default sampling steps
(a ``train --teacher-steps`` run's card already names them). ``--checkpoint-only`` writes only ``checkpoints/NAME`` (that state plus the
run's own ``model.json``/``model.safetensors``), for a run that is kept but not bundled. To
continue training later::

    mkdir -p runs/NAME && cp src/zeroshot_core/model/bundled/NAME/* checkpoints/NAME/* runs/NAME/
    zeroshot train BRAINS/ --out runs/NAME --resume --max-steps N [same flags]

(for the bundled brain-only models, BRAINS is made by ``scripts/prepare_ixi_brain.py``; the
flags are those of the model card: e.g. ``--guidance lmi --image-size 64 --model-size small
--batch-size 8 --lr 3e-4 --mask-erosion 1``).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file

from zeroshot_core.model.store import ModelCard, load_weights, read_card, save_model, save_tensors, write_json
from zeroshot_core.training.checkpoint import LEGACY_TENSORS, STATE_JSON

REPO = Path(__file__).resolve().parents[1]


def write_checkpoint(run_dir: Path, name: str) -> Path:
    """``checkpoints/NAME``: the run's training state without the EMA (the model weights are the
    EMA) and with bfloat16 AdamW moments, under the run's own state-file name."""
    meta = json.loads((run_dir / STATE_JSON).read_text())
    tensor_name = meta.get("tensors", LEGACY_TENSORS)
    compact = {}
    for key, value in load_file(str(run_dir / tensor_name)).items():
        if key.startswith("ema."):
            continue  # the EMA weights are the model itself
        if key.startswith("opt.") and value.is_floating_point() and value.ndim:
            value = value.to(torch.bfloat16)
        compact[key] = value
    checkpoint_dir = REPO / "checkpoints" / name
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    for old in checkpoint_dir.glob("training_state*"):
        old.unlink()
    save_tensors(checkpoint_dir / tensor_name, compact)
    write_json(checkpoint_dir / STATE_JSON, meta)
    return checkpoint_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("name")
    parser.add_argument("--note", default="")
    parser.add_argument("--cfg-scale", type=float,
                        help="the model's default classifier-free guidance scale (card sampling.cfg_scale), as "
                             "measured on the validation; needs --cfg-note")
    parser.add_argument("--cfg-note", default="", help="how --cfg-scale was chosen (card sampling.note)")
    parser.add_argument("--steps", type=int,
                        help="the model's default sampling steps (card sampling.steps), e.g. those a student was "
                             "distilled for; needs --steps-note (a --teacher-steps run records its own)")
    parser.add_argument("--steps-note", default="", help="why --steps (card sampling.note)")
    parser.add_argument("--checkpoint-only", action="store_true",
                        help="keep only the resumable state (checkpoints/NAME: the compact training state "
                             "and the run's own model files); bundle nothing")
    args = parser.parse_args()
    if args.cfg_scale is not None and not args.cfg_note:
        parser.error("--cfg-scale needs --cfg-note: say which measurement chose it")
    if args.steps is not None and not args.steps_note:
        parser.error("--steps needs --steps-note: say why")
    if args.checkpoint_only:
        checkpoint_dir = write_checkpoint(args.run_dir, args.name)
        for name in ("model.json", "model.safetensors"):  # the float32 EMA: what a resume reads as its EMA
            shutil.copyfile(args.run_dir / name, checkpoint_dir / name)
        print(f"checkpoint {args.name}: files={ {p.name: p.stat().st_size for p in checkpoint_dir.iterdir()} }")
        return
    card = read_card(args.run_dir)
    unet = load_weights(args.run_dir, card)
    data = card.to_dict()
    data["notes"] = args.note or data.get("notes", "")
    data["training"]["data_licence"] = "IXI dataset, CC BY-SA 3.0 (brain-development.org/ixi-dataset)"
    sampling = dict(data.get("sampling") or {})  # a --teacher-steps run's card names its steps
    notes = [sampling.pop("note")] if sampling.get("note") else []
    if args.steps is not None:
        sampling["steps"] = args.steps
        notes = [args.steps_note]
    if args.cfg_scale is not None:
        sampling["cfg_scale"] = args.cfg_scale
        notes.append(args.cfg_note)
    data["sampling"] = {**sampling, "note": "; ".join(notes)} if sampling else {}
    package_dir = REPO / "src" / "zeroshot_core" / "model" / "bundled" / args.name
    save_model(package_dir, unet, ModelCard.from_dict(data), dtype=torch.float16)

    checkpoint_dir = write_checkpoint(args.run_dir, args.name)
    sizes = {p.name: p.stat().st_size for d in (package_dir, checkpoint_dir) for p in d.iterdir()}
    print(f"bundled {args.name}: steps={card.training.get('steps')} files={sizes}")


if __name__ == "__main__":
    main()
