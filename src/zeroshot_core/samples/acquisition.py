"""Acquisition artefacts of simulated MR images: a smooth receive-coil bias field and
Rician noise (the magnitude of a complex signal with Gaussian noise in both channels)."""

from __future__ import annotations

import numpy as np

from zeroshot_core.errors import ConfigError


def bias_field(shape: tuple[int, ...], strength: float, seed: int = 0) -> np.ndarray:
    """Smooth multiplicative field with mean 1.

    ``exp`` of a random quadratic polynomial of the normalised coordinates, scaled so that
    its log spans ``strength`` from minimum to maximum, then divided by its mean.

    Parameters
    ----------
    shape : tuple of int
        2-D or 3-D grid.
    strength : float
        Peak-to-peak amplitude of the log field, in [0, 1); 0 gives ones.
    seed : int
        Non-negative seed of the random polynomial coefficients; the same seed and
        shape give the same field.

    Returns
    -------
    ndarray of float32, ``shape``

    Raises
    ------
    ConfigError
        ``strength`` out of range.

    Examples
    --------
    >>> f = bias_field((16, 16, 8), 0.2, seed=1)
    >>> round(float(f.mean()), 3)
    1.0
    """
    if not (np.isfinite(strength) and 0 <= strength < 1):
        raise ConfigError(f"bias strength must be in [0, 1), got {strength}")
    if strength == 0:
        return np.ones(shape, np.float32)
    rng = np.random.default_rng([int(seed), 7919])
    coords = np.meshgrid(*[np.linspace(-1.0, 1.0, n) for n in shape], indexing="ij")
    log_field = np.zeros(shape)
    for i, ci in enumerate(coords):
        log_field += rng.normal() * ci
        for cj in coords[i:]:
            log_field += rng.normal() * ci * cj
    span = float(log_field.max() - log_field.min())
    log_field = (log_field - log_field.mean()) * (strength / span if span > 0 else 0.0)
    out = np.exp(log_field)
    return (out / out.mean()).astype(np.float32)


def rician_noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Magnitude of ``image + n_re + i·n_im`` with Gaussian ``n`` of standard deviation ``sigma``.

    Examples
    --------
    >>> import numpy as np
    >>> bool(rician_noise(np.zeros((8, 8)), 1.0, np.random.default_rng(0)).min() >= 0)
    True
    """
    if sigma == 0:
        return np.asarray(image, np.float32).copy()
    real = np.asarray(image, np.float64) + rng.normal(0.0, sigma, np.shape(image))
    imag = rng.normal(0.0, sigma, np.shape(image))
    return np.hypot(real, imag).astype(np.float32)
