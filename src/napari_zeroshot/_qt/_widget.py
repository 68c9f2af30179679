"""The "Zero-shot translation" dock widget.

Pick a source image layer and a model, tune the filter mask while a live preview
shows the mask and the guidance map of the slice on screen, then translate the
slice (or the whole volume) in a background thread and inspect the translation and
its segmentation as layers on the source grid. Everything goes through
:mod:`zeroshot_core.api`; the pieces live in small modules:

* :mod:`._controls` – mask and sampling controls → ``MaskParams`` / ``TranslateOptions``
* :mod:`._model_choice` – bundled model or folder, and its card
* :mod:`._preview` – live mask / guidance preview layers
* :mod:`._worker` – the thread worker, progress and cancellation
* :mod:`._results` – translation, segmentation and segmentation region layers
* :mod:`._region` – re-segmenting inside the (edited) region layer
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    Label,
    ProgressBar,
    PushButton,
)
from napari.utils import progress as activity_progress
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QTimer

from napari_zeroshot._display import RadiologicalView
from napari_zeroshot._job import Segmenting, TranslationOutput, TranslationRequest
from napari_zeroshot._layers import NIFTI_KEY, check_source, is_owned, layer_to_volume
from napari_zeroshot._model_choice import (
    BUNDLED,
    FOLDER,
    card_details,
    describe,
    model_card,
    model_path,
)
from napari_zeroshot._plane import Plane, current_plane, show_plane
from napari_zeroshot._qt._controls import (
    MaskControls,
    SamplingControls,
    eta_text,
    heading,
    wrap,
)
from napari_zeroshot._qt._preview import PreviewController
from napari_zeroshot._qt._region import RegionControls
from napari_zeroshot._qt._worker import TranslationRun
from napari_zeroshot._results import show_result
from zeroshot_core import api
from zeroshot_core.api import guidance_registry, segmenter_registry
from zeroshot_core.errors import InputError, ZeroshotError

if TYPE_CHECKING:
    import napari

FROM_MODEL = "from model"
NO_SEGMENTER = "none"
DEFAULT_SEGMENTER = "kmeans"
_PROGRESS_MAX = 1000


def _guidance_choices(_: Any) -> list[tuple[str, str | None]]:
    """The model's own guidance, then every registered strategy (plugins included)."""
    return [(FROM_MODEL, None)] + [(name, name) for name in guidance_registry().names()]


def _segmenter_choices(_: Any) -> list[tuple[str, str | None]]:
    """No segmentation, then every registered segmenter (plugins included)."""
    return [(NO_SEGMENTER, None)] + [(name, name) for name in segmenter_registry().names()]


