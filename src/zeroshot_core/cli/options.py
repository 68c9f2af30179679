"""Options shared by several ``zeroshot`` sub-commands and their conversion to core configs."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Sequence

from zeroshot_core.choices import (
    AUTOCAST_NAMES,
    BUILTIN_GUIDANCES,
    BUILTIN_SEGMENTERS,
    DENOISE_METHODS,
    DEVICE_NAMES,
    SCHEDULER_NAMES,
)
from zeroshot_core.errors import ConfigError

GUIDANCE_HELP = (f"guidance strategy: {', '.join(BUILTIN_GUIDANCES)}, or a plugin's "
                 "(list: 'zeroshot plugins')")
SEGMENTER_HELP = f"{', '.join(BUILTIN_SEGMENTERS)}, or a plugin's (list: 'zeroshot plugins')"


class HelpFormatter(argparse.HelpFormatter):
    """Appends ``(default: X)`` to an option's help unless it already names its default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if ("default" in text.lower() or default is None or default is False or default is argparse.SUPPRESS
                or not action.option_strings):
            return text
        return f"{text} (default: %(default)s)"


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


def _add_sampling_options(parser: argparse.ArgumentParser, steps: int | None) -> None:
    parser.add_argument("--steps", type=int, default=steps,
                        help=f"sampling steps (default {steps})" if steps is not None else
                        "sampling steps (default: the model's card's — 20 for the bundled default lmi model "
                        "t1-lmi-lite, 25 for t1-lmi — else 50)")
    parser.add_argument("--scheduler", default="ddim", choices=tuple(SCHEDULER_NAMES),
                        help="sampler: " + "; ".join(f"{name}: {text}" for name, text in SCHEDULER_NAMES.items()))
    parser.add_argument("--seed", type=int, default=0, help="random seed of the sampling noise")
    parser.add_argument("--device", default="auto", choices=DEVICE_NAMES,
                        help="auto: CUDA, then Apple MPS, then the CPU")
    parser.add_argument("--batch-size", type=int, default=8, help="slices sampled together (default 8)")
    parser.add_argument("--cfg-scale", type=float, default=None, metavar="S",
                        help="classifier-free guidance scale, e.g. 1.5 (1 = off; needs a model trained with "
                             "--condition-dropout); default: the model's measured default (1.5 for the bundled "
                             "lmi), else 1")
    parser.add_argument("--cfg-steps", type=float, default=1.0, metavar="SHARE",
                        help="share of the steps, from the noisiest, that use classifier-free guidance, e.g. 0.5 "
                             "(default 1: all); the rest call the network once")
    parser.add_argument("--samples", type=int, default=1, metavar="K",
                        help="draws averaged per slice (default 1): the mean of K samples estimates the "
                             "expected image, smoother for segmenters; costs K times the time")
    parser.add_argument("--refiner", default=None, metavar="MODEL",
                        help="a model (folder or bundled name, e.g. t1-lmi) that takes the last --refine-steps "
                             "steps with its own guidance scale: a fast model lays out the anatomy, a larger one "
                             "settles the fine contrast (default: the model's; the bundled t1-lmi-lite names "
                             "t1-lmi)")
    parser.add_argument("--refine-steps", type=int, default=None, metavar="N",
                        help="how many of the last steps the refiner takes; 0 = no refiner (default: the "
                             "model's, 1 for the bundled t1-lmi-lite; 1 when --refiner names one for a model "
                             "without; else 0). evaluate/demo: a --refiner reaches only the models of its "
                             "guidance, --refine-steps alone only the models whose card names a refiner")
    parser.add_argument("--denoise", default="auto", choices=tuple(DENOISE_METHODS),
                        help="denoise the source in-plane before it guides: nlm = non-local means, noise "
                             "estimated per slice (for noisy sources such as PD); auto = nlm only when the "
                             "source is noisier than the model's training images (default auto)")


