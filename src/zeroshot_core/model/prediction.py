"""How a network's output is read: prediction targets and Min-SNR-γ loss weights.

Parametrisations of the network output (all for ``x_t = a·x0 + s·ε`` with
``a = sqrt(ᾱ_t)``, ``s = sqrt(1 - ᾱ_t)``):

- ``epsilon``: the noise ``ε`` (Ho et al. 2020),
- ``v_prediction``: the velocity ``v = a·ε - s·x0`` (Salimans & Ho 2022, "Progressive
  Distillation for Fast Sampling of Diffusion Models"),
- ``sample``: the clean image ``x0``.

The names are those of the diffusers schedulers' ``prediction_type``, so a model card's
noise schedule tells the sampler how to read the output.

Min-SNR-γ loss weighting (Hang et al. 2023, "Efficient Diffusion Training via Min-SNR
Weighting Strategy") clamps the signal-to-noise ratio ``SNR = a² / s²`` of each
timestep at ``γ`` so that easy, low-noise steps do not dominate the gradient.

Classifier-free guidance (Ho & Salimans 2022) combines a conditional and an
unconditional output (:func:`guided_output`); sampling and distillation both use it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

PREDICTION_TYPES: tuple[str, ...] = ("epsilon", "v_prediction", "sample")
def _coefficients(alpha_bar: torch.Tensor, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``a = sqrt(ᾱ)`` and ``s = sqrt(1 - ᾱ)`` broadcast against ``like`` (B, C, H, W)."""
    alpha_bar = torch.as_tensor(alpha_bar, dtype=like.dtype, device=like.device)
    if alpha_bar.ndim == 1:
        alpha_bar = alpha_bar.view(-1, *([1] * (like.ndim - 1)))
    return alpha_bar.sqrt(), (1.0 - alpha_bar).clamp_min(1e-12).sqrt()


def prediction_target(x0: torch.Tensor, noise: torch.Tensor, alpha_bar: torch.Tensor, prediction: str) -> torch.Tensor:
    """The regression target of the network.

    Parameters
    ----------
    x0, noise : Tensor (B, C, H, W)
        Clean image and the standard normal noise added to it.
    alpha_bar : Tensor (B,) or scalar
        Cumulative product ``ᾱ_t`` of the schedule at each sample's timestep.
    prediction : str
        One of :data:`PREDICTION_TYPES`.

    Returns
    -------
    Tensor (B, C, H, W)
    """
    a, s = _coefficients(alpha_bar, x0)
    if prediction == "epsilon":
        return noise
    if prediction == "v_prediction":
        return a * noise - s * x0
    if prediction == "sample":
        return x0
    raise ValueError(f"unknown prediction type {prediction!r}; valid: {', '.join(PREDICTION_TYPES)}")


