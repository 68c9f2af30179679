"""Averaging several samples per slice: an estimate of the expectation E[x0 | guide].

A diffusion model draws one plausible target image per noise seed; the texture that differs
between draws is noise to a segmenter. The mean of ``K`` draws from independent noise
estimates the posterior mean, which keeps what the guide determines (the anatomy) and
averages away what it does not (Rassmann et al. 2025, "regression is all you need" / YODA:
the expectation of a diffusion model's samples segments better than single samples). The
cost is ``K`` times the network evaluations of one sample.

Draw ``c`` of a slice starts from the noise that seed ``seed + c`` gives that slice, so with a
deterministic scheduler the average of ``K`` draws is the mean of the ``K`` single-draw
translations with seeds ``seed … seed + K - 1`` (the first draw is the ``samples=1`` result).
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def repeat_for_samples(tensors: tuple[torch.Tensor, ...], samples: int) -> tuple[torch.Tensor, ...]:
    """Repeat each (B, C, H, W) tensor ``samples`` times along the batch: (B·K, C, H, W).

    Rows are grouped by slice: rows ``b·K … b·K + K - 1`` belong to slice ``b``.

    Examples
    --------
    >>> x = torch.arange(2.0).reshape(2, 1, 1, 1)
    >>> repeat_for_samples((x,), 3)[0].flatten().tolist()
    [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]
    """
    if samples == 1:
        return tensors
    return tuple(t.repeat_interleave(samples, dim=0) for t in tensors)


def sample_noise(noise_of: Callable[[int, int], torch.Tensor], indices: list[int], samples: int) -> torch.Tensor:
    """Starting noise for ``samples`` draws of each slice in ``indices``, grouped by slice.

    Parameters
    ----------
    noise_of : callable
        ``noise_of(slice_index, draw)`` → (1, 1, H, W) standard normal noise.
    indices : list of int
        Slices of this batch.
    samples : int
        Draws per slice (K).

    Returns
    -------
    Tensor (len(indices)·K, 1, H, W)
    """
    return torch.cat([noise_of(i, c) for i in indices for c in range(samples)])


def mean_of_samples(x: torch.Tensor, samples: int) -> torch.Tensor:
    """Average groups of ``samples`` rows: (B·K, C, H, W) → (B, C, H, W).

    Examples
    --------
    >>> x = torch.tensor([0.0, 2.0, 4.0, 8.0]).reshape(4, 1, 1, 1)
    >>> mean_of_samples(x, 2).flatten().tolist()
    [1.0, 6.0]
    """
    if samples == 1:
        return x
    return x.reshape(x.shape[0] // samples, samples, *x.shape[1:]).mean(dim=1)
