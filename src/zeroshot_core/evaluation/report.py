"""The record of an evaluation and its files: JSON, Markdown table, PNG figure, NIfTI.

:class:`MethodResult` and :class:`EvaluationResult` hold what
:func:`zeroshot_core.evaluation.evaluator.evaluate` found; :func:`write_report` writes them. Every
file is written atomically (:func:`zeroshot_core.io.atomic.atomic_write`). The JSON is strict: ``nan`` becomes ``null`` and infinities the strings ``"inf"`` / ``"-inf"``.
The figure is composed with numpy and written with imageio (Pillow, an imageio
dependency, draws the captions), one row per method that produced an output:
source | translation | real target | segmentation, at the middle evaluated slice, and a
last row with the reference labels.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from zeroshot_core.errors import ConfigError, InputError
from zeroshot_core.io.atomic import atomic_write
from zeroshot_core.io.formats import save_volume
from zeroshot_core.io.volume import Volume

__all__ = ["STATUSES", "MethodResult", "EvaluationResult", "format_table", "to_json", "write_report",
           "render_figure", "LABEL_COLOURS"]

STATUSES = ("ok", "skipped", "failed")


@dataclass(frozen=True, eq=False)
class MethodResult:
    """Scores and outputs of one method.

    Attributes
    ----------
    method : str
    status : {"ok", "skipped", "failed"}
    reason : str
        Why a method was skipped or failed (empty when ``ok``).
    dice, assd_mm : mapping of int to float
        Per reference label; ``nan`` undefined, ``inf`` ASSD for a label missing on one side.
    mean_dice, mean_assd_mm, psnr, ssim, wall_time_s : float
    model : str or None
        Model folder used (diffusion methods).
    translation : Volume or None
        The output on the source grid.
    labels : ndarray of int16 or None
        Its segmentation (0 outside the scoring region).
    refiner : str or None
        The model that took the last sampling steps, e.g. ``"t1-lmi (1 step, CFG 1.5)"``.

    Raises
    ------
    ConfigError
        Unknown status, a Dice outside [0, 1], negative time, or ``ok`` without outputs.
    """

    method: str
    status: str = "ok"
    reason: str = ""
    dice: Mapping[int, float] = field(default_factory=dict)
    mean_dice: float = float("nan")
    assd_mm: Mapping[int, float] = field(default_factory=dict)
    mean_assd_mm: float = float("nan")
    psnr: float = float("nan")
    ssim: float = float("nan")
    wall_time_s: float = 0.0
    model: str | None = None
    translation: Volume | None = field(default=None, repr=False)
    labels: np.ndarray | None = field(default=None, repr=False)
    refiner: str | None = None

    def __post_init__(self) -> None:
        if not self.method:
            raise ConfigError("a method result needs a method name")
        if self.status not in STATUSES:
            raise ConfigError(f"method status must be one of {', '.join(STATUSES)}, got {self.status!r}")
        if self.status != "ok" and not self.reason:
            raise ConfigError(f"method {self.method!r} is {self.status} but no reason is given")
        if self.status == "ok" and (self.translation is None or self.labels is None):
            raise ConfigError(f"method {self.method!r} is ok but has no translation or labels")
        values = list(self.dice.values()) + [self.mean_dice]
        if any(not np.isnan(v) and not 0.0 <= v <= 1.0 for v in values):
            raise ConfigError(f"method {self.method!r}: Dice values must lie in [0, 1], got {values}")
        if not self.wall_time_s >= 0.0:
            raise ConfigError(f"method {self.method!r}: wall time must be >= 0, got {self.wall_time_s}")

    def scores(self) -> dict[str, Any]:
        """JSON-ready scores (no arrays); non-finite floats are kept as floats."""
        return {"method": self.method, "status": self.status, "reason": self.reason,
                "dice": {str(k): v for k, v in self.dice.items()}, "mean_dice": self.mean_dice,
                "assd_mm": {str(k): v for k, v in self.assd_mm.items()}, "mean_assd_mm": self.mean_assd_mm,
                "psnr_db": self.psnr, "ssim": self.ssim, "wall_time_s": self.wall_time_s, "model": self.model,
                "refiner": self.refiner}


@dataclass(frozen=True, eq=False)
class EvaluationResult:
    """Everything :func:`zeroshot_core.evaluation.evaluator.evaluate` found.

    Attributes
    ----------
    methods : tuple of MethodResult
        In the requested order.
    target : MethodResult
        The segmenter on the real target (``"target"``): the ceiling of any translation.
    slices : tuple of int
        Evaluated slice indices along ``axis``.
    axis : int
    spacing : tuple of float
        Voxel size (mm) from the affine.
    label_names : mapping of int to str
    protocol : mapping
        How the scores were computed (region, segmenter source, histogram reference...).
    source, target_volume : Volume
    reference_labels : ndarray of int16
    region : ndarray of bool
        The scoring region.

    Raises
    ------
    ConfigError
        No methods, duplicate names, or no evaluated slices.
    """

    methods: tuple[MethodResult, ...]
    target: MethodResult
    slices: tuple[int, ...]
    axis: int
    spacing: tuple[float, float, float]
    label_names: Mapping[int, str]
    protocol: Mapping[str, Any]
    source: Volume = field(repr=False)
    target_volume: Volume = field(repr=False)
    reference_labels: np.ndarray = field(repr=False)
    region: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        names = [m.method for m in self.methods]
        if not names or len(set(names)) != len(names):
            raise ConfigError(f"an evaluation needs distinct methods, got {names}")
        if not self.slices:
            raise ConfigError("an evaluation needs at least one evaluated slice")

    def method(self, name: str) -> MethodResult:
        """The result of method ``name``.

        Raises
        ------
        ConfigError
            If ``name`` was not evaluated.
        """
        for result in self.methods:
            if result.method == name:
                return result
        raise ConfigError(f"method {name!r} was not evaluated; evaluated: {', '.join(m.method for m in self.methods)}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (scores and protocol, no arrays)."""
        return {"slices": list(self.slices), "axis": self.axis, "spacing_mm": list(self.spacing),
                "label_names": {str(k): v for k, v in self.label_names.items()}, "protocol": dict(self.protocol),
                "methods": [m.scores() for m in self.methods], "target": self.target.scores()}


