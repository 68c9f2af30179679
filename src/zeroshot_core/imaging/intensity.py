"""Intensity normalisation: robust percentiles mapped to the models' [-1, 1] range."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zeroshot_core.errors import InputError


@dataclass(frozen=True)
class Normalisation:
    """Linear map of intensities between percentiles ``low`` and ``high`` to [-1, 1].

    Attributes
    ----------
    low, high : float
        Intensities mapped to -1 and 1 (values outside are clipped).
    """

    low: float
    high: float

    def __post_init__(self) -> None:
        if not np.isfinite([self.low, self.high]).all() or self.high <= self.low:
            raise InputError("the image is constant (no contrast to normalise); check the input")

    @classmethod
    def fit(cls, data: np.ndarray, percentiles: tuple[float, float] = (0.5, 99.5),
            mask: np.ndarray | None = None) -> "Normalisation":
        """Robust percentiles of ``data`` (inside ``mask`` if given and non-empty).

        Raises
        ------
        InputError
            If the image is constant.
        """
        values = np.asarray(data, np.float32)
        if mask is not None and mask.any():
            values = values[mask]
        if values.size == 0 or float(values.max()) == float(values.min()):
            raise InputError("the image is constant (no contrast to normalise); check the input")
        low, high = np.percentile(values, percentiles)
        if high <= low:
            low, high = float(values.min()), float(values.max())
        return cls(float(low), float(high))

    def apply(self, data: np.ndarray) -> np.ndarray:
        """Map to [-1, 1] with clipping."""
        out = (np.asarray(data, np.float32) - self.low) / (self.high - self.low)
        return np.clip(out * 2.0 - 1.0, -1.0, 1.0).astype(np.float32)

    def invert(self, data: np.ndarray) -> np.ndarray:
        """Map [-1, 1] back to intensities."""
        return ((np.asarray(data, np.float32) + 1.0) / 2.0 * (self.high - self.low) + self.low).astype(np.float32)

    def to_dict(self) -> dict[str, float]:
        return {"low": self.low, "high": self.high}


