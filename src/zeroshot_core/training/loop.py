"""Training a guided diffusion model on target images only.

:func:`train_iter` is a generator yielding :class:`TrainProgress` after each step;
it writes a usable model directory at every checkpoint and at the end, and resumes
from ``training_state.*`` in that directory. Under ``torchrun`` or ``srun`` it trains
on several processes, each computing its share of one global batch
(:mod:`zeroshot_core.training.distributed`).
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zeroshot_core.errors import ModelError
from zeroshot_core.imaging.denoise import relative_noise
from zeroshot_core.io.formats import check_output_folder
from zeroshot_core.model.prediction import min_snr_weight, prediction_target
from zeroshot_core.model.store import (
    DEFAULT_NOISE_SCHEDULE,
    ModelCard,
    build_unet,
    read_card,
    save_model,
    unet_config,
)
from zeroshot_core.plugins.manager import guidance_registry, segmenter_registry
from zeroshot_core.processes import shard_from_env
from zeroshot_core.training.checkpoint import STATE_JSON, load_state, save_state
from zeroshot_core.training.config import TrainConfig
from zeroshot_core.training.contrast import (
    draw_guide_noise,
    guide_variants,
    noisy_reference,
    pick_guides,
)
from zeroshot_core.training.data import (
    TrainingSet,
    augment,
    collect_files,
    load_training_set,
)
from zeroshot_core.training.distributed import Processes, check_global_batch, join
from zeroshot_core.training.finetune import check_init_from, load_init_weights
from zeroshot_core.training.speed import prepare

__all__ = ["TrainConfig", "TrainProgress", "train_iter"]


@dataclass(frozen=True)
class TrainProgress:
    """State after one optimiser step.

    Attributes
    ----------
    step, max_steps : int
        Steps done (cumulative) and asked for.
    loss : float
        Mean loss over the step's global batch (the same number on every process).
    slices : int
        Training slices loaded.
    """

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
    threads = torch.get_num_threads()
    return f"{platform.processor() or platform.machine()} CPU, {threads} thread{'' if threads == 1 else 's'}"


def train_iter(targets: Sequence[str | os.PathLike], out: str | os.PathLike, config: TrainConfig,
               resume: bool = False, stop: Callable[[], bool] | None = None) -> Iterator[TrainProgress]:
    """Train on target images, yielding progress after every step.

    Under ``torchrun`` or ``srun`` (``WORLD_SIZE`` > 1) every process runs this with the
    same arguments: they form a process group, each computes ``batch_size / world`` of
    the global batch that all of them draw alike, DDP averages the gradients, and only
    rank 0 writes ``out`` (:mod:`zeroshot_core.training.distributed`).

    Parameters
    ----------
    targets : sequence of path-like
        Files or folders of target-modality images.
    out : path-like
        Model directory (created). Must not exist with a model unless ``resume``.
    config : TrainConfig
        Training recipe: guidance and its parameters, model size, slice size, steps,
        global batch size, learning rate, device, seed, filter mask, contrast
        randomisation, segmenters to fit and speed switches. When resuming, settings that
        change what the network computes (guidance, prediction type, spacing, crop size)
        must match ``out``; the number of processes may change.
    resume : bool
        Continue from the training state saved in ``out``; a resumed run draws the
        same batches, noise and timesteps as an uninterrupted one.
    stop : callable, optional
        Asked after every step; when it returns true (on any process), a checkpoint of
        the finished step is written (model and training state) and the generator ends
        before ``max_steps`` on every process (how a caller stops on SIGTERM without
        losing work).

    Yields
    ------
    TrainProgress
        After each step; ``loss`` is the mean over the global batch.

    Raises
    ------
    InputError, ModelError, ConfigError, PluginError
        ConfigError also when ``batch_size`` does not divide among the processes
        (before anything is read or written).
    """
    check_global_batch(config.batch_size, shard_from_env().world)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ModelError(f"{out}: exists and is not a folder; choose another --out")
    if resume and not (out / STATE_JSON).is_file():
        raise ModelError(f"{out}: no training state to resume; start without --resume")
    if not resume and (out / STATE_JSON).exists():
        raise ModelError(f"{out}: already holds a model; use --resume to continue or choose another --out")
    check_output_folder(out)
    guidance = guidance_registry().create(config.guidance, **config.guidance_params)
    with join(config.device) as processes:
        yield from _train(collect_files(targets), out, config, guidance, processes, resume, stop)


def _train(files: list[Path], out: Path, config: TrainConfig, guidance: Any, processes: Processes, resume: bool,
           stop: Callable[[], bool] | None) -> Iterator[TrainProgress]:
    device = processes.device
    init_card = None
    if config.init_from is not None and not resume:  # checked before the data are loaded
        init_card = check_init_from(config.init_from, config.guidance, config.prediction, config.model_size,
                                    1 + guidance.condition_channels)
    teacher_card = None
    if config.teacher is not None:  # checked before the data are loaded
        from zeroshot_core.training.distill import check_teacher, load_teacher

        teacher_card = check_teacher(config.teacher, config.guidance, guidance.params(), config.prediction,
                                     1 + guidance.condition_channels, config.spacing_mm)
    if config.spacing_mm is not None:
        from zeroshot_core.training.native_data import (
            load_native_training_set,
            random_crops,
        )

        data = load_native_training_set(files, guidance, config.spacing_mm, config.image_size)
    else:
        data = load_training_set(files, guidance, config.image_size, config.mask)
    variants = (guide_variants(data.images, data.masks, guidance, config.contrast_variants, config.seed)
                if config.contrast_randomisation > 0 else None)

    torch.manual_seed(config.seed)
    unet = build_unet(unet_config(config.model_size, config.image_size, 1 + guidance.condition_channels)).to(device)
    ema = build_unet(unet_config(config.model_size, config.image_size, 1 + guidance.condition_channels)).to(device)
    init_from = (load_init_weights(config.init_from, init_card, unet) if init_card is not None
                 else None)
    teacher = (load_teacher(config.teacher, teacher_card, config.teacher_cfg_scale, device)
               if teacher_card is not None else None)
    distilled_from = None if teacher is None else teacher.provenance
    ema.load_state_dict(unet.state_dict())
    ema.requires_grad_(False)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    from diffusers import DDPMScheduler

    noise_scheduler = DDPMScheduler(**DEFAULT_NOISE_SCHEDULE)
    alphas = noise_scheduler.alphas_cumprod.to(device)
    step, wall_before, rng_state = load_state(out, unet, ema, optimizer) if resume else (0, 0.0, None)
    for group in optimizer.param_groups:  # a resumed run takes this call's rate (e.g. a lower one to finish)
        group.update(lr=config.learning_rate, weight_decay=config.weight_decay)
    if resume and (old := read_card(out)).guidance != config.guidance:
        raise ModelError(f"{out}: was trained with guidance {old.guidance!r}; resume with --guidance {old.guidance}")
    if resume:  # settings that change what the network computes must not change mid-training
        init_from = old.training.get("init_from")  # a resumed run keeps its origin
        if teacher is not None:  # and its teacher; the precision of its targets may differ by machine
            before = old.training.get("distilled_from", distilled_from)
            precisions = {before.get("autocast", "off"), teacher.autocast}
            distilled_from = {**before, "autocast": teacher.autocast if len(precisions) == 1 else "mixed"}
        for key, before_default in (("prediction", "epsilon"), ("spacing_mm", None), ("crop_size", None),
                                    ("teacher_cfg_scale", None), ("teacher_steps", None)):
            before, now = old.training.get(key, before_default), config.recipe()[key]
            if before != now:
                raise ModelError(f"{out}: was trained with {key.replace('_', '-')} {before!r}, not {now!r}; "
                                 "resume with the same setting")
    segmenter_states = _fit_segmenters(config.segmenters, data) if processes.main else {}
    inside = data.images[:, 0].numpy()[data.masks]
    quantiles = [round(float(q), 5) for q in np.quantile(inside, np.linspace(0, 1, 101))]
    target_noise = relative_noise(data.images[:, 0].numpy(), data.masks)  # what --denoise auto compares with
    generator = torch.Generator().manual_seed(config.seed + step)  # the global batch's: the same on every rank
    if rng_state is not None:
        generator.set_state(rng_state)
    autocast = device.type == "cuda" and config.mixed_precision
    images = data.images.to(device)
    mine = processes.share(config.batch_size)
    shape = (mine.stop - mine.start, 1 + guidance.condition_channels, config.image_size, config.image_size)
    model = processes.wrap(prepare(unet, shape, config.channels_last, config.compile, autocast))
    started = time.perf_counter()
    sampling = ({"steps": config.teacher_steps,
                 "note": f"distilled to {config.teacher_steps} DDIM steps (train --teacher-steps)"}
                if config.teacher_steps is not None else {})

    def card() -> ModelCard:
        return ModelCard(
            guidance=config.guidance, guidance_params=guidance.params(),
            condition_channels=guidance.condition_channels, image_size=config.image_size,
            model_size=config.model_size, unet=unet_config(config.model_size, config.image_size,
                                                             1 + guidance.condition_channels),
            noise_schedule=dict(DEFAULT_NOISE_SCHEDULE, prediction_type=config.prediction), notes=config.notes,
            target_intensity=data.intensity.to_dict(), target_modality=config.target_modality,
            mask=config.mask.to_dict(), segmenters=segmenter_states, sampling=sampling,
            training={"files": [p.name for p in files], "slices": len(data), "steps": step,
                      "batch_size": config.batch_size, "learning_rate": config.learning_rate,
                      "ema_decay": config.ema_decay, "seed": config.seed, "augment": config.augment,
                      "intensity_quantiles": quantiles,
                      "target_noise": None if target_noise is None else round(target_noise, 5),
                      "wall_time_s": round(wall_before + time.perf_counter() - started, 1),
                      "hardware": _hardware(device), "processes": processes.world, "torch": torch.__version__,
                      "init_from": init_from, "distilled_from": distilled_from, **config.recipe()})

    def write() -> None:  # the training state first: it alone is what --resume reads
        out.mkdir(parents=True, exist_ok=True)
        save_state(out, unet, ema, optimizer, generator, step, wall_before + time.perf_counter() - started)
        save_model(out, ema, card())

    def checkpoint() -> None:  # rank 0 writes, the others wait for it
        processes.on_main(write)

    grid = interval = None
    if config.teacher_steps is not None:  # progressive distillation: the student's sampling grid only
        from zeroshot_core.training.distill import student_timesteps

        grid, interval = student_timesteps(config.teacher_steps, noise_scheduler.config.num_train_timesteps)
    unet.train()
    while step < config.max_steps:
        index = torch.randint(0, len(data), (config.batch_size,), generator=generator).to(device)
        guides = pick_guides(images, variants, index, config.contrast_randomisation, generator)
        batch = torch.cat([images[index, :1], guides], 1)  # x0, reference, static...
        if config.spacing_mm is not None:
            batch = random_crops(batch, config.image_size, generator)
        if config.augment:
            batch = augment(batch, generator)
        noise = torch.randn(batch[:, :1].shape, generator=generator).to(device)
        t = (torch.randint(0, noise_scheduler.config.num_train_timesteps, (batch.shape[0],), generator=generator)
             if grid is None else grid[torch.randint(0, len(grid), (batch.shape[0],), generator=generator)])
        keep = (torch.rand(batch.shape[0], generator=generator) >= config.condition_dropout
                if config.condition_dropout > 0 else None)
        guide_noise = (draw_guide_noise(batch[:, :1].shape, config.guide_noise, generator)
                       if config.guide_noise > 0 else None)
        batch, noise, t = batch[mine], noise[mine], t[mine].to(device)  # the draws were global; the work is not
        x0, reference, static = batch[:, :1], batch[:, 1:2], batch[:, 2:]
        if guide_noise is not None:
            reference = noisy_reference(reference, *(draw[mine] for draw in guide_noise))
        a = alphas[t].sqrt()[:, None, None, None]
        s = (1 - alphas[t]).sqrt()[:, None, None, None]
        x_t = a * x0 + s * noise
        with torch.no_grad():
            dynamic = guidance.dynamic_condition(reference, x_t)
        condition = torch.cat([static, dynamic], 1)
        if keep is not None:
            condition = condition * keep[mine].to(device, condition.dtype)[:, None, None, None]
        inputs = torch.cat([x_t, condition], 1)
        if config.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            prediction = model(inputs, t).sample
        if teacher is None:
            target = prediction_target(x0, noise, alphas[t], config.prediction)
        elif grid is None:
            target = teacher.target(inputs, t)
        else:
            def condition_at(sample: torch.Tensor, static: torch.Tensor = static,
                             reference: torch.Tensor = reference) -> torch.Tensor:
                return torch.cat([static, guidance.dynamic_condition(reference, sample)], 1)

            target = teacher.two_step_target(x_t, condition, condition_at, t, interval, alphas,
                                             config.prediction)
        weight = min_snr_weight(alphas[t], config.min_snr_gamma, config.prediction).to(device)
        loss = (weight * (prediction.float() - target).square().mean(dim=(1, 2, 3))).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # under DDP: the gradients arrive averaged over the processes
        torch.nn.utils.clip_grad_norm_(unet.parameters(), config.grad_clip)
        optimizer.step()
        decay = min(config.ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():  # from the synchronised weights: the same EMA on every rank
            for e, p in zip(ema.parameters(), unet.parameters()):
                e.lerp_(p, 1.0 - decay)
        step += 1
        yield TrainProgress(step, config.max_steps, processes.mean(loss), len(data))
        if processes.any(stop is not None and stop()) and step < config.max_steps:
            checkpoint()
            return
        if config.checkpoint_every and step % config.checkpoint_every == 0 and step < config.max_steps:
            checkpoint()
    checkpoint()
