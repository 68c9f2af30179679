"""The dock widget: docking via the manifest, live preview, runs, cancel, plugins, bad input."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from napari_helpers import messages

from napari_zeroshot._layers import is_owned, layer_transform
from napari_zeroshot._model_choice import FOLDER
from napari_zeroshot._qt._controls import SCOPE_SLICE, SCOPE_VOLUME
from napari_zeroshot._qt._preview import GUIDANCE_ROLE, MASK_ROLE, owned_layers
from napari_zeroshot._qt._widget import FROM_MODEL, TranslationWidget
from napari_zeroshot._results import SEGMENTATION_ROLE, TRANSLATION_ROLE
from zeroshot_core import api
from zeroshot_core.guidance.base import Guidance
from zeroshot_core.plugins import manager as plugins
from zeroshot_core.plugins.hookspecs import hookimpl

pytestmark = pytest.mark.napari
SOURCE = "brain_phantom_pd"
RUN_TIMEOUT_MS = 180_000


def _names(combo) -> list[str]:
    return [combo.native.itemText(i) for i in range(combo.native.count())]


def _use_model(widget: TranslationWidget, model: Path) -> None:
    widget.model.value = FOLDER
    widget.model_folder.value = model


def _go_to_slice(viewer, layer, index: int) -> None:
    world = layer.data_to_world((index, 0, 0))
    viewer.dims.set_point(0, world[0])


def _wait_done(qtbot, run) -> None:
    qtbot.waitUntil(lambda: not run.running, timeout=RUN_TIMEOUT_MS)


def test_widget_docks_from_the_manifest_with_registry_choices(docked):
    viewer, widget = docked
    assert isinstance(widget, TranslationWidget)
    assert widget.source.value is viewer.layers[SOURCE]
    guidance = _names(widget.guidance)
    assert guidance[0] == FROM_MODEL and {"contour", "none"} <= set(guidance)
    assert {"kmeans", "multiotsu"} <= set(_names(widget.segmenter))
    assert widget.segmenter.value == "kmeans"
    assert _names(widget.sampling.scheduler) == ["ddim", "dpm", "ddpm", "sde"]
    assert _names(widget.sampling.device) == ["auto", "cpu", "cuda", "mps"]


def test_mask_controls_update_the_preview_without_sampling(docked, qtbot):
    viewer, widget = docked
    qtbot.waitUntil(lambda: bool(owned_layers(viewer, MASK_ROLE)))
    [mask] = owned_layers(viewer, MASK_ROLE)
    source = viewer.layers[SOURCE]
    assert mask.data.shape == (1,) + source.data.shape[1:]
    before = int(mask.data.sum())
    assert before > 0
    widget.mask.erosion_radius.value = 8
    qtbot.waitUntil(lambda: 0 < int(mask.data.sum()) < before)
    eroded = int(mask.data.sum())
    widget.mask.enabled.value = False
    qtbot.waitUntil(lambda: int(mask.data.sum()) == mask.data.size)
    widget.mask.enabled.value = True
    qtbot.waitUntil(lambda: int(mask.data.sum()) == eroded)
    assert widget.run is None  # nothing was sampled

    # the preview follows the slider and sits exactly on the viewed slice
    _go_to_slice(viewer, source, 20)
    expected = layer_transform(source) @ np.array([[1, 0, 0, 20], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]])
    qtbot.waitUntil(lambda: np.allclose(layer_transform(mask), expected))

    widget.preview.value = False
    qtbot.waitUntil(lambda: not owned_layers(viewer, MASK_ROLE))
    assert SOURCE in viewer.layers


def test_preview_shows_the_guidance_map_of_the_model(docked, tiny_model, qtbot):
    viewer, widget = docked  # its preview starts with the bundled default (lmi: a continuous LMI map)
    _use_model(widget, tiny_model)
    assert "T1" in widget.model_info.value and "contour" in widget.model_info.value

    def contour_shown() -> bool:  # the bundled model's map, computed before the switch, gives way to it
        layers = owned_layers(viewer, GUIDANCE_ROLE)
        return bool(layers) and set(np.unique(layers[0].data)) == {-1.0, 1.0}

    qtbot.waitUntil(contour_shown, timeout=RUN_TIMEOUT_MS)
    [contour] = owned_layers(viewer, GUIDANCE_ROLE)
    assert contour.data.shape == owned_layers(viewer, MASK_ROLE)[0].data.shape


def test_a_preview_computed_for_old_settings_is_dropped_and_redone(docked, tiny_model, qtbot):
    viewer, widget = docked
    previewer = widget._previewer
    qtbot.waitUntil(lambda: not previewer.busy and bool(owned_layers(viewer, GUIDANCE_ROLE)), timeout=RUN_TIMEOUT_MS)
    shown = []
    show = previewer._show
    previewer._show = lambda source, plane, role, image: shown.append(
        (role, set(np.unique(image)) <= {-1.0, 1.0})) or show(source, plane, role, image)
    previewer.refresh()  # a computation for the bundled lmi model is under way ...
    assert previewer.busy
    _use_model(widget, tiny_model)  # ... when the settings change
    previewer.stop()  # no debounced refresh: the redo must come from the outdated computation itself
    qtbot.waitUntil(lambda: not previewer.busy and any(role == GUIDANCE_ROLE for role, _ in shown),
                    timeout=RUN_TIMEOUT_MS)
    assert all(binary for role, binary in shown if role == GUIDANCE_ROLE)  # the LMI map was never shown again


class _FancyGuidance(Guidance):
    """A third-party strategy: the masked image itself as a condition channel."""

    name = "fancy"
    static_channels = 1

    def static_condition(self, image, mask):
        return np.where(mask, image, -1.0)[None].astype(np.float32)


class _FancyPlugin:
    @hookimpl
    def zeroshot_register_guidance(self, register):
        register("fancy", _FancyGuidance)


def test_third_party_guidance_appears_in_the_drop_down(docked, qtbot, monkeypatch):
    viewer, widget = docked
    assert "fancy" not in _names(widget.guidance)
    registries = plugins.build_registries(extra_plugins=(_FancyPlugin(),), load_entry_points=False)
    monkeypatch.setattr(plugins, "_cached", registries)
    widget.reset_choices()
    assert "fancy" in _names(widget.guidance)
    widget.guidance.value = "fancy"
    qtbot.waitUntil(lambda: bool(owned_layers(viewer, GUIDANCE_ROLE)))
    [preview] = owned_layers(viewer, GUIDANCE_ROLE)
    assert preview.data.max() > preview.data.min()


class _BrokenGuidance(Guidance):
    name = "broken"
    static_channels = 1

    def static_condition(self, image, mask):
        raise RuntimeError("plugin bug")


class _BrokenPlugin:
    @hookimpl
    def zeroshot_register_guidance(self, register):
        register("broken", _BrokenGuidance)


def test_a_failing_guidance_plugin_is_reported_not_fatal(docked, qtbot, monkeypatch):
    viewer, widget = docked
    registries = plugins.build_registries(extra_plugins=(_BrokenPlugin(),), load_entry_points=False)
    monkeypatch.setattr(plugins, "_cached", registries)
    widget.reset_choices()
    qtbot.waitUntil(lambda: bool(owned_layers(viewer, MASK_ROLE)))
    assert widget.preview_status.native.isHidden()
    widget.guidance.value = "broken"
    qtbot.waitUntil(lambda: "plugin bug" in widget.preview_status.value)
    assert not widget.preview_status.native.isHidden() and "RuntimeError" in widget.preview_status.value
    widget.guidance.value = "contour"
    qtbot.waitUntil(lambda: widget.preview_status.native.isHidden())


def test_run_translates_the_slice_and_adds_layers_on_the_source_grid(docked, tiny_model, qtbot, tmp_path):
    viewer, widget = docked
    source = viewer.layers[SOURCE]
    user = viewer.add_image(np.zeros((4, 4), np.float32), name=f"{SOURCE} → T1")  # the user's own layer
    _use_model(widget, tiny_model)
    widget.sampling.steps.value = 2
    widget.sampling.scope.value = SCOPE_SLICE
    _go_to_slice(viewer, source, 40)
    statuses: list[str] = []
    show_event = widget._on_event

    def record(event):
        show_event(event)
        statuses.append(widget.status.value)

    object.__setattr__(widget, "_on_event", record)  # the run binds it at start

    run = widget.start()
    assert run is not None and not widget.run_button.enabled and widget.cancel_button.enabled
    _wait_done(qtbot, run)

    assert any("slice 1/1 · step 2/2" in text for text in statuses), statuses
    assert any(text.startswith("segmenting") for text in statuses)
    assert widget.status.value.startswith("done") and widget.progress.value == widget.progress.max
    assert widget.run_button.enabled and not widget.cancel_button.enabled
    [image] = owned_layers(viewer, TRANSLATION_ROLE)
    [labels] = owned_layers(viewer, SEGMENTATION_ROLE)
    assert image.name.startswith(f"{SOURCE} → T1") and image is not user
    assert labels.name.endswith("labels")
    for layer in (image, labels):
        assert layer.data.shape == source.data.shape
        np.testing.assert_allclose(layer_transform(layer), layer_transform(source))
    others = np.delete(image.data, 40, axis=0)
    assert np.isnan(others).all() and np.isfinite(image.data[40]).all()  # untranslated: drawn transparent
    assert labels.data[40].any() and not np.delete(labels.data, 40, axis=0).any()
    assert np.all(user.data == 0)

    # the translation saves as NIfTI on the source grid
    viewer.layers.selection = {image}
    viewer.layers.save(str(tmp_path / "t1.nii.gz"), selected=True, plugin="napari-zeroshot")
    saved, original = nib.load(str(tmp_path / "t1.nii.gz")), nib.load(source.metadata["nifti"]["path"])
    np.testing.assert_array_equal(saved.affine, original.affine)
    assert saved.shape == original.shape
    written = saved.get_fdata()
    assert np.isfinite(written).all() and np.all(np.delete(written, 40, axis=2) == written.min())

    # provenance: the same record as the CLI's, in the layers and beside the saved file
    record = image.metadata["provenance"]
    assert labels.metadata["provenance"] == record
    assert record["Translation"]["model"]["name"] == tiny_model.name and record["Translation"]["steps"] == 2
    assert record["Translation"]["slices"] == [40] and record["Translation"]["device"] == "cpu"
    assert record["Sources"] == [str(Path(source.metadata["nifti"]["path"]).resolve())]
    assert json.loads((tmp_path / "t1.json").read_text(encoding="utf-8")) == record
    assert saved.header["descrip"].item().decode().startswith("zeroshot ")

    # re-running replaces the plugin's layers, never the user's
    def not_preview():
        return [layer for layer in viewer.layers if not is_owned(layer, MASK_ROLE, GUIDANCE_ROLE)]

    count = len(not_preview())
    widget.sampling.seed.value = 7
    run = widget.start()
    _wait_done(qtbot, run)
    assert len(not_preview()) == count
    assert len(owned_layers(viewer, TRANSLATION_ROLE)) == 1 and len(owned_layers(viewer, SEGMENTATION_ROLE)) == 1
    assert owned_layers(viewer, TRANSLATION_ROLE)[0] is not image
    assert user in viewer.layers and np.all(user.data == 0)


def test_cancel_stops_a_long_run_and_the_ui_recovers(docked, tiny_model, qtbot, monkeypatch):
    viewer, widget = docked
    _use_model(widget, tiny_model)
    steps_run = []
    real = api.translate_iter

    def counting(*args, **kwargs):
        for event in real(*args, **kwargs):
            steps_run.append(event)
            yield event

    monkeypatch.setattr(api, "translate_iter", counting)
    widget.sampling.steps.value = 1000
    widget.sampling.scope.value = SCOPE_VOLUME
    widget.segmenter.value = None
    run = widget.start()
    qtbot.waitUntil(lambda: "step" in widget.status.value, timeout=RUN_TIMEOUT_MS)
    widget.cancel()
    _wait_done(qtbot, run)
    assert run.cancelled and widget.status.value == "cancelled" and widget.progress.value == 0
    assert widget.run_button.enabled and not widget.cancel_button.enabled
    assert not owned_layers(viewer, TRANSLATION_ROLE)
    assert inspect.getgeneratorstate(run._steps) == inspect.GEN_CLOSED
    assert 0 < len(steps_run) < 100  # stopped within a few of the 1,000 steps per slice

    widget.sampling.steps.value = 2
    widget.sampling.scope.value = SCOPE_SLICE
    again = widget.start()
    _wait_done(qtbot, again)
    assert len(owned_layers(viewer, TRANSLATION_ROLE)) == 1


def test_engine_errors_become_one_line_notifications(docked, tiny_model, qtbot, notifications):
    viewer, widget = docked
    _use_model(widget, tiny_model)
    widget.guidance.value = "none"  # the model was trained with contour
    widget.sampling.steps.value = 2
    run = widget.start()
    _wait_done(qtbot, run)
    shown = messages(notifications())
    assert any("trained with guidance 'contour'" in text and "\n" not in text for text in shown)
    assert widget.status.value.startswith("failed") and widget.run_button.enabled
    assert not owned_layers(viewer, TRANSLATION_ROLE)


@pytest.mark.parametrize("add, phrase", [
    (lambda v: v.add_image(np.random.default_rng(0).random((16, 16, 3)), rgb=True, name="photo"), "RGB"),
    (lambda v: v.add_image(np.random.default_rng(0).random((2, 3, 16, 16)), name="series"), "4 dimensions"),
    (lambda v: v.add_labels(np.zeros((3, 16, 16), np.int32), name="seg"), "Labels layer"),
])
def test_unsuitable_source_layers_are_refused_with_a_notification(make_napari_viewer, qtbot, notifications,
                                                                 add, phrase):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-zeroshot", "Zero-shot translation")
    layer = add(viewer)
    widget.source.value = layer
    qtbot.wait(100)  # let the preview timer fire: it must ignore the layer, not crash
    assert widget.start() is None
    assert any(phrase in text for text in messages(notifications()))
    assert widget.run is None and widget.run_button.enabled
    assert not owned_layers(viewer, MASK_ROLE)


def test_running_without_a_layer_explains_what_to_do(make_napari_viewer, notifications):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-zeroshot", "Zero-shot translation")
    assert widget.source.value is None
    assert widget.start() is None
    assert any("no image layer selected" in text for text in messages(notifications()))


def test_a_folder_that_is_not_a_model_is_refused(docked, tmp_path, notifications):
    viewer, widget = docked
    (tmp_path / "notes.txt").write_text("hello")
    _use_model(widget, tmp_path)
    assert any("not a model folder" in text for text in messages(notifications()))
    assert widget.model_info.value == "no usable model"
    before = len(notifications())
    assert widget.start() is None
    assert len(notifications()) == before + 1 and "not a model folder" in messages(notifications())[-1]
    assert widget.run is None and not owned_layers(viewer, TRANSLATION_ROLE)


def test_a_2d_image_layer_translates_to_a_2d_layer(make_napari_viewer, tiny_model, qtbot):
    from zeroshot_core.samples.sample_data import load_sample

    viewer = make_napari_viewer()
    plane = load_sample("pd").data[:, :, 40].T  # rows = Y, columns = X, as a PNG would open
    source = viewer.add_image(plane, name="pd slice", scale=(2.0, 2.0))
    _, widget = viewer.window.add_plugin_dock_widget("napari-zeroshot", "Zero-shot translation")
    assert widget.source.value is source
    _use_model(widget, tiny_model)
    widget.sampling.steps.value = 2
    run = widget.start()
    _wait_done(qtbot, run)
    [image] = owned_layers(viewer, TRANSLATION_ROLE)
    [labels] = owned_layers(viewer, SEGMENTATION_ROLE)
    assert image.data.shape == plane.shape and labels.data.shape == plane.shape
    np.testing.assert_allclose(layer_transform(image), layer_transform(source))
    assert image.data.max() > image.data.min() and labels.data.any()


def test_lmi_preview_is_computed_off_the_gui_thread(docked, qtbot):
    viewer, widget = docked
    qtbot.waitUntil(lambda: bool(owned_layers(viewer, MASK_ROLE)))
    widget.guidance.value = "lmi"
    qtbot.waitUntil(lambda: widget._previewer.busy)
    qtbot.waitUntil(lambda: bool(owned_layers(viewer, GUIDANCE_ROLE)), timeout=60_000)
    [lmi] = owned_layers(viewer, GUIDANCE_ROLE)
    assert lmi.data.max() > lmi.data.min()
    qtbot.waitUntil(lambda: not widget._previewer.busy, timeout=60_000)


def test_an_out_of_domain_source_is_flagged_with_the_model_that_translated_it(make_napari_viewer, qtbot,
                                                                              notifications, shared_data):
    ct = shared_data / "totalsegmentator" / "example_ct_sm.nii.gz"
    viewer = make_napari_viewer()
    [source] = viewer.open(str(ct), plugin="napari-zeroshot")
    _, widget = viewer.window.add_plugin_dock_widget("napari-zeroshot", "Zero-shot translation")
    widget.sampling.steps.value = 2
    widget.sampling.scope.value = SCOPE_SLICE
    _go_to_slice(viewer, source, 15)
    run = widget.start()  # the bundled model: trained on skull-stripped brains
    _wait_done(qtbot, run)
    assert widget.status.value.startswith("done") and "on cpu" in widget.status.value
    assert "warning" in widget.status.value
    warnings = [m for m in messages(notifications()) if "out of domain" in m]
    assert warnings and "skull-stripped brains" in warnings[0] and "t1-lmi" in warnings[0]
    [image] = owned_layers(viewer, TRANSLATION_ROLE)
    assert image.metadata["provenance"]["Warnings"] == warnings[:1]


def test_mask_controls_start_from_the_models_training_mask(docked, tiny_model, tmp_path, qtbot):
    """The widget translates with the model card's mask unless the user changes it (as the CLI)."""
    import json
    import shutil

    viewer, widget = docked
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    card = json.loads((model / "model.json").read_text())
    card["mask"] = dict(card.get("mask", {}), erosion_radius=1, classes=2, hole_area=500)
    (model / "model.json").write_text(json.dumps(card))
    _use_model(widget, model)
    qtbot.waitUntil(lambda: widget.mask.erosion_radius.value == 1)
    assert widget.mask.params() == api.MaskParams.resolve(None, card["mask"])
    widget.mask.erosion_radius.value = 3  # the user's choice stays while the model does
    widget.guidance.value = widget.guidance.value
    assert widget.mask.params().erosion_radius == 3


def test_a_run_shows_its_progress_in_the_activity_dock(docked, tiny_model, qtbot):
    viewer, widget = docked
    _use_model(widget, tiny_model)
    widget.sampling.steps.value = 40
    widget.sampling.scope.value = SCOPE_SLICE
    widget.segmenter.value = None
    run = widget.start()
    bar = widget.activity
    assert bar is not None and bar.total == widget.progress.max
    qtbot.waitUntil(lambda: "step" in widget.status.value, timeout=RUN_TIMEOUT_MS)
    qtbot.waitUntil(lambda: bar.n > 0, timeout=RUN_TIMEOUT_MS)
    assert "slice 1/1" in bar.desc
    _wait_done(qtbot, run)
    assert widget.activity is None and bar.n == widget.progress.max  # closed, full
