import nibabel as nib
import numpy as np
import pytest

from zeroshot_core.errors import ConfigError
from zeroshot_core.imaging.mask import MaskParams, filter_mask


@pytest.fixture(scope="module")
def ct(shared_data):
    image = nib.load(shared_data / "totalsegmentator" / "example_ct.nii.gz")
    return image.get_fdata().astype(np.float32)


def test_ct_air_and_table_are_removed(ct):
    from scipy import ndimage as ndi

    mask = filter_mask(ct)
    air, _ = ndi.label(ct < -500)
    outside_air = np.isin(air, np.unique(np.concatenate([air[0].ravel(), air[-1].ravel(), air[:, 0].ravel(),
                                                          air[:, -1].ravel()]))) & (air > 0)
    assert outside_air.sum() > 1000
    assert not mask[outside_air].any(), "air around the body must be outside the mask"
    # The patient table is the bright structure below the body in each axial slice (posterior,
    # low y index in this RAS volume): voxels denser than fat that are far from the body.
    # (opened in the plane of each slice, so that the reference body keeps the end slices)
    in_plane = ndi.generate_binary_structure(3, 1) & (np.arange(3) == 1)[None, None, :]
    body = ndi.binary_opening(ct > -300, structure=in_plane, iterations=3)
    labels, count = ndi.label(body)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    largest = labels == np.argmax(sizes)
    table = (ct > -300) & ~ndi.binary_dilation(largest, structure=in_plane, iterations=3)
    assert table.sum() > 200, "the test CT should contain a table"
    assert mask[table].mean() < 0.01
    # most of the body is kept
    assert mask[largest].mean() > 0.8


def test_mask_in_two_and_three_dimensions(ct):
    mid = ct[:, :, ct.shape[2] // 2]
    mask2d = filter_mask(mid)
    assert mask2d.shape == mid.shape and mask2d.any()
    mask3d = filter_mask(ct[:, :, 50:60])
    assert mask3d.shape == (ct.shape[0], ct.shape[1], 10)


def test_each_step_is_controlled_by_its_parameter():
    image = np.zeros((80, 80), np.float32)
    image[10:70, 10:70] = 100.0
    image[30:34, 30:34] = 0.0  # a small hole
    image[2:4, 2:4] = 100.0  # a small speck
    base = filter_mask(image, MaskParams(classes=2, erosion_radius=0, min_object_size=0, hole_area=0,
                                         keep_largest=False))
    assert not base[31, 31] and base[2, 2]
    filled = filter_mask(image, MaskParams(classes=2, erosion_radius=0, min_object_size=10, hole_area=64,
                                           keep_largest=False))
    assert filled[31, 31] and not filled[2, 2]
    eroded = filter_mask(image, MaskParams(classes=2, erosion_radius=3, min_object_size=0, hole_area=64))
    assert not eroded[11, 40] and eroded[40, 40]
    assert filter_mask(image, MaskParams(enabled=False)).all()


def test_constant_image_gives_empty_mask():
    assert not filter_mask(np.ones((10, 10))).any()


@pytest.mark.parametrize("kwargs", [{"classes": 1}, {"erosion_radius": -1}, {"min_object_size": -5},
                                    {"hole_area": -1}])
def test_invalid_parameters(kwargs):
    with pytest.raises(ConfigError):
        MaskParams(**kwargs)
