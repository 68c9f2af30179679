"""The public Python API: train, translate, segment, preview.

Examples
--------
>>> from zeroshot_core import api
>>> sorted(n for n in ("translate", "segment", "train") if hasattr(api, n))
['segment', 'train', 'translate']
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from zeroshot_core.choices import DENOISE_METHODS, DEVICE_NAMES, SCHEDULER_NAMES
from zeroshot_core.diffusion.consistency import ConsistencyParams
from zeroshot_core.diffusion.domain import translation_warnings
from zeroshot_core.diffusion.provenance import (
    descrip,
    sidecar_path,
    translation_provenance,
    write_provenance,
)
from zeroshot_core.diffusion.running import progress_then_result, run_translation
from zeroshot_core.diffusion.translation import (
    Progress,
    TranslateOptions,
    TranslationResult,
    as_source_volume,
    source_mask,
    translate_iter,
)
from zeroshot_core.errors import InputError, ZeroshotError
from zeroshot_core.imaging.intensity import Normalisation
from zeroshot_core.imaging.mask import MaskParams, filter_mask
from zeroshot_core.imaging.orientation import slicing_axis
from zeroshot_core.imaging.region import RegionLike, as_region
from zeroshot_core.io.formats import (
    NIFTI_SUFFIXES,
    check_output_path,
    check_outputs,
    load_volume,
    save_volume,
)
from zeroshot_core.io.volume import Volume
from zeroshot_core.model.acceleration import Acceleration
from zeroshot_core.model.loading import (
    LoadedModel,
    bundled_model_dirs,
    default_model_dir,
    load_model,
)
from zeroshot_core.model.store import read_card
from zeroshot_core.model.summary import (
    DEFAULT_STEPS,
    card_summary,
    default_cfg_scale,
    default_refine_steps,
    default_steps,
    training_anatomy,
)
from zeroshot_core.plugins.manager import (
    fitted_segmenter,
    guidance_registry,
    segmenter_registry,
)
from zeroshot_core.samples.sample_data import load_sample
from zeroshot_core.segmentation import segment_slices, segment_translation
from zeroshot_core.training.loop import TrainConfig, TrainProgress, train_iter

__all__ = [
    "Acceleration", "DENOISE_METHODS", "DEVICE_NAMES", "default_model_dir", "NIFTI_SUFFIXES", "SCHEDULER_NAMES", "ConsistencyParams", "LoadedModel",
    "MaskParams", "Progress",
    "TrainConfig", "TrainProgress", "TranslateOptions", "TranslationResult", "Volume", "check_output_path",
    "check_outputs",
    "guidance_registry", "list_models", "load_model", "load_sample", "load_volume", "preview", "progress_then_result",
    "read_card", "run_translation", "save_volume", "segment", "segment_translation", "segmenter_registry", "train",
    "train_iter", "translate", "translate_iter", "descrip", "sidecar_path", "translation_provenance", "write_provenance",
    "card_summary", "default_cfg_scale", "default_refine_steps", "default_steps", "DEFAULT_STEPS", "training_anatomy", "translation_warnings",
]


def translate(source: Volume | str | os.PathLike | np.ndarray, model: str | os.PathLike | LoadedModel | None = None,
              guidance: str | None = None, options: TranslateOptions | None = None) -> Volume:
    """Translate a volume to the model's target modality.

    Parameters
    ----------
    source : Volume, path-like or ndarray
        Source image (e.g. PD or T2 MRI) in its own intensity units: a
        :class:`Volume` (voxels ``(X, Y, Z)`` with affine in mm), a NIfTI or 2-D
        image file, or an array ``(X, Y, Z)`` or ``(H, W)`` (identity affine). Must be
        finite and not constant.
    model : path-like, LoadedModel or None
        ``None`` uses the bundled default for ``guidance``.
    guidance : str, optional
        Defaults to the guidance the model was trained with.
    options : TranslateOptions, optional
        Sampling settings (steps, scheduler, seed, device, filter mask, slices,
        slicing axis …); ``None`` uses ``TranslateOptions()`` defaults.

    Returns
    -------
    Volume
        On the exact grid and affine of ``source``.

    Raises
    ------
    ZeroshotError
        For any bad input (one-line message).
    """
    return run_translation(source, model, guidance, options).volume


def train(targets: Sequence[str | os.PathLike], out: str | os.PathLike, config: TrainConfig | None = None,
          resume: bool = False) -> Path:
    """Train a model on target images only; returns the model folder.

    See :func:`zeroshot_core.training.loop.train_iter` for the generator form.
    """
    for _ in train_iter(targets, out, config or TrainConfig(), resume=resume):
        pass
    return Path(out)


def segment(image: Volume | str | os.PathLike | np.ndarray, model: str | os.PathLike | LoadedModel | None = None,
            segmenter: str = "kmeans", mask: MaskParams | None = None,
            segmenter_params: Mapping[str, Any] | None = None, region: RegionLike | None = None) -> np.ndarray:
    """Segment an image of the target modality with a segmenter stored in a model.

    Parameters
    ----------
    image : Volume, path-like or ndarray
        Image in the target modality's intensity units (e.g. a translation): a
        :class:`Volume` (voxels ``(X, Y, Z)``), a NIfTI or 2-D image file, or an array
        ``(X, Y, Z)`` or ``(H, W)``. Must be finite and not constant.
    model : path-like, LoadedModel or None
        Supplies the fitted segmenter state and the normalisation; ``None`` uses a
        bundled model.
    segmenter : str
        Registered segmenter name: ``"kmeans"`` (default; needs a state fitted at
        training time) or ``"multiotsu"``, or one added by a plugin.
    mask : MaskParams, optional
        Filter-mask settings that select the voxels to segment (labels are 0 outside),
        worked out slice by slice as for a translation; ``None`` uses the model card's
        mask settings (the rule of ``translate``, :func:`segment_translation` and
        evaluation).
    segmenter_params : mapping, optional
        Extra keyword arguments of the segmenter factory (besides its fitted
        ``state``); ``None`` passes none.
    region : ndarray, Volume or path-like, optional
        Segment inside this region instead of the filter mask (e.g. a brain mask):
        an array of the image's shape ``(X, Y, Z)`` (``(H, W)`` for a 2-D image), taken
        on the image's voxel grid, or a :class:`Volume` or image file (NIfTI …) with
        the image's shape and affine (mm, to within 1e-3). Values other than 0 are
        inside (a probability map counts wherever it is not 0). Checked before the
        model is read; never modified. Cannot be combined with ``mask``.

    Returns
    -------
    ndarray of int16, same shape as the image; 0 is background (outside the mask or
    the region).

    Raises
    ------
    InputError
        If the image is unreadable, non-finite or constant (inside the mask); if
        ``region`` is unreadable, empty, or of another shape or affine than the
        image, or given together with ``mask``.
    ModelError
        If the model is missing or holds no state for a segmenter that needs fitting.
    PluginError
        If ``segmenter`` is not a registered name or its factory rejects
        ``segmenter_params``.
    """
    volume = as_source_volume(image)
    if region is not None and mask is not None:
        raise InputError("give either a region or filter-mask settings (mask), not both; the region replaces "
                         "the filter mask")
    chosen = as_region(region, volume) if region is not None else None
    if isinstance(model, LoadedModel):
        card = model.card
    else:
        card = read_card(model if model is not None else default_model_dir(None))
    instance = fitted_segmenter(segmenter, card.segmenters, **dict(segmenter_params or {}))
    axis = slicing_axis(volume.affine, volume.data.shape)
    if chosen is None:
        chosen = source_mask(volume, axis, MaskParams.resolve(mask, card.mask))
    return segment_slices(volume.data, chosen, axis, None, instance, card.percentiles)


def preview(image: np.ndarray, guidance: str = "contour", mask: MaskParams | None = None,
            guidance_params: Mapping[str, Any] | None = None,
            percentiles: tuple[float, float] = (0.5, 99.5)) -> tuple[np.ndarray, np.ndarray]:
    """Filter mask and guidance map of one 2-D slice, without sampling (for live previews).

    Returns
    -------
    mask : ndarray bool (H, W)
    channels : ndarray float32 (C, H, W)
        Static channels of the guidance; for strategies with dynamic channels only,
        their values for ``sample = reference`` (e.g. LMI(G, G)).

    Raises
    ------
    ZeroshotError
    """
    import torch

    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2:
        raise ZeroshotError(f"preview needs a 2-D slice, got shape {image.shape}")
    region = filter_mask(image, mask or MaskParams())
    try:
        normalised = Normalisation.fit(image, percentiles, region if region.any() else None).apply(image)
    except ZeroshotError:
        return region, np.zeros((0,) + image.shape, np.float32)
    strategy = guidance_registry().create(guidance, **dict(guidance_params or {}))
    reference = np.where(region, normalised, -1.0).astype(np.float32)
    channels = strategy.static_condition(reference, region)
    if strategy.dynamic_channels:
        tensor = torch.from_numpy(reference)[None, None]
        dynamic = strategy.dynamic_condition(tensor, tensor)[0].detach().cpu().numpy()
        channels = np.concatenate([channels, dynamic])
    return region, channels.astype(np.float32)


def list_models() -> list[tuple[Path, dict[str, Any]]]:
    """Bundled models and their model cards."""
    return [(directory, read_card(directory).to_dict()) for directory in bundled_model_dirs()]