class TranslationWidget(Container):
    """Dock widget: translate an image layer with a target-only diffusion model.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer whose layers are read and added.

    Attributes
    ----------
    source, model, model_folder, guidance, segmenter, preview, preview_status : magicgui widgets
    mask : MaskControls
    sampling : SamplingControls
    run_button, cancel_button, progress, status : magicgui widgets
    regions : RegionControls
        The "Re-segment in region" button and the segmented runs it works on.
    run : TranslationRun or None
        The run in progress (or the last one).
    """

    def __init__(self, napari_viewer: "napari.viewer.Viewer") -> None:
        super().__init__(labels=True)
        self.viewer = napari_viewer
        self.source = ComboBox(label="source", choices=self._source_choices, nullable=True,
                               tooltip="The grey-level image layer to translate (2-D or 3-D)")
        self.model = ComboBox(label="model", choices=(BUNDLED, FOLDER), value=BUNDLED,
                              tooltip="The bundled model, or a model folder made by 'zeroshot train'")
        self.model_folder = FileEdit(label="model folder", mode="d", visible=False,
                                     tooltip="Folder holding model.json and model.safetensors")
        self.model_info = Label(label="", value="", tooltip="Target modality, guidance and slice size of the model")
        self.guidance = ComboBox(label="guidance", choices=_guidance_choices,
                                 tooltip="How the source steers sampling; 'from model' uses the strategy the "
                                         "model was trained with (plugins appear here)")
        self.segmenter = ComboBox(label="segmenter", choices=_segmenter_choices,
                                  tooltip="Segmenter run on the translation, or none")
        if DEFAULT_SEGMENTER in segmenter_registry().names():
            self.segmenter.value = DEFAULT_SEGMENTER
        self.mask = MaskControls()
        self.preview = CheckBox(text="live preview on this slice", value=True,
                                tooltip="Show the filter mask and guidance map of the slice on screen as you "
                                        "change the settings (no sampling)")
        self.preview_status = Label(label="", value="", visible=False, tooltip="Preview problems")
        self.show_advanced = CheckBox(text="advanced settings", value=False,
                                      tooltip="Show the mask thresholds and the sampler, seed, candidates and "
                                              "device")
        self.restore_button = PushButton(text="Restore defaults",
                                         tooltip="Put the mask and sampling settings back to their defaults")
        self.sampling = SamplingControls()
        self.run_button = PushButton(text="Run", tooltip="Translate in the background (the viewer stays usable)")
        self.cancel_button = PushButton(text="Cancel", enabled=False,
                                        tooltip="Stop after the current step; nothing is added")
        self.progress = ProgressBar(label="progress", min=0, max=_PROGRESS_MAX, value=0,
                                    tooltip="Share of the sampling steps done")
        self.status = Label(label="", value="ready", tooltip="What the run is doing, time left, and the result")
        self._started = 0.0
        for label in (self.model_info, self.preview_status, self.status):
            wrap(label)
        self.run: TranslationRun | None = None
        self.activity: activity_progress | None = None  # the run's bar in napari's activity dock
        self._previewer = PreviewController(napari_viewer, self._preview_source, self._preview_settings,
                                            self._report_preview, parent=self.native)
        self.regions = RegionControls(napari_viewer, lambda: self.source.value,
                                      lambda text: setattr(self.status, "value", text))
        self.extend([heading("Input"), self.source, self.model, self.model_folder, self.model_info,
                     self.guidance, self.segmenter, heading("Filter mask"), *self.mask.widgets, self.preview,
                     self.preview_status,
                     heading("Sampling"), *self.sampling.widgets, self.show_advanced, self.restore_button,
                     Container(widgets=[self.run_button, self.cancel_button], layout="horizontal",
                               labels=False, label=""),
                     self.progress, self.status, self.regions.button])
        self._connect()
        self._on_advanced(False)
        self._view = RadiologicalView(napari_viewer)  # anterior up, patient's right on the left
        self.reset_choices()
        self._update_model_info(notify=False)
        self._previewer.schedule()

    # ----------------------------------------------------------------- wiring
    def _source_choices(self, *_: Any) -> list[tuple[str, Any]]:
        """Image and Labels layers of the viewer, without the plugin's preview layers.

        Labels and RGB layers are listed so that choosing one explains why it cannot
        be translated instead of silently hiding it.
        """
        from napari.layers import Image, Labels

        return [(layer.name, layer) for layer in self.viewer.layers
                if isinstance(layer, (Image, Labels)) and not is_owned(layer, "preview-mask", "preview-guidance")]

    def _connect(self) -> None:
        self.source.changed.connect(self._previewer.schedule)
        self.model.changed.connect(self._on_model_kind)
        self.model_folder.changed.connect(lambda *_: self._update_model_info(notify=True))
        self.guidance.changed.connect(lambda *_: self._update_model_info(notify=False))
        self.mask.connect(self._previewer.schedule)
        self.preview.changed.connect(self._on_preview_toggled)
        self.run_button.changed.connect(self.start)
        self.show_advanced.changed.connect(self._on_advanced)
        self.restore_button.changed.connect(self.restore_defaults)
        self.cancel_button.changed.connect(self.cancel)
        dims = self.viewer.dims.events
        for event in (dims.current_step, dims.order, dims.ndisplay):
            event.connect(self._previewer.schedule)

    def reset_choices(self, *_: Any) -> None:
        """Refresh layer and plugin drop-downs (napari calls this when layers change)."""
        super().reset_choices()
        if self.source.value is None:
            images = [value for _, value in self._source_choices() if check_source(value).ok]
            if images:
                self.source.value = images[-1]

    def _on_advanced(self, shown: bool) -> None:
        for widget in self.mask.advanced + self.sampling.advanced:
            widget.visible = bool(shown)

    def restore_defaults(self, *_: Any) -> None:
        """Put the mask and sampling settings back to their defaults (Restore defaults button)."""
        self.mask.restore()
        self.sampling.restore(getattr(self, "_card_cfg", 1.0), getattr(self, "_card_steps", api.DEFAULT_STEPS),
                              getattr(self, "_card_refine", 0))

    def _on_model_kind(self, *_: Any) -> None:
        self.model_folder.visible = self.model.value == FOLDER
        self._update_model_info(notify=self.model.value == FOLDER and self._folder_chosen())

    def _on_preview_toggled(self, enabled: bool) -> None:
        self._previewer.enabled = bool(enabled)
        if enabled:
            self._previewer.schedule()
        else:
            self._previewer.stop()
            self._previewer.clear()

    def _folder_chosen(self) -> bool:
        return str(self.model_folder.value).strip() not in ("", ".")

    # ------------------------------------------------------------ model info
    def _card(self) -> dict[str, Any]:
        """The chosen model's card (raises ``ModelError``)."""
        return model_card(self.model.value, self.model_folder.value, self.guidance.value)

    def _update_model_info(self, notify: bool) -> None:
        try:
            card = self._card()
            self.model_info.value = describe(card)
            self.model_info.tooltip = card_details(card)
            card_mask = api.MaskParams.resolve(None, card.get("mask"))
            if card_mask != getattr(self, "_card_mask", None):  # a new model: start from its training mask
                self._card_mask = card_mask
                self.mask.set_values(card_mask)
            card_cfg = api.default_cfg_scale(card.get("sampling"))
            if card_cfg != getattr(self, "_card_cfg", None):  # a new model: start from its measured CFG scale
                self._card_cfg = card_cfg
                self.sampling.cfg_scale.value = card_cfg
            card_steps = api.default_steps(card.get("sampling"))
            if card_steps != getattr(self, "_card_steps", None):  # a new model: start from the steps it was made for
                self._card_steps = card_steps
                self.sampling.steps.value = card_steps
            card_refine = api.default_refine_steps(card.get("sampling"))
            if card_refine != getattr(self, "_card_refine", None):  # a new model: its refiner's steps, or off
                self._card_refine = card_refine
                self.sampling.refine_steps.value = card_refine
                self.sampling.refine_steps.enabled = card_refine > 0
        except ZeroshotError as exc:
            self.model_info.value = "no usable model"
            if notify:
                show_error(str(exc))
        self._previewer.schedule()

    # --------------------------------------------------------------- preview
    def _preview_source(self) -> Any:
        layer = self.source.value
        return layer if layer is not None and check_source(layer).ok else None

    def _preview_settings(self) -> tuple[str | None, api.MaskParams, dict[str, Any]]:
        guidance = self.guidance.value
        try:
            card = self._card()
        except ZeroshotError:
            card = None
        if guidance is None:
            guidance = card["guidance"] if card else None
        params = dict(card.get("guidance_params", {})) if card and card.get("guidance") == guidance else {}
        return guidance, self.mask.params(), params

    def _report_preview(self, message: str) -> None:
        self.preview_status.value = message
        self.preview_status.visible = bool(message)

    # ------------------------------------------------------------------- run
    def _request(self) -> TranslationRequest:
        """Build the run from the controls (raises ``ZeroshotError`` on bad input)."""
        layer = self.source.value
        check = check_source(layer)
        if not check.ok:
            raise InputError(check.problem)
        if self.model.value == FOLDER:
            self._card()  # refuse a folder that is not a model before starting a thread
        volume = layer_to_volume(layer)
        slices, axis = None, None
        if self.sampling.current_slice_only:
            plane = current_plane(layer, self.viewer.dims)
            slices, axis = (plane.index,), plane.volume_axis
        options = self.sampling.options(self.mask.params(), slices=slices, axis=axis)
        return TranslationRequest(volume, model_path(self.model.value, self.model_folder.value),
                                  self.guidance.value, options, self.segmenter.value)

    def start(self, *_: Any) -> TranslationRun | None:
        """Start translating in the background (Run button).

        Bad input (no layer, a labels/RGB/4-D layer, a folder that is not a model,
        invalid settings) shows a notification and starts nothing.

        Returns
        -------
        TranslationRun or None
        """
        if self.run is not None and self.run.running:
            show_info("a translation is already running; cancel it first")
            return None
        try:
            request = self._request()
        except ZeroshotError as exc:
            show_error(str(exc))
            self.status.value = str(exc)
            return None
        source = self.source.value
        self.run = TranslationRun(request, self._on_event, lambda out: self._on_done(source, request, out),
                                  self._on_error, self._on_finished)
        self.run_button.enabled = False
        self.cancel_button.enabled = True
        self.progress.value = 0
        self.status.value = "loading model…"
        self._started = time.monotonic()
        # the same progress in napari's activity dock (bottom right), closed when the run ends
        self.activity = activity_progress(total=_PROGRESS_MAX, desc=f"zero-shot translation of {source.name}")
        self.run.start()
        return self.run

    def cancel(self, *_: Any) -> None:
        """Stop the running translation after the current step (Cancel button)."""
        if self.run is not None and self.run.running:
            self.status.value = "cancelling…"
            self.cancel_button.enabled = False
            self.run.cancel()

    def _on_event(self, event: Any) -> None:
        if isinstance(event, Segmenting):
            self.status.value = f"segmenting ({event.segmenter})…"
            return
        if self.run is not None and self.run.cancelled:
            return
        self.progress.value = int(round(event.fraction * _PROGRESS_MAX))
        current = min(event.slices_done + 1, event.slices_total)
        self.status.value = (f"slice {current}/{event.slices_total} · "
                             f"step {event.step}/{event.steps_total}"
                             + eta_text(time.monotonic() - self._started, event.fraction))
        if self.activity is not None:
            # Deferred: napari's activity bar may process pending events (even the end of the
            # run) while it redraws, which must not happen inside this handler.
            text, value = f"zero-shot translation: slice {current}/{event.slices_total}", self.progress.value
            QTimer.singleShot(0, lambda bar=self.activity: self._show_activity(bar, text, value))

    def _show_activity(self, bar: activity_progress, text: str, value: int) -> None:
        if bar is self.activity:  # not closed since the event
            bar.set_description(text)
            bar.n = value

    def _on_done(self, source: Any, request: TranslationRequest, output: TranslationOutput) -> None:
        if self.run is not None and self.run.cancelled:
            return  # cancelled while segmenting: the user asked for nothing to be added
        result = output.result
        target = result.model.card.target_modality
        nifti = source.metadata.get(NIFTI_KEY)
        path = nifti.get("path") if isinstance(nifti, dict) else None
        record = api.translation_provenance(result, request.options, path)
        show_result(self.viewer, source, result.volume, output.labels, target, result.slices, result.axis,
                    provenance=record)
        if output.labels is not None:
            self.regions.show(source, result, request.segmenter, record)
        if source.ndim == 3 and len(result.slices) == 1:
            show_plane(source, self.viewer.dims, Plane(2 - result.axis, result.slices[0]))
        self.progress.value = _PROGRESS_MAX
        model = record["Translation"]["model"]["name"]
        if refiner := record["Translation"].get("refiner"):
            steps = "step" if refiner["steps"] == 1 else f"{refiner['steps']} steps"
            model += f" (last {steps} by {refiner['name']})"
        self.status.value = (f"done: {len(result.slices)} slice(s) → {target} with {model} on "
                             f"{record['Translation']['device']}"
                             + (f" · {len(record['Warnings'])} warning(s)" if record["Warnings"] else ""))
        for warning in record["Warnings"]:
            show_warning(warning)
        if output.segmentation_error:
            show_warning(output.segmentation_error)

    def _on_error(self, message: str) -> None:
        show_error(message)
        self.status.value = f"failed: {message}"

    def _on_finished(self, cancelled: bool) -> None:
        bar, self.activity = self.activity, None
        if bar is not None:
            bar.n = self.progress.value
            bar.close()
        self.run_button.enabled = True
        self.cancel_button.enabled = False
        if cancelled:
            self.progress.value = 0
            self.status.value = "cancelled"
