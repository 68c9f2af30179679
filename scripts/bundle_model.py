"""Copy a trained model folder into the package as a bundled model, and keep its checkpoint.

    .venv/bin/python scripts/bundle_model.py RUN_DIR NAME [--note TEXT]

writes ``src/zeroshot_core/model/bundled/NAME/{model.json, model.safetensors}`` (float16 weights)
and ``checkpoints/NAME/{training_state-STEP.safetensors, training_state.json}`` (float32 raw
weights, bfloat16 AdamW moments; the run's state-file name is kept), replacing the previous
ones so history does not grow with every retraining. To continue training later::

    mkdir -p runs/NAME && cp src/zeroshot_core/model/bundled/NAME/* checkpoints/NAME/* runs/NAME/
    zeroshot train BRAINS/ --out runs/NAME --resume --max-steps N [same flags]

(for the bundled brain-only models, BRAINS is made by ``scripts/prepare_ixi_brain.py``; the
flags are those of the model card: e.g. ``--guidance lmi --image-size 64 --model-size small
--batch-size 8 --lr 3e-4 --mask-erosion 1``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from zeroshot_core.model.store import ModelCard, load_weights, read_card, save_model, save_tensors, write_json
from zeroshot_core.training.checkpoint import LEGACY_TENSORS, STATE_JSON

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("name")
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    card = read_card(args.run_dir)
    unet = load_weights(args.run_dir, card)
    data = card.to_dict()
    data["notes"] = args.note or data.get("notes", "")
    data["training"]["data_licence"] = "IXI dataset, CC BY-SA 3.0 (brain-development.org/ixi-dataset)"
    package_dir = REPO / "src" / "zeroshot_core" / "model" / "bundled" / args.name
    save_model(package_dir, unet, ModelCard.from_dict(data), dtype=torch.float16)

    meta = json.loads((args.run_dir / STATE_JSON).read_text())
    tensor_name = meta.get("tensors", LEGACY_TENSORS)
    state = load_file(str(args.run_dir / tensor_name))
    compact = {}
    for key, value in state.items():
        if key.startswith("ema."):
            continue  # the EMA weights are the model itself
        if key.startswith("opt.") and value.is_floating_point() and value.ndim:
            value = value.to(torch.bfloat16)
        compact[key] = value
    checkpoint_dir = REPO / "checkpoints" / args.name
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    for old in checkpoint_dir.glob("training_state*"):
        old.unlink()
    save_tensors(checkpoint_dir / tensor_name, compact)
    write_json(checkpoint_dir / STATE_JSON, meta)
    sizes = {p.name: p.stat().st_size for d in (package_dir, checkpoint_dir) for p in d.iterdir()}
    print(f"bundled {args.name}: steps={card.training.get('steps')} files={sizes}")


if __name__ == "__main__":
    main()
