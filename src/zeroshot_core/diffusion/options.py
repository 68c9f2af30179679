"""Sampling settings of a translation (:class:`TranslateOptions`), validated on construction."""

from __future__ import annotations

import numbers
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from zeroshot_core.choices import DENOISE_METHODS, SCHEDULER_NAMES
from zeroshot_core.diffusion.consistency import ConsistencyParams
from zeroshot_core.errors import ConfigError
from zeroshot_core.imaging.mask import MaskParams
from zeroshot_core.model.acceleration import Acceleration


def _whole(value: object) -> bool:
    """An integer (Python or NumPy), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


@dataclass(frozen=True)
class TranslateOptions:
    """Sampling settings, validated on construction.

    Attributes
    ----------
    steps : int or None
        Scheduler steps for the full schedule (SDEdit runs ``strength`` of them).
        ``None`` (default): the model card's (``sampling.steps``, for a model distilled
        to sample in fewer steps), 50 when it has none.
    scheduler : str
        ``ddim``, ``dpm``, ``ddpm`` or ``sde``.
    seed : int
    device : str
        ``auto``, ``cpu``, ``cuda`` or ``mps``.
    batch_size : int
        Slices sampled together. When the device runs out of memory, the batch is
        halved and redone (a ``SmallerBatchWarning`` says so); the result is what
        that smaller ``batch_size`` gives.
    mask : MaskParams or None
        Filter-mask settings; ``None`` (default) uses the model card's, the ones the
        model was trained with (:meth:`MaskParams.resolve`).
    consistency : ConsistencyParams or None
        Adjacent-slice candidate selection (slices then run one at a time).
    slices : tuple of int or None
        Slice indices (along ``axis``) to translate; ``None`` for all.
    axis : int or None
        Slicing axis; ``None`` picks the through-plane axis from the affine.
    guidance_params : mapping
        Overrides of the guidance parameters stored in the model card.
    cfg_scale : float or None
        Classifier-free guidance scale (1.0: off); needs a model trained with
        condition dropout. ``None`` (default): the model card's measured default
        (``sampling.cfg_scale``; 1.5 for the bundled ``t1-lmi``), 1.0 when it has none.
    cfg_steps : float
        Share of the steps, from the noisiest, that use classifier-free guidance
        (0 < share <= 1; default 1: all); the later steps call the network once. Guidance
        in an interval of noise levels (Kynkäänniemi et al., NeurIPS 2024) costs
        ``1 + cfg_steps`` network calls per step instead of 2.
    samples : int
        Draws averaged per slice (:mod:`~zeroshot_core.diffusion.expectation`): the
        mean of K samples estimates E[x0 | guide]; costs K times the network calls.
        Draw ``c`` starts from the noise of seed ``seed + c``, so with the deterministic
        schedulers (``ddim``, ``dpm``) the result is the mean of the translations with
        seeds ``seed … seed + K - 1``.
        Not with ``consistency`` (which chooses among draws instead).
    acceleration : Acceleration
        Speed-ups of the score network (autocast, channels-last, torch.compile); by
        default autocast ``auto`` (bfloat16 on a CPU with bfloat16 instructions, else
        float32) and the others off.
    refiner : str or None
        A model (folder or bundled name) that takes the last ``refine_steps`` steps
        (:mod:`~zeroshot_core.diffusion.refiner`), with its own card's classifier-free
        guidance scale. ``None`` (default): the model card's (``sampling.refiner``;
        the bundled ``t1-lmi-lite`` names ``t1-lmi``).
    refine_steps : int or None
        How many of the last steps the refiner takes; 0 switches it off. ``None``
        (default): the model card's (``sampling.refine_steps``), 0 when it has none.
    denoise : str
        ``off``, ``nlm`` (non-local means on the source, in-plane, before it guides:
        :func:`zeroshot_core.imaging.denoise.denoise_volume`; for noisy sources such as
        PD) or ``auto`` (the default: ``nlm`` only when the source is noisier than the
        model's training images, :mod:`zeroshot_core.diffusion.auto_denoise`).
    """

    steps: int | None = None
    scheduler: str = "ddim"
    seed: int = 0
    device: str = "auto"
    batch_size: int = 8
    mask: MaskParams | None = None
    consistency: ConsistencyParams | None = None
    slices: tuple[int, ...] | None = None
    axis: int | None = None
    guidance_params: Mapping[str, Any] = field(default_factory=dict)
    cfg_scale: float | None = None
    cfg_steps: float = 1.0
    samples: int = 1
    acceleration: Acceleration = field(default_factory=Acceleration)
    denoise: str = "auto"
    refiner: str | os.PathLike | None = None
    refine_steps: int | None = None

    def __post_init__(self) -> None:
        for name in ("steps", "refine_steps", "seed", "batch_size", "samples"):
            value = getattr(self, name)
            if (value is not None or name in ("seed", "batch_size", "samples")) and not _whole(value):
                raise ConfigError(f"{name.replace('_', ' ')} must be a whole number, got {value!r:.40}")
        for name in ("cfg_scale", "cfg_steps"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, numbers.Real) and not isinstance(value, bool)):
                raise ConfigError(f"{name.replace('_', ' ')} must be a number, got {value!r:.40}")
        if self.refiner is not None and not isinstance(self.refiner, (str, os.PathLike)):
            raise ConfigError(f"refiner must be a model folder or a bundled model's name, got {self.refiner!r:.40}")
        if self.steps is not None and not 1 <= self.steps <= 1000:
            raise ConfigError(f"steps must be 1..1000, got {self.steps}")
        if self.scheduler not in SCHEDULER_NAMES:
            raise ConfigError(f"unknown scheduler {self.scheduler!r}; valid: {', '.join(SCHEDULER_NAMES)}")
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be >= 1, got {self.batch_size}")
        if self.axis is not None and self.axis not in (0, 1, 2):
            raise ConfigError(f"axis must be 0, 1 or 2, got {self.axis}")
        if self.device not in ("auto", "cpu", "cuda", "mps"):
            raise ConfigError(f"unknown device {self.device!r}; use auto, cpu, cuda or mps")
        if self.cfg_scale is not None and not 0.0 <= self.cfg_scale <= 20.0:
            raise ConfigError(f"cfg scale must be 0..20, got {self.cfg_scale}")
        if not 0.0 < self.cfg_steps <= 1.0:
            raise ConfigError(f"cfg steps must be a share in (0, 1], got {self.cfg_steps}")
        if not 1 <= self.samples <= 64:
            raise ConfigError(f"samples must be 1..64, got {self.samples}")
        if self.samples > 1 and self.consistency is not None:
            raise ConfigError("samples > 1 averages draws, consistency chooses one: use one or the other")
        if self.denoise not in DENOISE_METHODS:
            raise ConfigError(f"unknown denoising {self.denoise!r}; valid: {', '.join(DENOISE_METHODS)}")
        if self.refine_steps is not None and not 0 <= self.refine_steps <= 1000:
            raise ConfigError(f"refine steps must be 0..1000, got {self.refine_steps}")
        if self.refiner is not None and not str(self.refiner).strip():
            raise ConfigError("refiner must name a model folder or a bundled model")
        if not isinstance(self.acceleration, Acceleration):
            raise ConfigError(f"acceleration must be an Acceleration, got {self.acceleration!r}")
