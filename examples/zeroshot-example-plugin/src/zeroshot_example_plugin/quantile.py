"""``quantile`` segmenter: thresholds at intensity quantiles of the target.

At training time it learns the ``classes - 1`` quantiles that split the in-mask
intensities of the target slices into classes of equal size; the thresholds are its
state (plain JSON in the model card). Segmenting compares voxels with them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from zeroshot_core.errors import ConfigError, InputError, ModelError
from zeroshot_core.segmenters.base import Segmenter, check_image_and_mask, masked_pixels


class QuantileSegmenter(Segmenter):
    """Label voxels by the target's intensity quantiles.

    Parameters
    ----------
    state : dict, optional
        ``{"thresholds": [t1, ..., t_{k-1}]}`` from :meth:`state`; ``None`` means
        unfitted.
    classes : int, optional
        Number of classes, 2–8 (default 3, or as many as ``state`` implies).

    Raises
    ------
    ConfigError
        If ``classes`` is out of range or contradicts ``state``.
    ModelError
        If ``state`` is malformed.
    """

    name = "quantile"
    needs_fit = True

    def __init__(self, state: dict[str, Any] | None = None, classes: int | None = None) -> None:
        if classes is not None and (not isinstance(classes, int) or not 2 <= classes <= 8):
            raise ConfigError(f"quantile classes must be an integer 2..8, got {classes!r}")
        self._thresholds: list[float] | None = None
        if state:
            thresholds = state.get("thresholds") if isinstance(state, dict) else None
            if not isinstance(thresholds, list) or not thresholds or thresholds != sorted(thresholds):
                raise ModelError("quantile state needs increasing 'thresholds'; retrain the model")
            self._thresholds = [float(t) for t in thresholds]
            if classes is not None and classes != len(thresholds) + 1:
                raise ConfigError(f"quantile classes={classes} contradicts the model; leave it out")
        self.classes = len(self._thresholds) + 1 if self._thresholds else (classes or 3)

    def fit(self, images: list[np.ndarray], masks: list[np.ndarray]) -> None:
        """Learn the quantile thresholds of the in-mask intensities."""
        values = masked_pixels(images, masks, max_pixels=200_000, seed=0)
        if values.size == 0:
            raise InputError("quantile found no voxels inside the masks; check the masks")
        levels = np.arange(1, self.classes) / self.classes
        self._thresholds = [float(t) for t in np.quantile(values, levels)]

    def state(self) -> dict[str, Any]:
        """``{"thresholds": [...]}``."""
        if self._thresholds is None:
            raise ModelError("the quantile segmenter is not fitted; train a model with it")
        return {"thresholds": list(self._thresholds)}

    def segment(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """``0`` outside the mask, ``1..classes`` inside by intensity.

        Raises
        ------
        ModelError
            If the segmenter is not fitted (it never fits itself on the image).
        """
        image, mask = check_image_and_mask(image, mask)
        thresholds = np.asarray(self.state()["thresholds"], dtype=np.float32)
        labels = np.zeros(image.shape, dtype=np.int16)
        labels[mask] = np.searchsorted(thresholds, image[mask], side="right") + 1
        return labels

    def label_names(self) -> dict[int, str]:
        """``{0: "background", 1: "quantile 1 (darkest)", ...}``."""
        names = {0: "background"}
        names.update({k: f"quantile {k}" for k in range(1, self.classes + 1)})
        names[1] += " (darkest)"
        names[self.classes] += " (brightest)"
        return names