LABEL_COLOURS = np.array([[0, 0, 0], [70, 130, 230], [110, 200, 110], [245, 225, 120],
                          [230, 110, 90], [190, 120, 220]], np.uint8)
"""RGB of label 0 (background), 1 (CSF), 2 (GM), 3 (WM), then further labels."""
COLUMNS = ("source", "translation", "real target", "segmentation")
_CAPTION_W, _HEADER_H, _GAP = 150, 22, 4


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        return _clean(value.item())
    return value


def to_json(result: EvaluationResult) -> str:
    """Strict JSON text of the scores and protocol."""
    return json.dumps(_clean(result.to_dict()), indent=2, allow_nan=False) + "\n"


def _number(value: float, digits: int) -> str:
    if math.isnan(value):
        return "–"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{digits}f}"


def _row(result: MethodResult, labels: list[int], name: str) -> list[str]:
    if result.status != "ok":
        return [name, result.status] + ["–"] * (len(labels) + 5)
    return ([name, "ok"] + [_number(result.dice.get(k, float("nan")), 3) for k in labels]
            + [_number(result.mean_dice, 3), _number(result.mean_assd_mm, 2), _number(result.psnr, 2),
               _number(result.ssim, 3), _number(result.wall_time_s, 1)])


def format_table(result: EvaluationResult) -> str:
    """The metrics as a Markdown table, followed by the reasons of skipped/failed methods.

    The last row is the segmenter applied to the real target: the ceiling of Dice/ASSD
    any translation can reach with this segmenter.
    """
    labels = sorted(result.label_names)
    header = (["method", "status"] + [f"Dice {result.label_names[k]}" for k in labels]
              + ["mean Dice", "ASSD mm", "PSNR dB", "SSIM", "time s"])
    rows = [_row(m, labels, m.method) for m in result.methods]
    rows.append(_row(result.target, labels, "real target (ceiling)"))
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(line, widths)) + " |" for line in [header] + rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    notes = [f"- {m.method}: {m.status} — {m.reason}" for m in result.methods if m.status != "ok"]
    return "\n".join(lines + ([""] + notes if notes else []))


