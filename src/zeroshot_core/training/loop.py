"""Training a guided diffusion model on target images only.

:func:`train_iter` is a generator yielding :class:`TrainProgress` after each step;
it writes a usable model directory at every checkpoint and at the end, and resumes
from ``training_state.*`` in that directory.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch

from zeroshot_core.errors import ConfigError, ModelError
from zeroshot_core.imaging.mask import MaskParams
from zeroshot_core.io.formats import check_output_folder
from zeroshot_core.model.devices import resolve_device
from zeroshot_core.model.prediction import PREDICTION_TYPES, min_snr_weight, prediction_target
from zeroshot_core.model.store import (
    DEFAULT_NOISE_SCHEDULE,
    MODEL_SIZES,
    ModelCard,
    build_unet,
    read_card,
    save_model,
    unet_config,
)
from zeroshot_core.plugins.manager import guidance_registry, segmenter_registry
from zeroshot_core.training.checkpoint import STATE_JSON, load_state, save_state
from zeroshot_core.training.contrast import guide_variants, pick_guides
from zeroshot_core.training.data import TrainingSet, augment, collect_files, load_training_set


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
        ``tiny`` (seconds, for tests), ``small`` or ``base`` (quality).
    max_steps : int
        Total optimiser steps (cumulative across resumes).
    batch_size, learning_rate, weight_decay, ema_decay, grad_clip : numbers
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
    spacing_mm : float or None
        Native-spacing whole-head mode: slices are resampled in-plane to this pixel
        spacing, masked with the whole-head mask, and each step draws random
        ``image_size`` crops. ``None``: pad to squares and resize (the default).
    notes : str
        Free text stored in the model card (e.g. held-out subjects).
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
    spacing_mm: float | None = None
    notes: str = ""

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
        if self.contrast_variants < 1:
            raise ConfigError(f"contrast variants must be >= 1, got {self.contrast_variants}")
        if self.spacing_mm is not None and not 0.1 <= self.spacing_mm <= 20.0:
            raise ConfigError(f"spacing must be 0.1..20 mm, got {self.spacing_mm}")

    def recipe(self) -> dict[str, Any]:
        """The recipe switches, as recorded in the model card's ``training``."""
        return {"prediction": self.prediction, "min_snr_gamma": self.min_snr_gamma,
                "condition_dropout": self.condition_dropout,
                "contrast_randomisation": self.contrast_randomisation,
                "contrast_variants": self.contrast_variants if self.contrast_randomisation else 0,
                "spacing_mm": self.spacing_mm, "crop_size": self.image_size if self.spacing_mm else None,
                "mask_kind": "head" if self.spacing_mm else "filter"}


@dataclass(frozen=True)
class TrainProgress:
    """State after one optimiser step."""

    step: int
    max_steps: int
    loss: float
    slices: int


def _fit_segmenters(names: Sequence[str], data: TrainingSet) -> dict[str, Any]:
    states: dict[str, Any] = {}
    images = [img[0].numpy() for img in data.images]
    masks = list(data.masks)
    for name in names:
        segmenter = segmenter_registry().create(name)
        if getattr(segmenter, "needs_fit", False):
            segmenter.fit(images, masks)
        states[name] = segmenter.state()
    return states


