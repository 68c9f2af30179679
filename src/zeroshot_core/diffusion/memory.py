"""Running out of device memory while sampling: recognise it, and say that the batch was halved."""

from __future__ import annotations

import gc
import warnings

import torch

from zeroshot_core.errors import ZeroshotError, ZeroshotWarning


class SmallerBatchWarning(ZeroshotWarning):
    """The device ran out of memory; sampling went on with a smaller batch."""


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is a device out-of-memory error.

    ``torch.cuda.OutOfMemoryError``, a ``MemoryError``, or a ``RuntimeError`` whose
    message says "out of memory" (MPS, XPU, older CUDA builds) or "can't allocate
    memory" (torch's CPU allocator).
    """
    oom = getattr(torch.cuda, "OutOfMemoryError", None)
    if isinstance(exc, MemoryError) or (oom is not None and isinstance(exc, oom)):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def halve_batch(exc: BaseException, batch: int, device: torch.device) -> int:
    """The batch size to retry with after ``exc``, with a one-line warning; re-raise what is not OOM.

    Parameters
    ----------
    exc : BaseException
        What sampling a batch of ``batch`` slices raised.
    batch : int
        Slices in that batch.
    device : torch.device
        Where it ran (named in the messages).

    Returns
    -------
    int
        ``batch // 2`` (at least 1).

    Raises
    ------
    BaseException
        ``exc`` itself, when it is not an out-of-memory error.
    ZeroshotError
        When even a single slice does not fit.
    """
    if not is_out_of_memory(exc):
        raise exc
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    if batch <= 1:
        raise ZeroshotError(f"out of memory on {device} even for one slice; use --device cpu, a smaller model, "
                            "or free memory used by other programs") from None
    smaller = batch // 2
    warnings.warn(f"out of memory on {device} with {batch} slices at once; continuing with {smaller} "
                  f"(set --batch-size {smaller} to skip this retry)", SmallerBatchWarning, stacklevel=3)
    return smaller
