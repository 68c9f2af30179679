"""Contrast randomisation of training guides.

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
        Source of the random class levels, bias field and noise (advanced in place);
        a seeded generator makes the map reproducible.
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
        Filter mask of each training slice, ``True`` on the object; randomisation and
        the static channels only use the inside, the rest stays ``-1``.
    guidance : Guidance
        Its :meth:`static_condition` is recomputed from each randomised slice.
    count : int
        Variants per slice.
    seed : int
        Seed of the NumPy generator shared by all slices and variants; the same seed
        and inputs give the same variants.

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
        All training slices: the normalised T1 (channel 0) and its own static guide
        channels, used where no randomised variant is picked.
    variants : Tensor (N, V, 1 + static_channels, H, W) or None
        ``V`` precomputed contrast-randomised guides per slice (:func:`guide_variants`);
        ``None`` disables randomisation (the T1's own guides are returned).
    index : Tensor (B,) long
        Training slices of the batch.
    probability : float
        Chance, per sample, of taking a random variant instead of the T1's own guides,
        in [0, 1]; ``<= 0`` disables randomisation.
    generator : torch.Generator
        CPU generator drawing which samples are randomised and which variant each gets.

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


def draw_guide_noise(shape: torch.Size | tuple[int, ...], max_std: float, generator: torch.Generator
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The random draws of :func:`noisy_reference` for a global batch (CPU generator).

    Returns
    -------
    std : Tensor (B,)
        Noise standard deviation per sample, uniform in ``[0, max_std]`` (``[0, 1]`` units).
    real, imaginary : Tensor, ``shape``
        Standard normal fields.
    """
    std = torch.rand(shape[0], generator=generator) * max_std
    return std, torch.randn(shape, generator=generator), torch.randn(shape, generator=generator)


def noisy_reference(reference: torch.Tensor, std: torch.Tensor, real: torch.Tensor, imaginary: torch.Tensor
                    ) -> torch.Tensor:
    """Rician noise on a guide's reference image, inside the object only (guide-noise augmentation).

    A source scan is noisier, relative to its tissue contrast, than the T1 images a model
    is trained on (PD-weighted MRI above all). Training the network on references with
    noise of random strength teaches it to follow the anatomy of a guide, not its noise.
    On ``y = (reference + 1) / 2`` in ``[0, 1]``, the noisy magnitude is
    ``sqrt((y + s·n1)² + (s·n2)²)`` (Gudbjartsson & Patz 1995); it is mapped back to
    ``[-1, 1]`` and clipped. The background (``-1``) stays ``-1``.

    Parameters
    ----------
    reference : Tensor (B, 1, H, W)
        Normalised reference images in ``[-1, 1]``, background ``-1``.
    std : Tensor (B,)
        Noise standard deviation per sample, in ``[0, 1]`` units (0 leaves a sample as it is).
    real, imaginary : Tensor (B, 1, H, W)
        Standard normal fields ``n1``, ``n2`` (drawn by :func:`draw_guide_noise`).

    Returns
    -------
    Tensor (B, 1, H, W)
    """
    s = std.to(reference.device, reference.dtype)[:, None, None, None]
    y = (reference + 1.0) / 2.0
    noisy = torch.sqrt((y + s * real.to(reference.device)).square() + (s * imaginary.to(reference.device)).square())
    inside = reference > -1.0 + 1e-4
    return torch.where(inside, (noisy * 2.0 - 1.0).clamp(-1.0, 1.0), reference)
