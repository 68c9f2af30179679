"""Translation support for recipe models: native-spacing grids, the CFG default and its check.

A model trained with ``spacing_mm`` (see :mod:`zeroshot_core.imaging.spacing`) has seen
random crops of slices resampled to that pixel spacing, with a whole-head mask. To
translate with it each source slice is resampled in-plane to ``spacing_mm``, padded
(background ``-1``, centred) to a multiple of the UNet's down-sampling factor, sampled
whole (the UNet is convolutional; its attention works on any size), then cropped and
resampled back to the source grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zeroshot_core.errors import ConfigError
from zeroshot_core.imaging.head_mask import head_mask
from zeroshot_core.imaging.mask import MaskParams, source_mask
from zeroshot_core.imaging.orientation import Reorientation
from zeroshot_core.imaging.spacing import (
    inplane_spacing,
    pad_to,
    padded_shape,
    resample_slices,
    resampled_shape,
)
from zeroshot_core.io.volume import Volume
from zeroshot_core.model.store import ModelCard
from zeroshot_core.model.summary import default_cfg_scale, default_steps, training_anatomy


def cfg_scale_for(card: ModelCard, requested: float | None) -> float:
    """The classifier-free guidance scale to use: ``requested``, else the card's default, else 1.

    The card's default (``sampling.cfg_scale``) is the scale measured best for that model
    (``scripts/bundle_model.py --cfg-scale``); models without one sample without CFG.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> cfg_scale_for(SimpleNamespace(sampling={"cfg_scale": 1.25}), None)
    1.25
    >>> cfg_scale_for(SimpleNamespace(sampling={"cfg_scale": 1.25}), 1.0)
    1.0
    >>> cfg_scale_for(SimpleNamespace(sampling={}), None)
    1.0
    """
    return float(requested) if requested is not None else default_cfg_scale(card.sampling)


def steps_for(card: ModelCard, requested: int | None) -> int:
    """The sampling step count to use: ``requested``, else the card's default, else 50.

    The card's default (``sampling.steps``) is the count a distilled model was taught to
    sample in (``train --teacher-steps``, recorded by ``scripts/bundle_model.py --steps``).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> steps_for(SimpleNamespace(sampling={"steps": 25}), None), steps_for(SimpleNamespace(sampling={"steps": 25}), 50)
    (25, 50)
    >>> steps_for(SimpleNamespace(sampling={}), None)
    50
    """
    return int(requested) if requested is not None else default_steps(card.sampling)


def check_cfg(card: ModelCard, cfg_scale: float, path: Path | str = "the model") -> None:
    """Refuse classifier-free guidance for a model that never learnt an unconditional score.

    Raises
    ------
    ConfigError
        If ``cfg_scale != 1`` and the model was trained without condition dropout or has
        no condition channels.
    """
    if cfg_scale == 1.0:
        return
    if card.condition_channels == 0:
        raise ConfigError(f"--cfg-scale needs condition channels, but {Path(path).name} has none "
                          f"(guidance {card.guidance!r}); use --cfg-scale 1")
    if not card.training.get("condition_dropout"):
        raise ConfigError(f"--cfg-scale needs a model trained with --condition-dropout > 0; {Path(path).name} "
                          "was trained without it; use --cfg-scale 1")


@dataclass(frozen=True)
class SliceGrid:
    """How canonical source slices map to the model's working grid.

    Attributes
    ----------
    shape : tuple of int
        Source slice shape (pixels).
    resampled : tuple of int
        Shape at the model's spacing.
    work : tuple of int
        ``resampled`` padded to a multiple of the down-sampling factor.
    """

    shape: tuple[int, int]
    resampled: tuple[int, int]
    work: tuple[int, int]

    def to_work(self, slices: np.ndarray, fill: float) -> np.ndarray:
        """``(n, *shape)`` → ``(n, *work)``: resample, then pad with ``fill``."""
        return pad_to(resample_slices(np.asarray(slices, np.float32), self.resampled), self.work, fill)[0]

    def from_work(self, samples: np.ndarray) -> np.ndarray:
        """``(n, *work)`` → ``(n, *shape)``: crop the padding, resample back."""
        oy, ox = (self.work[0] - self.resampled[0]) // 2, (self.work[1] - self.resampled[1]) // 2
        crop = np.asarray(samples, np.float32)[:, oy:oy + self.resampled[0], ox:ox + self.resampled[1]]
        return resample_slices(crop, self.shape)


@dataclass(frozen=True)
class NativeGrid:
    """Resampling of one volume's slices to a native-spacing model's pixel spacing.

    Attributes
    ----------
    spacing_mm : float
        The model's in-plane pixel spacing.
    spacing : tuple of float
        The source's in-plane pixel spacing (canonical slice axes), mm.
    factor : int
        Down-sampling factor of the UNet (work shapes are multiples of it).
    head : bool
        The model was trained on whole heads with the whole-head mask; ``False`` for a
        native-spacing model trained on skull-stripped brains, whose sources get the
        filter mask like a pad-and-resize model's (a whole-head mask lets scalp and fat
        into the intensity normalisation and the guide).
    """

    spacing_mm: float
    spacing: tuple[float, float]
    factor: int
    head: bool

    @classmethod
    def for_card(cls, card: ModelCard, volume: Volume, axis: int) -> "NativeGrid | None":
        """The grid for a native-spacing model, ``None`` for a pad-and-resize one."""
        spacing_mm = card.training.get("spacing_mm")
        if not spacing_mm:
            return None
        reorient = Reorientation.for_affine(volume.affine, volume.data.shape)
        factor = 2 ** (len(card.unet["block_out_channels"]) - 1)
        return cls(float(spacing_mm), inplane_spacing(volume.spacing, reorient, axis), factor,
                   card.training.get("mask_kind") == "head" and training_anatomy(card.training) != "brain")

    def mask(self, volume: Volume, axis: int, params: MaskParams) -> np.ndarray:
        """The source mask: whole head for whole-head models, else the filter mask (all true with the mask off)."""
        if not params.enabled:
            return np.ones(volume.data.shape, bool)
        if self.head:
            return head_mask(volume.data, axis)
        return source_mask(volume, axis, params)

    def geometry(self, shape: tuple[int, int]) -> SliceGrid:
        """Working grid of canonical slices of ``shape`` pixels."""
        resampled = resampled_shape(tuple(shape), self.spacing, self.spacing_mm)
        return SliceGrid(tuple(shape), resampled, padded_shape(resampled, self.factor, 2 * self.factor))
