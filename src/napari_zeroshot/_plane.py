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

from napari_zeroshot._layers import layer_transform


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


def _slice_map(layer: Any, dims: Any) -> tuple[list[int], list[int], np.ndarray]:
    """Not-displayed layer axes, their viewer axes and the world → data matrix.

    napari slices a layer along its not-displayed data axes using only the
    not-displayed block of the world → data transform (``Affine.set_slice``): the
    in-plane world position does not move the slice, even on an oblique layer.
    """
    offset = dims.ndim - layer.ndim
    displayed = {d - offset for d in dims.displayed}
    hidden = [a for a in range(layer.ndim) if a not in displayed]
    inverse = np.linalg.inv(layer_transform(layer))
    return hidden, [a + offset for a in hidden], inverse


def current_plane(layer: Any, dims: Any) -> Plane:
    """The plane of ``layer`` that the viewer draws.

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
        For a 3-D layer the not-displayed axis (axis 0 in 3-D rendering) and the data
        index napari draws there: the slider's world position through the
        not-displayed block of the world → data transform, rounded as napari rounds,
        clipped to the layer. On an oblique layer this is what is on screen, not the
        data index of the world point at the centre of the view.
    """
    if layer.ndim == 2:
        return Plane(None, 0)
    hidden, world_axes, inverse = _slice_map(layer, dims)
    if not hidden:
        return Plane(0, int(np.clip(np.round(layer.world_to_data(dims.point)[0]), 0, layer.data.shape[0] - 1)))
    point = np.asarray(dims.point, dtype=float)[world_axes]
    coords = inverse[np.ix_(hidden, hidden)] @ point + inverse[hidden, -1]
    axis = hidden[-1]
    index = int(np.clip(np.round(coords[-1]), 0, layer.data.shape[axis] - 1))
    return Plane(axis, index)


def show_plane(layer: Any, dims: Any, plane: Plane) -> None:
    """Move the viewer's slider so that it draws ``plane`` of ``layer``.

    Parameters
    ----------
    layer : napari layer
        The layer whose slice should be on screen.
    dims : napari.components.Dims
        The viewer's dims; only the slider of ``plane.axis`` moves (the other
        not-displayed axes keep their position). Nothing moves for a 2-D plane or when
        the axis is displayed.
    plane : Plane
        The slice to show.
    """
    if plane.axis is None:
        return
    hidden, world_axes, inverse = _slice_map(layer, dims)
    if plane.axis not in hidden:
        return
    block = inverse[np.ix_(hidden, hidden)]
    point = np.asarray(dims.point, dtype=float)[world_axes]
    target = block @ point + inverse[hidden, -1]
    target[hidden.index(plane.axis)] = plane.index
    world = np.linalg.solve(block, target - inverse[hidden, -1])
    for axis, value in zip(world_axes, world, strict=True):
        dims.set_point(axis, float(value))
