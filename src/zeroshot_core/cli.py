"""The ``zeroshot`` command line.

Every user error prints one line ``zeroshot: error: ...`` and exits with code 2;
Ctrl-C exits with 130 and leaves no partial output.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Sequence

from zeroshot_core import __version__
from zeroshot_core.errors import ConfigError, ZeroshotError


def _key_values(items: Sequence[str] | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"guidance parameter {item!r} must look like NAME=VALUE")
        key, text = item.split("=", 1)
        try:
            params[key.strip()] = json.loads(text)
        except ValueError:
            params[key.strip()] = text
    return params


def _slice_list(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    indices: list[int] = []
    try:
        for part in text.split(","):
            if ":" in part:
                start, stop = part.split(":", 1)
                indices.extend(range(int(start), int(stop)))
            else:
                indices.append(int(part))
    except ValueError:
        raise ConfigError(f"--slices {text!r}: use indices like 40,41 or a range 40:60") from None
    return tuple(indices)


# Literal so that building the parser imports no torch; tests check they match the core's
# ``sampling.SCHEDULER_NAMES`` and ``training.DEVICE_NAMES``.
SCHEDULER_CHOICES = ("ddim", "dpm", "ddpm", "sde")
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def _add_sampling_options(parser: argparse.ArgumentParser, steps: int) -> None:
    parser.add_argument("--steps", type=int, default=steps, help=f"sampling steps (default {steps})")
    parser.add_argument("--scheduler", default="ddim", choices=SCHEDULER_CHOICES)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    parser.add_argument("--batch-size", type=int, default=8, help="slices sampled together (default 8)")
    parser.add_argument("--cfg-scale", type=float, default=1.0, metavar="S",
                        help="classifier-free guidance scale, e.g. 2 (default 1 = off; needs a model trained "
                             "with --condition-dropout)")


def _add_mask_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("filter mask (threshold_multiotsu -> erosion -> small objects -> holes)")
    group.add_argument("--no-mask", action="store_true", help="do not mask the background")
    group.add_argument("--mask-classes", type=int, default=3, help="multi-Otsu classes (default 3)")
    group.add_argument("--mask-erosion", type=int, default=2, help="erosion radius in voxels (default 2)")
    group.add_argument("--mask-min-object", type=int, default=64, help="smallest object kept, voxels (default 64)")
    group.add_argument("--mask-hole-area", type=int, default=1024, help="largest hole filled, voxels (default 1024)")
    group.add_argument("--mask-keep-all", action="store_true", help="keep all components, not only the largest")


def _mask_params(args: argparse.Namespace):
    from zeroshot_core.mask import MaskParams

    return MaskParams(enabled=not args.no_mask, classes=args.mask_classes, erosion_radius=args.mask_erosion,
                      min_object_size=args.mask_min_object, hole_area=args.mask_hole_area,
                      keep_largest=not args.mask_keep_all)


def _progress_bar(total: int, desc: str, quiet: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="step", disable=quiet, dynamic_ncols=True, file=sys.stderr)


def cmd_train(args: argparse.Namespace) -> int:
    from zeroshot_core.training import TrainConfig, train_iter

    config = TrainConfig(
        guidance=args.guidance, guidance_params=_key_values(args.guidance_param), image_size=args.image_size,
        model_size=args.model_size, max_steps=args.max_steps, batch_size=args.batch_size,
        learning_rate=args.lr, ema_decay=args.ema_decay, checkpoint_every=args.checkpoint_every,
        seed=args.seed, device=args.device, augment=not args.no_augment, mask=_mask_params(args),
        target_modality=args.target_modality, segmenters=tuple(args.segmenters.split(",")) if args.segmenters else (),
        prediction=args.prediction, min_snr_gamma=args.min_snr_gamma, condition_dropout=args.condition_dropout,
        contrast_randomisation=args.contrast_randomisation, contrast_variants=args.contrast_variants,
        spacing_mm=args.spacing_mm, notes=args.notes)
    bar = None
    for event in train_iter(args.targets, args.out, config, resume=args.resume):
        if bar is None:
            bar = _progress_bar(event.max_steps, "train", args.quiet)
            bar.update(event.step - 1)
        bar.update(1)
        bar.set_postfix(loss=f"{event.loss:.4f}", slices=event.slices, refresh=False)
    if bar is not None:
        bar.close()
    print(f"model written to {args.out}")
    return 0


def _translate_options(args: argparse.Namespace):
    from zeroshot_core.consistency import ConsistencyParams
    from zeroshot_core.translation import TranslateOptions

    params = _key_values(args.guidance_param)
    if args.strength is not None:
        params["strength"] = args.strength
    consistency = ConsistencyParams(args.candidates, args.rounds, args.first_slice_threshold) if args.consistency else None
    return TranslateOptions(steps=args.steps, scheduler=args.scheduler, seed=args.seed, device=args.device,
                            batch_size=args.batch_size, mask=_mask_params(args), consistency=consistency,
                            slices=_slice_list(args.slices), axis=args.axis, guidance_params=params,
                            cfg_scale=args.cfg_scale)


def cmd_translate(args: argparse.Namespace) -> int:
    from zeroshot_core.translation import TranslationResult, translate_iter
    from zeroshot_core.volumes import check_output_path, load_volume, save_volume

    out = check_output_path(args.out, args.source)
    labels_out = check_output_path(args.labels, args.source, args.out) if args.labels else None
    source = load_volume(args.source)
    bar = None
    result = None
    for event in translate_iter(source, args.model, args.guidance, _translate_options(args)):
        if isinstance(event, TranslationResult):
            result = event
            continue
        if bar is None:
            bar = _progress_bar(event.slices_total * max(event.steps_total, 1), "translate", args.quiet)
        bar.n = int(round(event.fraction * bar.total))
        bar.set_postfix(slice=f"{event.slices_done}/{event.slices_total}", refresh=False)
        bar.refresh()
    if bar is not None:
        bar.close()
    save_volume(result.volume, out)
    print(f"translation ({result.guidance}, {len(result.slices)} slices) written to {out}")
    if labels_out is not None:
        from zeroshot_core.api import segment

        labels = segment(result.volume, result.model, args.segmenter, _mask_params(args))
        save_volume(result.volume.with_data(labels), labels_out, dtype="int16")
        print(f"segmentation ({args.segmenter}) written to {labels_out}")
    return 0


def cmd_segment(args: argparse.Namespace) -> int:
    from zeroshot_core.api import segment
    from zeroshot_core.volumes import check_output_path, load_volume, save_volume

    out = check_output_path(args.out, args.image)
    image = load_volume(args.image)
    labels = segment(image, args.model, args.segmenter, _mask_params(args) if args.custom_mask else None)
    save_volume(image.with_data(labels), out, dtype="int16")
    print(f"segmentation ({args.segmenter}) written to {out}")
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from zeroshot_core.plugins import plugins_disabled, registries

    found = registries()
    rows = [("kind", "name", "package", "version")]
    rows += [("guidance", e.name, e.package, e.version) for e in found.guidance]
    rows += [("segmenter", e.name, e.package, e.version) for e in found.segmenters]
    if args.json:
        print(json.dumps([dict(zip(rows[0], r)) for r in rows[1:]], indent=2))
        return 0
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    if plugins_disabled():
        print("(third-party plugins disabled by ZEROSHOT_DISABLE_PLUGINS)")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from zeroshot_core.api import list_models

    models = list_models()
    if args.json:
        print(json.dumps([{"path": str(p), "card": c} for p, c in models], indent=2))
        return 0
    if not models:
        print("no bundled models; train one with 'zeroshot train'")
    for path, card in models:
        training = card.get("training", {})
        print(f"{path.name}: guidance={card['guidance']} size={card['model_size']} image={card['image_size']}px "
              f"target={card['target_modality']} steps={training.get('steps')} "
              f"segmenters={','.join(card.get('segmenters', {}))}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``zeroshot``."""
    from zeroshot_core import cli_commands

    parser = argparse.ArgumentParser(prog="zeroshot", description="Source-free diffusion translation of medical images.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads for torch (default: torch's choice; 1 is fastest on a busy machine)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser("train", help="train a model on target-modality images only")
    train.add_argument("targets", nargs="+", help="NIfTI/PNG/TIFF/NPY files or folders of the target modality")
    train.add_argument("--out", required=True, help="model folder to write")
    train.add_argument("--guidance", default="contour", help="guidance strategy (see 'zeroshot plugins')")
    train.add_argument("--guidance-param", action="append", metavar="NAME=VALUE", help="guidance parameter")
    train.add_argument("--image-size", type=int, default=64)
    train.add_argument("--model-size", default="small", choices=["tiny", "small", "base"])
    train.add_argument("--max-steps", type=int, default=10000, help="total optimiser steps (cumulative)")
    train.add_argument("--batch-size", type=int, default=16)
    train.add_argument("--lr", type=float, default=2e-4)
    train.add_argument("--ema-decay", type=float, default=0.999)
    train.add_argument("--checkpoint-every", type=int, default=500)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    train.add_argument("--no-augment", action="store_true")
    train.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    train.add_argument("--target-modality", default="T1")
    train.add_argument("--segmenters", default="kmeans", help="comma-separated segmenters to fit (default kmeans)")
    recipe = train.add_argument_group("training recipe")
    recipe.add_argument("--prediction", default="epsilon", choices=["epsilon", "v_prediction", "sample"],
                        help="what the network predicts: the noise (default), v = a*eps - s*x0, or x0")
    recipe.add_argument("--min-snr-gamma", type=float, default=None, metavar="GAMMA",
                        help="Min-SNR-gamma loss weighting, e.g. 5 (default off)")
    recipe.add_argument("--condition-dropout", type=float, default=0.0, metavar="P",
                        help="probability of zeroing the condition channels, needed for --cfg-scale at "
                             "sampling (e.g. 0.1; default 0)")
    recipe.add_argument("--contrast-randomisation", type=float, default=0.0, metavar="P",
                        help="probability of computing the guide from a randomly re-contrasted slice, so that "
                             "it looks like one from another modality (e.g. 0.8; default 0)")
    recipe.add_argument("--contrast-variants", type=int, default=4, metavar="N",
                        help="randomised guides precomputed per slice (default 4)")
    recipe.add_argument("--spacing-mm", type=float, default=None, metavar="MM",
                        help="whole-head mode: resample slices to this pixel spacing and train on random "
                             "--image-size crops (default: pad and resize each slice to --image-size)")
    recipe.add_argument("--notes", default="", help="free text stored in the model card")
    _add_mask_options(train)
    train.set_defaults(func=cmd_train)

    translate = sub.add_parser("translate", help="translate a volume to the model's target modality")
    translate.add_argument("source", help="source image (NIfTI, PNG, TIFF, NPY)")
    translate.add_argument("--out", required=True, help="output image (same grid and affine as the source)")
    translate.add_argument("--model", help="model folder (default: the bundled model for --guidance)")
    translate.add_argument("--guidance", help="guidance strategy (default: the model's)")
    translate.add_argument("--guidance-param", action="append", metavar="NAME=VALUE")
    translate.add_argument("--strength", type=float, help="start fraction of the noise schedule (SDEdit t0)")
    _add_sampling_options(translate, 50)
    translate.add_argument("--slices", help="slice indices to translate, e.g. 40,41 or 30:60 (default all)")
    translate.add_argument("--axis", type=int, choices=[0, 1, 2], help="slicing axis (default: through-plane)")
    translate.add_argument("--consistency", action="store_true", help="adjacent-slice candidate selection")
    translate.add_argument("--candidates", type=int, default=4, help="candidates per round (consistency)")
    translate.add_argument("--rounds", type=int, default=1, help="rounds of candidates (consistency)")
    translate.add_argument("--first-slice-threshold", type=float, default=-0.9,
                           help="minimum normalised mean of a first-slice candidate (consistency)")
    translate.add_argument("--labels", help="also segment the translation and write the labels here")
    translate.add_argument("--segmenter", default="kmeans")
    _add_mask_options(translate)
    translate.set_defaults(func=cmd_translate)

    seg = sub.add_parser("segment", help="segment a target-modality image with a model's segmenter")
    seg.add_argument("image")
    seg.add_argument("--out", required=True, help="label image to write")
    seg.add_argument("--model", help="model folder holding the fitted segmenter (default: bundled)")
    seg.add_argument("--segmenter", default="kmeans")
    seg.add_argument("--custom-mask", action="store_true", help="use the --mask-* options instead of the model's")
    _add_mask_options(seg)
    seg.set_defaults(func=cmd_segment)

    plugins = sub.add_parser("plugins", help="list guidance strategies and segmenters")
    plugins.add_argument("--json", action="store_true")
    plugins.set_defaults(func=cmd_plugins)

    models = sub.add_parser("models", help="list bundled models with their model cards")
    models.add_argument("--json", action="store_true")
    models.set_defaults(func=cmd_models)

    cli_commands.add_report_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``zeroshot``; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.threads < 0:
        parser.error("--threads must be >= 0")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        return int(args.func(args) or 0)
    except ZeroshotError as exc:
        print(f"zeroshot: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("zeroshot: cancelled; no output was written", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
