"""Tensor-op implementation of :func:`zeroshot_core.lmi.dispatch.local_mutual_information`.

Runs on any device and dtype and is differentiable. The Gaussian bin weights of both
images are computed once; for all ``(2r+1)²`` search offsets at once the outer
product of the weights is box-summed over the patch (separable sums of shifted
slices), which gives the joint histograms of all pixels at once. The work runs over
square tiles whose size is chosen from a memory budget, and each tile only uses the
block of bins within reach of the intensities it contains (other bins carry weights
below 1e-10). The backward pass is written by hand and recomputes each tile's
histograms, so memory stays bounded with gradients too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

_NMI_FLOOR = 1e-4  # nats: H_X + H_Y below it gives normalised MI 0 (the kernel uses the same)
_WEIGHT_FLOOR = 1e-12  # keeps every histogram cell > 0, so log() and its gradient stay finite
_CPU_BUDGET = 1 << 19  # elements of a tile's joint histograms (all offsets): cache-sized on CPU
_CUDA_BUDGET = 1 << 26


def tensor_map(xp: torch.Tensor, yp: torch.Tensor, patch: int, radius: int, bins: int, sigma: float,
               normalized: bool, margin: int, tile: int | None) -> torch.Tensor:
    """The LMI map (B, H, W) of padded images, differentiable in both.

    Parameters
    ----------
    xp : Tensor, shape (B, 1, H + 2h, W + 2h)
        ``x`` padded by ``h = patch // 2``.
    yp : Tensor, shape (B, 1, H + 2h + 2r, W + 2h + 2r)
        ``y`` padded by ``h + radius``.
    patch, radius, bins, sigma, normalized
        The options of :class:`zeroshot_core.lmi.dispatch.LMIParams` (``sigma`` resolved).
    margin : int
        Bins farther than this from a value's nearest bin carry weight below 1e-10.
    tile : int or None
        Output tile edge, or ``None`` to pick it from a memory budget.
    """
    wx, wy = _soft_bins(xp, bins, sigma), _soft_bins(yp, bins, sigma)
    hx = _entropy(_box_sum(wx, patch), patch * patch)          # (B, H, W)
    hy = _entropy(_box_sum(wy, patch), patch * patch)          # (B, H + 2r, W + 2r)
    tiles = _plan(xp, yp, patch, radius, bins, margin, tile)
    return _LMIMap.apply(wx, wy, hx, hy, tiles, patch, radius, normalized)


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
    if normalized:  # patches with (almost) no entropy carry no information: 0, not noise / noise
        total = hx[:, None] + hy_d
        mi = torch.where(total > _NMI_FLOOR, (2.0 * mi / total.clamp_min(_NMI_FLOOR)).clamp(0.0, 1.0), 0.0)
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
        total = (hx[:, None] + hy_d).clamp_min(_NMI_FLOOR)
        g = torch.where(hx[:, None] + hy_d > _NMI_FLOOR, g, 0.0)
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


def _plan(xp: torch.Tensor, yp: torch.Tensor, patch: int, radius: int, bins: int, margin: int,
          tile: int | None) -> list[_Tile]:
    """Split the output into tiles and pick, per tile, the bins within reach of its intensities."""
    batch, _, height, width = xp.shape
    h, r = patch // 2, radius
    height, width = height - 2 * h, width - 2 * h
    chunk, th, tw = _tile_shape(batch, height, width, h, bins, (2 * r + 1) ** 2, tile, xp.device)
    boxes = [(slice(b0, b0 + chunk), r0, min(height, r0 + th), c0, min(width, c0 + tw))
             for b0 in range(0, batch, chunk) for r0 in range(0, height, th) for c0 in range(0, width, tw)]

    def region(bs: slice, r0: int, r1: int, c0: int, c1: int, halo: int) -> tuple[slice, slice, slice]:
        return bs, slice(r0, r1 + 2 * halo), slice(c0, c1 + 2 * halo)

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
