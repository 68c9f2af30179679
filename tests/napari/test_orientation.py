"""Scans stored in any voxel order open in a real viewer, are drawn, and save back exactly.

napari cannot draw a layer whose affine swaps axes (a sagittally stored T1 aborted
the viewer with ``LinAlgError: Singular matrix``); the reader reorders voxels to the
closest canonical orientation and the writer restores the file's order.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from napari_zeroshot._orient import canonical_volume, closest_canonical, from_canonical, to_canonical
from zeroshot_core.api import load_volume

PLUGIN = "napari-zeroshot"


def _affine(codes: str, degrees: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> np.ndarray:
    """An affine whose voxel axes run along ``codes`` (e.g. ``"PSR"``), then rotated."""
    columns = {"R": [1, 0, 0], "L": [-1, 0, 0], "A": [0, 1, 0], "P": [0, -1, 0], "S": [0, 0, 1], "I": [0, 0, -1]}
    matrix = np.array([columns[c] for c in codes], dtype=float).T @ np.diag([1.2, 0.9, 2.5])
    affine = np.eye(4)
    affine[:3, :3] = Rotation.from_euler("xyz", degrees, degrees=True).as_matrix() @ matrix
    affine[:3, 3] = [-30.0, 12.5, 4.0]
    return affine


CASES = {
    "sagittal PSR (IXI T1)": _affine("PSR"),
    "coronal LIA": _affine("LIA"),
    "flipped LPS": _affine("LPS"),
    "oblique sagittal ASL 20°": _affine("ASL", (20.0, -8.0, 5.0)),
    "canonical RAS": _affine("RAS"),
}


def _write(tmp_path: Path, affine: np.ndarray) -> Path:
    rng = np.random.default_rng(3)
    data = rng.integers(0, 3000, size=(9, 7, 5)).astype(np.int16)
    image = nib.Nifti1Image(data, affine)
    image.header["descrip"] = b"orientation test"
    path = tmp_path / "scan.nii.gz"
    nib.save(image, str(path))
    return path


@pytest.mark.parametrize("name", list(CASES))
def test_reordering_is_exact_and_keeps_every_voxel_in_place(name: str):
    affine = CASES[name]
    data = np.arange(9 * 7 * 5, dtype=float).reshape(9, 7, 5)
    ornt = closest_canonical(affine)
    canonical, canonical_aff = to_canonical(data, affine, ornt)
    np.testing.assert_array_equal(from_canonical(canonical, ornt), data)
    # the reordered axes run along +R, +A, +S
    assert np.all(np.argmax(np.abs(canonical_aff[:3, :3]), axis=0) == [0, 1, 2])
    assert np.all(np.diag(canonical_aff[:3, :3]) > 0)
    for ijk in [(0, 0, 0), (8, 6, 4), (3, 5, 1)]:
        [where] = np.argwhere(canonical == data[ijk])
        np.testing.assert_allclose(canonical_aff @ [*where, 1], affine @ [*ijk, 1], atol=1e-9)


@pytest.mark.napari
@pytest.mark.parametrize("name", list(CASES))
def test_viewer_draws_any_orientation_and_saves_it_back_exactly(make_napari_viewer, tmp_path: Path, name: str):
    path = _write(tmp_path, CASES[name])
    viewer = make_napari_viewer(show=True)  # a hidden canvas draws nothing
    [layer] = viewer.open(str(path), plugin=PLUGIN)
    shot = viewer.screenshot(canvas_only=True, flash=False)  # drawing used to abort the viewer
    assert shot.ndim == 3 and np.asarray(shot)[..., :3].max() > 0

    stored = nib.load(str(path))
    voxels = np.asarray(stored.dataobj)
    for ijk in [(0, 0, 0), (8, 6, 4), (2, 3, 1)]:
        world = (stored.affine @ [*ijk, 1.0])[2::-1]
        index = tuple(np.round(layer.world_to_data(world)).astype(int))
        assert layer.data[index] == voxels[ijk]
        np.testing.assert_allclose(layer.data_to_world(index), world, atol=1e-6)

    out = tmp_path / "saved.nii.gz"
    viewer.layers.selection = {layer}
    viewer.layers.save(str(out), selected=True, plugin=PLUGIN)
    saved = nib.load(str(out))
    np.testing.assert_array_equal(saved.affine, stored.affine)
    np.testing.assert_array_equal(saved.get_fdata(), stored.get_fdata())
    assert saved.header["descrip"].item() == b"orientation test"

    labels = viewer.add_labels((layer.data > 1500).astype(np.int32), name="bright", affine=layer.affine,
                               metadata=dict(layer.metadata))
    viewer.layers.selection = {labels}
    viewer.layers.save(str(tmp_path / "bright.nii.gz"), selected=True, plugin=PLUGIN)
    mask = nib.load(str(tmp_path / "bright.nii.gz"))
    np.testing.assert_array_equal(mask.affine, stored.affine)
    np.testing.assert_array_equal(np.asarray(mask.dataobj), voxels > 1500)


def test_canonical_volume_drops_the_header_only_when_reordered(tmp_path: Path):
    sagittal = load_volume(_write(tmp_path, CASES["sagittal PSR (IXI T1)"]))
    volume, _ = canonical_volume(sagittal)
    assert volume.header is None and volume.data.shape == (5, 9, 7)  # (R, A, S) from (P, S, R)
    np.testing.assert_array_equal(volume.data[:, ::-1, :], np.transpose(sagittal.data, (2, 0, 1)))
    plain = load_volume(_write(tmp_path, CASES["canonical RAS"]))
    same, identity = canonical_volume(plain)
    assert same is plain and np.array_equal(identity, np.array([[0, 1], [1, 1], [2, 1]]))
