"""Training-recipe helpers: prediction targets, Min-SNR-γ weights, contrast randomisation.

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

Contrast randomisation (after Billot et al., SynthSeg, Medical Image Analysis 2023)
turns a T1 slice into a random, tissue-wise, non-monotone contrast with a smooth bias
field and Rician-like noise, so that guides (contours, LMI references) computed from it
during training look like guides computed from PD, T2 or CT sources at sampling time.
The network's target ``x0`` stays the T1 slice, so training remains target-only.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage as ndi

PREDICTION_TYPES: tuple[str, ...] = ("epsilon", "v_prediction", "sample")
"""Network output parametrisations (diffusers ``prediction_type`` names)."""


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
    alpha_bar : float or Tensor (B,)
    prediction : str

    Returns
    -------
    x0_hat, eps_hat : Tensor (B, C, H, W)
        Satisfying ``x_t = a·x0_hat + s·eps_hat``.
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
    gamma : float or None
        ``None`` gives weights of 1 (plain MSE).
    prediction : str

    Returns
    -------
    Tensor (B,)
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


def _non_monotone_levels(count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` random levels in [-1, 1] whose order is neither ascending nor descending."""
    for _ in range(100):
        levels = rng.uniform(-1.0, 1.0, count)
        steps = np.diff(levels)
        if count < 3 or ((steps > 0).any() and (steps < 0).any()):
            return levels
    levels[[0, 1]] = levels[[1, 0]]  # pragma: no cover - 100 sorted draws are vanishingly rare
    return levels


def randomise_contrast(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator, classes: int = 6,
                       transition: float = 0.05, bias_strength: float = 0.2, noise_std: float = 0.03,
                       levels: np.ndarray | None = None) -> np.ndarray:
    """A random tissue-wise, non-monotone intensity map of a T1 slice (SynthSeg-like).

    1. The intensities inside ``mask`` are cut into ``classes`` quantile bins (a crude
       tissue classification: background-like, CSF, GM, WM, fat, ...).
    2. Each bin is mapped to a random level in ``[-1, 1]`` (drawn so that their order is
       neither the T1 order nor its reverse); bins are blended with logistic memberships
       of width ``transition`` (intensity units), so boundaries stay smooth.
    3. A smooth multiplicative bias field ``exp(b)``, ``b`` a bicubic upsampled 4×4
       normal field of standard deviation ``bias_strength``, and Rician-like noise
       ``|y + n1 + i·n2|`` with ``n1, n2 ~ N(0, noise_std²)`` are applied.
    4. The result is renormalised to ``[-1, 1]`` by its 0.5/99.5 percentiles inside the
       mask (as a source is at sampling time); outside the mask it is ``-1``.

    Parameters
    ----------
    image : ndarray (H, W), float in [-1, 1]
        Normalised T1 slice.
    mask : ndarray (H, W), bool
        Object mask; the background stays ``-1``.
    rng : numpy.random.Generator
    classes : int
        Number of intensity classes (>= 3 for a non-monotone map).
    transition : float
        Width of the logistic transitions between classes, in normalised intensity.
    bias_strength, noise_std : float
        Standard deviations of the log bias field and of the noise (in ``[0, 2]`` units).
    levels : ndarray (classes,), optional
        Fixed class levels instead of random ones (for tests).

    Returns
    -------
    ndarray (H, W), float32 in [-1, 1]
    """
    image = np.asarray(image, np.float32)
    mask = np.asarray(mask, bool)
    out = np.full(image.shape, -1.0, np.float32)
    if mask.sum() < classes:
        return out
    edges = np.quantile(image[mask], np.linspace(0.0, 1.0, classes + 1)[1:-1])
    levels = _non_monotone_levels(classes, rng) if levels is None else np.asarray(levels, float)
    # Memberships: sigma((x - e_k) / w) steps; class k = step_k - step_{k+1}; they sum to 1.
    steps = [np.ones_like(image)] + [1.0 / (1.0 + np.exp(-(image - e) / max(transition, 1e-6))) for e in edges] \
        + [np.zeros_like(image)]
    mapped = sum(levels[k] * (steps[k] - steps[k + 1]) for k in range(classes))
    value = (np.asarray(mapped, np.float32) + 1.0) / 2.0  # [0, 1]
    if bias_strength > 0:
        coarse = rng.normal(0.0, bias_strength, (4, 4))
        field = ndi.zoom(coarse, (image.shape[0] / 4, image.shape[1] / 4), order=3, mode="nearest")
        value = value * np.exp(field[:image.shape[0], :image.shape[1]])
    if noise_std > 0:
        value = np.hypot(value + rng.normal(0.0, noise_std, image.shape), rng.normal(0.0, noise_std, image.shape))
    inside = value[mask]
    low, high = np.percentile(inside, (0.5, 99.5))
    if high <= low:
        low, high = float(inside.min()), float(inside.max()) + 1e-6
    scaled = np.clip((value - low) / (high - low) * 2.0 - 1.0, -1.0, 1.0)
    out[mask] = scaled[mask]
    return out


def guide_variants(images: torch.Tensor, masks: np.ndarray, guidance, count: int, seed: int) -> torch.Tensor:
    """Precomputed contrast-randomised guides of every training slice.

    Computing them once at load time (``count`` variants per slice) instead of at every
    step keeps a CPU training step as cheap as without randomisation; each step draws
    one variant per sample (see :func:`pick_guides`).

    Parameters
    ----------
    images : Tensor (N, 1 + static_channels, H, W)
        Training slices; channel 0 is the normalised T1.
    masks : ndarray (N, H, W) bool
    guidance : Guidance
        Its :meth:`static_condition` is recomputed from each randomised slice.
    count : int
        Variants per slice.
    seed : int

    Returns
    -------
    Tensor (N, count, 1 + static_channels, H, W)
        Per variant: the randomised slice (the reference of dynamic channels such as
        LMI) and the static channels computed from it.
    """
    rng = np.random.default_rng(seed)
    out = np.empty((images.shape[0], count) + tuple(images.shape[1:]), np.float32)
    for n in range(images.shape[0]):
        image = images[n, 0].numpy()
        for v in range(count):
            randomised = randomise_contrast(image, masks[n], rng)
            out[n, v, 0] = randomised
            out[n, v, 1:] = guidance.static_condition(randomised, masks[n])
    return torch.from_numpy(out)


def pick_guides(images: torch.Tensor, variants: torch.Tensor | None, index: torch.Tensor, probability: float,
                generator: torch.Generator) -> torch.Tensor:
    """The guide channels of a batch: randomised with ``probability``, else the T1's own.

    Parameters
    ----------
    images : Tensor (N, 1 + static_channels, H, W)
    variants : Tensor (N, V, 1 + static_channels, H, W) or None
    index : Tensor (B,) long
        Training slices of the batch.
    probability : float
    generator : torch.Generator

    Returns
    -------
    Tensor (B, 1 + static_channels, H, W)
        Reference image (channel 0) and static channels for each sample.
    """
    guides = images[index]
    if variants is None or probability <= 0:
        return guides
    use = torch.rand(len(index), generator=generator) < probability
    which = torch.randint(0, variants.shape[1], (len(index),), generator=generator)
    chosen = variants[index.cpu(), which].to(guides.device)
    return torch.where(use.to(guides.device)[:, None, None, None], chosen, guides)
