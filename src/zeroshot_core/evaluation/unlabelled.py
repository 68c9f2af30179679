"""Translate and segment an image that has no target partner and no labels: shown, not scored.

A real whole-head scan in the source modality (a PD- or T2-weighted head with skull and
scalp, say) has no real T1 on its grid and no reference labels, so nothing can be scored;
what a reader can judge is the picture: source, translation and the K-Means tissue labels of
the translation, side by side. ``zeroshot demo --real FILE`` uses this next to the scored
phantom.

A script does the same as ``demo --real`` with::

    from zeroshot_core.diffusion.translation import TranslateOptions
    from zeroshot_core.evaluation.unlabelled import translate_unlabelled, write_unlabelled

    shown = translate_unlabelled("pd_head.nii.gz", "path/to/t1-lmi", TranslateOptions(slices=(60,)))
    write_unlabelled([shown], "demo_out/real")
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zeroshot_core.diffusion.running import run_translation
from zeroshot_core.diffusion.translation import (
    Progress,
    TranslateOptions,
    TranslationResult,
)
from zeroshot_core.evaluation.report import _colour, _draw_text, _grey, _plane
from zeroshot_core.io.atomic import atomic_write
from zeroshot_core.io.formats import image_stem, save_volume, to_volume
from zeroshot_core.io.volume import Volume
from zeroshot_core.segmentation import segment_translation

COLUMNS = ("source", "translation", "K-Means labels")
"""Columns of :func:`render_unlabelled`'s figure."""

_GAP, _HEADER_H, _CAPTION_W = 4, 22, 150


@dataclass(frozen=True)
class UnlabelledResult:
    """One unlabelled source, translated and segmented.

    Attributes
    ----------
    name : str
        Short name (the file name without its suffixes).
    source : Volume
        The source as read (unchanged).
    translation : TranslationResult
    labels : ndarray of uint8, shape of ``source.data``
        K-Means labels of the translation (0 background/untranslated, 1 CSF, 2 GM, 3 WM)
        inside the translation's filter mask.
    seconds : float
        Wall time of the translation and segmentation.
    """

    name: str
    source: Volume
    translation: TranslationResult
    labels: np.ndarray
    seconds: float


def unique_names(paths: Sequence[str | os.PathLike | None]) -> list[str]:
    """:func:`~zeroshot_core.io.formats.image_stem` of each path, with ``-2``, ``-3`` … added where stems repeat.

    Examples
    --------
    >>> unique_names(["a/head.nii.gz", "b/head.nii.gz", "c/pd.png", None])
    ['head', 'head-2', 'pd', 'source']
    """
    names: list[str] = []
    for path in paths:
        stem = image_stem(path) if path is not None else "source"
        name, number = stem, 1
        while name in names:
            number += 1
            name = f"{stem}-{number}"
        names.append(name)
    return names


def translate_unlabelled(source: Volume | str | os.PathLike, model, options: TranslateOptions,
                         name: str | None = None,
                         on_progress: Callable[[Progress], None] | None = None) -> UnlabelledResult:
    """Translate ``source`` with ``model`` and segment the translation with K-Means.

    Parameters
    ----------
    source : Volume or path-like
        Source image (any orientation; a single 2-D slice is a one-slice volume).
    model : path-like or LoadedModel
        As for :func:`zeroshot_core.diffusion.translation.translate_iter`.
    options : TranslateOptions
        Sampling settings; ``options.slices`` picks the slices to translate.
    name : str, optional
        Name in figures and file names (default: the file name without suffixes).
    on_progress : callable, optional
        Called with every :class:`Progress` event.

    Returns
    -------
    UnlabelledResult

    Raises
    ------
    InputError, ModelError, ConfigError
        As :func:`~zeroshot_core.diffusion.running.run_translation`.
    """
    volume = to_volume(source)
    started = time.perf_counter()
    translation = run_translation(volume, model, options=options, on_progress=on_progress)
    labels = segment_translation(translation).astype(np.uint8)
    return UnlabelledResult(name or unique_names([volume.path])[0], volume, translation, labels,
                            time.perf_counter() - started)


def render_unlabelled(results: Sequence[UnlabelledResult]) -> np.ndarray:
    """Figure: one row per result (its middle translated slice); columns :data:`COLUMNS`.

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)
    """
    rows = []
    for result in results:
        t = result.translation
        axis, index = t.axis, t.slices[len(t.slices) // 2]
        size = max(np.take(result.source.data, index, axis).shape)
        scale = max(1, math.ceil(160 / size))
        mask = _plane(t.mask, axis, index, scale)
        source = _plane(result.source.data, axis, index, scale)
        rows.append((result.name, [_grey(source, source > np.percentile(source, 50)),
                                   _grey(_plane(t.volume.data, axis, index, scale), mask),
                                   _colour(_plane(result.labels, axis, index, scale))]))
    th = max(tile.shape[0] for _, tiles in rows for tile in tiles)
    tw = max(tile.shape[1] for _, tiles in rows for tile in tiles)
    canvas = np.full((_HEADER_H + len(rows) * (th + _GAP), _CAPTION_W + len(COLUMNS) * (tw + _GAP), 3), 255,
                     np.uint8)
    for r, (_, tiles) in enumerate(rows):
        for c, tile in enumerate(tiles):
            y, x = _HEADER_H + r * (th + _GAP), _CAPTION_W + c * (tw + _GAP)
            canvas[y:y + tile.shape[0], x:x + tile.shape[1]] = tile
    captions = [(_CAPTION_W + c * (tw + _GAP) + 4, 5, column) for c, column in enumerate(COLUMNS)]
    captions += [(6, _HEADER_H + r * (th + _GAP) + th // 2 - 6, name[:22]) for r, (name, _) in enumerate(rows)]
    return _draw_text(canvas, captions)


def write_unlabelled(results: Sequence[UnlabelledResult], out: str | os.PathLike) -> dict[str, Path]:
    """Write each translation and its labels (NIfTI), a figure and a JSON summary into ``out``.

    Files: ``<name>_t1.nii.gz`` and ``<name>_labels.nii.gz`` per result (on the source's
    grid and affine), ``figure.png`` (:func:`render_unlabelled`) and ``unlabelled.json``
    (name, slices, axis, model, steps, refiner, denoising, seconds). Each is written atomically.

    Returns
    -------
    dict
        ``figure`` and ``json`` paths.

    Raises
    ------
    InputError
        If ``out`` cannot be created or written.
    """
    import imageio.v3 as iio

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    summary = []
    for result in results:
        t = result.translation
        save_volume(t.volume, folder / f"{result.name}_t1.nii.gz",
                    description=f"zeroshot translation ({t.guidance})")
        save_volume(t.volume.with_data(result.labels), folder / f"{result.name}_labels.nii.gz", dtype="int16",
                    labels=True)
        summary.append({"name": result.name, "axis": t.axis, "slices": list(t.slices), "guidance": t.guidance,
                        "model": str(t.model.path), "steps": t.steps,
                        "refiner": {"model": str(t.refiner.path), "steps": t.refine_steps,
                                    "cfg_scale": t.refiner_cfg_scale} if t.refiner else None,
                        "denoise": t.denoise.applied if t.denoise else "off",
                        "seconds": round(result.seconds, 1)})
    figure = folder / "figure.png"
    image = render_unlabelled(results)
    atomic_write(figure, lambda tmp: iio.imwrite(tmp, image, extension=".png"))
    path = folder / "unlabelled.json"
    text = json.dumps({"scored": False, "why": "no target image and no labels", "images": summary}, indent=2)
    atomic_write(path, lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"))
    return {"figure": figure, "json": path}