def split_prediction(output: torch.Tensor, x_t: torch.Tensor, alpha_bar, prediction: str
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x0_hat, eps_hat)`` from a network output of type ``prediction``.

    Parameters
    ----------
    output, x_t : Tensor (B, C, H, W)
        Network output and the noisy sample ``x_t`` it was computed from (as the
        network saw it, i.e. after the scheduler's input scaling).
    alpha_bar : float or Tensor (B,)
        Cumulative product ``ᾱ_t`` of the schedule at the timestep, in (0, 1]; one value
        for the whole batch or one per sample.
    prediction : str
        How ``output`` is parametrised: one of :data:`PREDICTION_TYPES`.

    Returns
    -------
    x0_hat, eps_hat : Tensor (B, C, H, W)
        Satisfying ``x_t = a·x0_hat + s·eps_hat``.

    Raises
    ------
    ValueError
        If ``prediction`` is not one of :data:`PREDICTION_TYPES`.
    """
    a, s = _coefficients(alpha_bar, x_t)
    if prediction == "epsilon":
        return (x_t - s * output) / a, output
    if prediction == "v_prediction":
        return a * x_t - s * output, s * x_t + a * output
    if prediction == "sample":
        return output, (x_t - a * output) / s
    raise ValueError(f"unknown prediction type {prediction!r}; valid: {', '.join(PREDICTION_TYPES)}")


def output_from_x0(x0: torch.Tensor, x_t: torch.Tensor, alpha_bar, prediction: str) -> torch.Tensor:
    """The network output of type ``prediction`` that corresponds to ``x0`` at ``x_t``.

    Inverse of :func:`split_prediction` (used after a guidance step has moved ``x0_hat``).
    """
    a, s = _coefficients(alpha_bar, x_t)
    eps = (x_t - a * x0) / s
    return prediction_target(x0, eps, alpha_bar, prediction)


def min_snr_weight(alpha_bar: torch.Tensor, gamma: float | None, prediction: str) -> torch.Tensor:
    """Per-sample Min-SNR-γ weights of the mean-squared error (Hang et al. 2023, eq. 8 ff.).

    With ``SNR = ᾱ / (1 - ᾱ)`` the weight of the ``x0`` loss is ``min(SNR, γ)``;
    expressed for the other targets it is ``min(SNR, γ) / SNR`` for ``epsilon`` and
    ``min(SNR, γ) / (SNR + 1)`` for ``v_prediction``.

    Parameters
    ----------
    alpha_bar : Tensor (B,)
        Cumulative product ``ᾱ_t`` of the noise schedule at each sample's timestep, in
        (0, 1).
    gamma : float or None
        ``None`` gives weights of 1 (plain MSE).
    prediction : str
        The network's training target, one of :data:`PREDICTION_TYPES`; picks the form
        of the weight.

    Returns
    -------
    Tensor (B,)
        float32 weights.

    Raises
    ------
    ValueError
        If ``prediction`` is unknown (and ``gamma`` is not ``None``).
    """
    alpha_bar = torch.as_tensor(alpha_bar, dtype=torch.float64)
    if gamma is None:
        return torch.ones_like(alpha_bar, dtype=torch.float32)
    snr = alpha_bar / (1.0 - alpha_bar).clamp_min(1e-12)
    clipped = snr.clamp(max=float(gamma))
    if prediction == "epsilon":
        weight = clipped / snr
    elif prediction == "v_prediction":
        weight = clipped / (snr + 1.0)
    elif prediction == "sample":
        weight = clipped
    else:
        raise ValueError(f"unknown prediction type {prediction!r}; valid: {', '.join(PREDICTION_TYPES)}")
    return weight.float()


def guided_output(network: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], inputs: torch.Tensor,
                  t: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance: ``u + scale · (c − u)`` from one batched network call.

    Parameters
    ----------
    network : callable
        ``network(inputs, t) -> Tensor (B, 1, H, W)``.
    inputs : Tensor, shape (B, 1 + C, H, W)
        The noisy sample followed by its ``C`` condition channels.
    t : Tensor, shape (B,)
        Timesteps.
    scale : float
        Guidance scale; 1 gives the conditional output ``c``.

    Returns
    -------
    Tensor, shape (B, 1, H, W)
        ``c`` is the output for ``inputs``, ``u`` for ``inputs`` with the condition
        channels zeroed, as condition dropout zeroes them in training.
    """
    unconditional = torch.cat([inputs[:, :1], torch.zeros_like(inputs[:, 1:])], dim=1)
    cond, uncond = network(torch.cat([inputs, unconditional]), torch.cat([t, t])).chunk(2)
    return uncond + scale * (cond - uncond)


def guided_step_count(cfg_scale: float, cfg_steps: float, steps: int) -> int:
    """How many of ``steps`` sampling steps, from the noisiest, use classifier-free guidance.

    Examples
    --------
    >>> guided_step_count(1.25, 1.0, 50), guided_step_count(1.25, 0.5, 25), guided_step_count(1.0, 1.0, 50)
    (50, 13, 0)
    """
    return math.ceil(cfg_steps * steps - 1e-9) if cfg_scale != 1.0 else 0
