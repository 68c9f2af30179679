"""The filter mask on anisotropic slabs, at volume ends and next to out-of-field padding,
and the one mask rule (the model card's unless the user sets one)."""

import numpy as np
import pytest

from zeroshot_core.imaging.mask import MaskParams, filter_mask, padding_plateau, slice_mask, source_mask
from zeroshot_core.io.volume import Volume


def _head(shape, seed=0):
    """Ellipsoid head, tissue in every slice: scalp, CSF, grey and white matter, zero background."""
    rng = np.random.default_rng(seed)
    x, y = np.meshgrid(np.linspace(-1, 1, shape[0]), np.linspace(-1, 1, shape[1]), indexing="ij")
    r = np.sqrt((x / 0.8) ** 2 + (y / 0.85) ** 2)
    plane = np.select([r < 0.5, r < 0.75, r < 0.85, r < 0.95], [0.65, 0.8, 0.95, 0.4], 0.0)
    image = np.repeat(plane[:, :, None], shape[2], axis=2).astype(np.float32)
    tissue = image > 0
    image[tissue] += rng.normal(0, 0.02, int(tissue.sum())).astype(np.float32)
    return image, tissue


@pytest.mark.parametrize("slices", [10, 8, 4, 2])
def test_thin_anisotropic_slab_keeps_every_slice(slices):
    image, tissue = _head((48, 56, slices))
    volume = Volume(image, np.diag([1.0, 1.0, 5.0, 1.0]))
    mask = source_mask(volume, 2, MaskParams(erosion_radius=2))
    kept = [int(mask[:, :, k].sum()) for k in range(slices)]
    assert all(k > 0.7 * tissue[:, :, 0].sum() for k in kept), kept
    assert kept[0] == kept[slices // 2] == kept[-1], "end slices must not be eroded more than the middle"
    assert not mask[~tissue].any()


def test_isotropic_volume_is_eroded_in_plane_but_not_at_its_end_slices():
    image, tissue = _head((48, 56, 6))
    mask = slice_mask(image, 2, MaskParams(erosion_radius=2), spacing=(1.0, 1.0, 1.0))
    eroded = MaskParams(erosion_radius=2)
    plain = slice_mask(image, 2, MaskParams(erosion_radius=0), spacing=(1.0, 1.0, 1.0))
    assert mask.sum() < plain.sum(), "in-plane erosion must still happen"
    assert mask[:, :, 0].sum() == mask[:, :, 3].sum() > 0
    # the slicing axis is honoured: the same head sliced along axis 0
    moved = np.moveaxis(image, 2, 0)
    assert np.array_equal(slice_mask(moved, 0, eroded, spacing=(1.0, 1.0, 1.0)), np.moveaxis(mask, 2, 0))


def _ct_phantom():
    """CT-like slice stack: body (fat shell, soft tissue, bone) in air, -3024 outside the FOV circle."""
    rng = np.random.default_rng(0)
    x, y = np.meshgrid(np.linspace(-1, 1, 96), np.linspace(-1, 1, 96), indexing="ij")
    image = np.full((96, 96), -1000.0) + rng.normal(0, 20, (96, 96))
    body = (x / 0.6) ** 2 + (y / 0.45) ** 2 < 1
    image[body] = -100 + rng.normal(0, 20, int(body.sum()))
    image[(x / 0.5) ** 2 + (y / 0.37) ** 2 < 1] = 40
    image[x ** 2 + y ** 2 < 0.04] = 700
    image[x ** 2 + y ** 2 > 0.98] = -3024
    return np.repeat(image[:, :, None], 4, axis=2).astype(np.float32), np.repeat(body[:, :, None], 4, axis=2)


def test_out_of_field_padding_is_never_tissue():
    image, body = _ct_phantom()
    assert padding_plateau(image) is not None
    mask = filter_mask(image)
    assert not mask[~body].any(), "air inside the field of view must stay background"
    assert mask[body].mean() > 0.8
    # zero-filled corners of an MR with noisy air: corners and air stay out
    head, tissue = _head((64, 64, 3))
    rng = np.random.default_rng(1)
    noisy = head + np.abs(rng.normal(0, 0.05, head.shape)).astype(np.float32)
    x, y = np.meshgrid(np.arange(64), np.arange(64), indexing="ij")
    noisy[((x - 32) ** 2 + (y - 32) ** 2 > 31 ** 2)] = 0.0
    mask = filter_mask(noisy)
    assert not mask[~tissue].any() and mask[tissue].mean() > 0.8


def test_plain_zero_background_is_not_padding():
    head, tissue = _head((48, 56, 4))
    assert padding_plateau(head) is None
    assert filter_mask(head)[tissue].mean() > 0.8


def test_mask_rule_is_the_model_cards_unless_set():
    card = {"erosion_radius": 1, "classes": 2, "unknown_key": 3}
    assert MaskParams.resolve(None, card) == MaskParams(erosion_radius=1, classes=2)
    chosen = MaskParams(erosion_radius=4)
    assert MaskParams.resolve(chosen, card) is chosen
    assert MaskParams.resolve(None, None) == MaskParams()
