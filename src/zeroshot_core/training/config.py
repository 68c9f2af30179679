"""The training settings: :class:`TrainConfig`, validated on construction."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from zeroshot_core.errors import ConfigError
from zeroshot_core.imaging.mask import MaskParams
from zeroshot_core.model.prediction import PREDICTION_TYPES
from zeroshot_core.model.store import DEFAULT_NOISE_SCHEDULE, MODEL_SIZES


@dataclass(frozen=True)
class TrainConfig:
    """Training settings, validated on construction.

    Attributes
    ----------
    guidance : str
        Registered guidance strategy.
    guidance_params : dict
        Parameters for its factory.
    image_size : int
        Side of the square training slices.
    model_size : str
        ``tiny`` (seconds, for tests), ``lite`` (a distilled student), ``small`` or ``base`` (quality).
    max_steps : int
        Total optimiser steps (cumulative across resumes).
    batch_size : int
        Slices per optimiser step: the *global* batch. With several processes
        (:mod:`zeroshot_core.training.distributed`) each computes ``batch_size / world``
        of them; it must divide evenly.
    learning_rate, weight_decay, ema_decay, grad_clip : numbers
        AdamW learning rate and weight decay, EMA decay, gradient-norm clip. The
        learning rate belongs to the global batch: it needs no scaling with the
        number of processes.
    checkpoint_every : int
        Steps between checkpoints (0: only at the end).
    seed : int
    device : str
        ``auto``, ``cpu``, ``cuda`` or ``mps``.
    augment : bool
    mixed_precision : bool
        bf16 autocast on CUDA.
    mask : MaskParams
    target_modality : str
    segmenters : tuple of str
        Segmenters to fit on the training slices and store in the model card.
    prediction : str
        Network output: ``epsilon`` (noise), ``v_prediction`` (Salimans & Ho 2022) or
        ``sample`` (``x0``); stored as the card's ``noise_schedule.prediction_type``.
    min_snr_gamma : float or None
        Min-SNR-γ loss weighting (Hang et al. 2023); ``None`` for plain MSE.
    condition_dropout : float
        Probability of zeroing a sample's condition channels, which teaches the model
        an unconditional score for classifier-free guidance (Ho & Salimans 2022).
    contrast_randomisation : float
        Probability that a sample's guide (reference image and static channels) is
        computed from a randomly re-contrasted T1 slice (:mod:`zeroshot_core.model.prediction`).
    contrast_variants : int
        Randomised guides precomputed per slice at load time.
    guide_noise : float
        Largest standard deviation (``[0, 1]`` intensity units) of the Rician noise put
        on each sample's guide reference, drawn uniformly per sample
        (:func:`zeroshot_core.training.contrast.noisy_reference`); 0 turns it off.
        Noisy sources (PD-weighted MRI) then steer the network by their anatomy, not
        their noise. Only guidances computed from the reference at each step (``lmi``)
        see it; precomputed static channels do not.
    spacing_mm : float or None
        Native-spacing mode: slices are resampled in-plane to this pixel
        spacing, masked with the whole-head mask, and each step draws random
        ``image_size`` crops. ``None``: pad to squares and resize (the default).
    init_from : str or None
        Fine-tuning: a model folder whose weights start the run (a fresh optimiser, step
        0) instead of a random initialisation. Its guidance, prediction type, model
        size and condition channels must be those of this run; its image size and
        spacing need not be (the UNet is convolutional).
    notes : str
        Free text stored in the model card (e.g. held-out subjects).
    channels_last : bool
        Keep the UNet's weights and inputs in ``torch.channels_last`` memory format
        (a speed switch: same maths, other memory layout).
    teacher : str or None
        Distillation: a model folder whose guided predictions are the training targets
        instead of the drawn noise (:mod:`zeroshot_core.training.distill`). Its guidance,
        guidance parameters, prediction type, input channels and spacing must be the
        run's; its size need not be (the point is a smaller student).
    teacher_cfg_scale : float
        Classifier-free guidance scale folded into the teacher's targets (1: none; the
        teacher must have been trained with condition dropout for more).
    teacher_steps : int or None
        Progressive distillation: teach the student to sample in this many DDIM steps
        what the teacher does in twice as many (timesteps drawn from that grid only;
        :meth:`zeroshot_core.training.distill.Teacher.two_step_target`). ``None``: the
        teacher's one-step prediction at any timestep.
    compile : bool
        Run the UNet through ``torch.compile`` (a speed switch; the start pays for the
        compilation), once a probe step has shown that its gradients are the eager
        ones (:mod:`zeroshot_core.training.speed`).
    """

    guidance: str = "contour"
    guidance_params: dict[str, Any] = field(default_factory=dict)
    image_size: int = 64
    model_size: str = "small"
    max_steps: int = 10000
    batch_size: int = 16
    learning_rate: float = 2e-4
    weight_decay: float = 1e-4
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    checkpoint_every: int = 500
    seed: int = 0
    device: str = "auto"
    augment: bool = True
    mixed_precision: bool = True
    mask: MaskParams = field(default_factory=MaskParams)
    target_modality: str = "T1"
    segmenters: tuple[str, ...] = ("kmeans",)
    prediction: str = "epsilon"
    min_snr_gamma: float | None = None
    condition_dropout: float = 0.0
    contrast_randomisation: float = 0.0
    contrast_variants: int = 4
    guide_noise: float = 0.0
    spacing_mm: float | None = None
    init_from: str | None = None
    notes: str = ""
    channels_last: bool = False
    compile: bool = False
    teacher: str | None = None
    teacher_cfg_scale: float = 1.0
    teacher_steps: int | None = None

    def __post_init__(self) -> None:
        if self.model_size not in MODEL_SIZES:
            raise ConfigError(f"unknown model size {self.model_size!r}; valid: {', '.join(MODEL_SIZES)}")
        if not 16 <= self.image_size <= 512:
            raise ConfigError(f"image size must be 16..512, got {self.image_size}")
        for name in ("max_steps", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"EMA decay must be in [0, 1), got {self.ema_decay}")
        factor = 2 ** (len(MODEL_SIZES[self.model_size][0]) - 1)
        if self.image_size % factor:
            raise ConfigError(f"image size {self.image_size} must be a multiple of {factor} for model size "
                              f"{self.model_size!r}")
        if self.learning_rate <= 0 or self.grad_clip <= 0 or self.checkpoint_every < 0:
            raise ConfigError("learning rate and gradient clip must be > 0, checkpoint interval >= 0")
        if self.prediction not in PREDICTION_TYPES:
            raise ConfigError(f"unknown prediction {self.prediction!r}; valid: {', '.join(PREDICTION_TYPES)}")
        if self.min_snr_gamma is not None and not self.min_snr_gamma > 0:
            raise ConfigError(f"min-SNR gamma must be > 0, got {self.min_snr_gamma}")
        for name in ("condition_dropout", "contrast_randomisation"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"{name.replace('_', '-')} must be in [0, 1), got {getattr(self, name)}")
        if not 0.0 <= self.guide_noise <= 0.5:
            raise ConfigError(f"guide noise must be in [0, 0.5], got {self.guide_noise}")
        if self.contrast_variants < 1:
            raise ConfigError(f"contrast variants must be >= 1, got {self.contrast_variants}")
        if self.spacing_mm is not None and not 0.1 <= self.spacing_mm <= 20.0:
            raise ConfigError(f"spacing must be 0.1..20 mm, got {self.spacing_mm}")
        if self.init_from is not None and not str(self.init_from).strip():
            raise ConfigError("init-from must name a model folder")
        if self.teacher is not None and not str(self.teacher).strip():
            raise ConfigError("teacher must name a model folder")
        if not 1.0 <= self.teacher_cfg_scale <= 20.0:
            raise ConfigError(f"teacher CFG scale must be in [1, 20], got {self.teacher_cfg_scale}")
        if self.teacher_cfg_scale != 1.0 and self.teacher is None:
            raise ConfigError("teacher-cfg-scale needs --teacher")
        if self.teacher_steps is not None:
            if self.teacher is None:
                raise ConfigError("teacher-steps needs --teacher")
            if isinstance(self.teacher_steps, bool) or not isinstance(self.teacher_steps, int):
                raise ConfigError(f"teacher steps must be a whole number, got {self.teacher_steps!r}")
            from zeroshot_core.training.distill import student_interval

            total = DEFAULT_NOISE_SCHEDULE["num_train_timesteps"]
            if not 1 <= self.teacher_steps <= total // 2:
                raise ConfigError(f"teacher steps must be 1..{total // 2}, got {self.teacher_steps}")
            student_interval(self.teacher_steps, total)
        if self.teacher is not None and self.condition_dropout > 0:
            raise ConfigError("condition dropout has no use when distilling (the teacher's guidance is folded into "
                              "the targets); drop --condition-dropout or --teacher")
        for name in ("channels_last", "compile", "augment", "mixed_precision"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name.replace('_', '-')} must be true or false, got {getattr(self, name)!r}")

    def recipe(self) -> dict[str, Any]:
        """The recipe switches, as recorded in the model card's ``training``."""
        return {"prediction": self.prediction, "min_snr_gamma": self.min_snr_gamma,
                "condition_dropout": self.condition_dropout,
                "contrast_randomisation": self.contrast_randomisation,
                "contrast_variants": self.contrast_variants if self.contrast_randomisation else 0,
                "guide_noise": self.guide_noise,
                "spacing_mm": self.spacing_mm, "crop_size": self.image_size if self.spacing_mm else None,
                "mask_kind": "head" if self.spacing_mm else "filter",
                "channels_last": self.channels_last, "compile": self.compile,
                "teacher_cfg_scale": self.teacher_cfg_scale if self.teacher is not None else None,
                "teacher_steps": self.teacher_steps}
