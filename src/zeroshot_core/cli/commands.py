"""The ``zeroshot`` sub-commands ``train``, ``translate``, ``segment``, ``plugins`` and ``models``."""

from __future__ import annotations

import argparse
import json
import signal
import sys

from zeroshot_core.cli.options import (
    _acceleration,
    _key_values,
    _mask_params,
    _progress_bar,
    _provenance,
    _slice_list,
    _write_sidecar,
)


def cmd_train(args: argparse.Namespace) -> int:
    from zeroshot_core.imaging.mask import MaskParams
    from zeroshot_core.processes import shard_from_env
    from zeroshot_core.training.distributed import plan_line
    from zeroshot_core.training.loop import TrainConfig, train_iter

    config = TrainConfig(
        guidance=args.guidance, guidance_params=_key_values(args.guidance_param), image_size=args.image_size,
        model_size=args.model_size, max_steps=args.max_steps, batch_size=args.batch_size,
        learning_rate=args.lr, ema_decay=args.ema_decay, checkpoint_every=args.checkpoint_every,
        seed=args.seed, device=args.device, augment=not args.no_augment, mask=_mask_params(args, MaskParams()),
        target_modality=args.target_modality, segmenters=tuple(args.segmenters.split(",")) if args.segmenters else (),
        prediction=args.prediction, min_snr_gamma=args.min_snr_gamma, condition_dropout=args.condition_dropout,
        contrast_randomisation=args.contrast_randomisation, contrast_variants=args.contrast_variants,
        guide_noise=args.guide_noise,
        spacing_mm=args.spacing_mm, init_from=args.init_from, notes=args.notes, channels_last=args.channels_last, compile=args.compile,
        teacher=args.teacher, teacher_cfg_scale=args.teacher_cfg_scale,
        teacher_steps=args.teacher_steps)
    part = shard_from_env()
    if part.world > 1:
        line = plan_line(config.batch_size, config.learning_rate, part.world)  # refuses an uneven split
        if part.rank == 0:
            print(line, flush=True)
    stop = getattr(args, "stop_signals", None)
    bar = last = None
    events = train_iter(args.targets, args.out, config, resume=args.resume,
                        stop=(lambda: stop.received is not None) if stop is not None else None)
    try:
        for last in events:
            if stop is not None:  # steps run: a signal now finishes the step and saves it
                stop.deferred = True
            if bar is None:
                bar = _progress_bar(last.max_steps, "train", args.quiet or part.rank > 0)
                bar.update(last.step - 1)
            bar.update(1)
            bar.set_postfix(loss=f"{last.loss:.4f}", slices=last.slices, refresh=False)
    finally:
        if bar is not None:
            bar.close()
    if last is not None and last.step < last.max_steps:  # stopped: by a signal here or on another process
        received = stop.received if stop is not None else None
        if part.rank == 0:
            cause = stop.name if received else "a stop signal on another process"
            print(f"zeroshot: {cause}: checkpoint of step {last.step} written to {args.out}; "
                  "continue with the same command and --resume", file=sys.stderr)
        return 128 + (received or signal.SIGTERM)
    if part.rank == 0:
        print(f"model written to {args.out}")
    return 0


def _translate_options(args: argparse.Namespace):
    from zeroshot_core.diffusion.consistency import ConsistencyParams
    from zeroshot_core.diffusion.translation import TranslateOptions

    params = _key_values(args.guidance_param)
    if args.strength is not None:
        params["strength"] = args.strength
    consistency = ConsistencyParams(args.candidates, args.rounds, args.first_slice_threshold) if args.consistency else None
    return TranslateOptions(steps=args.steps, scheduler=args.scheduler, seed=args.seed, device=args.device,
                            batch_size=args.batch_size, mask=_mask_params(args), consistency=consistency,
                            slices=_slice_list(args.slices), axis=args.axis, guidance_params=params,
                            cfg_scale=args.cfg_scale, cfg_steps=args.cfg_steps, samples=args.samples,
                            denoise=args.denoise, acceleration=_acceleration(args),
                            refiner=args.refiner, refine_steps=args.refine_steps)


