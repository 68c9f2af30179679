"""Distillation (``--teacher``): train a network on another model's guided predictions.

A smaller network that imitates a trained one samples faster. The student is trained as
usual (the same slices, crops, noise levels and guide maps) but its regression target is
not the drawn noise: it is the teacher's prediction for the same noisy input and
condition, with the teacher's classifier-free guidance folded in,

    target = u + w · (c − u),   c = teacher(x_t, condition, t),   u = teacher(x_t, 0, t),

the first stage of guided distillation (Meng et al., "On Distillation of Guided Diffusion
Models", CVPR 2023) at one fixed scale ``w``. The student then samples with one network
evaluation per step what the teacher needs two for. The teacher's prediction is the
conditional mean the noise target only estimates, so the student also learns from a
lower-variance target (knowledge distillation, Hinton et al. 2015).

With ``teacher_steps = N`` the student is taught to sample in ``N`` DDIM steps what the
teacher does in ``2N`` (progressive distillation, Salimans & Ho, ICLR 2022, Algorithm 2):
training timesteps are drawn from the sampler's ``N``-step grid only, and the target is the
output that makes *one* DDIM step ``t → t − Δ`` (``Δ = T // N``) land where *two* guided
teacher steps ``t → t − Δ/2 → t − Δ`` land (:meth:`Teacher.two_step_target`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from zeroshot_core.errors import ConfigError
from zeroshot_core.model.acceleration import Acceleration
from zeroshot_core.model.prediction import (
    guided_output,
    output_from_x0,
    split_prediction,
)
from zeroshot_core.model.store import ModelCard, load_weights, read_card
from zeroshot_core.training.finetune import refuse_mismatch


def student_interval(steps: int, num_train_timesteps: int) -> int:
    """``Δ = num_train_timesteps // steps``, the timesteps one ``steps``-step DDIM step spans.

    Raises
    ------
    ConfigError
        If ``Δ`` is odd or under 2: the teacher's half step would not be a whole timestep.
    """
    interval = num_train_timesteps // steps if steps >= 1 else 0
    if interval < 2 or interval % 2:
        valid = [n for n in range(1, min(100, num_train_timesteps // 2) + 1) if (num_train_timesteps // n) % 2 == 0]
        raise ConfigError(f"teacher-steps {steps}: {num_train_timesteps} // {steps} = {interval} timesteps per "
                          f"step must be at least 2 and even; e.g. {', '.join(map(str, valid[-8:]))}")
    return interval


def student_timesteps(steps: int, num_train_timesteps: int) -> tuple[torch.Tensor, int]:
    """The timesteps a ``steps``-step DDIM sampler visits, and its interval ``Δ``.

    The grid is the sampler's (``timestep_spacing="trailing"``, as
    :func:`zeroshot_core.diffusion.schedulers.make_scheduler` builds DDIM) and ``Δ`` is
    diffusers' step from one timestep to the next, ``num_train_timesteps // steps``.

    Raises
    ------
    ConfigError
        As :func:`student_interval`.
    """
    from diffusers import DDIMScheduler

    interval = student_interval(steps, num_train_timesteps)
    scheduler = DDIMScheduler(num_train_timesteps=num_train_timesteps, timestep_spacing="trailing")
    scheduler.set_timesteps(steps)
    return scheduler.timesteps.clone().long(), interval


def check_teacher(folder: str | Path, guidance: str, guidance_params: dict[str, Any], prediction: str,
                  in_channels: int, spacing_mm: float | None) -> ModelCard:
    """The card of the teacher ``folder``, checked against the run it should teach.

    Parameters
    ----------
    folder : str or Path
        Model folder (``model.json`` + ``model.safetensors``).
    guidance : str
        The run's guidance strategy.
    guidance_params : dict
        The run's guidance parameters (``guidance.params()``): the teacher must see the
        same condition maps.
    prediction : str
        The run's prediction type; the teacher's output is used as the target unchanged.
    in_channels : int
        The run's network input channels (1 + condition channels).
    spacing_mm : float or None
        The run's pixel spacing (native-spacing mode) or None.

    Returns
    -------
    ModelCard

    Raises
    ------
    ModelError
        If the folder is not a model, or its guidance, guidance parameters, prediction
        type, input channels or training spacing differ from the run's (one line naming
        the folder and the fix).
    """
    card = read_card(folder)
    theirs = {"guidance": card.guidance, "guidance parameters": card.guidance_params,
              "prediction": card.noise_schedule.get("prediction_type", "epsilon"),
              "input channels": card.unet.get("in_channels"),
              "spacing (mm)": card.training.get("spacing_mm")}
    ours = {"guidance": guidance, "guidance parameters": guidance_params, "prediction": prediction,
            "input channels": in_channels, "spacing (mm)": spacing_mm}
    refuse_mismatch(folder, theirs, ours, "cannot teach this run", "train the student with the teacher's {key}")
    return card


@dataclass(frozen=True)
class Teacher:
    """A frozen network whose guided predictions are a student's targets.

    Attributes
    ----------
    unet : torch.nn.Module
        The teacher's network (EMA weights), in eval mode, without gradients.
    cfg_scale : float
        Classifier-free guidance scale ``w`` folded into the targets (1: none).
    provenance : dict
        ``{"model", "steps", "cfg_scale", "autocast"}``, stored as the student card's
        ``training.distilled_from``.
    autocast : {"off", "bf16"}
        Precision of the teacher's forward passes: ``bf16`` where translations use it by
        default (:meth:`zeroshot_core.model.acceleration.Acceleration.resolve`: a CPU with
        bfloat16 instructions), so that the student learns what its teacher does at
        sampling; its targets differ from float32 ones by about 1 % of their RMS, and a
        step costs about 0.77× (docs/benchmarks.md).
    """

    unet: torch.nn.Module
    cfg_scale: float
    provenance: dict[str, Any]
    autocast: str = "off"

    def target(self, inputs: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The teacher's guided prediction, the student's regression target.

        Parameters
        ----------
        inputs : Tensor, shape (B, 1 + C, H, W)
            The noisy sample ``x_t`` followed by its ``C`` condition channels, as the
            student sees them.
        t : Tensor, shape (B,)
            Timesteps.

        Returns
        -------
        Tensor, shape (B, 1, H, W), float32
            ``u + w·(c − u)`` (:func:`zeroshot_core.model.prediction.guided_output`, as
            at sampling).
        """
        def network(x: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
            return self.unet(x, steps).sample.float()

        with torch.no_grad(), Acceleration(self.autocast).autocast_context(inputs.device):
            if self.cfg_scale == 1.0:
                return network(inputs, t)
            return guided_output(network, inputs, t, self.cfg_scale)


    def two_step_target(self, x_t: torch.Tensor, condition: torch.Tensor,
                        condition_at: Callable[[torch.Tensor], torch.Tensor], t: torch.Tensor, interval: int,
                        alphas: torch.Tensor, prediction: str) -> torch.Tensor:
        """The output that makes one DDIM step do what two guided teacher steps do.

        From ``z_t`` the teacher takes two deterministic DDIM steps (``η = 0``, its ``x0``
        estimate clipped to ``[-1, 1]`` as the sampler does), ``t → t − Δ/2 → t − Δ``,
        reaching ``z''``. The single step from ``t`` that lands on ``z''`` needs the
        clean estimate (Salimans & Ho 2022, eq. 8)

            x̃ = (z'' − (σ''/σ_t) z_t) / (α'' − (σ''/σ_t) α_t),

        with ``α = sqrt(ᾱ)``, ``σ = sqrt(1 − ᾱ)`` and ``ᾱ = 1`` below timestep 0 (the
        sampler's last step, ``set_alpha_to_one``); the target is the output of type
        ``prediction`` that reads as ``x̃`` at ``z_t``.

        Parameters
        ----------
        x_t : Tensor, shape (B, 1, H, W)
            The noisy sample at ``t``.
        condition : Tensor, shape (B, C, H, W)
            Its condition channels (static, then dynamic).
        condition_at : callable
            Condition channels of another sample of the same batch (the dynamic maps
            recomputed for the teacher's intermediate sample).
        t : Tensor, shape (B,), int
            Timesteps on the student's grid, each ``>= interval - 1``.
        interval : int
            ``Δ``, the student's step in timesteps; even.
        alphas : Tensor, shape (T,)
            The schedule's ``ᾱ``.
        prediction : str
            The networks' output type.

        Returns
        -------
        Tensor, shape (B, 1, H, W), float32
        """
        def alpha_bar(steps: torch.Tensor) -> torch.Tensor:
            return torch.where(steps >= 0, alphas[steps.clamp_min(0)], torch.ones_like(alphas[:1]))

        def coefficients(steps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            value = alpha_bar(steps).view(-1, 1, 1, 1)
            return value.sqrt(), (1.0 - value).clamp_min(0.0).sqrt()

        half = interval // 2
        z, now = x_t.float(), t
        with torch.no_grad():
            for first in (True, False):
                output = self.target(torch.cat([z, condition if first else condition_at(z)], 1), now)
                x0, eps = split_prediction(output, z, alpha_bar(now), prediction)
                now = now - half
                a, s = coefficients(now)
                z = a * x0.clamp(-1.0, 1.0) + s * eps
            a_t, s_t = coefficients(t)
            a_n, s_n = coefficients(t - interval)
            ratio = s_n / s_t
            x_tilde = (z - ratio * x_t) / (a_n - ratio * a_t)
            return output_from_x0(x_tilde, x_t.float(), alpha_bar(t), prediction)


def load_teacher(folder: str | Path, card: ModelCard, cfg_scale: float, device: torch.device) -> Teacher:
    """Load the teacher of ``folder`` (checked with :func:`check_teacher`) onto ``device``.

    Raises
    ------
    ModelError
        If the weights cannot be read.
    """
    unet = load_weights(folder, card, device).float().eval()
    unet.requires_grad_(False)
    autocast = Acceleration("auto").resolve(device).autocast
    provenance = {"model": Path(folder).resolve().name, "steps": card.training.get("steps"),
                  "cfg_scale": cfg_scale, "autocast": autocast}
    return Teacher(unet, cfg_scale, provenance, autocast)
