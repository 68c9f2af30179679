"""``gradient`` guidance: the Sobel gradient magnitude of the masked image.

Like ContourDiff's contour, the gradient magnitude carries anatomy boundaries but
not the intensities of the modality; unlike a binary Canny map it keeps edge
strength. The network is trained on gradients of target slices and, at sampling
time, sees the gradient of the masked source slice.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from skimage import filters

from zeroshot_core.errors import ConfigError
from zeroshot_core.guidance.base import Guidance


def gradient_map(image: np.ndarray, mask: np.ndarray, sigma: float = 1.0, percentile: float = 99.0) -> np.ndarray:
    """Normalised gradient magnitude of the masked image, in ``[-1, 1]``.

    Parameters
    ----------
    image : ndarray (H, W), float in [-1, 1]
    mask : ndarray (H, W), bool
        Outside it the image is set to background (-1) first, so the outline of
        the object is an edge too.
    sigma : float
        Gaussian smoothing before the Sobel filter, in pixels; 0 skips it.
    percentile : float
        Gradient magnitude mapped to 1 (larger values are clipped), so a single
        strong edge does not flatten the rest.

    Returns
    -------
    ndarray (H, W), float32
        ``-1`` where the image is flat, ``1`` on the strongest edges.

    Examples
    --------
    >>> image = -np.ones((32, 32), np.float32); image[8:24, 8:24] = 1
    >>> g = gradient_map(image, image > 0)
    >>> float(g.min()), float(g.max())
    (-1.0, 1.0)
    """
    masked = np.where(mask, image, -1.0).astype(np.float32)
    if sigma > 0:
        masked = filters.gaussian(masked, sigma=sigma, preserve_range=True)
    magnitude = filters.sobel(masked)
    scale = float(np.percentile(magnitude[magnitude > 0], percentile)) if (magnitude > 0).any() else 0.0
    if scale <= 0:
        return np.full(image.shape, -1.0, dtype=np.float32)
    return (np.clip(magnitude / scale, 0.0, 1.0) * 2.0 - 1.0).astype(np.float32)


class GradientGuidance(Guidance):
    """One static channel: the normalised gradient magnitude.

    Parameters
    ----------
    sigma : float
        Smoothing before the Sobel filter, 0–10 pixels. Changes what the network
        sees, so a model must be used with the value it was trained with.
    percentile : float
        Gradient percentile mapped to full scale, 50–100. May be tuned at sampling
        time (source edges are weaker or stronger than target edges).
    strength : float
        Fraction of the noise schedule to start from, in (0, 1].

    Raises
    ------
    ConfigError
        If a parameter is out of range.
    """

    name = "gradient"
    static_channels = 1

    def __init__(self, sigma: float = 1.0, percentile: float = 99.0, strength: float = 1.0) -> None:
        if not 0.0 <= float(sigma) <= 10.0:
            raise ConfigError(f"gradient sigma must be in [0, 10], got {sigma}")
        if not 50.0 <= float(percentile) <= 100.0:
            raise ConfigError(f"gradient percentile must be in [50, 100], got {percentile}")
        if not 0.0 < float(strength) <= 1.0:
            raise ConfigError(f"strength must be in (0, 1], got {strength}")
        self.sigma = float(sigma)
        self.percentile = float(percentile)
        self.strength = float(strength)

    def params(self) -> dict[str, Any]:
        """Parameters recorded in the model card."""
        return {"sigma": self.sigma, "percentile": self.percentile, "strength": self.strength}

    def sampling_params(self) -> frozenset[str]:
        """``strength`` and ``percentile`` may differ from the trained values."""
        return frozenset({"strength", "percentile"})

    def static_condition(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The gradient map as a ``(1, H, W)`` float32 array."""
        return gradient_map(image, mask, self.sigma, self.percentile)[None]
