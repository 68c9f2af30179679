"""In-plane denoising of a source volume before it guides a translation.

A noisy source (PD-weighted MRI above all: its grey/white contrast is small next to its
noise) hands its noise to the guide, and a model that works at the source's own
resolution paints that noise as texture. Non-local means (Buades, Coll & Morel 2005;
scikit-image's :func:`skimage.restoration.denoise_nl_means`) removes it while keeping
edges. The noise level is estimated per slice with Donoho's wavelet rule
(Donoho & Johnstone 1994): ``σ = median(|HH|) / 0.6745`` over the finest diagonal Haar
coefficients ``HH = (a − b − c + d) / 2`` of each 2×2 block, which anatomy barely
touches. A clean, high-contrast source (T2) loses a little detail to it, so it is an
option (``--denoise nlm``), or chosen per source (``--denoise auto``: only when the
source is noisier than the model's training images, :func:`relative_noise`), measured in
docs/benchmarks.md.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from zeroshot_core.errors import ConfigError
from zeroshot_core.io.volume import Volume

VOLUME_METHODS = ("off", "nlm")
"""What :func:`denoise_volume` does; ``auto`` chooses between them per translation."""


def noise_sigma(plane: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Gaussian noise standard deviation of a 2-D image by Donoho's wavelet rule.

    Parameters
    ----------
    plane : ndarray (H, W)
        Image in any units; H and W of at least 2.
    mask : ndarray (H, W) bool, optional
        Foreground; when given, only 2×2 blocks wholly inside it count (so that the
        edge between foreground and background is not taken for noise).

    Returns
    -------
    float
        ``median(|HH|) / 0.6745`` over the image's non-zero 2×2 blocks (0 when none), in
        the image's units. Blocks that are all zero (padding, air set to 0) are left
        out, so a zero background does not pull the estimate down.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> round(noise_sigma(100 + rng.normal(0, 5, (256, 256))), 1)
    5.0
    """
    plane = np.asarray(plane, np.float64)
    h, w = plane.shape[0] // 2 * 2, plane.shape[1] // 2 * 2
    a, b = plane[0:h:2, 0:w:2], plane[0:h:2, 1:w:2]
    c, d = plane[1:h:2, 0:w:2], plane[1:h:2, 1:w:2]
    coefficients = (a - b - c + d) / 2.0
    keep = (a != 0) | (b != 0) | (c != 0) | (d != 0)
    if mask is not None:
        m = np.asarray(mask, bool)
        keep &= m[0:h:2, 0:w:2] & m[0:h:2, 1:w:2] & m[1:h:2, 0:w:2] & m[1:h:2, 1:w:2]
    if not keep.any():
        return 0.0
    return float(np.median(np.abs(coefficients[keep])) / 0.6745)


def relative_noise(slices: np.ndarray, masks: np.ndarray, min_share: float = 0.2) -> float | None:
    """Noise of normalised slices as a fraction of their intensity range.

    The measure compared by ``denoise="auto"``: the model card records it for the slices
    the network was trained on, and a translation measures it on the source slices the
    network is about to see (same grid, same normalisation).

    Parameters
    ----------
    slices : ndarray (N, H, W)
        Slices normalised to ``[-1, 1]`` by the robust percentiles inside the filter
        mask (:class:`zeroshot_core.imaging.intensity.Normalisation`), so ``2`` is the
        percentile range.
    masks : ndarray (N, H, W) bool
        Their filter masks.
    min_share : float
        Slices with less of their area inside the mask are left out (edge slices hold
        mostly background).

    Returns
    -------
    float or None
        Median over the kept slices of :func:`noise_sigma` (blocks inside the mask) / 2;
        ``None`` when no slice has enough foreground.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> slices = rng.normal(0.0, 0.1, (3, 64, 64))
    >>> round(relative_noise(slices, np.ones((3, 64, 64), bool)), 2)
    0.05
    """
    values = [noise_sigma(s, m) for s, m in zip(np.asarray(slices), np.asarray(masks, bool))
              if m.mean() >= min_share]
    return float(np.median(values)) / 2.0 if values else None


def denoise_volume(volume: Volume, axis: int, method: str = "nlm", strength: float = 0.8) -> Volume:
    """A denoised copy of ``volume``, slice by slice across ``axis`` (the input is not changed).

    Parameters
    ----------
    volume : Volume
        Source image, voxels ``(X, Y, Z)``, any intensity units.
    axis : int
        Slicing axis (0, 1 or 2); each plane across it is denoised on its own.
    method : str
        ``"off"`` (a copy as it is) or ``"nlm"`` (non-local means: 3×3 patches searched
        within ±5 pixels, filter strength ``h = strength · σ`` with σ from
        :func:`noise_sigma`, the setting scikit-image recommends for its fast mode).
    strength : float
        ``h / σ`` for ``nlm`` (> 0).

    Returns
    -------
    Volume
        Same grid, affine and path, float32.

    Raises
    ------
    ConfigError
        If ``method`` is unknown or ``strength`` is not positive.
    """
    if method not in VOLUME_METHODS:
        raise ConfigError(f"unknown denoising {method!r}; valid: {', '.join(VOLUME_METHODS)} "
                          "('auto' is decided by a translation, which knows the model)")
    if not strength > 0:
        raise ConfigError(f"denoising strength must be > 0, got {strength}")
    data = np.array(volume.data, dtype=np.float32, copy=True)
    if method == "off":
        return replace(volume, data=data)
    from skimage.restoration import denoise_nl_means

    planes = np.moveaxis(data, axis, 0)  # a view: written in place
    for index, plane in enumerate(planes):
        sigma = noise_sigma(plane)
        if sigma > 0 and plane.shape[0] > 2 and plane.shape[1] > 2:
            planes[index] = denoise_nl_means(plane, h=strength * sigma, sigma=sigma, patch_size=3,
                                             patch_distance=5, fast_mode=True, preserve_range=True)
    return replace(volume, data=data)  # the path stays: messages name the file
