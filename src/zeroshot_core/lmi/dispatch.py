"""Local mutual information (LMI) maps between two images.

For every pixel ``i`` the map holds the mutual information of the joint intensity
distribution of the patch around ``x_i`` and the patch around ``y_j``, maximised over
the pixels ``j`` in the ``(2r+1)²`` search neighbourhood of ``i`` (Eq. 1 of Wang et
al., *Diffusion based Zero-shot Medical Image-to-Image Translation for Cross Modality
Segmentation*):

.. math::

    \\mathrm{LMI}(x, y)_i = \\max_{j \\in \\mathcal{N}_r(i)} I(X_{P(i)}; Y_{P(j)})

The densities are soft (Parzen) histograms: each of the ``N = patch_size²`` samples
spreads unit mass over ``bins`` bin centres evenly spaced on ``[-1, 1]`` with Gaussian
weights of standard deviation ``bandwidth`` (normalised over the bins, so values
outside ``[-1, 1]`` land in the edge bins). The joint histogram of a patch pair is
``S = Σ_n u_n v_nᵀ`` for the weight vectors ``u_n`` of ``x`` and ``v_n`` of ``y``, and
``I = H(X) + H(Y) − H(X, Y)`` in nats. Everything is differentiable in both images.

Properties (tested in ``tests/test_local_mi.py``):

- ``LMI(x, y) ≤`` the entropy of the exact intensity values in the patch of ``x``
  (data-processing inequality: the soft bins only add noise), and ``LMI(x, x)``
  reaches it where the patch's distinct intensities are a few bandwidths apart.
  This is Property 1 of the paper, ``LMI(x_i, y_j) ≤ LMI(x_i, x_i)``.
- Invariant to any bijective remapping of ``y``'s intensity levels, monotone or not,
  up to the kernel overlap of levels closer than a few bandwidths.
- With only ``patch_size²`` samples the plug-in estimate is biased upwards: use
  larger patches or fewer bins where independence must read as zero.

Two implementations give the same maps (up to float32 rounding):

- :mod:`zeroshot_core.lmi.tensor`: tensor operations (box sums of outer
  products of the bin weights, tiled, bins out of reach skipped), any device and
  dtype, differentiable with a hand-written, memory-bounded backward pass;
- :mod:`zeroshot_core.lmi.native`: a fused C kernel for float32 on CPU without
  gradients (sampling), several times faster; built by ``pip install`` where a C
  compiler is available.

``backend="auto"`` (the default) uses the kernel where it applies.

Examples
--------
>>> import torch
>>> x = torch.linspace(-1, 1, 64).repeat(64, 1)
>>> lmi = local_mutual_information(x, -x)     # a non-monotone map of x would do too
>>> lmi.shape
torch.Size([64, 64])
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from zeroshot_core.errors import ConfigError
from zeroshot_core.lmi import native as local_mi_native
from zeroshot_core.lmi import tensor as local_mi_tensor

Padding = Literal["reflect", "replicate"]
Backend = Literal["auto", "torch", "native"]


@dataclass(frozen=True)
class LMIParams:
    """Options of :func:`local_mutual_information`, validated on construction.

    Attributes
    ----------
    patch_size : int
        Odd edge length of the square patch whose samples form each histogram (1–31).
    search_radius : int
        ``r`` of the ``(2r+1)²`` search neighbourhood (0–8); 0 compares aligned patches.
    bins : int
        Number of histogram bins on ``[-1, 1]`` (2–64).
    bandwidth : float or None
        Standard deviation of the Gaussian Parzen kernel in intensity units;
        ``None`` uses half the bin spacing, ``1 / (bins - 1)``.
    normalized : bool
        Return the normalised MI ``2 I / (H_X + H_Y)`` in ``[0, 1]`` instead of ``I``;
        0 where ``H_X + H_Y`` is below 1e-4 nats (constant patches carry no information).
    padding : {"reflect", "replicate"}
        How patches and search windows are completed beyond the image border.
        ``"reflect"`` mirrors without repeating the edge pixel (needs the image to be
        larger than ``patch_size // 2 + search_radius`` in both directions);
        ``"replicate"`` repeats the edge pixel.
    """

    patch_size: int = 3
    search_radius: int = 1
    bins: int = 16
    bandwidth: float | None = None
    normalized: bool = False
    padding: Padding = "reflect"

    def __post_init__(self) -> None:
        _check_int("patch_size", self.patch_size, 1, 31)
        if self.patch_size % 2 == 0:
            raise ConfigError(f"LMI patch_size must be odd, got {self.patch_size}; use {self.patch_size + 1}")
        _check_int("search_radius", self.search_radius, 0, 8)
        _check_int("bins", self.bins, 2, 64)
        if self.bandwidth is not None:
            if isinstance(self.bandwidth, bool) or not isinstance(self.bandwidth, (int, float)):
                raise ConfigError(f"LMI bandwidth must be a number or None, got {self.bandwidth!r}")
            if not (math.isfinite(self.bandwidth) and 0.0 < self.bandwidth <= 2.0):
                raise ConfigError(f"LMI bandwidth must be in (0, 2], got {self.bandwidth}")
        if not isinstance(self.normalized, (bool, np.bool_)):
            raise ConfigError(f"LMI normalized must be true or false, got {self.normalized!r}")
        if self.padding not in ("reflect", "replicate"):
            raise ConfigError(f"LMI padding must be 'reflect' or 'replicate', got {self.padding!r}")

    @property
    def sigma(self) -> float:
        """The kernel bandwidth actually used."""
        return float(self.bandwidth) if self.bandwidth is not None else 1.0 / (self.bins - 1)

    @property
    def upper_bound(self) -> float:
        """A bound of the map's values: ``log(bins)`` nats, or 1 when normalised."""
        return 1.0 if self.normalized else math.log(self.bins)

    @property
    def bin_margin(self) -> int:
        """Bins farther than this from a value's nearest bin get weight below 1e-10."""
        ratio = self.sigma * (self.bins - 1) / 2.0  # bandwidth in bin spacings
        return math.ceil(math.sqrt(0.25 + 2.0 * math.log(1e10) * ratio * ratio) - 0.5)

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible copy (the keyword arguments of :func:`local_mutual_information`)."""
        return asdict(self)


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"LMI {name} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"LMI {name} must be between {low} and {high}, got {value}")


def local_mutual_information(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    patch_size: int = 3,
    search_radius: int = 1,
    bins: int = 16,
    bandwidth: float | None = None,
    normalized: bool = False,
    padding: Padding = "reflect",
    tile: int | None = None,
    backend: Backend = "auto",
) -> torch.Tensor:
    """Local mutual information map of ``x`` against ``y``.

    Parameters
    ----------
    x, y : Tensor, shape (B, 1, H, W) or (H, W)
        Images with intensities roughly in ``[-1, 1]``, same shape and device; any
        real dtype (computed in float64 if either is float64, else float32). Any
        finite value is allowed: far outside ``[-1, 1]`` it weighs on the edge bin
        alone, so very large values give the same map as moderately large ones.
        ``x`` is the image whose patches stay put; ``y``'s patches are searched.
    patch_size, search_radius, bins, bandwidth, normalized, padding
        See :class:`LMIParams`.
    tile : int, optional
        Edge length in pixels of the square output tiles processed at once; memory
        grows with ``(2r+1)² · bins² · (tile + patch_size - 1)²``, the result does not
        depend on it. ``None`` picks it from a memory budget (small on CPU for cache
        locality, large on CUDA).
    backend : {"auto", "torch", "native"}
        ``"native"`` runs the fused C kernel (:mod:`zeroshot_core.lmi.native`):
        CPU, float32, no gradient. ``"torch"`` runs tensor operations (any device and
        dtype, differentiable). ``"auto"`` picks the kernel when it applies and was
        built. Both give the same map up to float32 rounding.

    Returns
    -------
    Tensor, same shape as ``x``
        LMI in nats (or normalised MI in ``[0, 1]``), differentiable w.r.t. ``x`` and
        ``y``; float32, or float64 if either input is. NaN where a patch holds NaN.

    Raises
    ------
    ConfigError
        If an option is out of range, the inputs are not tensors of matching shape
        (B, 1, H, W) or (H, W) on one device, ``tile`` is not a positive integer,
        the image is too small for reflect padding, or ``backend="native"`` is asked
        for where it does not apply.

    Examples
    --------
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.rand(2, 1, 37, 53, generator=g) * 2 - 1
    >>> y = torch.sin(4 * x)                      # a non-monotone function of x
    >>> lmi = local_mutual_information(x, y, patch_size=5, bins=8)
    >>> lmi.shape
    torch.Size([2, 1, 37, 53])
    >>> bool((lmi >= 0).all())
    True
    """
    params = LMIParams(patch_size, search_radius, bins, bandwidth, normalized, padding)
    if tile is not None and (isinstance(tile, bool) or not isinstance(tile, (int, np.integer)) or tile < 1):
        raise ConfigError(f"LMI tile must be a positive integer or None, got {tile!r}")
    xb, squeeze = _as_batch(x, "x")
    yb, _ = _as_batch(y, "y")
    if xb.shape != yb.shape:
        raise ConfigError(f"LMI needs images of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if xb.device != yb.device:
        raise ConfigError(f"LMI needs both images on one device, got {xb.device} and {yb.device}")
    if 0 in xb.shape[-2:]:
        raise ConfigError(f"LMI needs non-empty images, got shape {tuple(x.shape)}")
    dtype = torch.float64 if torch.float64 in (xb.dtype, yb.dtype) else torch.float32
    native = _use_native(backend, xb, yb, dtype)
    if xb.shape[0] == 0:
        return torch.zeros(x.shape, dtype=dtype, device=xb.device)
    result = _lmi(xb.to(dtype), yb.to(dtype), params, tile, native)
    return result[0, 0] if squeeze else result


def _use_native(backend: Any, x: torch.Tensor, y: torch.Tensor, dtype: torch.dtype) -> bool:
    """Whether the fused kernel computes this map (see the ``backend`` argument)."""
    if backend not in ("auto", "torch", "native"):
        raise ConfigError(f"LMI backend must be 'auto', 'torch' or 'native', got {backend!r}")
    if backend == "torch":
        return False
    needs_grad = torch.is_grad_enabled() and (x.requires_grad or y.requires_grad)
    reasons = [reason for reason, applies in (
        ("the kernel was not built (no C compiler at install time)", not local_mi_native.available()),
        (f"it runs on CPU only, got {x.device}", x.device.type != "cpu"),
        (f"it computes in float32 only, got {dtype}", dtype != torch.float32),
        ("it computes no gradients (use backend='torch')", needs_grad)) if applies]
    if backend == "native" and reasons:
        raise ConfigError(f"LMI backend 'native' does not apply: {reasons[0]}")
    return not reasons


def _as_batch(image: Any, name: str) -> tuple[torch.Tensor, bool]:
    if not isinstance(image, torch.Tensor):
        raise ConfigError(f"LMI {name} must be a torch.Tensor, got {type(image).__name__}; "
                          "wrap arrays with torch.as_tensor")
    if image.is_complex() or image.dtype == torch.bool:
        raise ConfigError(f"LMI {name} must hold real numbers, got {image.dtype}")
    if image.ndim == 2:
        return image[None, None], True
    if image.ndim == 4 and image.shape[1] == 1:
        return image, False
    raise ConfigError(f"LMI {name} must have shape (B, 1, H, W) or (H, W), got {tuple(image.shape)}")


def _pad(image: torch.Tensor, width: int, mode: str) -> torch.Tensor:
    if width == 0:
        return image
    if mode == "reflect" and min(image.shape[-2:]) <= width:
        raise ConfigError(f"LMI reflect padding needs images larger than {width} px, got "
                          f"{tuple(image.shape[-2:])}; use padding='replicate' or a smaller patch")
    return F.pad(image, (width, width, width, width), mode=mode)


def _reach(params: LMIParams) -> float:
    """Intensities beyond ``±_reach`` have the bin weights of ``±_reach`` (to below 1e-10).

    Beyond the edge bin, the weight of the next bin relative to the edge one is
    ``exp(-s (2 d + s) / (2 σ²))`` at a distance ``d`` past the edge (``s`` the bin
    spacing); it is below 1e-10 once ``d ≥ (2 ln(1e10) σ² / s - s) / 2``. Clamping there
    keeps float32 arithmetic exact enough for any finite input (1e30 would overflow).
    """
    spacing = 2.0 / (params.bins - 1)
    beyond = max(0.0, (2.0 * math.log(1e10) * params.sigma ** 2 / spacing - spacing) / 2.0)
    return 1.0 + spacing + beyond


def _lmi(x: torch.Tensor, y: torch.Tensor, params: LMIParams, tile: int | None, native: bool) -> torch.Tensor:
    h, r = params.patch_size // 2, params.search_radius
    reach = _reach(params)
    x, y = x.clamp(-reach, reach), y.clamp(-reach, reach)  # NaN stays NaN
    xp, yp = _pad(x, h, params.padding), _pad(y, h + r, params.padding)
    options = (params.patch_size, r, params.bins, params.sigma, params.normalized, params.bin_margin)
    if native:
        return local_mi_native.native_map(xp, yp, *options)[:, None]
    return local_mi_tensor.tensor_map(xp, yp, *options, tile)[:, None]
