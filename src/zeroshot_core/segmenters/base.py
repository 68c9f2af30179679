"""The contract every segmenter implements.

A segmenter labels a *translated* image (which looks like the target modality) with
a method that only ever saw the target modality. Segmenters that learn something
from the target training slices (``needs_fit = True``) do so in :meth:`Segmenter.fit`
at training time; what they learned is returned by :meth:`Segmenter.state` as plain
JSON, stored in the model card, and handed back to the factory as ``state=`` when
the model is used::

    segmenter = factory(**params)           # training
    segmenter.fit(target_slices, masks)
    card["segmenter"] = {"name": name, "state": segmenter.state()}
    ...
    segmenter = factory(state=card["segmenter"]["state"])   # later, maybe elsewhere
    labels = segmenter.segment(image, mask)

All images are float32 normalised to ``[-1, 1]``; masks are ``True`` inside the
object. Labels are ``int16`` with ``0`` for background (outside the mask) and
``1..k`` for the classes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Sequence

import numpy as np

from zeroshot_core.errors import InputError

#: Names of three intensity-ordered classes of a T1-weighted brain image.
T1_BRAIN_LABELS: tuple[str, str, str] = ("CSF", "grey matter", "white matter")


class Segmenter(ABC):
    """Base class of segmenters.

    Subclasses set :attr:`name` and :attr:`needs_fit` and implement
    :meth:`segment` and :meth:`label_names`; segmenters that learn from the target
    training slices also override :meth:`fit` and :meth:`state`.

    A factory registered for a segmenter is called as ``factory(state=None,
    **params)``. ``factory(state=segmenter.state())`` must rebuild a segmenter that
    gives identical labels, so :meth:`state` must hold everything that
    :meth:`segment` depends on (including parameters such as the class count).

    Attributes
    ----------
    name : str
        Registry name.
    needs_fit : bool
        Whether :meth:`fit` must see the target training slices before
        :meth:`segment` gives meaningful labels.
    """

    name: ClassVar[str] = ""
    needs_fit: ClassVar[bool] = False

    def fit(self, images: list[np.ndarray], masks: list[np.ndarray]) -> None:
        """Learn from target training slices.

        The default does nothing (for segmenters with ``needs_fit = False``).

        Parameters
        ----------
        images : list of ndarray, each float32 in [-1, 1]
            Target-modality training slices (2-D; implementations may accept 3-D).
        masks : list of ndarray of bool
            Foreground masks, one per image, same shapes.
        """

    def state(self) -> dict[str, Any]:
        """JSON-compatible state that rebuilds this segmenter with its factory.

        The default returns an empty dict (nothing learned).

        Returns
        -------
        dict
            Only ``dict``/``list``/``str``/``int``/``float``/``bool``/``None`` values.
        """
        return {}

    @abstractmethod
    def segment(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Label an image.

        Parameters
        ----------
        image : ndarray, 2-D or 3-D, float32 in [-1, 1]
            Slice or volume in the target modality (e.g. a translation), normalised so
            that the intensity percentiles map to -1 and 1.
        mask : ndarray of bool, same shape
            Only voxels inside the mask are labelled.

        Returns
        -------
        ndarray of int16, same shape as ``image``
            ``0`` outside the mask, ``1..k`` inside.
        """

    @abstractmethod
    def label_names(self) -> dict[int, str]:
        """Human-readable name of every label value, ``0`` (background) included."""


def intensity_label_names(n_classes: int) -> dict[int, str]:
    """Names of ``n_classes`` labels ordered from darkest (1) to brightest.

    Three classes are named after the tissues of a T1-weighted brain
    (:data:`T1_BRAIN_LABELS`); other counts get generic names.

    Parameters
    ----------
    n_classes : int
        Number of foreground classes (labels ``1..n_classes``); 3 gives the T1 brain
        tissue names.

    Returns
    -------
    dict of int to str
        Includes ``0: "background"``.

    Examples
    --------
    >>> intensity_label_names(3)[1]
    'CSF'
    >>> intensity_label_names(2)
    {0: 'background', 1: 'class 1 (darkest)', 2: 'class 2 (brightest)'}
    """
    names = {0: "background"}
    if n_classes == 3:
        names.update({i + 1: label for i, label in enumerate(T1_BRAIN_LABELS)})
        return names
    for label in range(1, n_classes + 1):
        suffix = " (darkest)" if label == 1 else " (brightest)" if label == n_classes else ""
        names[label] = f"class {label}{suffix}"
    return names


def check_image_and_mask(image: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Validate a segmentation input.

    Parameters
    ----------
    image : array_like, 2-D or 3-D
        Slice or volume to segment (normally float in [-1, 1]); cast to float32.
        Non-finite voxels are kept but dropped from the mask.
    mask : array_like of bool or None
        ``None`` means "everything".

    Returns
    -------
    image : ndarray of float32
    mask : ndarray of bool
        ``False`` also where ``image`` is not finite.

    Raises
    ------
    InputError
        If the image is not 2-D/3-D or the mask has another shape.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim not in (2, 3):
        raise InputError(f"segmenters need a 2-D or 3-D image, got {image.ndim}-D; pass one slice or volume")
    if mask is None:
        mask = np.ones(image.shape, dtype=bool)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != image.shape:
        raise InputError(
            f"mask shape {mask.shape} differs from image shape {image.shape}; "
            "pass the mask computed for this image"
        )
    return image, mask & np.isfinite(image)


def masked_pixels(
    images: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    max_pixels: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """The in-mask values of several images, optionally a seeded subsample.

    Images are visited one at a time, so the full set of pixels is never held in
    memory when it exceeds ``max_pixels``.

    Parameters
    ----------
    images, masks : sequences of ndarray
        Same length; each mask has the shape of its image.
    max_pixels : int, optional
        Return at most this many values, drawn uniformly without replacement.
    seed : int
        Seed of the subsample.

    Returns
    -------
    ndarray of float64, 1-D

    Raises
    ------
    InputError
        If the sequences differ in length or a mask does not match its image.
    """
    if len(images) != len(masks):
        raise InputError(f"got {len(images)} images but {len(masks)} masks; pass one mask per image")
    checked = []
    for image, mask in zip(images, masks):
        image = np.asarray(image, dtype=np.float32)
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != image.shape:
            raise InputError(
                f"mask shape {mask.shape} differs from image shape {image.shape}; "
                "pass one matching mask per image"
            )
        checked.append((image, mask & np.isfinite(image)))
    counts = np.array([int(m.sum()) for _, m in checked], dtype=np.int64)
    total = int(counts.sum())
    if max_pixels is None or total <= max_pixels:
        parts = [image[mask] for image, mask in checked]
        return np.concatenate(parts).astype(np.float64) if parts else np.zeros(0)
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(total, size=max_pixels, replace=False))
    starts = np.concatenate([[0], np.cumsum(counts)])
    parts = []
    for index, (image, mask) in enumerate(checked):
        lo, hi = np.searchsorted(chosen, [starts[index], starts[index + 1]])
        if hi > lo:
            parts.append(image[mask][chosen[lo:hi] - starts[index]])
    return np.concatenate(parts).astype(np.float64)