def _load_source(path: str):
    """Read an input, printing layout notes (which axis was used, how to change it) as one line each."""
    import sys
    import warnings

    from zeroshot_core.api import load_volume
    from zeroshot_core.errors import LayoutWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LayoutWarning)
        volume = load_volume(path)
    for warning in caught:
        if issubclass(warning.category, LayoutWarning):
            print(f"zeroshot: note: {warning.message}", file=sys.stderr)
    return volume


def cmd_translate(args: argparse.Namespace) -> int:
    from zeroshot_core.batch import is_many

    if is_many(args.source):
        from zeroshot_core.cli.batch_commands import translate_many

        return translate_many(args, translate_file, _load_source, _translate_options(args))
    from zeroshot_core.api import check_outputs

    source_path = args.source[0]
    outputs = {"--out": args.out, "--labels": args.labels}
    check_outputs(outputs, source_path)
    options = _translate_options(args)
    source = _load_source(source_path)
    paths = check_outputs(outputs, source_path, shape=source.data.shape)
    translate_file(args, options, source_path, source, paths, "translate")
    return 0


def translate_file(args: argparse.Namespace, options, source_path, source, paths: dict, desc: str) -> None:
    """Translate one loaded source and write ``paths["--out"]``, its sidecar and ``paths["--labels"]``.

    Parameters
    ----------
    args : argparse.Namespace
        The ``translate`` options (model, guidance, segmenter, quiet).
    options : TranslateOptions
    source_path : path-like
        The source file (for the provenance).
    source : Volume
        Its voxels.
    paths : dict
        ``"--out"`` and optionally ``"--labels"`` → checked output paths.
    desc : str
        The progress bar's label (the file number in a batch).

    Raises
    ------
    ZeroshotError
        As :func:`zeroshot_core.api.run_translation` and :func:`zeroshot_core.api.save_volume`.
    """
    from zeroshot_core.api import descrip, run_translation, save_volume, segment_translation

    bars = []
    stop = getattr(args, "stop_signals", None)

    def show(event) -> None:
        if stop is not None:  # stop here, at a known point between steps
            stop.raise_if_received()
        if not bars:
            bars.append(_progress_bar(event.slices_total * max(event.steps_total, 1), desc, args.quiet))
        bar = bars[0]
        bar.n = int(round(event.fraction * bar.total))
        bar.set_postfix(slice=f"{event.slices_done}/{event.slices_total}", refresh=False)
        bar.refresh()

    if stop is not None:  # a signal is recorded and acted on at the next step, not wherever it lands
        stop.deferred = True  # (a handler that raises inside a finaliser would be ignored, the signal lost)
    try:
        result = run_translation(source, args.model, args.guidance, options, on_progress=show)
    finally:
        if stop is not None:
            stop.deferred = False
        for bar in bars:
            bar.close()
    if stop is not None:  # it came during the last step: nothing is written
        stop.raise_if_received()
    labels = segment_translation(result, args.segmenter) if paths.get("--labels") else None
    what = f"{result.model.card.target_modality} translation ({result.guidance})"
    record = _provenance(result, options, source_path)
    save_volume(result.volume, paths["--out"], description=descrip(record))
    refined = (f", last {result.refine_steps} step{'s' if result.refine_steps != 1 else ''} by "
               f"{result.refiner.path.name}") if result.refiner is not None else ""
    print(f"translation ({result.guidance}, {len(result.slices)} slices{refined}) written to {paths['--out']}")
    if result.denoise is not None and result.denoise.requested == "auto" and result.denoise.applied != "off":
        print(f"zeroshot: note: --denoise auto: the source was denoised ({result.denoise.reason}); "
              "--denoise off keeps it as it is", file=sys.stderr)
    _write_sidecar(paths["--out"], record)
    if labels is not None:
        try:
            save_volume(result.volume.with_data(labels), paths["--labels"], dtype="int16",
                        description=f"zeroshot labels ({args.segmenter}) of the {what}", labels=True)
        except BaseException:
            paths["--out"].unlink(missing_ok=True)
            raise
        print(f"segmentation ({args.segmenter}) written to {paths['--labels']}")


