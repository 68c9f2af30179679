"""Report commands of the ``zeroshot`` CLI: ``evaluate`` and ``demo``.

``zeroshot evaluate`` runs the classical baselines and the diffusion guidances on one
source/target pair with reference labels and writes a report (JSON, Markdown, PNG,
NIfTI; see :mod:`zeroshot_core.evaluation.report`). ``zeroshot demo`` does the same on the shipped
brain phantom (PD- or T2-weighted → T1) with the bundled models, on a band of central
slices with few sampling steps so that it finishes in minutes on a CPU.

When no diffusion method could run (no model, or every model failed) both commands
still write and print the baselines, then exit with a one-line error (code 2).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zeroshot_core.errors import InputError, ModelError

if TYPE_CHECKING:
    from zeroshot_core.evaluation.report import EvaluationResult

DEMO_SLICES = 8
"""Central slices the demo translates by default."""
DEMO_STEPS = 25
"""Sampling steps of the demo by default."""


def model_folders(models_dir: str | None) -> list[Path]:
    """Model subfolders of ``models_dir`` (sorted), or the bundled models when it is ``None``.

    Raises
    ------
    ModelError
        If ``models_dir`` is not a folder.
    """
    from zeroshot_core.model.loading import bundled_model_dirs
    from zeroshot_core.model.store import CARD_FILE

    if models_dir is None:
        return bundled_model_dirs()
    root = Path(models_dir)
    if not root.is_dir():
        raise ModelError(f"{root}: models folder not found; pass a folder that holds model subfolders")
    return sorted(p for p in root.iterdir() if (p / CARD_FILE).is_file())


def _methods(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _describe_slices(slices: Sequence[int]) -> str:
    contiguous = list(slices) == list(range(slices[0], slices[-1] + 1))
    return f"{slices[0]}..{slices[-1]}" if contiguous else ",".join(str(i) for i in slices)


def _run(source: Any, target: Any, labels: Any, *, mask: Any, models: dict[str, Any], methods: tuple[str, ...],
         options: Any, slices: Sequence[int] | None, out: Path, quiet: bool, title: str) -> EvaluationResult:
    """Evaluate with a progress bar, write the report into ``out`` and print the table."""
    from tqdm import tqdm

    from zeroshot_core.evaluation.evaluator import evaluate
    from zeroshot_core.evaluation.report import format_table, write_report

    bar = tqdm(total=len(methods), desc=title, unit="method", disable=quiet, dynamic_ncols=True, file=sys.stderr,
               bar_format="{l_bar}{bar}| {n:.1f}/{total} methods [{elapsed}{postfix}]")
    done: dict[str, int] = {}

    def progress(method: str, fraction: float) -> None:
        index = done.setdefault(method, len(done))
        bar.n = index + fraction
        bar.set_postfix_str(method, refresh=False)
        bar.refresh()

    try:
        result = evaluate(source, target, labels, models=models, methods=methods, mask=mask, options=options,
                          slices=slices, progress=progress)
    finally:
        bar.close()
    paths = write_report(result, out)
    print(f"\n{title}: {len(result.slices)} slices ({_describe_slices(result.slices)}) along axis {result.axis}")
    print(format_table(result))
    print(f"report: {paths['markdown']}, {paths['json'].name}, {paths['figure'].name}; NIfTI outputs in "
          f"{out / 'nifti'}")
    return result


def _require_diffusion(results: list[EvaluationResult], where: str, out: Path) -> None:
    """Raise ModelError if diffusion methods were requested and none produced an output."""
    from zeroshot_core.choices import BASELINES

    diffusion = [m for r in results for m in r.methods if m.method not in BASELINES]
    if not diffusion or any(m.status == "ok" for m in diffusion):
        return
    names = sorted({m.method for m in diffusion})
    if all(m.status == "skipped" for m in diffusion):
        raise ModelError(f"no model for {', '.join(names)} in {where}, so the diffusion methods were skipped "
                         f"(the baselines were written to {out}); train one with 'zeroshot train' or pass --models-dir DIR")
    first = next(m for m in diffusion if m.status == "failed")
    raise ModelError(f"no diffusion method ran (baselines written to {out}); {first.method}: {first.reason}")


def _options(args: argparse.Namespace, mask_params: Any = None):
    from zeroshot_core.diffusion.translation import TranslateOptions

    extra = {"mask": mask_params} if mask_params is not None else {}
    return TranslateOptions(steps=args.steps, scheduler=args.scheduler, seed=args.seed, device=args.device,
                            batch_size=args.batch_size, axis=getattr(args, "axis", None), cfg_scale=args.cfg_scale,
                            cfg_steps=args.cfg_steps, samples=args.samples, denoise=args.denoise, **extra,
                            refiner=args.refiner, refine_steps=args.refine_steps)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from zeroshot_core.choices import BASELINES
    from zeroshot_core.cli.options import _mask_params, _slice_list
    from zeroshot_core.io.formats import check_output_folder
    from zeroshot_core.model.loading import models_by_guidance

    out = check_output_folder(args.out)
    methods = _methods(args.methods)
    if args.model is not None:
        models: dict[str, Any] = {m: args.model for m in methods if m not in BASELINES}
        where = args.model
    else:
        models = dict(models_by_guidance(model_folders(args.models_dir)))
        where = args.models_dir or "the bundled models"
    result = _run(args.source, args.target, args.labels, mask=args.mask, models=models, methods=methods,
                  options=_options(args, _mask_params(args)), slices=_slice_list(args.slices), out=out,
                  quiet=args.quiet, title="evaluate")
    _require_diffusion([result], where, out)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from zeroshot_core.cli.options import _slice_list
    from zeroshot_core.imaging.orientation import central_slices, slicing_axis
    from zeroshot_core.io.formats import load_volume
    from zeroshot_core.model.loading import models_by_guidance
    from zeroshot_core.samples.sample_data import load_sample

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder; choose another --out")
    models = models_by_guidance(model_folders(args.models_dir))
    where = args.models_dir or "the bundled models"
    labels, target = load_sample("labels"), load_sample("t1")
    axis = slicing_axis(labels.affine, labels.data.shape)
    slices = _slice_list(args.slices) or central_slices(labels.data > 0, axis, DEMO_SLICES)
    sources = ("pd", "t2") if args.source == "all" else (args.source,)
    methods = _methods(args.methods)
    found = ", ".join(f"{g}={models[g]}" for g in methods if g in models) or "none"
    print(f"demo: brain phantom {'+'.join(s.upper() for s in sources)} -> T1 on {len(slices)} slices "
          f"({_describe_slices(slices)}) along axis {axis}, {args.steps} {args.scheduler} steps, seed {args.seed}; "
          f"models ({where}): {found}")
    real = [load_volume(path) for path in args.real or ()]  # unreadable files fail before any work
    results = [_run(load_sample(s), target, labels, mask=None, models=dict(models), methods=methods,
                    options=_options(args), slices=slices, out=out / s, quiet=args.quiet,
                    title=f"{s.upper()} -> T1") for s in sources]
    _require_diffusion(results, where, out)
    if real:
        _demo_real(real, args, models, methods, out / "real")
    return 0


def _demo_real(volumes: list[Any], args: argparse.Namespace, models: dict[str, Any], methods: tuple[str, ...],
               out: Path) -> None:
    """Translate each unlabelled real image with the default guidance's model; write and print what was done."""
    from dataclasses import replace

    from tqdm import tqdm

    from zeroshot_core.choices import DEFAULT_GUIDANCE
    from zeroshot_core.evaluation.unlabelled import (
        translate_unlabelled,
        unique_names,
        write_unlabelled,
    )
    from zeroshot_core.imaging.head_mask import head_mask
    from zeroshot_core.imaging.orientation import central_slices, slicing_axis

    guidance = DEFAULT_GUIDANCE if DEFAULT_GUIDANCE in models else next((m for m in methods if m in models), None)
    if guidance is None:
        raise ModelError("no diffusion model for the --real images; pass --models-dir DIR with a trained model")
    shown = []
    for volume, name in zip(volumes, unique_names([v.path for v in volumes])):
        axis = slicing_axis(volume.affine, volume.data.shape)
        count = volume.data.shape[axis]
        slices = tuple(range(count)) if count <= DEMO_SLICES else central_slices(
            head_mask(volume.data, axis), axis, DEMO_SLICES)
        options = replace(_options(args), axis=axis, slices=slices)
        with tqdm(total=100, desc=f"{name} -> T1", disable=args.quiet, file=sys.stderr,
                  dynamic_ncols=True, bar_format="{l_bar}{bar}| [{elapsed}]") as bar:
            def progress(event: Any) -> None:
                bar.n = round(100 * event.fraction)
                bar.refresh()

            shown.append(translate_unlabelled(volume, models[guidance], options, name=name, on_progress=progress))
    paths = write_unlabelled(shown, out)
    print(f"\nreal images (no T1 and no labels: shown, not scored), translated with {guidance} = {models[guidance]}:")
    for item in shown:
        t = item.translation
        print(f"  {item.name}: {len(t.slices)} slices along axis {t.axis} in {item.seconds:.0f} s"
              f"{', denoised first (' + t.denoise.reason + ')' if t.denoise and t.denoise.applied != 'off' else ''}")
    print(f"figure: {paths['figure']}; translations and K-Means labels (NIfTI) in {out}")


