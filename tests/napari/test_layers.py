"""Layer ↔ Volume conversion: axis order, world coordinates, exact round trips (no Qt)."""

from __future__ import annotations

import numpy as np
import pytest
from napari.layers import Image, Labels
from napari_helpers import oblique_affine

from napari_zeroshot._layers import (
    NIFTI_KEY,
    check_source,
    data_to_volume,
    layer_to_volume,
    layer_transform,
    nifti_to_layer_affine,
    transform_kwargs,
    volume_layer_kwargs,
    volume_to_layer_data,
)
from napari_zeroshot._orient import canonical_volume
from napari_zeroshot._plane import Plane
from zeroshot_core.errors import InputError
from zeroshot_core.io.volume import Volume


def _volume() -> Volume:
    data = np.arange(12 * 10 * 6, dtype=np.float32).reshape(12, 10, 6)
    return Volume(data, oblique_affine())


def test_layer_shows_axial_planes_with_k_on_the_slider():
    volume = _volume()
    data, _ = volume_to_layer_data(volume)
    assert data.shape == (6, 10, 12)
    assert data[5, 3, 7] == volume.data[7, 3, 5]


def _layer(volume: Volume) -> Image:
    """The layer the reader makes of ``volume`` (voxels reordered to the closest RAS+)."""
    data, _ = volume_to_layer_data(canonical_volume(volume)[0])
    return Image(data, **volume_layer_kwargs(volume, "v"))


def test_every_voxel_lands_at_its_nifti_world_position():
    volume = _volume()  # the i axis runs leftwards: the layer holds it reversed
    layer = _layer(volume)
    for i, j, k in [(0, 0, 0), (11, 9, 5), (3, 7, 2)]:
        ras = volume.affine @ np.array([i, j, k, 1.0])
        index = np.round(layer.world_to_data(ras[2::-1])).astype(int)
        np.testing.assert_allclose(layer.data_to_world(index), ras[2::-1], atol=1e-9)
        assert layer.data[tuple(index)] == volume.data[i, j, k]
    np.testing.assert_array_equal(nifti_to_layer_affine(nifti_to_layer_affine(volume.affine)), volume.affine)


def test_layer_to_volume_round_trip_is_exact_and_keeps_header():
    volume = _volume()
    layer = _layer(volume)
    back = data_to_volume(layer.data, layer_transform(layer), layer.metadata)  # what the writer saves
    np.testing.assert_array_equal(back.data, volume.data)
    np.testing.assert_array_equal(back.affine, volume.affine)
    shown = layer_to_volume(layer)  # what a translation works on: the layer's own voxel order
    np.testing.assert_array_equal(shown.data, volume.data[::-1])
    for ijk in [(0, 0, 0), (11, 9, 5)]:
        np.testing.assert_allclose(shown.affine @ [*ijk, 1], volume.affine @ [11 - ijk[0], *ijk[1:], 1])


def test_stale_metadata_is_ignored_when_the_layer_was_moved():
    volume = _volume()
    layer = _layer(volume)
    layer.translate = (10.0, 0.0, 0.0)  # moved by the user after opening
    back = layer_to_volume(layer)
    assert not np.allclose(back.affine, volume.affine)
    for i, j, k in [(0, 0, 0), (11, 9, 5)]:
        ras = back.affine @ np.array([i, j, k, 1.0])
        np.testing.assert_allclose(ras[2::-1], layer.data_to_world((k, j, i)), atol=1e-9)
    assert back.header is None


def test_plain_layer_scale_and_translate_become_the_affine():
    layer = Image(np.zeros((4, 5, 6), np.float32), scale=(3.0, 2.0, 1.0), translate=(7.0, 8.0, 9.0))
    volume = layer_to_volume(layer)
    assert volume.data.shape == (6, 5, 4)
    np.testing.assert_allclose(volume.affine, [[1, 0, 0, 9], [0, 2, 0, 8], [0, 0, 3, 7], [0, 0, 0, 1]])
    assert volume.header is None and volume.path is None


def test_2d_layer_is_a_one_slice_volume_and_back():
    image = np.arange(20, dtype=np.float32).reshape(4, 5)
    layer = Image(image, scale=(2.0, 0.5))
    volume = layer_to_volume(layer)
    assert volume.data.shape == (5, 4, 1)
    assert volume.spacing == (0.5, 2.0, 1.0)
    data, affine = volume_to_layer_data(volume, ndim=2)
    np.testing.assert_array_equal(data, image)
    np.testing.assert_allclose(affine, layer_transform(layer))


def test_transform_kwargs_reproduce_the_grid():
    volume = _volume()
    data, _ = volume_to_layer_data(volume)
    source = Image(data, **volume_layer_kwargs(volume, "v"))
    source.scale = (1.0, 2.0, 1.0)
    copy = Labels(np.zeros(data.shape, np.int32), **transform_kwargs(source))
    np.testing.assert_allclose(layer_transform(copy), layer_transform(source))
    assert copy.axis_labels == ("S", "A", "R")


def test_data_to_volume_rejects_4d():
    with pytest.raises(InputError, match="2-D or 3-D"):
        data_to_volume(np.zeros((2, 3, 4, 5)), np.eye(5))


@pytest.mark.parametrize("layer, phrase", [
    (None, "no image layer"),
    (Labels(np.zeros((4, 4, 4), np.int32), name="seg"), "'seg' is a Labels layer"),
    (Image(np.zeros((8, 8, 3), np.float32), rgb=True, name="photo"), "RGB"),
    (Image(np.zeros((2, 3, 8, 8), np.float32), name="series"), "4 dimensions"),
    (Image([np.zeros((16, 16)), np.zeros((8, 8))], multiscale=True, name="pyramid"), "multiscale"),
])
def test_check_source_explains_unsuitable_layers(layer, phrase):
    check = check_source(layer)
    assert not check.ok and phrase in check.problem
    assert "\n" not in check.problem
    with pytest.raises(InputError, match=phrase.split("'")[0] or phrase):
        layer_to_volume(layer)


def test_plane_maps_layer_axes_to_volume_axes_and_places_previews():
    world = nifti_to_layer_affine(oblique_affine())
    plane = Plane(axis=0, index=4)
    assert plane.volume_axis == 2
    data = np.arange(6 * 10 * 12).reshape(6, 10, 12)
    np.testing.assert_array_equal(plane.image(data), data[4])
    embedded = plane.embed(plane.image(data))
    assert embedded.shape == (1, 10, 12)
    moved = plane.transform(world)
    np.testing.assert_allclose(moved @ [0, 3, 5, 1], world @ [4, 3, 5, 1])
    assert Plane(axis=1, index=2).volume_axis == 1
    assert Plane(axis=None).volume_axis == 2


def test_nifti_metadata_is_stored_for_the_writer():
    volume = _volume()
    kwargs = volume_layer_kwargs(volume, "v")
    np.testing.assert_array_equal(kwargs["metadata"][NIFTI_KEY]["affine"], volume.affine)
    assert kwargs["units"] == ("mm", "mm", "mm")


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.uint16, np.float64, bool])
def test_an_image_layer_of_any_numeric_data_is_a_source(dtype):
    data = (np.arange(4 * 5 * 6).reshape(4, 5, 6) % 7).astype(dtype)
    layer = Image(data)
    assert check_source(layer).ok
    volume = layer_to_volume(layer)
    assert volume.data.dtype == np.float32
    np.testing.assert_array_equal(volume.data, np.transpose(data, (2, 1, 0)).astype(np.float32))