def cmd_segment(args: argparse.Namespace) -> int:
    from zeroshot_core.batch import is_many

    region = getattr(args, "region", None)
    if region is not None:
        _check_region_options(args)
    if is_many(args.image):
        from zeroshot_core.cli.batch_commands import segment_many

        return segment_many(args, segment_file, _load_source)
    from zeroshot_core.api import check_outputs

    image_path = args.image[0]
    check_outputs({"--out": args.out}, image_path, region)
    image = _load_source(image_path)
    out = check_outputs({"--out": args.out}, image_path, region, shape=image.data.shape)["--out"]
    segment_file(args, image, out)
    return 0


def _check_region_options(args: argparse.Namespace) -> None:
    """Refuse ``--region`` with several inputs (one mask fits one grid) or with mask settings.

    Raises
    ------
    InputError
    """
    from zeroshot_core.batch import is_many
    from zeroshot_core.errors import InputError

    if is_many(args.image):
        raise InputError("--region takes one image (a mask fits one grid); segment the images one at a time, "
                         "each with its own --region")
    if _mask_params(args) is not None:
        raise InputError("--region replaces the filter mask; drop --custom-mask and the --mask-* options")


def segment_file(args: argparse.Namespace, image, out) -> None:
    """Segment one loaded image with the model's segmenter and write the labels to ``out``.

    Raises
    ------
    ZeroshotError
        As :func:`zeroshot_core.api.segment` and :func:`zeroshot_core.api.save_volume`.
    """
    from zeroshot_core.api import save_volume, segment

    region = getattr(args, "region", None)
    mask = None if region is not None else _mask_params(args)
    labels = segment(image, args.model, args.segmenter, mask, region=region)
    save_volume(image.with_data(labels), out, dtype="int16", description=f"zeroshot labels ({args.segmenter})",
                labels=True)
    print(f"segmentation ({args.segmenter}) written to {out}")


def cmd_plugins(args: argparse.Namespace) -> int:
    from zeroshot_core.plugins.manager import plugins_disabled, registries

    found = registries()
    rows = [("kind", "name", "package", "version")]
    rows += [("guidance", e.name, e.package, e.version) for e in found.guidance]
    rows += [("segmenter", e.name, e.package, e.version) for e in found.segmenters]
    if args.json:  # skipped plugins are rows of kind "failed" (name: the entry point) with an "error"
        failed = [{"kind": "failed", "name": f.entry_point, "package": f.package, "version": f.version,
                   "error": f.reason} for f in found.failures]
        print(json.dumps([dict(zip(rows[0], r)) for r in rows[1:]] + failed, indent=2))
        return 0
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    if plugins_disabled():
        print("(third-party plugins disabled by ZEROSHOT_DISABLE_PLUGINS)")
    for failure in found.failures:
        print(f"failed: {failure.message}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from zeroshot_core.api import card_summary, list_models

    models = list_models()
    if args.json:
        print(json.dumps([{"path": str(p), "card": c} for p, c in models], indent=2))
        return 0
    if not models:
        print("no bundled models; train one with 'zeroshot train'")
    from zeroshot_core.model.loading import models_by_guidance

    defaults: dict[str, list[str]] = {}
    for guidance, folder in models_by_guidance([p for p, _ in models]).items():
        defaults.setdefault(folder.name, []).append(guidance)
    for path, card in models:
        print(path.name + (f" (default for {', '.join(sorted(defaults[path.name]))})" if path.name in defaults else ""))
        for line in card_summary(card) + [f"segmenters: {', '.join(card.get('segmenters', {})) or 'none'}"]:
            print(f"  {line}")
    return 0


