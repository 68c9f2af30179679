"""Record tensor operations whose result lands on another device than their inputs.

Used by the acceleration tests to show that LMI maps of CUDA tensors stay on the GPU
(no silent copy to the CPU and back).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


@dataclass(frozen=True)
class Crossing:
    """One operation that moved data between devices."""

    op: str
    source: str
    target: str
    elements: int


class DeviceCrossings(TorchDispatchMode):
    """A dispatch mode that lists every operation crossing devices while it is active.

    CPU scalars (0-d tensors that torch makes from Python numbers) do not count as
    inputs; reading a scalar back (``.item()``, ``.tolist()``) counts as a crossing to
    ``"python"`` (one element).
    """

    def __init__(self) -> None:
        super().__init__()
        self.crossings: list[Crossing] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {t.device for t in tree_flatten((args, kwargs))[0]
                  if isinstance(t, torch.Tensor) and not (t.ndim == 0 and t.device.type == "cpu")}
        outputs = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
        for tensor in outputs:
            if inputs and tensor.device not in inputs:
                self.crossings.append(Crossing(str(func), ",".join(sorted(map(str, inputs))), str(tensor.device),
                                               tensor.numel()))
        if func is torch.ops.aten._local_scalar_dense.default:
            self.crossings.append(Crossing(str(func), ",".join(sorted(map(str, inputs))), "python", 1))
        return out

    def moved(self, source: str, target: str) -> int:
        """Elements moved from device type ``source`` to ``target`` (``"python"`` for scalars read back)."""
        return sum(c.elements for c in self.crossings
                   if c.target.split(":")[0] == target and source in {d.split(":")[0] for d in c.source.split(",")})