def _hardware(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"


def train_iter(targets: Sequence[str | os.PathLike], out: str | os.PathLike, config: TrainConfig,
               resume: bool = False, stop: Callable[[], bool] | None = None) -> Iterator[TrainProgress]:
    """Train on target images, yielding progress after every step.

    Parameters
    ----------
    targets : sequence of path-like
        Files or folders of target-modality images.
    out : path-like
        Model directory (created). Must not exist with a model unless ``resume``.
    config : TrainConfig
        Training recipe: guidance and its parameters, model size, slice size, steps,
        batch size, learning rate, device, seed, filter mask, contrast randomisation
        and segmenters to fit. When resuming, settings that change what the network
        computes (guidance, prediction type, spacing, crop size) must match ``out``.
    resume : bool
        Continue from the training state saved in ``out``; a resumed run draws the
        same batches, noise and timesteps as an uninterrupted one.
    stop : callable, optional
        Asked after every step; when it returns true, a checkpoint of the finished
        step is written (model and training state) and the generator ends before
        ``max_steps`` (how a caller stops on SIGTERM without losing work).

    Raises
    ------
    InputError, ModelError, ConfigError, PluginError
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ModelError(f"{out}: exists and is not a folder; choose another --out")
    if resume and not (out / STATE_JSON).is_file():
        raise ModelError(f"{out}: no training state to resume; start without --resume")
    if not resume and (out / STATE_JSON).exists():
        raise ModelError(f"{out}: already holds a model; use --resume to continue or choose another --out")
    check_output_folder(out)
    guidance = guidance_registry().create(config.guidance, **config.guidance_params)
    device = resolve_device(config.device)
    files = collect_files(targets)
    if config.spacing_mm is not None:
        from zeroshot_core.training.native_data import load_native_training_set, random_crops

        data = load_native_training_set(files, guidance, config.spacing_mm, config.image_size)
    else:
        data = load_training_set(files, guidance, config.image_size, config.mask)
    variants = (guide_variants(data.images, data.masks, guidance, config.contrast_variants, config.seed)
                if config.contrast_randomisation > 0 else None)

    torch.manual_seed(config.seed)
    unet = build_unet(unet_config(config.model_size, config.image_size, 1 + guidance.condition_channels)).to(device)
    ema = build_unet(unet_config(config.model_size, config.image_size, 1 + guidance.condition_channels)).to(device)
    ema.load_state_dict(unet.state_dict())
    ema.requires_grad_(False)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    from diffusers import DDPMScheduler

    noise_scheduler = DDPMScheduler(**DEFAULT_NOISE_SCHEDULE)
    alphas = noise_scheduler.alphas_cumprod.to(device)
    step, wall_before, rng_state = load_state(out, unet, ema, optimizer) if resume else (0, 0.0, None)
    if resume and (old := read_card(out)).guidance != config.guidance:
        raise ModelError(f"{out}: was trained with guidance {old.guidance!r}; resume with --guidance {old.guidance}")
    if resume:  # settings that change what the network computes must not change mid-training
        for key, before_default in (("prediction", "epsilon"), ("spacing_mm", None), ("crop_size", None)):
            before, now = old.training.get(key, before_default), config.recipe()[key]
            if before != now:
                raise ModelError(f"{out}: was trained with {key.replace('_', '-')} {before!r}, not {now!r}; "
                                 "resume with the same setting")
    segmenter_states = _fit_segmenters(config.segmenters, data)
    inside = data.images[:, 0].numpy()[data.masks]
    quantiles = [round(float(q), 5) for q in np.quantile(inside, np.linspace(0, 1, 101))]
    generator = torch.Generator().manual_seed(config.seed + step)
    if rng_state is not None:
        generator.set_state(rng_state)
    autocast = device.type == "cuda" and config.mixed_precision
    images = data.images.to(device)
    started = time.perf_counter()

    def card() -> ModelCard:
        return ModelCard(
            guidance=config.guidance, guidance_params=guidance.params(),
            condition_channels=guidance.condition_channels, image_size=config.image_size,
            model_size=config.model_size, unet=unet_config(config.model_size, config.image_size,
                                                             1 + guidance.condition_channels),
            noise_schedule=dict(DEFAULT_NOISE_SCHEDULE, prediction_type=config.prediction), notes=config.notes,
            target_intensity=data.intensity.to_dict(), target_modality=config.target_modality,
            mask=config.mask.to_dict(), segmenters=segmenter_states,
            training={"files": [p.name for p in files], "slices": len(data), "steps": step,
                      "batch_size": config.batch_size, "learning_rate": config.learning_rate,
                      "ema_decay": config.ema_decay, "seed": config.seed, "augment": config.augment,
                      "intensity_quantiles": quantiles,
                      "wall_time_s": round(wall_before + time.perf_counter() - started, 1),
                      "hardware": _hardware(device), "torch": torch.__version__, **config.recipe()})

    def checkpoint() -> None:  # the training state first: it alone is what --resume reads
        out.mkdir(parents=True, exist_ok=True)
        save_state(out, unet, ema, optimizer, generator, step, wall_before + time.perf_counter() - started)
        save_model(out, ema, card())

    unet.train()
    while step < config.max_steps:
        index = torch.randint(0, len(data), (config.batch_size,), generator=generator).to(device)
        guides = pick_guides(images, variants, index, config.contrast_randomisation, generator)
        batch = torch.cat([images[index, :1], guides], 1)  # x0, reference, static...
        if config.spacing_mm is not None:
            batch = random_crops(batch, config.image_size, generator)
        if config.augment:
            batch = augment(batch, generator)
        x0, reference, static = batch[:, :1], batch[:, 1:2], batch[:, 2:]
        noise = torch.randn(x0.shape, generator=generator).to(device)
        t = torch.randint(0, noise_scheduler.config.num_train_timesteps, (x0.shape[0],), generator=generator).to(device)
        a = alphas[t].sqrt()[:, None, None, None]
        s = (1 - alphas[t]).sqrt()[:, None, None, None]
        x_t = a * x0 + s * noise
        with torch.no_grad():
            dynamic = guidance.dynamic_condition(reference, x_t)
        condition = torch.cat([static, dynamic], 1)
        if config.condition_dropout > 0:
            keep = torch.rand(x0.shape[0], generator=generator) >= config.condition_dropout
            condition = condition * keep.to(device, condition.dtype)[:, None, None, None]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            prediction = unet(torch.cat([x_t, condition], 1), t).sample
        target = prediction_target(x0, noise, alphas[t], config.prediction)
        weight = min_snr_weight(alphas[t], config.min_snr_gamma, config.prediction).to(device)
        loss = (weight * (prediction.float() - target).square().mean(dim=(1, 2, 3))).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), config.grad_clip)
        optimizer.step()
        decay = min(config.ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for e, p in zip(ema.parameters(), unet.parameters()):
                e.lerp_(p, 1.0 - decay)
        step += 1
        yield TrainProgress(step, config.max_steps, float(loss.detach()), len(data))
        if stop is not None and stop() and step < config.max_steps:
            checkpoint()
            return
        if config.checkpoint_every and step % config.checkpoint_every == 0 and step < config.max_steps:
            checkpoint()
    checkpoint()

