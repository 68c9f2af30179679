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

Implementation: the Gaussian bin weights of both images are computed once; for all
``(2r+1)²`` search offsets at once the outer product of the weights is box-summed over
the patch (separable sums of shifted slices), which gives the joint histograms of
all pixels at once. The work runs over square tiles whose size is chosen from a
memory budget, and each tile only uses the block of bins within reach of the
intensities it contains (other bins carry weights below 1e-10). The backward pass is
written by hand and recomputes each tile's histograms, so memory stays bounded with
gradients too.

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
from torch.autograd.function import once_differentiable

from zeroshot_core import local_mi_native
from zeroshot_core.errors import ConfigError

Padding = Literal["reflect", "replicate"]
Backend = Literal["auto", "torch", "native"]

_WEIGHT_FLOOR = 1e-12  # keeps every histogram cell > 0, so log() and its gradient stay finite
_CPU_BUDGET = 1 << 19  # elements of a tile's joint histograms (all offsets): cache-sized on CPU
_CUDA_BUDGET = 1 << 26


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
        Return the normalised MI ``2 I / (H_X + H_Y)`` in ``[0, 1]`` instead of ``I``.
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
        real dtype (computed in float64 if either is float64, else float32).
        ``x`` is the image whose patches stay put; ``y``'s patches are searched.
    patch_size, search_radius, bins, bandwidth, normalized, padding
        See :class:`LMIParams`.
    tile : int, optional
        Edge length in pixels of the square output tiles processed at once; memory
        grows with ``(2r+1)² · bins² · (tile + patch_size - 1)²``, the result does not
        depend on it. ``None`` picks it from a memory budget (small on CPU for cache
        locality, large on CUDA).
    backend : {"auto", "torch", "native"}
        ``"native"`` runs the fused C kernel (:mod:`zeroshot_core.local_mi_native`):
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


def _soft_bins(image: torch.Tensor, bins: int, sigma: float) -> torch.Tensor:
    """Gaussian bin weights, (B, 1, H, W) -> (B, H, W, bins), summing to 1 per pixel."""
    centres = torch.linspace(-1.0, 1.0, bins, dtype=image.dtype, device=image.device)
    logits = (image[:, 0, :, :, None] - centres).square() * (-0.5 / sigma**2)
    return torch.softmax(logits, dim=-1).clamp_min(_WEIGHT_FLOOR)


def _box_sum(a: torch.Tensor, size: int) -> torch.Tensor:
    """Sum over ``size × size`` windows of dims (-3, -2), 'valid' positions only.

    Sums of shifted slices, combining power-of-two partial sums (``O(log size)``
    additions per axis, all of non-negative terms, so no cancellation).
    """
    for dim in (-3, -2):
        length = a.shape[dim] - size + 1
        parts, power, width, offset, remaining = [], a, 1, 0, size
        while True:
            if remaining & 1:
                parts.append(power.narrow(dim, offset, length))
                offset += width
            remaining >>= 1
            if not remaining:
                break
            keep = power.shape[dim] - width
            power = power.narrow(dim, 0, keep) + power.narrow(dim, width, keep)
            width *= 2
        a = parts[0] if len(parts) == 1 else parts[0] + parts[1]
        for part in parts[2:]:
            a += part  # a is a fresh sum here, never the input
    return a


def _log(values: torch.Tensor) -> torch.Tensor:
    # On CPU numpy's SIMD log is 2-3x faster than torch's (torch 2.x), and the log of
    # K² histogram cells per pixel and offset is the largest single cost.
    if values.device.type == "cpu":
        return torch.from_numpy(np.log(values.detach().numpy()))
    return values.log()


class _SumXLogX(torch.autograd.Function):
    """``Σ c log c`` over the last dim (``c > 0``), with ``∂/∂c = log c + 1``."""

    @staticmethod
    def forward(ctx: Any, counts: torch.Tensor) -> torch.Tensor:
        logs = _log(counts)
        ctx.save_for_backward(logs)
        return (counts * logs).sum(-1)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (logs,) = ctx.saved_tensors
        return grad[..., None] * (logs + 1.0)


def _entropy(counts: torch.Tensor, n: int) -> torch.Tensor:
    """Entropy (nats) over the last dim of histograms whose counts sum to ``n``."""
    return math.log(n) - _SumXLogX.apply(counts) / n


def _joint_counts(wx: torch.Tensor, wy_d: torch.Tensor, patch: int) -> torch.Tensor:
    """Joint histograms (counts, flattened ``Kx·Ky``) of every patch pair (``wy_d`` may stack offsets)."""
    return _box_sum((wx[..., :, None] * wy_d[..., None, :]).flatten(-2), patch)


def _offsets(radius: int) -> list[tuple[int, int]]:
    """Search offsets as start indices into the radius-padded ``y`` arrays."""
    return [(dy, dx) for dy in range(2 * radius + 1) for dx in range(2 * radius + 1)]


