"""diffusers noise schedulers by name (:data:`zeroshot_core.choices.SCHEDULER_NAMES`).

Every scheduler follows diffusers' ``set_timesteps`` / ``scale_model_input`` / ``step``
contract and is built with the model's training noise schedule.
"""

from __future__ import annotations

from typing import Any

from zeroshot_core.choices import SCHEDULER_NAMES
from zeroshot_core.errors import ConfigError


def make_scheduler(name: str, noise_schedule: dict[str, Any]):
    """A diffusers scheduler for sampling with the model's training schedule.

    Parameters
    ----------
    name : str
        One of :data:`SCHEDULER_NAMES`.
    noise_schedule : dict
        ``num_train_timesteps``, ``beta_schedule``, ``beta_start``, ``beta_end``,
        ``prediction_type`` (from the model card).

    Raises
    ------
    ConfigError
        If the name is unknown.
    """
    from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, EulerAncestralDiscreteScheduler

    common = {k: noise_schedule[k] for k in ("num_train_timesteps", "beta_schedule", "beta_start",
                                             "beta_end", "prediction_type") if k in noise_schedule}
    if name == "ddim":
        return DDIMScheduler(**common, clip_sample=True, set_alpha_to_one=True, timestep_spacing="trailing")
    if name == "dpm":
        # Thresholding with sample_max_value 1 clips the x0 estimate to [-1, 1] as DDIM's
        # clip_sample does: without it an epsilon model's x0 estimate at the first, noisiest
        # steps (divided by sqrt(alpha_bar) ≈ 0.006) overshoots and the solver carries it.
        return DPMSolverMultistepScheduler(**common, algorithm_type="dpmsolver++", solver_order=2,
                                           thresholding=True, sample_max_value=1.0, timestep_spacing="trailing")
    if name == "ddpm":
        return DDPMScheduler(**common, clip_sample=True, timestep_spacing="trailing")
    if name == "sde":
        if common.get("prediction_type") != "sample":
            return EulerAncestralDiscreteScheduler(**common, timestep_spacing="trailing")
        # Euler ancestral cannot read x0 predictions: it is fed the equivalent epsilon instead.
        scheduler = EulerAncestralDiscreteScheduler(**{**common, "prediction_type": "epsilon"},
                                                    timestep_spacing="trailing")
        scheduler.model_prediction_type = "sample"
        return scheduler
    raise ConfigError(f"unknown scheduler {name!r}; valid: {', '.join(SCHEDULER_NAMES)}")