def _add_acceleration_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("speed-ups of the score network (each measured in docs/benchmarks.md; "
                                      "only autocast auto is on by default)")
    group.add_argument("--autocast", default="auto", choices=AUTOCAST_NAMES,
                       help="run the network in mixed precision: bf16 (GPUs, and CPUs with bfloat16 "
                            "instructions) or fp16 (GPUs only); its output is cast back to float32, so results "
                            "differ from off in the low bits. auto: bf16 on a CPU with bfloat16 instructions "
                            "(AVX512-BF16, AMX), else off (default: auto)")
    group.add_argument("--channels-last", action="store_true",
                       help="keep the network's weights and inputs in the channels-last (NHWC) memory layout "
                            "that GPU tensor cores prefer")
    group.add_argument("--compile", action="store_true",
                       help="compile the network with torch.compile: the first batch waits tens of seconds "
                            "(more on a CPU), later batches may run faster")


def _acceleration(args: argparse.Namespace):
    """The ``--autocast``/``--channels-last``/``--compile`` options as an Acceleration, checked for ``--device``.

    Raises
    ------
    ConfigError
        If the device cannot run a switch (``--autocast fp16`` on the CPU).
    """
    from zeroshot_core.model.acceleration import Acceleration
    from zeroshot_core.model.devices import resolve_device

    acceleration = Acceleration(args.autocast, args.channels_last, args.compile)
    acceleration.check(resolve_device(args.device))
    return acceleration


def _add_mask_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("filter mask (threshold_multiotsu -> erosion -> small objects -> holes); "
                                      "default: the model card's settings, options not given take the defaults")
    group.add_argument("--no-mask", action="store_true", default=None, help="do not mask the background")
    group.add_argument("--mask-classes", type=int, default=None, help="multi-Otsu classes (default 3)")
    group.add_argument("--mask-erosion", type=int, default=None,
                       help="in-plane erosion radius in voxels (default 2)")
    group.add_argument("--mask-min-object", type=int, default=None, help="smallest object kept, voxels (default 64)")
    group.add_argument("--mask-hole-area", type=int, default=None, help="largest hole filled, voxels (default 1024)")
    group.add_argument("--mask-keep-all", action="store_true", default=None,
                       help="keep all components, not only the largest")


_MASK_OPTIONS = {"no_mask": "enabled", "mask_classes": "classes", "mask_erosion": "erosion_radius",
                 "mask_min_object": "min_object_size", "mask_hole_area": "hole_area", "mask_keep_all": "keep_largest"}


def _mask_params(args: argparse.Namespace, default: Any = None):
    """The mask options given, as MaskParams; ``default`` (None: the model card's) when none is given."""
    from zeroshot_core.imaging.mask import MaskParams

    given = {field: getattr(args, option) for option, field in _MASK_OPTIONS.items()
             if getattr(args, option, None) is not None}
    if not given and not getattr(args, "custom_mask", False):
        return default
    for flag in ("enabled", "keep_largest"):
        if flag in given:
            given[flag] = not given[flag]
    return MaskParams(**given)


def _progress_bar(total: int, desc: str, quiet: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="step", disable=quiet, dynamic_ncols=True, file=sys.stderr)




def _provenance(result: Any, options: Any, source: Any) -> dict:
    """The translation's provenance record; its out-of-domain warnings go to stderr.

    Parameters
    ----------
    result : TranslationResult
        The finished translation.
    options : TranslateOptions
        The options it ran with.
    source : path-like
        The source file.

    Returns
    -------
    dict
        From :func:`zeroshot_core.api.translation_provenance`.
    """
    from zeroshot_core.api import translation_provenance

    record = translation_provenance(result, options, source)
    for warning in record["Warnings"]:
        print(f"zeroshot: warning: {warning}", file=sys.stderr)
    return record


def _write_sidecar(out: Any, record: dict) -> None:
    """Write ``record`` as the JSON sidecar of ``out`` (whose NIfTI ``descrip`` was set on saving).

    Parameters
    ----------
    out : path-like
        The translation already written.
    record : dict
        From :func:`_provenance`.
    """
    from zeroshot_core.api import write_provenance

    sidecar = write_provenance(out, record)
    print(f"provenance written to {sidecar} (model {record['Translation']['model']['name']}, "
          f"{record['Translation']['model']['target_modality']})")
