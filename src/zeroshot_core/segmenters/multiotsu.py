"""Multi-Otsu threshold segmenter (plugin ``multiotsu``).

Thresholds are computed per image with :func:`skimage.filters.threshold_multiotsu`
from the in-mask intensities only, so the segmenter needs no fitting and its state
is empty. Labels are ordered by intensity (1 = darkest), as for ``kmeans``.

``threshold_multiotsu`` chooses classes as runs of histogram bins but reports each
threshold as the *centre* of the last bin of the darker class, which splits that bin
(an image with a few discrete levels can lose a class that way). The thresholds used
here are the upper *edges* of those bins, so every class is exactly the set of
voxels in its bins.

Examples
--------
>>> import numpy as np
>>> image = np.repeat([-0.8, 0.0, 0.7], 100).reshape(30, 10).astype(np.float32)
>>> labels = MultiOtsuSegmenter().segment(image, np.ones(image.shape, dtype=bool))
>>> sorted(set(labels.ravel().tolist()))
[1, 2, 3]
"""

from __future__ import annotations

from typing import Any

import numpy as np
from skimage.filters import threshold_multiotsu

from zeroshot_core.errors import ConfigError, InputError
from zeroshot_core.plugins.hookspecs import RegisterFn, hookimpl
from zeroshot_core.segmenters.base import Segmenter, check_image_and_mask, intensity_label_names

MIN_CLASSES = 2
MAX_CLASSES = 5


class MultiOtsuSegmenter(Segmenter):
    """Label the in-mask voxels by multi-Otsu thresholds of their intensities.

    Parameters
    ----------
    state : dict, optional
        Ignored (the segmenter learns nothing); accepted for the factory contract.
    classes : int
        Number of classes, 2–5.
    nbins : int
        Histogram bins of the threshold search, 16–4096.

    Raises
    ------
    ConfigError
        If a parameter is out of range.
    """

    name = "multiotsu"
    needs_fit = False

    def __init__(self, state: dict[str, Any] | None = None, classes: int = 3, nbins: int = 256) -> None:
        if not isinstance(classes, int) or not MIN_CLASSES <= classes <= MAX_CLASSES:
            raise ConfigError(f"multiotsu classes must be an integer {MIN_CLASSES}..{MAX_CLASSES}, got {classes!r}")
        if not isinstance(nbins, int) or not 16 <= nbins <= 4096:
            raise ConfigError(f"multiotsu nbins must be an integer 16..4096, got {nbins!r}")
        self.classes = classes
        self.nbins = nbins

    def thresholds(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The ``classes - 1`` thresholds of the in-mask intensities.

        Parameters
        ----------
        image : ndarray, 2-D or 3-D
            Slice or volume (normally normalised to [-1, 1]); thresholds are in its
            intensity units.
        mask : ndarray of bool, same shape
            Voxels whose finite intensities form the histogram (``None``: all voxels).

        Returns
        -------
        ndarray of float64, increasing
            Voxels ``>=`` a threshold belong to the brighter class.

        Raises
        ------
        InputError
            If the mask is empty or holds too few distinct intensities.
        """
        image, mask = check_image_and_mask(image, mask)
        values = image[mask]
        if values.size == 0:
            raise InputError("multiotsu found no voxels inside the mask; check the mask")
        try:
            centres = np.asarray(threshold_multiotsu(values, classes=self.classes, nbins=self.nbins))
        except ValueError:
            distinct = np.unique(values).size
            raise InputError(
                f"multiotsu cannot split {distinct} distinct in-mask intensities into "
                f"{self.classes} classes; lower classes or check the mask"
            ) from None
        # The same bins as skimage's histogram of a float image (range = min..max).
        edges = np.histogram_bin_edges(values, bins=self.nbins, range=(float(values.min()), float(values.max())))
        bin_centres = (edges[:-1] + edges[1:]) / 2.0
        chosen = np.abs(bin_centres[None, :] - centres[:, None]).argmin(axis=1)
        return edges[chosen + 1]

    def segment(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Label the finite in-mask voxels ``1..classes`` by intensity, ``0`` elsewhere.

        Parameters
        ----------
        image : ndarray, 2-D or 3-D, in [-1, 1]
            Normalised slice or volume in the target modality (e.g. a translation).
        mask : ndarray of bool, same shape
            Voxels to label (``True`` on the object); an empty mask gives all zeros.

        Returns
        -------
        ndarray of int16, same shape as ``image``

        Raises
        ------
        InputError
            If the in-mask intensities cannot be split into ``classes`` classes, the
            image is not 2-D/3-D or the mask has another shape.
        """
        image, mask = check_image_and_mask(image, mask)
        labels = np.zeros(image.shape, dtype=np.int16)
        if not mask.any():
            return labels
        thresholds = self.thresholds(image, mask)
        # A voxel on a bin edge belongs to the brighter bin, as in np.histogram.
        labels[mask] = np.searchsorted(thresholds, image[mask].astype(np.float64), side="right") + 1
        return labels

    def label_names(self) -> dict[int, str]:
        """``{0: "background", 1: darkest, ..., classes: brightest}``."""
        return intensity_label_names(self.classes)


def create(state: dict[str, Any] | None = None, **params: Any) -> MultiOtsuSegmenter:
    """Factory registered as ``multiotsu``: ``create(state=None, **params)``."""
    return MultiOtsuSegmenter(state=state, **params)


@hookimpl
def zeroshot_register_segmenters(register: RegisterFn) -> None:
    """Register the ``multiotsu`` segmenter."""
    register("multiotsu", create)