def add_report_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``evaluate`` and ``demo`` to the sub-command parser of ``zeroshot``."""
    from zeroshot_core.choices import DEFAULT_METHODS
    from zeroshot_core.cli.options import _add_mask_options, _add_sampling_options

    methods_help = (f"comma-separated baselines (identity, histmatch, shape) and guidances "
                    f"(default {','.join(DEFAULT_METHODS)})")
    evaluate = sub.add_parser("evaluate", help="translate with every method, segment, and score against a real target")
    evaluate.add_argument("--source", required=True, help="source-modality image")
    evaluate.add_argument("--target", required=True, help="real target-modality image on the source grid")
    evaluate.add_argument("--labels", required=True, help="reference labels (0 background, 1 CSF, 2 GM, 3 WM)")
    evaluate.add_argument("--mask", help="scoring mask image (non-zero inside; default labels > 0); the --mask-* "
                                            "options below set the source filter mask")
    models = evaluate.add_mutually_exclusive_group()
    models.add_argument("--model", help="model folder used for every diffusion method in --methods")
    models.add_argument("--models-dir", help="folder of model subfolders; one per guidance is picked from the cards "
                                             "(default: the bundled models)")
    evaluate.add_argument("--methods", default=",".join(DEFAULT_METHODS), help=methods_help)
    evaluate.add_argument("--out", required=True, help="report folder (created)")
    evaluate.add_argument("--slices", help="slices to translate and score, e.g. 40,41 or 30:60 (default all)")
    evaluate.add_argument("--axis", type=int, choices=[0, 1, 2], help="slicing axis (default: through-plane)")
    _add_sampling_options(evaluate, None)
    _add_mask_options(evaluate)
    evaluate.set_defaults(func=cmd_evaluate)

    demo = sub.add_parser("demo", help="translate the bundled brain phantom to T1 with every method and report")
    demo.add_argument("--out", default="zeroshot-demo", help="report folder (default ./zeroshot-demo)")
    demo.add_argument("--source", default="pd", choices=["pd", "t2", "all"], help="phantom contrast (default pd)")
    demo.add_argument("--models-dir", help="folder of model subfolders (default: the bundled models)")
    demo.add_argument("--methods", default=",".join(DEFAULT_METHODS), help=methods_help)
    demo.add_argument("--slices", help=f"slices to translate (default the {DEMO_SLICES} central axial slices)")
    demo.add_argument("--real", action="append", metavar="FILE",
                      help=f"also translate this real image (a whole head in the source modality, NIfTI/PNG/TIFF/NumPy; "
                           f"no labels needed: shown, not scored) on its {DEMO_SLICES} central slices with the "
                           f"default model; results in OUT/real (repeat for more files)")
    _add_sampling_options(demo, DEMO_STEPS)
    demo.set_defaults(func=cmd_demo)
