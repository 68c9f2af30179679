"""The "Re-segment in region" button: segment a translation again inside the region layer.

After a run with a segmenter, :meth:`RegionControls.show` adds the region the
labels were worked out in as an editable Labels layer
(:func:`napari_zeroshot._results.show_region`). The user paints or erases it with
napari's own tools; the button segments the same translation again inside the
layer's non-zero voxels (:func:`zeroshot_core.api.segment_translation`, on the GUI
thread: it runs no network and takes about a second for a brain volume) and
replaces the segmentation layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from magicgui.widgets import PushButton
from napari.utils.notifications import show_error, show_info

from napari_zeroshot._layers import OWNER_KEY, is_owned
from napari_zeroshot._results import REGION_ROLE, layer_region, show_labels, show_region, used_region
from zeroshot_core import api
from zeroshot_core.errors import ZeroshotError


@dataclass(frozen=True)
class Segmented:
    """A translation shown with a segmentation: what a re-segmentation needs.

    Attributes
    ----------
    source : napari.layers.Image
        The translated layer (the results are on its grid).
    result : TranslationResult
    segmenter : str
    provenance : dict
        The translation's provenance record.
    """

    source: Any
    result: Any
    segmenter: str
    provenance: dict[str, Any]


class RegionControls:
    """The re-segment button and the translations it can work on, one per source layer.

    Parameters
    ----------
    viewer : napari.Viewer
    current_source : callable
        Returns the widget's chosen source layer (or ``None``).
    report : callable
        Shows a one-line status text in the widget.
    """

    def __init__(self, viewer: Any, current_source: Callable[[], Any], report: Callable[[str], None]) -> None:
        self.viewer = viewer
        self._current_source = current_source
        self._report = report
        self._segmented: dict[str, Segmented] = {}
        self.button = PushButton(
            text="Re-segment in region", enabled=False,
            tooltip="Segment the last translation of the source again, only inside its 'segmentation region' "
                    "layer: paint or erase that layer first (e.g. erase the scalp); labels are 0 outside it")
        self.button.changed.connect(self.resegment)

    def show(self, source: Any, result: Any, segmenter: str, provenance: dict[str, Any]) -> Any:
        """Add the region layer of a segmented run and remember the run.

        Returns
        -------
        napari.layers.Labels
            The region layer (1 inside the filter mask on the translated slices).
        """
        region = used_region(result.mask, result.slices, result.axis)
        layer = show_region(self.viewer, source, result.volume, region, provenance)
        self._segmented = {name: run for name, run in self._segmented.items() if run.source in self.viewer.layers}
        self._segmented[source.name] = Segmented(source, result, segmenter, provenance)
        self.button.enabled = True
        return layer

    def segmented(self, source_name: str) -> Segmented | None:
        """The last segmented translation of the source layer called ``source_name``, if any."""
        return self._segmented.get(source_name)

    def _region_layer(self, source_name: str) -> Any:
        for layer in self.viewer.layers:
            if is_owned(layer, REGION_ROLE) and layer.metadata[OWNER_KEY].get("source") == source_name:
                return layer
        return None

    def resegment(self, *_: Any) -> Any:
        """Segment the chosen source's translation inside its region layer (the button).

        Returns
        -------
        napari.layers.Labels or None
            The new segmentation layer; ``None`` (with a notification) when there is
            no segmented translation or region layer for the source, or the region is
            unusable (empty, say).
        """
        source = self._current_source()
        run = self._segmented.get(source.name) if source is not None else None
        if run is None or run.source is not source:
            show_info("no segmented translation of the chosen source; run one with a segmenter first")
            return None
        layer = self._region_layer(source.name)
        if layer is None:
            show_error(f"the '{source.name} segmentation region' layer is gone; run the translation again")
            return None
        try:
            labels = api.segment_translation(run.result, run.segmenter, region=layer_region(layer.data))
        except ZeroshotError as exc:
            message = str(exc).replace("the region", f"'{layer.name}'", 1)
            show_error(message)
            self._report(f"re-segmentation failed: {message}")
            return None
        record = dict(run.provenance)
        record["Segmentation"] = {"segmenter": run.segmenter, "region": f"the layer '{layer.name}'",
                                  "region_voxels": int(layer_region(layer.data).sum())}
        target = run.result.model.card.target_modality
        labels_layer = show_labels(self.viewer, source, run.result.volume, labels, target, record)
        self._report(f"re-segmented ({run.segmenter}) inside '{layer.name}'")
        return labels_layer
