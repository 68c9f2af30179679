"""Which slice of a layer is on screen, and how to place a one-slice layer on it.

A :class:`Plane` names the layer axis that the viewer's slider walks along and the
index on it. It converts to the engine's slice selection (volume axis and index)
and places preview layers on exactly that slice: a preview holds one slice (a
size-1 axis) and the source transform shifted by the index, so it is correct for
any affine and costs one slice of memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Plane:
    """A slice of a 2-D or 3-D layer.

    Attributes
    ----------
    axis : int or None
        Layer axis through the plane; ``None`` for a 2-D layer (the whole image).
    index : int
        Index along ``axis``.
    """

    axis: int | None
    index: int = 0

    @property
    def volume_axis(self) -> int:
        """The matching axis of the ``(X, Y, Z)`` volume (layer axes are reversed)."""
        return 2 if self.axis is None else 2 - self.axis

    def image(self, data: Any) -> np.ndarray:
        """The 2-D slice of layer ``data`` (rows, columns as on screen)."""
        if self.axis is None:
            return np.asarray(data)
        return np.asarray(np.take(data, self.index, axis=self.axis))

    def embed(self, image: np.ndarray) -> np.ndarray:
        """A one-slice array of the layer's dimensionality holding ``image``."""
        return np.asarray(image) if self.axis is None else np.expand_dims(image, self.axis)

    def transform(self, world: np.ndarray) -> np.ndarray:
        """The data → world matrix of :meth:`embed`'s output, given the layer's ``world``."""
        world = np.asarray(world, dtype=float)
        if self.axis is None:
            return world
        shift = np.eye(world.shape[0])
        shift[self.axis, -1] = self.index
        return world @ shift


def current_plane(layer: Any, dims: Any) -> Plane:
    """The plane of ``layer`` shown by the viewer.

    Parameters
    ----------
    layer : napari layer (2-D or 3-D)
        Layer whose shown plane is wanted; a 2-D layer is its own plane
        (``Plane(None, 0)``).
    dims : napari.components.Dims
        The viewer's dims (``displayed``, ``ndim``, ``point``).

    Returns
    -------
    Plane
        For a 3-D layer the not-displayed axis (axis 0 in 3-D rendering) and the
        slider position converted to a data index, clipped to the layer.
    """
    if layer.ndim == 2:
        return Plane(None, 0)
    offset = dims.ndim - layer.ndim
    displayed = {d - offset for d in dims.displayed}
    hidden = [a for a in range(layer.ndim) if a not in displayed]
    axis = hidden[-1] if hidden else 0
    coords = np.asarray(layer.world_to_data(dims.point), dtype=float)
    index = int(np.clip(np.round(coords[axis]), 0, layer.data.shape[axis] - 1))
    return Plane(axis, index)
