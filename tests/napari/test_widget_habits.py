"""Widget habits: tooltips everywhere, advanced settings folded away, Restore defaults, wrapping status, ETA."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from magicgui.widgets import Container, Label

from zeroshot_core.api import MaskParams, TranslateOptions

pytestmark = pytest.mark.napari
HEADINGS = {"Input", "Filter mask", "Sampling"}


def _controls(container: Container) -> list:
    found = []
    for widget in container:
        if isinstance(widget, Container):
            found += _controls(widget)
        elif not (isinstance(widget, Label) and widget.value in HEADINGS):
            found.append(widget)
    return found


def test_every_control_has_a_tooltip(docked):
    _, widget = docked
    controls = _controls(widget)
    assert len(controls) > 20
    missing = [getattr(w, "label", "") or getattr(w, "text", "") or type(w).__name__
               for w in controls if not (w.tooltip or "").strip()]
    assert not missing, f"controls without a tooltip: {missing}"


def test_advanced_settings_are_folded_until_asked_for(docked):
    _, widget = docked
    advanced = widget.mask.advanced + widget.sampling.advanced
    assert advanced and all(w.native.isHidden() for w in advanced)
    assert not widget.sampling.steps.native.isHidden() and not widget.mask.enabled.native.isHidden()
    widget.show_advanced.value = True
    assert not any(w.native.isHidden() for w in advanced)
    widget.show_advanced.value = False
    assert all(w.native.isHidden() for w in advanced)


def test_restore_defaults_puts_every_setting_back(docked):
    _, widget = docked
    widget.mask.erosion_radius.value = 7
    widget.mask.keep_largest.value = False
    widget.sampling.steps.value = 3
    widget.sampling.seed.value = 42
    widget.sampling.device.value = "cpu"
    widget.sampling.candidates.value = 4
    widget.sampling.samples.value = 3
    widget.sampling.cfg_scale.value = 2.5
    widget.sampling.denoise.value = "nlm"
    widget.restore_button.changed.emit(True)  # what a click does
    assert widget.mask.params() == MaskParams()
    defaults = TranslateOptions()
    options = widget.sampling.options(widget.mask.params())
    assert (options.seed, options.device, options.scheduler, options.samples) == (
        defaults.seed, defaults.device, defaults.scheduler, defaults.samples)
    # the CFG scale and the steps go back to the chosen model's defaults, not to fixed numbers
    assert options.cfg_scale == widget._card().get("sampling", {}).get("cfg_scale", 1.0)
    assert options.steps == widget._card().get("sampling", {}).get("steps", 50)
    assert options.consistency is None and widget.sampling.current_slice_only and options.denoise == defaults.denoise


def test_choosing_a_model_sets_its_measured_cfg_scale_and_steps(docked, tiny_model, tmp_path):
    import json
    import shutil

    from napari_zeroshot._model_choice import FOLDER

    _, widget = docked
    bundled = widget._card().get("sampling", {}).get("cfg_scale", 1.0)
    assert widget.sampling.cfg_scale.value == bundled
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    card = json.loads((model / "model.json").read_text())
    card["sampling"] = {"cfg_scale": 3.0, "steps": 20, "note": "test"}
    (model / "model.json").write_text(json.dumps(card))
    widget.model.value = FOLDER
    widget.model_folder.value = model
    assert (widget.sampling.cfg_scale.value, widget.sampling.steps.value) == (3.0, 20)
    widget.sampling.cfg_scale.value = 2.5  # the user's choice stays while the model does
    widget.sampling.steps.value = 7
    widget.guidance.value = widget.guidance.choices[0]
    assert (widget.sampling.cfg_scale.value, widget.sampling.steps.value) == (2.5, 7)
    widget.restore_button.changed.emit(True)
    assert (widget.sampling.cfg_scale.value, widget.sampling.steps.value) == (3.0, 20)
    widget.model.value = widget.model.choices[0]  # back to the bundled model
    assert widget.sampling.cfg_scale.value == bundled
    assert widget.sampling.steps.value == widget._card().get("sampling", {}).get("steps", 50)


def test_a_model_with_a_refiner_turns_the_refiner_steps_on_and_one_without_turns_them_off(docked, tiny_model,
                                                                                              tmp_path):
    import json
    import shutil

    from napari_zeroshot._model_choice import FOLDER

    _, widget = docked
    models = {}
    for name, sampling in (("refined", {"steps": 20, "refiner": "t1-lmi", "refine_steps": 2, "note": "test"}),
                           ("plain", {})):
        models[name] = tmp_path / name
        shutil.copytree(tiny_model, models[name])
        card = json.loads((models[name] / "model.json").read_text())
        card["sampling"] = sampling
        (models[name] / "model.json").write_text(json.dumps(card))
    widget.model.value = FOLDER
    widget.model_folder.value = models["refined"]
    assert widget.sampling.refine_steps.enabled and widget.sampling.refine_steps.value == 2
    assert "refined by t1-lmi" in widget.model_info.value
    mask = MaskParams()
    assert widget.sampling.options(mask).refine_steps == 2
    widget.sampling.refine_steps.value = 0  # the user switches the refiner off
    assert widget.sampling.options(mask).refine_steps == 0
    widget.restore_button.changed.emit(True)
    assert widget.sampling.refine_steps.value == 2
    widget.model_folder.value = models["plain"]
    assert not widget.sampling.refine_steps.enabled and widget.sampling.options(mask).refine_steps == 0


def test_long_status_text_wraps_instead_of_widening_the_dock(docked, qtbot):
    _, widget = docked
    before = widget.native.sizeHint().width()
    widget.status.value = "failed: " + "a long message about what went wrong " * 12 + "/a/very/long/path" * 10
    qtbot.wait(10)
    assert widget.native.sizeHint().width() <= before
    assert widget.status.native.wordWrap()


def test_progress_shows_the_time_left(docked):
    _, widget = docked
    widget._started = time.monotonic() - 30.0
    widget._on_event(SimpleNamespace(fraction=0.25, slices_done=0, slices_total=1, step=5, steps_total=20))
    assert widget.status.value.startswith("slice 1/1 · step 5/20 · ") and widget.status.value.endswith("left")
    minutes, seconds = widget.status.value.split(" · ")[-1].split()[0].split(":")
    assert 85 <= int(minutes) * 60 + int(seconds) <= 95  # 30 s for a quarter: about 90 s left


def test_the_model_line_names_its_anatomy_and_the_tooltip_holds_the_card(docked):
    _, widget = docked
    # the bundled default is the 2 mm lmi student: its line gives the pixel spacing (not the crop size) and its refiner
    assert widget.model_info.value == "→ T1 · trained with lmi · 2 mm pixels · on brains only · refined by t1-lmi"
    tooltip = widget.model_info.tooltip
    assert "training data: IXI" in tooltip and "anatomy: brain only" in tooltip and "notes:" in tooltip
    assert "--refiner t1-lmi --refine-steps 1" in tooltip


def test_samples_and_cfg_scale_reach_the_options(docked):
    _, widget = docked
    widget.sampling.samples.value = 4
    widget.sampling.cfg_scale.value = 2.0
    widget.sampling.denoise.value = "nlm"
    options = widget.sampling.options(widget.mask.params())
    assert (options.samples, options.cfg_scale, options.denoise) == (4, 2.0, "nlm")
