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
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from zeroshot_core.model.prediction import guided_output
from zeroshot_core.model.store import ModelCard, load_weights, read_card
from zeroshot_core.training.finetune import refuse_mismatch


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
        ``{"model", "steps", "cfg_scale"}``, stored as the student card's
        ``training.distilled_from``.
    """

    unet: torch.nn.Module
    cfg_scale: float
    provenance: dict[str, Any]

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

        with torch.no_grad():
            if self.cfg_scale == 1.0:
                return network(inputs, t)
            return guided_output(network, inputs, t, self.cfg_scale)


def load_teacher(folder: str | Path, card: ModelCard, cfg_scale: float, device: torch.device) -> Teacher:
    """Load the teacher of ``folder`` (checked with :func:`check_teacher`) onto ``device``.

    Raises
    ------
    ModelError
        If the weights cannot be read.
    """
    unet = load_weights(folder, card, device).float().eval()
    unet.requires_grad_(False)
    provenance = {"model": Path(folder).resolve().name, "steps": card.training.get("steps"),
                  "cfg_scale": cfg_scale}
    return Teacher(unet, cfg_scale, provenance)