@dataclass(frozen=True)
class _Tile:
    """Index expressions of one tile into the padded arrays (see :func:`_plan`)."""

    out: tuple[slice, slice, slice]      # into hx and the output, (B, H, W)
    wx: tuple[slice, slice, slice, slice]  # into wx, (B, H + 2h, W + 2h, K), bins included
    wy: tuple[slice, slice, slice, slice]  # into wy, (B, H + 2h + 2r, W + 2h + 2r, K)
    hy: tuple[slice, slice, slice]       # into hy, (B, H + 2r, W + 2r)


def _tile_forward(wx: torch.Tensor, wy: torch.Tensor, hx: torch.Tensor, hy: torch.Tensor,
                  patch: int, radius: int, normalized: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Max over search offsets of the MI for one tile, and the winning offset per pixel.

    All offsets are processed at once, stacked along dim 1.
    """
    hy_d, wy_d = _shifted(wx, wy, hx, hy, radius)
    mi = hx[:, None] + hy_d - _entropy(_joint_counts(wx[:, None], wy_d, patch), patch * patch)
    if normalized:
        mi = 2.0 * mi / (hx[:, None] + hy_d).clamp_min(1e-12)
    best, winner = mi.max(dim=1)
    return best, winner


def _shifted(wx: torch.Tensor, wy: torch.Tensor, hx: torch.Tensor, hy: torch.Tensor,
             radius: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``hy`` and ``wy`` cut at every search offset, stacked along a new dim 1."""
    th, tw = hx.shape[-2:]
    rows, cols = wx.shape[1], wx.shape[2]
    offsets = _offsets(radius)
    hy_d = torch.stack([hy[:, dy:dy + th, dx:dx + tw] for dy, dx in offsets], dim=1)
    wy_d = torch.stack([wy[:, dy:dy + rows, dx:dx + cols] for dy, dx in offsets], dim=1)
    return hy_d, wy_d


def _tile_backward(grad: torch.Tensor, winner: torch.Tensor, wx: torch.Tensor, wy: torch.Tensor,
                   hx: torch.Tensor, hy: torch.Tensor, grads: tuple[torch.Tensor, ...],
                   patch: int, radius: int, normalized: bool) -> None:
    """Add one tile's gradients into the views ``grads`` of (wx, wy, hx, hy)."""
    grad_wx, grad_wy, grad_hx, grad_hy = grads
    n, th, tw = patch * patch, hx.shape[-2], hx.shape[-1]
    rows, cols = wx.shape[1], wx.shape[2]
    offsets = _offsets(radius)
    hy_d, wy_d = _shifted(wx, wy, hx, hy, radius)
    chosen = winner[:, None] == torch.arange(len(offsets), device=winner.device).view(1, -1, 1, 1)
    g = torch.where(chosen, grad[:, None], 0.0)                 # (b, D, th, tw)
    joint = _joint_counts(wx[:, None], wy_d, patch)
    logs = _log(joint)
    if normalized:  # m = 2 I / D with I = hx + hy - H_joint and D = hx + hy
        total = (hx[:, None] + hy_d).clamp_min(1e-12)
        h_joint = math.log(n) - (joint * logs).sum(-1) / n
        g_marginal = g * (2.0 / total) * (1.0 - (hx[:, None] + hy_d - h_joint) / total)
        g_joint = g * (-2.0 / total)
    else:
        g_marginal, g_joint = g, -g
    grad_hx += g_marginal.sum(1)
    # dH_joint/dcount = -(log count + 1) / n, spread back over each patch (box transpose)
    g_counts = logs.add_(1.0).mul_((g_joint * (-1.0 / n))[..., None])
    pad = patch - 1
    g_product = _box_sum(F.pad(g_counts, (0, 0, pad, pad, pad, pad)), patch)
    g_product = g_product.view(*g_product.shape[:-1], wx.shape[-1], wy.shape[-1])
    grad_wx += (g_product * wy_d[..., None, :]).sum(-1).sum(1)
    g_wy = (g_product * wx[:, None, ..., :, None]).sum(-2)      # (b, D, rows, cols, Ky)
    for index, (dy, dx) in enumerate(offsets):
        grad_hy[:, dy:dy + th, dx:dx + tw] += g_marginal[:, index]
        grad_wy[:, dy:dy + rows, dx:dx + cols] += g_wy[:, index]


class _LMIMap(torch.autograd.Function):
    """The LMI map from bin weights and marginal entropies, tile by tile.

    Only the inputs and the winning offset per pixel are kept for the backward pass,
    which recomputes each tile's joint histograms and adds its gradients in place:
    memory stays bounded by one tile plus arrays the size of the inputs.
    """

    @staticmethod
    def forward(ctx: Any, wx: torch.Tensor, wy: torch.Tensor, hx: torch.Tensor, hy: torch.Tensor,
                tiles: list[_Tile], patch: int, radius: int, normalized: bool) -> torch.Tensor:
        out = torch.empty_like(hx)
        winner = torch.empty(hx.shape, dtype=torch.int16, device=hx.device)
        for tile in tiles:
            out[tile.out], winner[tile.out] = _tile_forward(wx[tile.wx], wy[tile.wy], hx[tile.out], hy[tile.hy],
                                                            patch, radius, normalized)
        ctx.save_for_backward(wx, wy, hx, hy, winner)
        ctx.options = (tiles, patch, radius, normalized)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        wx, wy, hx, hy, winner = ctx.saved_tensors
        tiles, patch, radius, normalized = ctx.options
        grads = tuple(torch.zeros_like(t) for t in (wx, wy, hx, hy))
        for tile in tiles:
            views = (grads[0][tile.wx], grads[1][tile.wy], grads[2][tile.out], grads[3][tile.hy])
            _tile_backward(grad[tile.out], winner[tile.out], wx[tile.wx], wy[tile.wy], hx[tile.out],
                           hy[tile.hy], views, patch, radius, normalized)
        return (*grads, None, None, None, None)


def _tile_shape(batch: int, height: int, width: int, halo: int, bins: int, offsets: int,
                tile: int | None, device: torch.device) -> tuple[int, int, int]:
    """(batch chunk, tile rows, tile cols) so the joint histograms of a tile fit the budget."""
    budget = (_CUDA_BUDGET if device.type == "cuda" else _CPU_BUDGET) // (bins * bins * offsets)
    if tile is not None:
        th, tw = min(tile, height), min(tile, width)
    elif (height + 2 * halo) * (width + 2 * halo) <= budget:
        th, tw = height, width
    else:
        side = max(1, math.isqrt(budget) - 2 * halo)
        tw = min(width, side)
        th = min(height, max(1, budget // (tw + 2 * halo) - 2 * halo))
    chunk = max(1, min(batch, budget // ((th + 2 * halo) * (tw + 2 * halo))))
    return chunk, th, tw


def _bin_margin(params: LMIParams) -> int:
    """Bins beyond this index distance from a value's nearest bin get weight < 1e-10."""
    ratio = params.sigma * (params.bins - 1) / 2.0  # bandwidth in bin spacings
    return math.ceil(math.sqrt(0.25 + 2.0 * math.log(1e10) * ratio * ratio) - 0.5)


def _plan(xp: torch.Tensor, yp: torch.Tensor, params: LMIParams, tile: int | None) -> list[_Tile]:
    """Split the output into tiles and pick, per tile, the bins within reach of its intensities."""
    batch, _, height, width = xp.shape
    h, r, bins = params.patch_size // 2, params.search_radius, params.bins
    height, width = height - 2 * h, width - 2 * h
    chunk, th, tw = _tile_shape(batch, height, width, h, bins, (2 * r + 1) ** 2, tile, xp.device)
    boxes = [(slice(b0, b0 + chunk), r0, min(height, r0 + th), c0, min(width, c0 + tw))
             for b0 in range(0, batch, chunk) for r0 in range(0, height, th) for c0 in range(0, width, tw)]

    def region(bs: slice, r0: int, r1: int, c0: int, c1: int, halo: int) -> tuple[slice, slice, slice]:
        return bs, slice(r0, r1 + 2 * halo), slice(c0, c1 + 2 * halo)

    margin = _bin_margin(params)
    if 2 * margin + 1 < bins:
        def nearest(image: torch.Tensor) -> torch.Tensor:
            index = ((image.detach()[:, 0] + 1.0) * ((bins - 1) / 2.0)).round().clamp(0, bins - 1)
            return index.nan_to_num(0.0)

        bx, by = nearest(xp), nearest(yp)
        extremes = torch.stack([torch.stack([bx[region(*b, h)].amin(), bx[region(*b, h)].amax(),
                                             by[region(*b, h + r)].amin(), by[region(*b, h + r)].amax()])
                                for b in boxes]).tolist()  # one device sync for all tiles
        blocks = [(slice(max(0, int(lo_x) - margin), int(hi_x) + margin + 1),
                   slice(max(0, int(lo_y) - margin), int(hi_y) + margin + 1))
                  for lo_x, hi_x, lo_y, hi_y in extremes]
    else:
        blocks = [(slice(None), slice(None))] * len(boxes)
    return [_Tile(out=(b[0], slice(b[1], b[2]), slice(b[3], b[4])), wx=(*region(*b, h), kx),
                  wy=(*region(*b, h + r), ky), hy=region(*b, r)) for b, (kx, ky) in zip(boxes, blocks)]


def _lmi(x: torch.Tensor, y: torch.Tensor, params: LMIParams, tile: int | None, native: bool) -> torch.Tensor:
    h, r, p, bins = params.patch_size // 2, params.search_radius, params.patch_size, params.bins
    xp, yp = _pad(x, h, params.padding), _pad(y, h + r, params.padding)
    if native:
        return local_mi_native.native_map(xp, yp, p, r, bins, params.sigma, params.normalized,
                                          _bin_margin(params))[:, None]
    wx, wy = _soft_bins(xp, bins, params.sigma), _soft_bins(yp, bins, params.sigma)
    hx = _entropy(_box_sum(wx, p), p * p)          # (B, H, W)
    hy = _entropy(_box_sum(wy, p), p * p)          # (B, H + 2r, W + 2r)
    tiles = _plan(xp, yp, params, tile)
    return _LMIMap.apply(wx, wy, hx, hy, tiles, p, r, params.normalized)[:, None]
