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

from zeroshot_core.consistency import ConsistencyParams
from zeroshot_core.errors import ZeroshotError
from zeroshot_core.mask import MaskParams, filter_mask
from zeroshot_core.model_store import read_card
from zeroshot_core.models import LoadedModel, bundled_model_dirs, load_model
from zeroshot_core.plugins import fitted_segmenter, guidance_registry
from zeroshot_core.sampling import SCHEDULER_NAMES
from zeroshot_core.training import DEVICE_NAMES, TrainConfig, TrainProgress, train_iter
from zeroshot_core.translation import (Progress, TranslateOptions, TranslationResult, as_source_volume,
                                       source_mask, translate_iter)
from zeroshot_core.volumes import Normalisation, Volume, slicing_axis

__all__ = [
    "DEVICE_NAMES", "SCHEDULER_NAMES", "ConsistencyParams", "LoadedModel", "MaskParams", "Progress", "TrainConfig",
    "TrainProgress", "TranslateOptions", "TranslationResult", "list_models", "load_model", "preview",
    "read_card", "segment", "train", "train_iter", "translate", "translate_iter",
]


def translate(source: Volume | str | os.PathLike | np.ndarray, model: str | os.PathLike | LoadedModel | None = None,
              guidance: str | None = None, options: TranslateOptions | None = None) -> Volume:
    """Translate a volume to the model's target modality.

    Parameters
    ----------
    source : Volume, path-like or ndarray
    model : path-like, LoadedModel or None
        ``None`` uses the bundled default for ``guidance``.
    guidance : str, optional
        Defaults to the guidance the model was trained with.
    options : TranslateOptions, optional

    Returns
    -------
    Volume
        On the exact grid and affine of ``source``.

    Raises
    ------
    ZeroshotError
        For any bad input (one-line message).
    """
    result = None
    for event in translate_iter(source, model, guidance, options):
        if isinstance(event, TranslationResult):
            result = event
    assert result is not None
    return result.volume


def train(targets: Sequence[str | os.PathLike], out: str | os.PathLike, config: TrainConfig | None = None,
          resume: bool = False) -> Path:
    """Train a model on target images only; returns the model folder.

    See :func:`zeroshot_core.training.train_iter` for the generator form.
    """
    for _ in train_iter(targets, out, config or TrainConfig(), resume=resume):
        pass
    return Path(out)


def segment(image: Volume | str | os.PathLike | np.ndarray, model: str | os.PathLike | LoadedModel | None = None,
            segmenter: str = "kmeans", mask: MaskParams | None = None,
            segmenter_params: Mapping[str, Any] | None = None) -> np.ndarray:
    """Segment an image of the target modality with a segmenter stored in a model.

    Parameters
    ----------
    image : Volume, path-like or ndarray
    model : path-like, LoadedModel or None
        Supplies the fitted segmenter state and the normalisation; ``None`` uses a
        bundled model.
    segmenter : str
    mask : MaskParams, optional
    segmenter_params : mapping, optional

    Returns
    -------
    ndarray of int16, same shape as the image; 0 is background.

    Raises
    ------
    ModelError
        If the model holds no state for a segmenter that needs fitting.
    """
    volume = as_source_volume(image)
    if isinstance(model, LoadedModel):
        card = model.card
    else:
        from zeroshot_core.models import default_model_dir

        card = read_card(model if model is not None else default_model_dir(None))
    instance = fitted_segmenter(segmenter, card.segmenters, **dict(segmenter_params or {}))
    params = mask or (MaskParams(**card.mask) if card.mask else MaskParams())
    axis = slicing_axis(volume.affine, volume.data.shape)
    region = source_mask(volume, axis, params)
    normalised = Normalisation.fit(volume.data, tuple(card.percentiles), region).apply(volume.data)
    return np.asarray(instance.segment(normalised, region), dtype=np.int16)


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
