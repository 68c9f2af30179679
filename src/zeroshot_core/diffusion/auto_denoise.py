"""``denoise="auto"``: denoise a source only when it is noisier than the model's training images.

A model never saw a guide noisier than its own training slices. When the source's noise,
measured on the slices the network is about to see (the model's grid, normalised by the
robust percentiles inside the filter mask), exceeds :data:`FACTOR` times the noise of those
training slices (recorded in the model card as ``training["target_noise"]`` by the same
measure, :func:`zeroshot_core.imaging.denoise.relative_noise`), the source is denoised with
non-local means first; otherwise it guides as it is.

The factor leaves room for what the wavelet estimate takes for noise in a whole head: the
real whole-head T1 of the two held-out IXI subjects — same scanner and contrast as the
skull-stripped T1 the 2 mm ``t1-lmi`` learned from (3.5 %) — read 3.9 % and 4.5 %, their
simulated T2 4.2 % and 4.4 %; the simulated PD heads read 6.5 % and 7.4 %, the phantom PD
6.8 %, the real IXI PD slice 2.7 % (``benchmarks/noise_levels.py --model``;
docs/benchmarks.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from zeroshot_core.imaging.denoise import relative_noise

#: Key of the training slices' noise in a model card's ``training`` record.
CARD_KEY = "target_noise"
#: A source is denoised when its noise exceeds this many times the training slices'.
FACTOR = 1.5


@dataclass(frozen=True)
class DenoiseChoice:
    """What ``--denoise`` did for one translation.

    Attributes
    ----------
    requested : str
        ``off``, ``nlm`` or ``auto``.
    applied : str
        ``off`` or ``nlm``.
    source_noise : float or None
        Noise of the source slices as a fraction of their percentile range (``auto`` only).
    training_noise : float or None
        The same for the model's training slices, from its card (``auto`` only).
    reason : str
        One line saying why, for logs and the sidecar.
    """

    requested: str
    applied: str
    source_noise: float | None = None
    training_noise: float | None = None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible record."""
        return {"requested": self.requested, "applied": self.applied, "source_noise": self.source_noise,
                "training_noise": self.training_noise, "reason": self.reason}


def fixed_choice(method: str) -> DenoiseChoice:
    """The choice for ``off`` or ``nlm``, which need no measurement."""
    return DenoiseChoice(method, method, reason="requested")


def choose_denoise(slices: np.ndarray, masks: np.ndarray, training: dict[str, Any]) -> DenoiseChoice:
    """Decide ``auto`` for a source from its normalised slices on the model's grid.

    Parameters
    ----------
    slices : ndarray (N, H, W)
        Source slices as the network would see them, normalised to ``[-1, 1]``.
    masks : ndarray (N, H, W) bool
        Their filter masks.
    training : dict
        The model card's ``training`` record; its ``target_noise`` is the reference.

    Returns
    -------
    DenoiseChoice
        ``nlm`` when the source's noise exceeds :data:`FACTOR` times the training
        slices'; ``off`` when it
        does not, when the card has no reference (models trained before it was
        recorded) or when no slice has enough foreground to measure.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> masks = np.ones((2, 32, 32), bool)
    >>> choose_denoise(rng.normal(0, 0.2, (2, 32, 32)), masks, {"target_noise": 0.04}).applied
    'nlm'
    >>> choose_denoise(rng.normal(0, 0.1, (2, 32, 32)), masks, {"target_noise": 0.04}).applied
    'off'
    >>> choose_denoise(rng.normal(0, 0.2, (2, 32, 32)), masks, {}).applied
    'off'
    """
    reference = training.get(CARD_KEY)
    if not isinstance(reference, (int, float)) or isinstance(reference, bool) or not reference > 0:
        return DenoiseChoice("auto", "off", reason="the model card records no training noise level; "
                                                   "use --denoise nlm to denoise anyway")
    measured = relative_noise(slices, masks)
    if measured is None:
        return DenoiseChoice("auto", "off", training_noise=float(reference),
                             reason="no slice has enough foreground to measure the noise")
    noisier = measured > FACTOR * reference
    relation = "above" if noisier else "not above"
    return DenoiseChoice("auto", "nlm" if noisier else "off", round(measured, 5), float(reference),
                         f"source noise {measured:.1%} of its range, {relation} {FACTOR:g} × the training "
                         f"images' {reference:.1%}")
