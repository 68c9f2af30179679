"""Provenance of a translation: what made it, for a JSON sidecar and a NIfTI ``descrip``.

One record per translation (:func:`translation_provenance`), built the same way for
the CLI (written beside the output, BIDS habit: the output's name with ``.json``)
and the napari widget (kept in the result layer's metadata). The record names the
model (folder name, SHA-256 of its ``model.json``, target modality, the guidance it
was trained with), the guidance and its parameters as used, the sampling settings
(steps, scheduler, seed, requested and actual device, batch, CFG scale,
consistency), the filter mask, the slices, the package version and the source
file. Top-level keys follow BIDS derivatives (``Description``, ``GeneratedBy``,
``Sources``); the details are under ``"Translation"``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from zeroshot_core.diffusion.domain import translation_warnings
from zeroshot_core.io.atomic import atomic_write
from zeroshot_core.io.formats import NIFTI_SUFFIXES
from zeroshot_core.model.store import CARD_FILE
from zeroshot_core.version import __version__

#: Longest NIfTI-1 ``descrip`` (bytes).
DESCRIP_BYTES = 80


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _plain(value: Any) -> Any:
    """JSON-ready copy of settings (dataclasses, NumPy scalars, tuples, paths)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


def translation_provenance(result: Any, options: Any, source: str | os.PathLike | None = None) -> dict[str, Any]:
    """The provenance record of a finished translation.

    Parameters
    ----------
    result : TranslationResult
        The translation (its model, guidance, slices and axis are read).
    options : TranslateOptions
        The options the translation ran with.
    source : path-like, optional
        The source file, if the source came from one.

    Returns
    -------
    dict
        JSON-serialisable: ``Description``, ``Warnings``
        (:func:`zeroshot_core.diffusion.domain.translation_warnings`), ``GeneratedBy`` (name, version),
        ``Sources`` and ``Translation`` (``model`` with ``name``, ``path``,
        ``card_sha256``, ``target_modality``, ``trained_guidance``; ``guidance``,
        ``guidance_params``, ``steps`` (used), ``steps_requested`` (``None``: the card's
        default), ``scheduler``, ``seed``, ``device``,
        ``device_requested``, ``batch_size``, ``cfg_scale`` (used), ``cfg_scale_requested``
        (``None``: the card's default), ``cfg_steps``, ``samples``, ``denoise``, ``denoise_choice``
        (what was applied and why), ``acceleration`` (used: autocast ``auto`` resolved),
        ``acceleration_requested``, ``refiner`` (``None``, or the model that took the last
        steps: ``name``, ``path``, ``card_sha256``, ``steps``, ``cfg_scale``),
        ``refiner_requested`` and ``refine_steps_requested`` (``None``: the card's), ``consistency``,
        ``mask``, ``slices``, ``axis``, ``created`` (UTC, ISO 8601)).
    """
    model = result.model
    card = model.card
    card_file = Path(model.path) / CARD_FILE
    params = dict(card.guidance_params) if result.guidance == card.guidance else {}
    params.update(_plain(dict(options.guidance_params)))
    translation = {
        "model": {"name": Path(model.path).name, "path": str(model.path),
                  "card_sha256": file_sha256(card_file) if card_file.is_file() else None,
                  "target_modality": card.target_modality, "trained_guidance": card.guidance},
        "guidance": result.guidance,
        "guidance_params": _plain(params),
        "steps": getattr(result, "steps", options.steps),
        "steps_requested": options.steps,
        "scheduler": options.scheduler,
        "seed": options.seed,
        "device": str(model.device),
        "device_requested": options.device,
        "batch_size": options.batch_size,
        "cfg_scale": getattr(result, "cfg_scale", options.cfg_scale),
        "cfg_scale_requested": options.cfg_scale,
        "cfg_steps": options.cfg_steps,
        "samples": options.samples,
        "denoise": options.denoise,
        "denoise_choice": result.denoise.to_dict() if getattr(result, "denoise", None) is not None else None,
        "acceleration": _plain(getattr(result, "acceleration", None) or options.acceleration),
        "acceleration_requested": _plain(options.acceleration),
        "refiner": _refiner_record(result),
        "refiner_requested": options.refiner,
        "refine_steps_requested": options.refine_steps,
        "consistency": _plain(options.consistency),
        "mask": _plain(result.mask_params if result.mask_params is not None else options.mask),
        "slices": [int(i) for i in result.slices],
        "axis": int(result.axis),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return {
        "Description": f"{card.target_modality} translated by zeroshot ({result.guidance} guidance)",
        "Warnings": translation_warnings(result),
        "GeneratedBy": [{"Name": "zeroshot", "Version": __version__}],
        "Sources": [str(Path(source).resolve())] if source is not None else [],
        "Translation": translation,
    }


def _refiner_record(result: Any) -> dict[str, Any] | None:
    refiner = getattr(result, "refiner", None)
    if refiner is None:
        return None
    card_file = Path(refiner.path) / CARD_FILE
    return {"name": Path(refiner.path).name, "path": str(refiner.path),
            "card_sha256": file_sha256(card_file) if card_file.is_file() else None,
            "steps": int(result.refine_steps), "cfg_scale": float(result.refiner_cfg_scale)}


def descrip(record: dict[str, Any]) -> str:
    """A one-line summary of ``record`` that fits the NIfTI ``descrip`` field (80 bytes)."""
    t = record["Translation"]
    version = record["GeneratedBy"][0]["Version"]
    text = (f"zeroshot {version} {t['model']['name']} {t['guidance']} {t['steps']} {t['scheduler']} "
            f"seed {t['seed']} {t['device']}")
    return text.encode("ascii", "replace")[:DESCRIP_BYTES].decode("ascii")


def sidecar_path(output: str | os.PathLike) -> Path:
    """The JSON sidecar of an output image: same name, ``.json`` instead of the image suffix."""
    path = Path(output)
    name = path.name
    for suffix in sorted(NIFTI_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return path.with_name(name[: -len(suffix)] + ".json")
    return path.with_suffix(".json")


def write_provenance(output: str | os.PathLike, record: dict[str, Any]) -> Path:
    """Write ``record`` as the output's JSON sidecar.

    The image itself carries :func:`descrip` in its NIfTI header when it is saved with
    ``save_volume(..., description=descrip(record))``; the file is written once.

    Parameters
    ----------
    output : path-like
        The image already written (NIfTI, PNG, TIFF or NPY).
    record : dict
        From :func:`translation_provenance`.

    Returns
    -------
    Path
        The sidecar (written atomically).
    """
    output = Path(output)
    sidecar = sidecar_path(output)
    text = json.dumps(record, indent=2) + "\n"
    atomic_write(sidecar, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return sidecar
