"""The ``zeroshot`` argument parser and entry point.

Every user error prints one line ``zeroshot: error: ...`` and exits with code 2;
warnings of the project print one line ``zeroshot: warning: ...``. SIGINT (Ctrl-C)
and SIGTERM exit with 130 and 143 and leave no partial output; ``train`` first
saves a checkpoint of the step it is on (:mod:`zeroshot_core.cli.signals`).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import Sequence

from zeroshot_core import __version__
from zeroshot_core.choices import DEVICE_NAMES, MODEL_SIZE_NAMES
from zeroshot_core.cli import commands, report_commands
from zeroshot_core.cli.options import (
    GUIDANCE_HELP,
    SEGMENTER_HELP,
    HelpFormatter,
    _add_acceleration_options,
    _add_mask_options,
    _add_sampling_options,
)
from zeroshot_core.cli.signals import Stopped, StopSignals
from zeroshot_core.errors import ZeroshotError, ZeroshotWarning

_default_show_warning = warnings.showwarning

_QUIET_HELP = "no progress bars"
_THREADS_HELP = "CPU threads for torch (default 0: torch's choice; 1 is fastest on a busy machine)"


def _add_global_options(parser: argparse.ArgumentParser, top: bool) -> None:
    """``-q`` and ``--threads``; a sub-command's copies leave the top-level value alone unless given."""
    group = parser.add_argument_group("global options (before or after the sub-command)") if not top else parser
    group.add_argument("-q", "--quiet", action="store_true", default=False if top else argparse.SUPPRESS,
                       help=_QUIET_HELP)
    group.add_argument("--threads", type=int, default=0 if top else argparse.SUPPRESS, metavar="N",
                       help=_THREADS_HELP)


_MANY_HELP = ("several files, folders, glob patterns ('scans/*.nii.gz') or @LIST (a text file of paths) "
              "write one output per input, named as the input, into the --out folder; sharded over the "
              "processes of torchrun/srun (RANK, WORLD_SIZE)")


