"""The segmentation region layer: shown after a segmented run, editable, re-segmented inside, on the source grid."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from napari_helpers import messages

from napari_zeroshot._layers import layer_transform, volume_to_layer_data
from napari_zeroshot._model_choice import FOLDER
from napari_zeroshot._qt._controls import SCOPE_SLICE
from napari_zeroshot._qt._preview import owned_layers
from napari_zeroshot._results import REGION_ROLE, SEGMENTATION_ROLE, layer_region, region_name, used_region
from zeroshot_core import api
from zeroshot_core.samples.sample_data import load_sample

pytestmark = pytest.mark.napari
PLUGIN = "napari-zeroshot"
SOURCE = "brain_phantom_pd"
SLICE = 40


def _translate_slice(viewer, widget, source, model: Path, qtbot, index: int = SLICE) -> None:
    widget.model.value = FOLDER
    widget.model_folder.value = model
    widget.sampling.steps.value = 2
    widget.sampling.scope.value = SCOPE_SLICE
    viewer.dims.set_point(0, source.data_to_world((index, 0, 0))[0])
    run = widget.start()
    assert run is not None
    qtbot.waitUntil(lambda: not run.running, timeout=180_000)


def _erase(layer, columns: slice) -> None:
    """What the eraser does to the layer's data (0 where erased), followed by the layer's refresh."""
    data = np.array(layer.data, copy=True)
    data[..., columns] = 0
    layer.data = data


@pytest.mark.parametrize("shape", [(7, 5, 3), (7, 5, 1)])
def test_layer_region_inverts_the_layer_mapping_in_3d_and_2d(shape):
    rng = np.random.default_rng(1)
    mask = rng.random(shape) > 0.5
    data, _ = volume_to_layer_data(api.Volume(mask.astype(np.float32)), ndim=3 if shape[2] > 1 else 2)
    np.testing.assert_array_equal(layer_region(data * 3), mask)  # any non-zero value is inside
    on_slice = used_region(mask, (2,), 0)
    np.testing.assert_array_equal(on_slice[2], mask[2])
    assert on_slice.sum() == mask[2].sum() and on_slice is not mask


def test_region_layer_is_editable_and_resegmenting_stays_inside_it(docked, tiny_model, qtbot, notifications):
    viewer, widget = docked
    source = viewer.layers[SOURCE]
    assert not widget.regions.button.enabled
    _translate_slice(viewer, widget, source, tiny_model, qtbot)

    [region] = owned_layers(viewer, REGION_ROLE)
    [labels] = owned_layers(viewer, SEGMENTATION_ROLE)
    assert region.name == region_name(SOURCE) == f"{SOURCE} segmentation region"
    assert widget.regions.button.enabled and widget.regions.button.tooltip
    run = widget.regions.segmented(SOURCE)
    assert run is not None and run.result.slices == (SLICE,)
    mask = np.transpose(np.asarray(run.result.mask), (2, 1, 0))  # the result's (X, Y, Z) in layer order
    assert region.data.shape == source.data.shape == labels.data.shape
    np.testing.assert_allclose(layer_transform(region), layer_transform(source))
    np.testing.assert_array_equal(region.data[SLICE] != 0, mask[SLICE])  # the mask the labels used …
    assert not np.delete(region.data, SLICE, axis=0).any()  # … on the translated slice only
    np.testing.assert_array_equal(labels.data != 0, region.data != 0)

    half = source.data.shape[2] // 2
    _erase(region, slice(None, half))
    kept = region.data != 0
    assert kept[SLICE].any() and not kept[..., :half].any()
    widget.regions.button.native.click()

    [new_labels] = owned_layers(viewer, SEGMENTATION_ROLE)
    assert new_labels is not labels and new_labels.name == labels.name
    assert not new_labels.data[..., :half].any()  # the erased half gets no labels
    np.testing.assert_array_equal(new_labels.data != 0, kept)
    np.testing.assert_allclose(layer_transform(new_labels), layer_transform(source))
    assert new_labels.metadata["provenance"]["Segmentation"]["region_voxels"] == int(kept.sum())
    assert widget.status.value.startswith("re-segmented")

    before = len(notifications())
    _erase(region, slice(None))
    assert widget.regions.resegment() is None
    assert "empty region" in messages(notifications()[before:])[-1]
    assert owned_layers(viewer, SEGMENTATION_ROLE) == [new_labels]


def test_the_region_of_a_reoriented_scan_lands_on_its_grid_and_saves_back(make_napari_viewer, tiny_model, qtbot,
                                                                          tmp_path):
    # the PD phantom stored sagittally and flipped (voxel axes P, S, R): the reader reorders it
    volume = load_sample("pd")
    data = np.ascontiguousarray(np.transpose(volume.data, (1, 2, 0))[::-1])
    affine = volume.affine[:, [1, 2, 0, 3]].copy()
    affine[:, 3] += affine[:, 0] * (data.shape[0] - 1)
    affine[:, 0] *= -1
    path = tmp_path / "pd_psr.nii.gz"
    nib.save(nib.Nifti1Image(data.astype(np.float32), affine), str(path))
    viewer = make_napari_viewer()
    [source] = viewer.open(str(path), plugin=PLUGIN)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Zero-shot translation")
    _translate_slice(viewer, widget, source, tiny_model, qtbot, index=source.data.shape[0] // 2)
    [region] = owned_layers(viewer, REGION_ROLE)
    [labels] = owned_layers(viewer, SEGMENTATION_ROLE)
    np.testing.assert_allclose(layer_transform(region), layer_transform(source))
    _erase(region, slice(None, source.data.shape[2] // 2))
    widget.regions.resegment()
    [labels] = owned_layers(viewer, SEGMENTATION_ROLE)

    saved = {}
    for layer in (region, labels):
        out = tmp_path / f"{layer.name.split()[-1]}.nii.gz"
        viewer.layers.selection = {layer}
        viewer.layers.save(str(out), selected=True, plugin=PLUGIN)
        saved[layer.name] = nib.load(str(out))
        np.testing.assert_array_equal(saved[layer.name].affine, affine)  # the file's grid, in its voxel order
        assert saved[layer.name].shape == data.shape
    region_file = np.asarray(saved[region.name].dataobj)
    assert region_file.any()
    np.testing.assert_array_equal(np.asarray(saved[labels.name].dataobj) != 0, region_file != 0)
    for ijk in np.argwhere(region_file)[::97][:20]:  # each saved voxel is where the layer draws it
        world = (affine @ [*ijk, 1.0])[2::-1]
        assert region.data[tuple(np.round(region.world_to_data(world)).astype(int))] == 1
    # the saved region is a valid --region for the scan file
    written = tmp_path / "region.nii.gz"
    assert api.segment(path, tiny_model, region=written)[region_file == 0].max() == 0
