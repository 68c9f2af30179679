"""Reader, writer and sample data through a real viewer (npe2 discovery, Xvfb)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

PLUGIN = "napari-zeroshot"
pytestmark = pytest.mark.napari


def test_viewer_opens_nifti_on_its_physical_grid(make_napari_viewer, oblique_nifti: Path):
    viewer = make_napari_viewer()
    [layer] = viewer.open(str(oblique_nifti), plugin=PLUGIN)
    image = nib.load(str(oblique_nifti))
    affine, voxels = image.affine, np.asarray(image.dataobj)  # float32 sform, as stored
    for i, j, k in [(0, 0, 0), (11, 9, 5), (4, 2, 3)]:
        ras = affine @ np.array([i, j, k, 1.0])
        index = np.round(layer.world_to_data(ras[2::-1])).astype(int)
        np.testing.assert_allclose(layer.data_to_world(index), ras[2::-1], atol=1e-9)
        assert layer.data[tuple(index)] == voxels[i, j, k]
    assert viewer.dims.axis_labels == ("S", "A", "R")
    assert viewer.dims.nsteps[0] == 6  # the slider walks through k (the file's S-most axis)


def test_viewer_saves_layers_with_the_plugin_writer(make_napari_viewer, oblique_nifti: Path, tmp_path: Path):
    viewer = make_napari_viewer()
    [layer] = viewer.open(str(oblique_nifti), plugin=PLUGIN)
    out = tmp_path / "saved.nii.gz"
    viewer.layers.selection = {layer}
    written = viewer.layers.save(str(out), selected=True, plugin=PLUGIN)
    assert [Path(p) for p in written] == [out]
    original, saved = nib.load(str(oblique_nifti)), nib.load(str(out))
    np.testing.assert_array_equal(saved.affine, original.affine)
    np.testing.assert_array_equal(saved.get_fdata(), original.get_fdata())

    labels = viewer.add_labels((layer.data > 500).astype(np.int32), name="bright",
                               affine=layer.affine, metadata=dict(layer.metadata))
    viewer.layers.selection = {labels}
    viewer.layers.save(str(tmp_path / "bright.nii.gz"), selected=True, plugin=PLUGIN)
    mask = nib.load(str(tmp_path / "bright.nii.gz"))
    np.testing.assert_array_equal(mask.affine, original.affine)
    np.testing.assert_array_equal(np.asarray(mask.dataobj), original.get_fdata() > 500)


def test_sample_data_menu_loads_the_phantom(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample(PLUGIN, "phantom")
    assert [layer.name for layer in viewer.layers] == ["phantom T1", "phantom T2", "phantom PD", "phantom labels"]
    assert type(viewer.layers["phantom labels"]).__name__ == "Labels"
    assert viewer.layers["phantom PD"].extent.world.tolist() == viewer.layers["phantom labels"].extent.world.tolist()