def _add_batch_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("many inputs (see docs/scaling.md)")
    group.add_argument("--overwrite", action="store_true",
                       help="redo inputs whose outputs exist and are complete (default: skip them)")
    group.add_argument("--summary-json", metavar="FILE",
                       help="also write the summary (done, skipped, failed with reasons) as JSON; with several "
                            "processes each writes its own, NAME.rankR.json for NAME.json")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``zeroshot``.

    Every option of every sub-command has a help text and shows its default;
    ``-q``/``--quiet`` and ``--threads`` are accepted before or after the sub-command.
    """
    parser = argparse.ArgumentParser(prog="zeroshot", description="Source-free diffusion translation of medical images.",
                                     formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_global_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_SubParser)

    train = sub.add_parser("train", help="train a model on target-modality images only")
    train.add_argument("targets", nargs="+", help="NIfTI/PNG/TIFF/NPY files or folders of the target modality")
    train.add_argument("--out", required=True, help="model folder to write")
    train.add_argument("--guidance", default="contour", help=GUIDANCE_HELP)
    train.add_argument("--guidance-param", action="append", metavar="NAME=VALUE",
                       help="a parameter of the guidance strategy, e.g. radius=3 (repeatable)")
    train.add_argument("--image-size", type=int, default=64, metavar="PX", help="slice size the network sees, pixels")
    train.add_argument("--model-size", default="small", choices=MODEL_SIZE_NAMES,
                       help="UNet size (lite: a quarter of small's cost, for a --teacher student)")
    train.add_argument("--max-steps", type=int, default=10000, help="total optimiser steps (cumulative)")
    train.add_argument("--batch-size", type=int, default=16,
                       help="slices per optimiser step: the global batch, split evenly among the processes of "
                            "torchrun/srun (must divide by their number)")
    train.add_argument("--lr", type=float, default=2e-4,
                       help="AdamW learning rate (of the global batch: not scaled with the number of processes)")
    train.add_argument("--ema-decay", type=float, default=0.999, help="decay of the weights' moving average")
    train.add_argument("--checkpoint-every", type=int, default=500, metavar="STEPS",
                       help="write a resumable checkpoint every STEPS steps (0: only at the end)")
    train.add_argument("--seed", type=int, default=0, help="random seed (slices, noise, augmentation)")
    train.add_argument("--device", default="auto", choices=DEVICE_NAMES,
                       help="auto: CUDA, then Apple MPS, then the CPU")
    train.add_argument("--no-augment", action="store_true", help="no random flips/rotations/intensity changes")
    train.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    train.add_argument("--target-modality", default="T1", help="name of the modality of the training images")
    train.add_argument("--segmenters", default="kmeans",
                       help=f"comma-separated segmenters to fit ({SEGMENTER_HELP})")
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
    recipe.add_argument("--guide-noise", type=float, default=0.0, metavar="STD",
                        help="Rician noise of random strength up to STD ([0, 1] units) on each training guide's "
                             "reference, so that noisy sources (PD) guide by anatomy (e.g. 0.1; default 0)")
    recipe.add_argument("--spacing-mm", type=float, default=None, metavar="MM",
                        help="native-spacing mode: resample slices to this pixel spacing and train on random "
                             "--image-size crops (default: pad and resize each slice to --image-size)")
    recipe.add_argument("--init-from", default=None, metavar="MODEL",
                        help="fine-tune: start from this model folder's weights (same guidance, prediction and "
                             "model size; any image size or spacing) instead of a random start")
    recipe.add_argument("--teacher", default=None, metavar="MODEL",
                        help="distil: train on this model folder's predictions instead of the drawn noise (same "
                             "guidance, prediction and spacing; any size), e.g. a lite student of a small model")
    recipe.add_argument("--teacher-cfg-scale", type=float, default=1.0, metavar="S",
                        help="classifier-free guidance scale folded into the teacher's predictions, so that the "
                             "student samples without it (default 1: none)")
    recipe.add_argument("--teacher-steps", type=int, default=None, metavar="N",
                        help="progressive distillation: teach the student to sample in N DDIM steps what the "
                             "teacher does in 2N (e.g. 25; default: the teacher's one-step predictions)")
    recipe.add_argument("--notes", default="", help="free text stored in the model card")
    speed = train.add_argument_group("speed (the same maths; results differ only by float rounding)")
    speed.add_argument("--channels-last", action="store_true",
                       help="keep the UNet's weights and inputs in channels-last memory format")
    speed.add_argument("--compile", action="store_true",
                       help="compile the UNet with torch.compile (the start pays for the compilation); refused "
                            "if a probe step's gradients differ from the uncompiled UNet's")
    _add_mask_options(train)
    train.set_defaults(func=commands.cmd_train)

    translate = sub.add_parser("translate", help="translate a volume to the model's target modality")
    translate.add_argument("source", nargs="+", help=f"source image (NIfTI, PNG, TIFF, NPY); {_MANY_HELP}")
    translate.add_argument("--out", required=True, help="output image (same grid and affine as the source); a "
                                                        "folder for several inputs")
    translate.add_argument("--model", help="model folder (default: the bundled model for --guidance; for "
                                                "neither, the bundled lmi model)")
    translate.add_argument("--guidance", help=f"{GUIDANCE_HELP} (default: the model's)")
    translate.add_argument("--guidance-param", action="append", metavar="NAME=VALUE",
                           help="a parameter of the guidance strategy, e.g. radius=3 (repeatable; default: the "
                                "model's)")
    translate.add_argument("--strength", type=float, help="start fraction of the noise schedule (SDEdit t0)")
    _add_sampling_options(translate, None)
    translate.add_argument("--slices", help="slice indices to translate, e.g. 40,41 or 30:60 (default all)")
    translate.add_argument("--axis", type=int, choices=[0, 1, 2], help="slicing axis (default: through-plane)")
    translate.add_argument("--consistency", action="store_true", help="adjacent-slice candidate selection")
    translate.add_argument("--candidates", type=int, default=4, help="candidates per round (consistency)")
    translate.add_argument("--rounds", type=int, default=1, help="rounds of candidates (consistency)")
    translate.add_argument("--first-slice-threshold", type=float, default=-0.9,
                           help="minimum normalised mean of a first-slice candidate (consistency)")
    translate.add_argument("--labels", help="also segment the translation and write the labels here (a folder for "
                                            "several inputs)")
    translate.add_argument("--segmenter", default="kmeans", help=f"segmenter for --labels ({SEGMENTER_HELP})")
    _add_acceleration_options(translate)
    _add_mask_options(translate)
    _add_batch_options(translate)
    translate.set_defaults(func=commands.cmd_translate)

    seg = sub.add_parser("segment", help="segment a target-modality image with a model's segmenter")
    seg.add_argument("image", nargs="+", help=f"target-modality image (NIfTI, PNG, TIFF, NPY); {_MANY_HELP}")
    seg.add_argument("--out", required=True, help="label image to write; a folder for several inputs")
    seg.add_argument("--model", help="model folder holding the fitted segmenter (default: bundled)")
    seg.add_argument("--segmenter", default="kmeans", help=SEGMENTER_HELP)
    seg.add_argument("--custom-mask", action="store_true", help="use the --mask-* options instead of the model's")
    seg.add_argument("--region", metavar="MASK",
                     help="segment only inside this mask (e.g. a brain mask; non-zero voxels are inside) instead of "
                          "the filter mask: a NIfTI on the image's grid (same shape and affine); one image only")
    _add_mask_options(seg)
    _add_batch_options(seg)
    seg.set_defaults(func=commands.cmd_segment)

    plugins = sub.add_parser("plugins", help="list guidance strategies and segmenters")
    plugins.add_argument("--json", action="store_true", help="print JSON instead of a table")
    plugins.set_defaults(func=commands.cmd_plugins)

    models = sub.add_parser("models", help="list bundled models with their model cards")
    models.add_argument("--json", action="store_true", help="print the full model cards as JSON")
    models.set_defaults(func=commands.cmd_models)

    report_commands.add_report_commands(sub)
    for command in sub.choices.values():
        _add_global_options(command, top=False)
    return parser


class _SubParser(argparse.ArgumentParser):
    """Sub-command parser showing defaults in its help (:class:`HelpFormatter`)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``zeroshot``; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.threads < 0:
        parser.error("--threads must be >= 0")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    with StopSignals() as stop, warnings.catch_warnings():
        warnings.showwarning = _show_warning
        args.stop_signals = stop
        try:
            return int(args.func(args) or 0)
        except ZeroshotError as exc:
            print(f"zeroshot: error: {exc}", file=sys.stderr)
            return 2
        except Stopped as exc:
            kept = "the model folder keeps its last checkpoint" if args.command == "train" else "no partial output was left"
            print(f"zeroshot: stopped by {exc}; {kept}", file=sys.stderr)
            return exc.exit_code
        except KeyboardInterrupt:
            done = ("the inputs finished so far are written and complete; the same command resumes with the rest"
                    if getattr(args, "batch", False) else "no output was written")
            print(f"zeroshot: cancelled; {done}", file=sys.stderr)
            return 130


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings of the project (a broken plugin, a smaller batch) as one line on stderr."""
    if issubclass(category, ZeroshotWarning):
        print(f"zeroshot: warning: {message}", file=sys.stderr)
    else:
        _default_show_warning(message, category, filename, lineno, file, line)
