"""What the viewer shows: the radiological view, and "current slice" on a tilted scan.

On a scan stored ~6° oblique, napari draws data slice ``k`` from the slider's world
position through the not-displayed block of the transform only; the widget must
translate that slice, show it there, leave the rest of the result transparent (the
source stays visible) and bring the view to the translated slice.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from napari_zeroshot._model_choice import FOLDER
from napari_zeroshot._plane import current_plane
from napari_zeroshot._qt._controls import SCOPE_SLICE
from napari_zeroshot._qt._preview import GUIDANCE_ROLE, MASK_ROLE, owned_layers
from napari_zeroshot._results import SEGMENTATION_ROLE, TRANSLATION_ROLE
from zeroshot_core.api import load_sample

pytestmark = pytest.mark.napari
PLUGIN = "napari-zeroshot"


@pytest.fixture()
def tilted_pd(tmp_path: Path) -> Path:
    """The PD phantom with its affine rotated 6° about the left–right axis."""
    volume = load_sample("pd")
    angle = np.deg2rad(6.0)
    rotation = np.eye(4)
    rotation[1:3, 1:3] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    path = tmp_path / "tilted_pd.nii.gz"
    nib.save(nib.Nifti1Image(np.asarray(volume.data, np.float32), rotation @ volume.affine), str(path))
    return path


def _drawn_index(layer) -> int:
    """The data index napari itself slices ``layer`` at (its own slicing code)."""
    data_slice = layer._slice_input.data_slice(layer._data_to_world.inverse)
    return int(np.round(data_slice.point[0]))


def _canvas(viewer) -> np.ndarray:
    return np.asarray(viewer.screenshot(canvas_only=True, flash=False))[..., :3].astype(int)


def test_current_slice_on_a_tilted_scan_is_the_slice_on_screen(make_napari_viewer, tiny_model, tilted_pd, qtbot):
    viewer = make_napari_viewer(show=True)
    [source] = viewer.open(str(tilted_pd), plugin=PLUGIN)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Zero-shot translation")
    widget.model.value = FOLDER
    widget.model_folder.value = tiny_model
    widget.sampling.steps.value = 2
    widget.sampling.scope.value = SCOPE_SLICE
    viewer.dims.set_point(0, source.data_to_world((44, 0, 0))[0])  # S of voxel (44, 0, 0): not slice 44 mid-plane
    qtbot.wait(50)
    chosen = current_plane(source, viewer.dims).index
    assert chosen == _drawn_index(source)
    assert chosen != 44  # the tilt moves the drawn slice; a world-point lookup would pick 44

    run = widget.start()
    viewer.dims.set_point(0, source.data_to_world((10, 0, 0))[0])  # the user moves on while it runs
    qtbot.waitUntil(lambda: not run.running, timeout=180_000)
    assert widget.status.value.startswith("done")

    [image] = owned_layers(viewer, TRANSLATION_ROLE)
    [labels] = owned_layers(viewer, SEGMENTATION_ROLE)
    assert current_plane(source, viewer.dims).index == chosen == _drawn_index(image)  # the view came back
    assert np.isfinite(image.data[chosen]).all() and np.ptp(image.data[chosen]) > 0
    assert np.isnan(np.delete(image.data, chosen, axis=0)).all()
    assert labels.data[chosen].any()

    for layer in owned_layers(viewer, MASK_ROLE) + owned_layers(viewer, GUIDANCE_ROLE):
        layer.visible = False
    on_result = _canvas(viewer)
    image.visible = labels.visible = False
    qtbot.wait(50)
    assert np.abs(on_result - _canvas(viewer)).max() > 0  # the translation is what is drawn there

    viewer.dims.set_point(0, source.data_to_world((chosen - 15, 0, 0))[0])  # an untranslated slice
    qtbot.wait(50)
    source_only = _canvas(viewer)
    assert source_only.max() > 0
    image.visible = labels.visible = True
    qtbot.wait(50)
    np.testing.assert_array_equal(_canvas(viewer), source_only)  # the result is transparent there


def test_docking_turns_the_view_radiological(make_napari_viewer, tmp_path: Path):
    """Anterior at the top of an axial slice, the patient's right on the screen's left."""
    data = np.zeros((40, 30, 10), np.float32)  # (X: R, Y: A, Z: S)
    data[:20, 15:] = 1.0  # one quarter: the patient's right (see the affine), anterior
    affine = np.diag([-2.0, 2.0, 2.0, 1.0])  # i runs towards the patient's left (LAS, as many scanners store)
    affine[:3, 3] = [39.0, -29.0, -9.0]
    path = tmp_path / "quarter.nii.gz"
    nib.save(nib.Nifti1Image(data, affine), str(path))
    viewer = make_napari_viewer(show=True)
    viewer.open(str(path), plugin=PLUGIN)
    viewer.window.add_plugin_dock_widget(PLUGIN, "Zero-shot translation")
    assert tuple(viewer.camera.orientation2d) == ("up", "left")
    viewer.reset_view()
    shot = np.asarray(viewer.screenshot(canvas_only=True, flash=False))[..., 0].astype(float)
    rows, cols = np.nonzero(shot > 128)
    # voxels i < 20 lie at x = 39 - 2i > 0: the patient's right, so on the screen's left; j >= 15 is anterior: top
    assert cols.mean() < shot.shape[1] / 2 and rows.mean() < shot.shape[0] / 2
    viewer.camera.orientation2d = ("down", "right")  # the user's choice is kept when more layers come
    viewer.open(str(path), plugin=PLUGIN)
    assert tuple(viewer.camera.orientation2d) == ("down", "right")
