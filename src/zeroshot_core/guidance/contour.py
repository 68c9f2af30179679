"""``contour`` guidance: ContourDiff (Chen et al.).

The score network sees the Canny contour of the image as a second input channel.
It is trained on contours of target images; at sampling time the contour comes from
the *masked source* slice, so anatomy boundaries transfer while intensities are
generated in the target modality.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from skimage import feature

from zeroshot_core.errors import ConfigError
from zeroshot_core.guidance.base import Guidance
from zeroshot_core.plugins.hookspecs import hookimpl


def contour_map(image: np.ndarray, mask: np.ndarray, sigma: float, low: float, high: float) -> np.ndarray:
    """Canny edges of the masked image, as a float map in {-1, 1}.

    Parameters
    ----------
    image : ndarray (H, W), float in [-1, 1]
        Normalised 2-D slice (-1 is background), e.g. a masked source slice on the
        model grid.
    mask : ndarray (H, W), bool
        Outside it the image is set to background (-1) first, so the object's outline
        is one of the contours.
    sigma, low, high : float
        Canny smoothing and hysteresis thresholds (on the gradient magnitude of the
        image scaled to [0, 1]).

    Examples
    --------
    >>> image = -np.ones((32, 32), np.float32); image[8:24, 8:24] = 1
    >>> edges = contour_map(image, image > 0, 1.0, 0.1, 0.2)
    >>> bool((edges > 0).any())
    True
    """
    masked = np.where(mask, image, -1.0).astype(np.float32)
    edges = feature.canny((masked + 1.0) / 2.0, sigma=sigma, low_threshold=low, high_threshold=high)
    return edges.astype(np.float32) * 2.0 - 1.0


class ContourGuidance(Guidance):
    """ContourDiff: a Canny contour channel.

    Parameters
    ----------
    sigma : float
        Gaussian smoothing of Canny, in pixels of the model grid.
    low_threshold, high_threshold : float
        Canny hysteresis thresholds, 0 <= low <= high.
    strength : float
        Fraction of the schedule to start from; 1.0 (default) starts from pure noise.
    """

    name = "contour"
    static_channels = 1

    def __init__(self, sigma: float = 1.0, low_threshold: float = 0.05, high_threshold: float = 0.15,
                 strength: float = 1.0) -> None:
        if not 0.0 < float(sigma) <= 10.0:
            raise ConfigError(f"contour sigma must be in (0, 10], got {sigma}")
        if not 0.0 <= float(low_threshold) <= float(high_threshold):
            raise ConfigError(f"need 0 <= low_threshold <= high_threshold, got {low_threshold}, {high_threshold}")
        if not 0.0 < float(strength) <= 1.0:
            raise ConfigError(f"strength must be in (0, 1], got {strength}")
        self.sigma = float(sigma)
        self.low_threshold = float(low_threshold)
        self.high_threshold = float(high_threshold)
        self.strength = float(strength)

    def params(self) -> dict[str, Any]:
        return {"sigma": self.sigma, "low_threshold": self.low_threshold,
                "high_threshold": self.high_threshold, "strength": self.strength}

    def sampling_params(self) -> frozenset[str]:
        # The source's edges differ in strength from the target's: thresholds may be tuned.
        return frozenset({"strength", "sigma", "low_threshold", "high_threshold"})

    def static_condition(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return contour_map(image, mask, self.sigma, self.low_threshold, self.high_threshold)[None]


@hookimpl
def zeroshot_register_guidance(register) -> None:
    register("contour", ContourGuidance)
