"""``translate`` and ``segment`` over many inputs: folders for outputs, resuming, sharding, the summary.

The batch logic is :mod:`zeroshot_core.batch`; this module only connects it to the
sub-commands' one-file functions, which :mod:`zeroshot_core.cli.commands` passes in.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from zeroshot_core.batch import (
    Job,
    Shard,
    expand_inputs,
    is_complete,
    output_folder,
    plan_jobs,
    run_jobs,
    shard,
    shard_from_env,
)


def _pin_gpu(part: Shard, device: str) -> None:
    """On CUDA, make this process use the GPU of its local rank (``--device auto`` or ``cuda``)."""
    if part.world == 1 or device not in ("auto", "cuda"):
        return
    import torch

    if torch.cuda.is_available():
        torch.cuda.set_device(part.local_rank % torch.cuda.device_count())


def _plan(args: argparse.Namespace, inputs: list[str], folders: dict[str, str | None]) -> tuple[Shard, list[Job]]:
    part = shard_from_env()
    args.batch = True
    jobs = plan_jobs(expand_inputs(inputs), {name: (output_folder(folder, name) if folder is not None else None)
                                             for name, folder in folders.items()})
    return part, jobs


def _finish(args: argparse.Namespace, part: Shard, summary: Any) -> int:
    for line in summary.lines(part.prefix):
        print(line, file=sys.stderr if line.startswith(f"{part.prefix}failed") else sys.stdout)
    if args.summary_json:
        written = summary.write_json(args.summary_json, part)
        print(f"{part.prefix}summary written to {written}")
    return summary.exit_code


def _note(part: Shard) -> Callable[[str], None]:
    return lambda text: print(f"zeroshot: {part.prefix}{text}", file=sys.stderr)


def _complete(load: Callable[[str], Any]) -> Callable[[Job], bool]:
    """A job is complete when each output reads back as an image of its source's shape."""
    def complete(job: Job) -> bool:
        if not all(out.is_file() for out in job.outputs.values()):
            return False
        shape = load(str(job.source)).data.shape
        return all(is_complete(out, shape) for out in job.outputs.values())
    return complete


def translate_many(args: argparse.Namespace, translate_file: Callable[..., None], load: Callable[[str], Any],
                   options: Any) -> int:
    """``zeroshot translate`` with several inputs: one output per input in the ``--out`` folder.

    Parameters
    ----------
    args : argparse.Namespace
    translate_file : callable
        ``translate_file(args, options, source_path, source, paths, desc)`` for one file.
    load : callable
        Reads a source file into a Volume.
    options : TranslateOptions

    Returns
    -------
    int
        2 if any input failed, else 0.
    """
    from zeroshot_core.api import check_outputs

    part, jobs = _plan(args, args.source, {"--out": args.out, "--labels": args.labels})
    _pin_gpu(part, args.device)
    mine = shard(jobs, part)
    if mine:  # once for all files; a model that cannot be loaded is one error before any work
        from zeroshot_core.api import load_model
        from zeroshot_core.diffusion.refiner import resolve_refiner
        from zeroshot_core.model.devices import resolve_device

        args.model = load_model(args.model, args.guidance, resolve_device(args.device))
        # a refiner that is missing or does not fit is one error too, before any file (cards only; the steps
        # left to it are checked per file)
        resolve_refiner(args.model.path, args.model.card, options.refiner, options.refine_steps, 1001)

    def work(job: Job, number: int) -> None:
        source = load(str(job.source))
        paths = check_outputs({k: str(v) for k, v in job.outputs.items()}, job.source, shape=source.data.shape)
        translate_file(args, options, job.source, source, paths,
                       f"{part.prefix}file {number}/{len(mine)} {job.source.name}")

    summary = run_jobs(mine, work, None if args.overwrite else _complete_translation(load), _note(part))
    return _finish(args, part, summary)


def _complete_translation(load: Callable[[str], Any]) -> Callable[[Job], bool]:
    """Complete when the images read back with the source's shape and the provenance sidecar is valid JSON."""
    images = _complete(load)

    def complete(job: Job) -> bool:
        from zeroshot_core.api import sidecar_path

        try:
            json.loads(sidecar_path(job.outputs["--out"]).read_text())
        except (OSError, ValueError):
            return False
        return images(job)
    return complete


def segment_many(args: argparse.Namespace, segment_file: Callable[..., None], load: Callable[[str], Any]) -> int:
    """``zeroshot segment`` with several inputs: one label image per input in the ``--out`` folder.

    Returns
    -------
    int
        2 if any input failed, else 0.
    """
    from zeroshot_core.api import check_outputs

    part, jobs = _plan(args, args.image, {"--out": args.out})
    mine = shard(jobs, part)

    def work(job: Job, number: int) -> None:
        print(f"{part.prefix}file {number}/{len(mine)}: {job.source}", file=sys.stderr)
        image = load(str(job.source))
        out = check_outputs({"--out": str(job.outputs["--out"])}, job.source, shape=image.data.shape)["--out"]
        segment_file(args, image, out)

    summary = run_jobs(mine, work, None if args.overwrite else _complete(load), _note(part))
    return _finish(args, part, summary)
