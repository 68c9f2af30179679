"""ContourDiff's adjacent-slice consistency: choose among candidate samples.

Each slice is sampled several times (``candidates`` per round, ``rounds`` rounds).
For the first slice, candidates whose mean intensity inside the mask falls below a
threshold (collapsed, black samples) are rejected and the first valid one in
drawing order is kept (as if sampling until one passes); if none passes, the
brightest. For every later slice the candidate closest (L2, inside the mask) to the
previous translated slice is kept.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from zeroshot_core.errors import ConfigError


@dataclass(frozen=True)
class ConsistencyParams:
    """Candidate selection settings.

    Attributes
    ----------
    candidates : int
        Samples drawn per round (1..64).
    rounds : int
        Rounds of candidates (1..16).
    first_slice_threshold : float
        Minimum in-mask mean (normalised, [-1, 1]) a first-slice candidate must reach.
    """

    candidates: int = 4
    rounds: int = 1
    first_slice_threshold: float = -0.9

    def __post_init__(self) -> None:
        if not 1 <= self.candidates <= 64:
            raise ConfigError(f"candidates must be 1..64, got {self.candidates}")
        if not 1 <= self.rounds <= 16:
            raise ConfigError(f"rounds must be 1..16, got {self.rounds}")
        if not -1.0 <= self.first_slice_threshold <= 1.0:
            raise ConfigError(f"first-slice threshold must be in [-1, 1], got {self.first_slice_threshold}")

    def to_dict(self) -> dict:
        return asdict(self)


def select_candidate(candidates: torch.Tensor, mask: torch.Tensor, previous: torch.Tensor | None,
                     threshold: float) -> int:
    """Index of the candidate to keep.

    Parameters
    ----------
    candidates : Tensor (K, 1, H, W)
        The ``K`` candidate translations of one slice, normalised to [-1, 1], in
        drawing order.
    mask : Tensor (1, 1, H, W) or (K, 1, H, W), 1 inside
        Filter mask (0/1 or bool) of the slice; means and distances are taken inside
        it only. A single mask is broadcast to all candidates.
    previous : Tensor (1, 1, H, W) or None
        The previous slice's translation; ``None`` for the first slice.
    threshold : float
        First slice only: minimum in-mask mean.

    Returns
    -------
    int
        Index in ``0..K-1``: the first candidate whose in-mask mean reaches
        ``threshold`` (else the brightest) for the first slice, otherwise the one
        closest (mean squared difference in the mask) to ``previous``.

    Examples
    --------
    >>> c = torch.stack([torch.full((1, 4, 4), v) for v in (-1.0, 0.0, 0.5)])
    >>> select_candidate(c, torch.ones(1, 1, 4, 4), torch.full((1, 1, 4, 4), 0.4), -0.9)
    2
    >>> select_candidate(c, torch.ones(1, 1, 4, 4), None, -0.5)
    1
    """
    weight = mask.expand_as(candidates).float()
    area = weight.sum(dim=(1, 2, 3)).clamp_min(1.0)
    if previous is None:
        means = (candidates * weight).sum(dim=(1, 2, 3)) / area
        valid = torch.nonzero(means >= threshold).flatten()
        return int(valid[0]) if len(valid) else int(torch.argmax(means))
    distance = (((candidates - previous) ** 2) * weight).sum(dim=(1, 2, 3)) / area
    return int(torch.argmin(distance))