def _markdown(result: EvaluationResult, figure_name: str) -> str:
    p = result.protocol
    first, last = result.slices[0], result.slices[-1]
    lines = [
        "# Translation evaluation", "",
        f"Evaluated slices along axis {result.axis}: {len(result.slices)} ({first}..{last}); "
        f"voxel spacing {', '.join(f'{s:g}' for s in result.spacing)} mm.", "",
        format_table(result), "",
        "## Protocol", "",
        f"- Scoring region: {p['scoring_region']}.",
        f"- Segmenter: {p['segmenter']}, state from {p['segmenter_state']}; images normalised with "
        f"{p['normalisation']}.",
        f"- Histogram-matching reference: {p['histmatch_reference']}.",
        "- Dice per label against the reference labels; ASSD in mm (3-D, voxel spacing from the affine); "
        "PSNR (data range 2) and SSIM (2-D maps per slice) of each output against the real target, both "
        "normalised to [-1, 1] the same way, inside the scoring region.",
        "- Time: seconds to produce each output (translation or baseline), models already loaded.",
        f"- Sampling: {_sampling_text(p['translate_options'])}.", "",
        f"![source | translation | real target | segmentation]({figure_name})", "",
    ]
    return "\n".join(lines)


def _grey(image: np.ndarray, region: np.ndarray) -> np.ndarray:
    values = image[region] if region.any() else image.ravel()
    low, high = np.percentile(values, (0.5, 99.5))
    if high <= low:
        high = low + 1.0
    scaled = np.clip((image - low) / (high - low), 0.0, 1.0)
    return np.repeat((scaled * 255).astype(np.uint8)[..., None], 3, axis=2)


def _colour(labels: np.ndarray) -> np.ndarray:
    index = np.where(labels > 0, (labels - 1) % (len(LABEL_COLOURS) - 1) + 1, 0)
    return LABEL_COLOURS[index]


def _plane(volume: np.ndarray, axis: int, index: int, scale: int) -> np.ndarray:
    plane = np.rot90(np.take(volume, index, axis))  # second in-plane axis upwards (anterior up for RAS)
    return np.repeat(np.repeat(plane, scale, axis=0), scale, axis=1)


