"""Intensity k-means segmenter fitted on the target training slices (plugin ``kmeans``).

At training time scikit-learn's :class:`~sklearn.cluster.KMeans` clusters the
in-mask intensities of the target slices (a seeded subsample of at most
``max_pixels`` values). Only the cluster centres are kept, sorted by intensity, so
label 1 is the darkest class and label ``k`` the brightest; on a T1-weighted brain
with ``k = 3`` that is CSF, grey matter and white matter. Segmenting assigns every
in-mask voxel to its nearest centre with plain numpy.

A segmenter built without a state (``state=None`` or ``{}``) fits itself on the
first image it is asked to segment, so ``zeroshot segment`` works without a model.

Examples
--------
>>> import numpy as np
>>> image = np.repeat([-0.8, 0.1, 0.7], 100).reshape(30, 10).astype(np.float32)
>>> seg = KMeansSegmenter()
>>> seg.fit([image], [np.ones_like(image, dtype=bool)])
>>> [round(c, 2) for c in seg.state()["centres"]]
[-0.8, 0.1, 0.7]
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from zeroshot_core.errors import ConfigError, InputError, ModelError
from zeroshot_core.plugins.hookspecs import RegisterFn, hookimpl
from zeroshot_core.segmenters.base import (
    Segmenter,
    check_image_and_mask,
    intensity_label_names,
    masked_pixels,
)

#: Number of k-means restarts (fixed so that results do not depend on sklearn defaults).
N_INIT = 4
#: Version of the layout of :meth:`KMeansSegmenter.state`.
STATE_FORMAT = 1
MAX_CLUSTERS = 10


class KMeansSegmenter(Segmenter):
    """Nearest-intensity-centre labelling with centres learned by k-means.

    Parameters
    ----------
    state : dict, optional
        A :meth:`state` returned earlier (from the model card). ``None`` or ``{}``
        means unfitted.
    n_clusters : int, optional
        Number of classes, 2–10; default 3, or the number of centres in ``state``.
    seed : int
        Seed of the pixel subsample and of k-means.
    max_pixels : int
        Most in-mask values k-means is fitted on.

    Raises
    ------
    ConfigError
        If a parameter is out of range or contradicts ``state``.
    ModelError
        If ``state`` is malformed.
    """

    name = "kmeans"
    needs_fit = True

    def __init__(
        self,
        state: dict[str, Any] | None = None,
        n_clusters: int | None = None,
        seed: int = 0,
        max_pixels: int = 200_000,
    ) -> None:
        if n_clusters is not None and not (
            isinstance(n_clusters, int) and 2 <= n_clusters <= MAX_CLUSTERS
        ):
            raise ConfigError(f"kmeans n_clusters must be an integer 2..{MAX_CLUSTERS}, got {n_clusters!r}")
        if not isinstance(max_pixels, int) or max_pixels < 100:
            raise ConfigError(f"kmeans max_pixels must be an integer >= 100, got {max_pixels!r}")
        if not isinstance(seed, int):
            raise ConfigError(f"kmeans seed must be an integer, got {seed!r}")
        self.seed = seed
        self.max_pixels = max_pixels
        self._centres: np.ndarray | None = _centres_from_state(state) if state else None
        if self._centres is not None and n_clusters is not None and n_clusters != len(self._centres):
            raise ConfigError(
                f"kmeans n_clusters={n_clusters} contradicts the {len(self._centres)} centres "
                "stored in the model; leave n_clusters out"
            )
        self.n_clusters = len(self._centres) if self._centres is not None else (n_clusters or 3)

    @property
    def fitted(self) -> bool:
        """Whether cluster centres are known."""
        return self._centres is not None

    @property
    def centres(self) -> np.ndarray:
        """Cluster centres in increasing order (float64).

        Raises
        ------
        ModelError
            If the segmenter is not fitted.
        """
        if self._centres is None:
            raise ModelError("the kmeans segmenter is not fitted; call fit() or build it with a state")
        return self._centres.copy()

    def fit(self, images: list[np.ndarray], masks: list[np.ndarray]) -> None:
        """Cluster the in-mask intensities of the target training slices.

        Parameters
        ----------
        images : list of ndarray, float32 in [-1, 1]
            2-D slices (3-D volumes work too).
        masks : list of ndarray of bool
            One filter mask per image, same shape, ``True`` on the object; only finite
            in-mask values are clustered (at most ``max_pixels``, seeded subsample).

        Raises
        ------
        InputError
            If there are fewer distinct in-mask values than clusters, or the masks do
            not match the images in number or shape.
        """
        from sklearn.cluster import KMeans  # only needed at training time

        values = masked_pixels(images, masks, max_pixels=self.max_pixels, seed=self.seed)
        distinct = np.unique(values).size
        if distinct < self.n_clusters:
            raise InputError(
                f"kmeans needs at least {self.n_clusters} distinct intensities inside the mask, "
                f"found {distinct}; check the mask or lower n_clusters"
            )
        model = KMeans(n_clusters=self.n_clusters, n_init=N_INIT, random_state=self.seed)
        model.fit(values.reshape(-1, 1))
        self._centres = np.sort(model.cluster_centers_.ravel().astype(np.float64))

    def state(self) -> dict[str, Any]:
        """Sorted cluster centres as plain JSON.

        Returns
        -------
        dict
            ``{"format": 1, "centres": [c1, ..., ck]}`` with ``c1 < ... < ck``.

        Raises
        ------
        ModelError
            If the segmenter is not fitted.
        """
        return {"format": STATE_FORMAT, "centres": [float(c) for c in self.centres]}

    def segment(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Assign every finite in-mask voxel to its nearest centre.

        An unfitted segmenter first fits itself on ``image`` (inside ``mask``).

        Parameters
        ----------
        image : ndarray, 2-D or 3-D, in [-1, 1]
            Normalised slice or volume in the target modality (e.g. a translation).
        mask : ndarray of bool, same shape
            Voxels to label (``True`` on the object); ``None`` labels every voxel.

        Returns
        -------
        ndarray of int16
            ``0`` outside the mask (and where ``image`` is not finite), ``1..k``
            inside, ordered by intensity.

        Raises
        ------
        InputError
            If the image is not 2-D/3-D, the mask has another shape, or an unfitted
            segmenter finds fewer distinct in-mask values than clusters.
        """
        image, mask = check_image_and_mask(image, mask)
        labels = np.zeros(image.shape, dtype=np.int16)
        if not mask.any():
            return labels
        if self._centres is None:
            self.fit([image], [mask])
        centres = self.centres
        midpoints = ((centres[:-1] + centres[1:]) / 2.0).astype(np.float32)
        labels[mask] = np.searchsorted(midpoints, image[mask], side="left") + 1
        return labels

    def label_names(self) -> dict[int, str]:
        """``{0: "background", 1: darkest, ..., k: brightest}``."""
        return intensity_label_names(self.n_clusters)


