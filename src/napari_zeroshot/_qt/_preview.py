"""Live preview of the filter mask and the guidance map on the slice on screen.

The preview never runs the sampler: :func:`zeroshot_core.api.preview` computes the
mask and the guidance channels of one 2-D slice. Results go into two one-slice
layers placed on the slice being viewed (see :mod:`napari_zeroshot._plane`), which
are marked as the plugin's own in their metadata and updated in place.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
from napari.qt.threading import create_worker
from qtpy.QtCore import QTimer

from napari_zeroshot._layers import OWNER_KEY, layer_transform
from napari_zeroshot._plane import Plane, current_plane
from zeroshot_core import api
from zeroshot_core.errors import ZeroshotError

MASK_ROLE = "preview-mask"
GUIDANCE_ROLE = "preview-guidance"
#: Delay (ms) that merges bursts of control/slider events into one preview update.
DEBOUNCE_MS = 40


def compute_preview(image: np.ndarray, guidance: str | None, mask: api.MaskParams,
                    guidance_params: dict[str, Any] | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Mask and guidance map of one slice.

    Parameters
    ----------
    image : ndarray (H, W)
        Source intensities.
    guidance : str or None
        Guidance strategy; ``None`` shows the mask only (guidance ``"none"``).
    mask : MaskParams
        Settings of the foreground filter mask computed on ``image``.
    guidance_params : dict, optional
        Keyword arguments of the guidance strategy (overrides of its defaults, e.g.
        the model card's ``guidance_params``); ``None`` uses the defaults.

    Returns
    -------
    mask : ndarray of uint8 (H, W)
        1 inside the object.
    guidance_map : ndarray float32 (H, W) or None
        Maximum over the strategy's channels; ``None`` when it has none.

    Raises
    ------
    ZeroshotError
    """
    region, channels = api.preview(image, guidance or "none", mask, guidance_params)
    guidance_map = channels.max(axis=0).astype(np.float32) if channels.shape[0] else None
    return np.asarray(region, dtype=np.uint8), guidance_map


def owned_layers(viewer: Any, role: str) -> list[Any]:
    """Layers of ``viewer`` made by this plugin with the given role."""
    return [layer for layer in viewer.layers
            if isinstance(layer.metadata.get(OWNER_KEY), dict) and layer.metadata[OWNER_KEY].get("role") == role]


class PreviewController:
    """Keeps the preview layers in step with the controls and the viewed slice.

    Parameters
    ----------
    viewer : napari.Viewer
        Viewer that receives the preview layers and whose ``dims`` give the slice
        on screen.
    source : callable
        Returns the source layer, or ``None``/an unsuitable layer (then the
        preview is removed).
    settings : callable
        Returns ``(guidance name or None, MaskParams, guidance parameters)``; may
        raise ``ZeroshotError``.
    report : callable
        Receives a one-line status message (``""`` when all is well).
    parent : QObject, optional
        Owner of the debounce timer (the widget); once it is destroyed, results
        still arriving from a worker are dropped.
    """

    def __init__(self, viewer: Any, source: Callable[[], Any],
                 settings: Callable[[], tuple[str | None, api.MaskParams, dict[str, Any]]],
                 report: Callable[[str], None], parent: Any = None) -> None:
        self._viewer = viewer
        self._source = source
        self._settings = settings
        self._report = report
        self.enabled = True
        self._timer = QTimer(parent)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self.refresh)
        self._worker: Any = None
        self._pending = False
        self._closed = False
        if parent is not None:
            parent.destroyed.connect(self._close)

    def _close(self, *_: Any) -> None:
        self._closed = True

    def schedule(self) -> None:
        """Refresh soon (merges bursts of events); a preview being computed is now out of date."""
        if self.enabled:
            if self._worker is not None:
                self._pending = True  # its result is for the old settings: dropped, and redone when it ends
            self._timer.start()

    def stop(self) -> None:
        """Cancel a pending refresh."""
        self._timer.stop()

    def clear(self) -> None:
        """Remove the preview layers."""
        for role in (MASK_ROLE, GUIDANCE_ROLE):
            for layer in owned_layers(self._viewer, role):
                self._viewer.layers.remove(layer)

    @property
    def busy(self) -> bool:
        """Whether a preview is being computed in the background."""
        return self._worker is not None

    def refresh(self) -> None:
        """Recompute the preview of the current slice (in a worker thread).

        The slice is read on the GUI thread; the mask and guidance map (LMI takes
        seconds) are computed in a ``thread_worker`` so the viewer stays responsive.
        A request arriving while one is computed runs when it finishes (latest wins).
        """
        if self._closed:
            return
        layer = self._source()
        if not self.enabled or layer is None:
            self.clear()
            return
        if self._worker is not None:
            self._pending = True
            return
        try:
            guidance, mask_params, guidance_params = self._settings()
            plane = current_plane(layer, self._viewer.dims)
            image = np.array(plane.image(layer.data), dtype=np.float32)
        except ZeroshotError as exc:
            self._report(f"preview: {exc}")
            return
        worker = create_worker(compute_preview, image, guidance, mask_params, guidance_params,
                               _start_thread=False, _ignore_errors=True)
        worker.returned.connect(lambda out: self._apply(layer, plane, *out))
        worker.errored.connect(self._failed)
        worker.finished.connect(self._finished)
        self._worker = worker
        worker.start()

    def _failed(self, exc: BaseException) -> None:
        if isinstance(exc, ZeroshotError):
            self._report(f"preview: {exc}")
        else:  # a broken third-party guidance must not break the widget
            first = (str(exc).strip().splitlines() or [""])[0]
            self._report(f"preview failed ({type(exc).__name__}: {first})")

    def _finished(self) -> None:
        self._worker = None
        if self._pending and not self._closed:
            self._pending = False
            self.refresh()

    def _apply(self, layer: Any, plane: Plane, mask2d: np.ndarray, guidance_map: np.ndarray | None) -> None:
        if self._closed or not self.enabled or self._pending or self._source() is not layer:
            return  # stale: a newer request follows, or the preview was switched off
        self._report("")
        self._show(layer, plane, MASK_ROLE, mask2d)
        if guidance_map is None:
            for old in owned_layers(self._viewer, GUIDANCE_ROLE):
                self._viewer.layers.remove(old)
        else:
            self._show(layer, plane, GUIDANCE_ROLE, guidance_map)

    def _show(self, source: Any, plane: Plane, role: str, image: np.ndarray) -> None:
        data = plane.embed(image)
        affine = plane.transform(layer_transform(source))
        existing = owned_layers(self._viewer, role)
        if existing:
            layer = existing[0]
            layer.affine = affine
            layer.data = data
            layer.metadata[OWNER_KEY]["source"] = source.name
            if role == GUIDANCE_ROLE:
                layer.reset_contrast_limits()
            return
        kwargs = {"affine": affine, "axis_labels": tuple(source.axis_labels),
                  "units": tuple(str(u) for u in source.units),
                  "metadata": {OWNER_KEY: {"role": role, "source": source.name}}}
        if role == MASK_ROLE:
            self._viewer.add_labels(data, name="filter mask (preview)", opacity=0.35, **kwargs)
        else:
            self._viewer.add_image(data, name="guidance (preview)", colormap="magenta", blending="additive",
                                   **kwargs)