def render_figure(result: EvaluationResult) -> np.ndarray:
    """The figure as an RGB uint8 array.

    Rows: every method with an output, then ``reference`` (real target and reference
    labels). Columns: :data:`COLUMNS`. Slice: the middle evaluated slice.
    """
    axis, index = result.axis, result.slices[len(result.slices) // 2]
    region_2d = np.take(result.region, index, axis)
    scale = max(1, math.ceil(160 / max(region_2d.shape)))
    region = _plane(result.region, axis, index, scale)

    def tiles(output: np.ndarray, labels: np.ndarray) -> list[np.ndarray]:
        images = (result.source.data, output, result.target_volume.data)
        return ([_grey(_plane(v, axis, index, scale), region) for v in images]
                + [_colour(_plane(labels, axis, index, 1).repeat(scale, 0).repeat(scale, 1))])

    rows = [(m.method, f"Dice {_number(m.mean_dice, 3)}", tiles(m.translation.data, m.labels))
            for m in result.methods if m.status == "ok"]
    rows.append(("reference", "labels", tiles(result.target_volume.data, result.reference_labels)))
    th, tw = rows[0][2][0].shape[:2]
    canvas = np.full((_HEADER_H + len(rows) * (th + _GAP), _CAPTION_W + len(COLUMNS) * (tw + _GAP), 3), 255, np.uint8)
    for r, (_, _, row_tiles) in enumerate(rows):
        y = _HEADER_H + r * (th + _GAP)
        for c, tile in enumerate(row_tiles):
            x = _CAPTION_W + c * (tw + _GAP)
            canvas[y:y + th, x:x + tw] = tile
    captions = [(_CAPTION_W + c * (tw + _GAP) + 4, 5, name) for c, name in enumerate(COLUMNS)]
    for r, (name, detail, _) in enumerate(rows):
        y = _HEADER_H + r * (th + _GAP) + th // 2 - 12
        captions += [(6, y, name), (6, y + 14, detail)]
    return _draw_text(canvas, captions)


def _draw_text(canvas: np.ndarray, captions: list[tuple[int, int, str]]) -> np.ndarray:
    try:
        from PIL import Image, ImageDraw
    except ImportError:  # pragma: no cover - Pillow comes with imageio
        return canvas
    image = Image.fromarray(canvas)
    draw = ImageDraw.Draw(image)
    for x, y, text in captions:
        draw.text((x, y), text, fill=(0, 0, 0))
    return np.asarray(image)


def _write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_report(result: EvaluationResult, out: str | os.PathLike, name: str = "evaluation",
                 nifti: bool = True) -> dict[str, Path]:
    """Write ``<name>.json``, ``<name>.md``, ``<name>.png`` and NIfTI outputs into ``out``.

    NIfTI files (folder ``nifti/``): ``<method>_translation.nii.gz`` and
    ``<method>_labels.nii.gz`` per method with an output, ``target_labels.nii.gz`` (the
    segmenter on the real target) and ``scoring_region.nii.gz``.

    Parameters
    ----------
    result : EvaluationResult
        Output of :func:`zeroshot_core.evaluation.evaluator.evaluate`: per-method scores,
        translations and labels, the target's labels and the scoring region, all on the
        source grid (``result.source``), whose affine and header the NIfTI files reuse.
    out : path-like
        Folder; created (with parents) if missing.
    name : str
        Stem of the report files.
    nifti : bool
        Also write the NIfTI outputs.

    Returns
    -------
    dict of str to Path
        ``json``, ``markdown``, ``figure`` and one key per NIfTI file.

    Raises
    ------
    InputError
        If ``out`` exists and is not a folder.
    """
    import imageio.v3 as iio

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / f"{name}.json", "markdown": out / f"{name}.md", "figure": out / f"{name}.png"}
    figure = render_figure(result)
    _write_text(paths["json"], to_json(result))
    _write_text(paths["markdown"], _markdown(result, paths["figure"].name))
    atomic_write(paths["figure"], lambda tmp: iio.imwrite(tmp, figure, extension=".png"))
    if nifti:
        folder = out / "nifti"
        folder.mkdir(exist_ok=True)
        grid = result.source
        for m in result.methods:
            if m.status == "ok":
                paths[f"{m.method}_translation"] = save_volume(
                    m.translation, folder / f"{m.method}_translation.nii.gz", description=f"zeroshot {m.method}")
                paths[f"{m.method}_labels"] = save_volume(grid.with_data(m.labels), folder / f"{m.method}_labels.nii.gz",
                                                          dtype=np.int16, labels=True)
        paths["target_labels"] = save_volume(grid.with_data(result.target.labels), folder / "target_labels.nii.gz",
                                             dtype=np.int16, labels=True)
        paths["scoring_region"] = save_volume(grid.with_data(result.region.astype(np.uint8)),
                                              folder / "scoring_region.nii.gz", dtype=np.uint8,
                                              description="zeroshot scoring region")
    return paths


def _sampling_text(options: dict) -> str:
    """``steps=25, scheduler=ddim, …``; steps, refiner or refine steps ``None`` (a report's JSON ``null``) read as
    each model's default."""
    def text(key: str, value: object) -> str:
        return "each model's default" if key in ("steps", "refiner", "refine_steps") and value is None else str(value)

    return ", ".join(f"{key}={text(key, value)}" for key, value in options.items())