def _centres_from_state(state: dict[str, Any]) -> np.ndarray:
    if not isinstance(state, dict):
        raise ModelError(f"kmeans state must be a dict, got {type(state).__name__}; retrain the model")
    fmt = state.get("format", STATE_FORMAT)
    if fmt != STATE_FORMAT:
        raise ModelError(
            f"kmeans state format {fmt!r} is not supported (expected {STATE_FORMAT}); "
            "update napari-zeroshot or retrain the model"
        )
    raw = state.get("centres")
    if (
        not isinstance(raw, list)
        or not 2 <= len(raw) <= MAX_CLUSTERS
        or not all(isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c) for c in raw)
    ):
        raise ModelError(
            f"kmeans state needs 'centres': a list of 2..{MAX_CLUSTERS} finite numbers, "
            f"got {raw!r}; retrain the model"
        )
    centres = np.asarray(raw, dtype=np.float64)
    if np.any(np.diff(centres) <= 0):
        raise ModelError("kmeans centres in the model are not strictly increasing; retrain the model")
    return centres


def create(state: dict[str, Any] | None = None, **params: Any) -> KMeansSegmenter:
    """Factory registered as ``kmeans``: ``create(state=None, **params)``."""
    return KMeansSegmenter(state=state, **params)


@hookimpl
def zeroshot_register_segmenters(register: RegisterFn) -> None:
    """Register the ``kmeans`` segmenter."""
    register("kmeans", create)
