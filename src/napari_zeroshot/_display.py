"""The display convention for scans opened on their physical grid: radiological.

Layers made from NIfTI files have world axes ``(S, A, R)``. napari's default camera
draws the first displayed axis downwards and the second rightwards, so an axial
slice shows anterior at the bottom (and a CT table at the top). The widget turns
the camera once per viewer, when such a layer is present, to the radiological
convention used by clinical viewers:

* axial: anterior up, the patient's right on the screen's left;
* coronal: superior up, the patient's right on the screen's left;
* sagittal: superior up, anterior on the screen's left.

The world axes keep their names (``S``, ``A``, ``R`` on the dims; *View › Axes*
draws arrows). A user who turns the camera afterwards keeps their choice: it is set
once.
"""

from __future__ import annotations

from typing import Any

from napari_zeroshot._layers import WORLD_AXIS_LABELS

#: ``camera.orientation2d`` of the radiological convention on ``(S, A, R)`` world axes.
RADIOLOGICAL_2D = ("up", "left")
#: ``camera.orientation`` (3-D rendering: depth, vertical, horizontal) of the same convention.
RADIOLOGICAL_3D = ("towards", "up", "left")


def has_physical_layer(viewer: Any) -> bool:
    """Whether a layer of ``viewer`` has the ``(S, A, R)`` millimetre world axes of a NIfTI file."""
    return any(tuple(layer.axis_labels) == WORLD_AXIS_LABELS for layer in viewer.layers)


def use_radiological_view(viewer: Any) -> None:
    """Turn ``viewer``'s camera to the radiological convention.

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer; only its camera orientation (2-D and 3-D) changes.
    """
    viewer.camera.orientation2d = RADIOLOGICAL_2D
    viewer.camera.orientation = RADIOLOGICAL_3D


class RadiologicalView:
    """Apply :func:`use_radiological_view` once, as soon as a NIfTI layer is in ``viewer``.

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer to watch (its ``layers.events.inserted``).
    """

    def __init__(self, viewer: Any) -> None:
        self._viewer = viewer
        self.applied = False
        viewer.layers.events.inserted.connect(self._check)
        self._check()

    def _check(self, *_: Any) -> None:
        if self.applied or not has_physical_layer(self._viewer):
            return
        use_radiological_view(self._viewer)
        self.applied = True
        self._viewer.layers.events.inserted.disconnect(self._check)
