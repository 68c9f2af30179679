"""Guided reverse diffusion with diffusers schedulers.

:func:`sample_progressive` is a generator (after improved-diffusion's
``p_sample_loop_progressive``): it yields after every step, so callers can report
progress and stop between steps. Noise schedulers come from diffusers and follow
its ``set_timesteps`` / ``scale_model_input`` / ``step`` contract.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial

import torch

from zeroshot_core.errors import ConfigError
from zeroshot_core.guidance.base import Guidance
from zeroshot_core.model.acceleration import Acceleration
from zeroshot_core.model.prediction import (
    guided_output,
    guided_step_count,
    output_from_x0,
    split_prediction,
)


@dataclass(frozen=True)
class SampleStep:
    """One finished denoising step.

    Attributes
    ----------
    step : int
        1-based index of the finished step.
    total : int
        Steps that this call runs (fewer than requested when starting part-way).
    sample : Tensor
        Current sample ``x_t`` (the clean sample after the last step).
    """

    step: int
    total: int
    sample: torch.Tensor


@dataclass(frozen=True, eq=False)
class Refinement:
    """A second network that takes the last steps of sampling (:mod:`~zeroshot_core.diffusion.refiner`).

    Attributes
    ----------
    unet : torch.nn.Module
        Score network with the same inputs, outputs and noise schedule as the first.
    steps : int
        How many of the last steps it takes (>= 1).
    cfg_scale : float
        Its classifier-free guidance scale (1: one call per step).
    """

    unet: torch.nn.Module
    steps: int
    cfg_scale: float = 1.0


def _alpha_bar(scheduler, timestep: torch.Tensor) -> float:
    index = int(round(float(timestep)))
    return float(scheduler.alphas_cumprod[min(max(index, 0), len(scheduler.alphas_cumprod) - 1)])


def start_timesteps(scheduler, steps: int, strength: float) -> tuple[torch.Tensor, int]:
    """Set the scheduler to ``steps`` and drop the first ``1 - strength`` of them.

    Returns
    -------
    timesteps : Tensor
        The timesteps to run.
    begin : int
        Index of the first one in the full list.
    """
    if steps < 1:
        raise ConfigError(f"sampling steps must be >= 1, got {steps}")
    scheduler.set_timesteps(steps)
    begin = min(int(round(steps * (1.0 - strength))), steps - 1)
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(begin)
    return scheduler.timesteps[begin:], begin


def sample_progressive(
    unet: torch.nn.Module,
    scheduler,
    guidance: Guidance,
    reference: torch.Tensor,
    static: torch.Tensor,
    mask: torch.Tensor,
    noise: torch.Tensor,
    steps: int,
    generator: torch.Generator | None = None,
    cfg_scale: float = 1.0,
    acceleration: Acceleration | None = None,
    cfg_steps: float = 1.0,
    refinement: Refinement | None = None,
) -> Iterator[SampleStep]:
    """Run guided reverse diffusion, yielding after each step.

    Parameters
    ----------
    unet : torch.nn.Module
        Score network taking ``1 + guidance.condition_channels`` channels.
    scheduler
        A scheduler from :func:`make_scheduler` (its state is reset here).
    guidance : Guidance
        Guidance strategy the model was trained with: supplies the dynamic condition
        channels at each step, the SDEdit ``strength`` (fraction of the schedule run;
        below 1 starts from the noised ``reference``) and an optional x0 correction.
    reference : Tensor (B, 1, H, W)
        Masked source slices in [-1, 1].
    static : Tensor (B, guidance.static_channels, H, W)
        Static condition channels of the source.
    mask : Tensor (B, 1, H, W)
        Filter mask, 1 inside.
    noise : Tensor (B, 1, H, W)
        Standard normal noise that sets the start (and so the result, for the
        deterministic schedulers).
    steps : int
        Number of scheduler steps for the full schedule.
    generator : torch.Generator, optional
        For the stochastic schedulers' per-step noise.
    cfg_scale : float
        Classifier-free guidance (Ho & Salimans 2022): the output is
        ``uncond + cfg_scale · (cond - uncond)``, where ``uncond`` sees zeroed condition
        channels; both come from one batched network call. 1.0 switches it off. Only
        meaningful for models trained with condition dropout.
    acceleration : Acceleration, optional
        Autocast and memory layout of the network calls (``unet`` should come from
        its :meth:`~zeroshot_core.model.acceleration.Acceleration.prepare`); the
        output is float32 either way. ``None``: plain float32 calls.
    cfg_steps : float
        Share of the steps, from the noisiest, that use ``cfg_scale``; the rest call
        the network once, with the condition (guidance limited to an interval of noise
        levels, Kynkäänniemi et al., NeurIPS 2024). ``ceil(cfg_steps · steps run)``
        steps are guided; 1.0 (default): all.
    refinement : Refinement, optional
        A network for the last ``refinement.steps`` steps, with its own guidance scale
        (and the same acceleration); ``unet`` takes the steps before.

    The network output is read as the scheduler's ``prediction_type`` (``epsilon``,
    ``v_prediction`` or ``sample``, from the model card) wherever it is turned into a
    denoised estimate.

    Yields
    ------
    SampleStep
    """
    timesteps, begin = start_timesteps(scheduler, steps, guidance.strength)
    if guidance.strength >= 1.0 or begin == 0:
        x = noise * float(getattr(scheduler, "init_noise_sigma", 1.0))
    else:
        x = scheduler.add_noise(reference, noise, timesteps[:1].repeat(reference.shape[0]))
    total = len(timesteps)
    prediction = getattr(scheduler, "model_prediction_type", None) or scheduler.config.prediction_type
    feeds = scheduler.config.prediction_type
    network = partial((acceleration or Acceleration("off")).forward, unet)
    guided_steps = guided_step_count(cfg_scale, cfg_steps, total)
    refine_from = total - refinement.steps if refinement is not None else total
    for index, t in enumerate(timesteps):
        if index == refine_from:  # the refiner takes over; guided_steps counts its guided steps from here
            network = partial((acceleration or Acceleration("off")).forward, refinement.unet)
            guided_steps = total if refinement.cfg_scale != 1.0 else 0
            cfg_scale = refinement.cfg_scale
        with torch.no_grad():
            model_input = scheduler.scale_model_input(x, t)
            dynamic = guidance.dynamic_condition(reference, model_input)
            network_input = torch.cat([model_input, static, dynamic], dim=1)
            t_batch = t.to(x.device).expand(x.shape[0]) if t.ndim == 0 else t
            output = (guided_output(network, network_input, t_batch, cfg_scale) if index < guided_steps
                      else network(network_input, t_batch))
        if guidance.corrects_x0:
            alpha_bar = _alpha_bar(scheduler, t)
            x0_hat = split_prediction(output, model_input, alpha_bar, prediction)[0].clamp(-1.0, 1.0)
            corrected = guidance.correct_x0(reference, x0_hat, mask, index / max(total, 1))
            output = output_from_x0(corrected, model_input, alpha_bar, feeds)
        elif feeds != prediction:
            alpha_bar = _alpha_bar(scheduler, t)
            output = output_from_x0(split_prediction(output, model_input, alpha_bar, prediction)[0], model_input,
                                    alpha_bar, feeds)
        x = scheduler.step(output, t, x, generator=generator).prev_sample
        yield SampleStep(index + 1, total, x)
