"""Set a bundled model's sampling defaults (card ``sampling``) and default-for claim, weights untouched.

    .venv/bin/python scripts/card_defaults.py NAME [--steps N] [--cfg-scale S]
        [--refiner MODEL --refine-steps K] [--default-for GUIDANCE] [--notes TEXT] --note TEXT

rewrites ``src/zeroshot_core/model/bundled/NAME/model.json`` (validated as a model card,
written atomically). ``--note`` replaces ``sampling.note`` and must say which measurement
chose the values (docs/benchmarks.md). ``--default-for lmi`` adds the guidance to
``training.default_for``, so that ``zeroshot translate`` without ``--model`` picks this model
for it (:func:`zeroshot_core.model.loading.models_by_guidance`); ``--default-for ''`` clears it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from zeroshot_core.model.store import CARD_FILE, ModelCard, read_card, write_json

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="bundled model folder name, e.g. t1-lmi-lite")
    parser.add_argument("--steps", type=int)
    parser.add_argument("--cfg-scale", type=float)
    parser.add_argument("--refiner", help="bundled model (or folder beside this one) taking the last steps")
    parser.add_argument("--refine-steps", type=int)
    parser.add_argument("--default-for", help="guidance this model is the default for ('' clears the claim)")
    parser.add_argument("--note", required=True, help="which measurement chose these values")
    parser.add_argument("--notes", help="replace the card's free-text notes (e.g. a stale statement)")
    args = parser.parse_args()
    folder = REPO / "src" / "zeroshot_core" / "model" / "bundled" / args.name
    data = read_card(folder).to_dict()
    sampling = dict(data.get("sampling") or {})
    for key in ("steps", "cfg_scale", "refiner", "refine_steps"):
        if getattr(args, key) is not None:
            sampling[key] = getattr(args, key)
    sampling["note"] = args.note
    data["sampling"] = sampling
    if args.notes is not None:
        data["notes"] = args.notes
    if args.default_for is not None:
        data["training"]["default_for"] = [args.default_for] if args.default_for else []
        if not args.default_for:
            data["training"].pop("default_for")
    card = ModelCard.from_dict(data)  # validates before anything is written
    write_json(folder / CARD_FILE, card.to_dict())
    print(json.dumps({"sampling": card.sampling, "default_for": card.training.get("default_for")}, indent=1))


if __name__ == "__main__":
    main()
