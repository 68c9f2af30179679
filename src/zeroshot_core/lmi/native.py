"""Fused CPU kernel for LMI maps without gradients (the sampling-time hot path).

:func:`zeroshot_core.lmi.dispatch.local_mutual_information` calls :func:`native_map` on
CPU for float32 inputs when no gradient is needed and the compiled extension
``zeroshot_core.lmi._native`` was built (``pip install`` builds it where a C compiler
is available; it is optional). The kernel computes the same quantity as the
tensor-op implementation: per pixel and search offset it builds the joint histogram
of the two patches in registers, eight bins at a time, touching only the bins each
sample's Gaussian window reaches (weights beyond it are below 1e-10), and takes
``Σ c log c`` with a vectorised polynomial log. That avoids writing and re-reading
``(2r+1)² · bins²`` values per pixel, which bounds the tensor-op version on CPU.

Rows of the output are split over ``torch.get_num_threads()`` threads (the kernel
releases the GIL). Memory stays bounded: the prepared bin weights (``bins + 8``
floats per pixel, rounded up to a multiple of 8) are made for bands of rows of one
image at a time when the whole batch would exceed 32 MB.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import torch

try:
    from zeroshot_core.lmi import _native as _lmi_native  # the C kernel (setup.py)
except ImportError:  # built without a C compiler: the tensor-op implementation is used
    _lmi_native = None

_ROWS_PER_THREAD = 16  # below this many output rows per thread, one thread does it all
_WEIGHTS_BUDGET = 1 << 23  # floats of prepared bin weights at once (32 MB); larger inputs go in bands


def available() -> bool:
    """Whether the compiled kernel could be imported."""
    return _lmi_native is not None


def _prepare(image: torch.Tensor, bins: int, sigma: float, margin: int, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Windowed bin weights (N, stride) and window starts (N,) of the values of ``image``."""
    values = image.contiguous()
    weights = torch.empty((values.numel(), stride), dtype=torch.float32)
    starts = torch.empty(values.numel(), dtype=torch.int32)
    _lmi_native.prepare(values.data_ptr(), values.numel(), bins, sigma, margin, stride,
                        weights.data_ptr(), starts.data_ptr())
    return weights, starts


def native_map(xp: torch.Tensor, yp: torch.Tensor, patch: int, radius: int, bins: int, sigma: float,
               normalized: bool, margin: int) -> torch.Tensor:
    """The LMI map (B, H, W) of padded float32 CPU images.

    Parameters
    ----------
    xp, yp, patch, radius, bins, sigma, normalized, margin
        As for :func:`zeroshot_core.lmi.tensor.tensor_map` (which has ``tile``
        too): ``xp`` padded by ``patch // 2``, ``yp`` by ``patch // 2 + radius``,
        float32 on CPU; bins farther than ``margin`` from a value's nearest bin are
        left out (their weight is below 1e-10).

    Raises
    ------
    RuntimeError
        If the compiled kernel is not available (check :func:`available` first).
    """
    if _lmi_native is None:
        raise RuntimeError("the LMI native kernel was not built; use the tensor-op implementation")
    batch, _, x_rows, x_cols = xp.shape
    y_rows, y_cols = yp.shape[-2:]
    height, width = x_rows - patch + 1, x_cols - patch + 1
    chunk = _lmi_native.CHUNK  # the kernel's vector width: weight rows are padded by it
    stride = chunk * math.ceil(bins / chunk) + chunk
    kernel = _Kernel(patch, radius, bins, sigma, normalized, margin, stride)
    out = torch.empty((batch, height, width), dtype=torch.float32)
    if batch * (x_rows * x_cols + y_rows * y_cols) * stride <= _WEIGHTS_BUDGET:
        kernel.run(xp, yp, out)
        return out
    # bands of output rows, one image at a time, so the prepared weights stay within the budget
    halo = y_rows - height
    band = max(1, _WEIGHTS_BUDGET // ((x_cols + y_cols) * stride) - halo)
    for b in range(batch):
        for first in range(0, height, band):
            last = min(height, first + band)
            kernel.run(xp[b:b + 1, :, first:last + patch - 1], yp[b:b + 1, :, first:last + halo],
                       out[b:b + 1, first:last])
    return out


class _Kernel:
    """One configuration of the kernel, run on whole images or bands of rows."""

    def __init__(self, patch: int, radius: int, bins: int, sigma: float, normalized: bool, margin: int,
                 stride: int) -> None:
        self.patch, self.radius, self.bins, self.sigma = patch, radius, bins, sigma
        self.normalized, self.margin, self.stride = bool(normalized), margin, stride
        self.window = min(bins, 2 * margin + 1)

    def run(self, xp: torch.Tensor, yp: torch.Tensor, out: torch.Tensor) -> None:
        """Write the map of padded ``xp``/``yp`` (B, 1, ·, ·) into ``out`` (B, H, W), a view."""
        x_weights, x_starts = _prepare(xp, self.bins, self.sigma, self.margin, self.stride)
        y_weights, y_starts = _prepare(yp, self.bins, self.sigma, self.margin, self.stride)
        result = out if out.is_contiguous() else torch.empty(out.shape, dtype=torch.float32)
        batch, height, width = result.shape
        buffers = [t.data_ptr() for t in (x_weights, x_starts, y_weights, y_starts, result)]
        shape = (batch, height, width, self.bins, self.patch, self.radius, self.window, self.stride,
                 self.normalized)

        def rows(first: int, last: int) -> None:
            _lmi_native.forward(*buffers, *shape, first, last)

        total = batch * height
        threads = max(1, min(torch.get_num_threads(), total // _ROWS_PER_THREAD))
        if threads == 1:
            rows(0, total)
        else:
            bounds = [round(total * k / threads) for k in range(threads + 1)]
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(rows, bounds[:-1], bounds[1:]))
        if result is not out:
            out.copy_(result)
