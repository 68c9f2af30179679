"""Metrics against hand-computable values and skimage."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from zeroshot_core.errors import ConfigError, InputError
from zeroshot_core.evaluation.metrics import assd, dice, mean_dice, psnr, ssim


def _squares() -> tuple[np.ndarray, np.ndarray]:
    a = np.zeros((20, 20), np.int16)
    b = np.zeros((20, 20), np.int16)
    a[2:12, 2:12] = 1  # 100 pixels
    b[7:17, 2:12] = 1  # 100 pixels, 50 shared
    return a, b


def _ball(shape: tuple[int, ...], centre_mm, radius_mm: float, spacing) -> np.ndarray:
    grids = np.meshgrid(*[np.arange(n) * s for n, s in zip(shape, spacing)], indexing="ij")
    return sum((g - c) ** 2 for g, c in zip(grids, centre_mm)) <= radius_mm ** 2


def test_dice_two_squares_known_overlap():
    a, b = _squares()
    assert dice(a, b) == {1: pytest.approx(0.5)}
    assert dice(a, a) == {1: 1.0}
    assert dice(a.astype(bool), b.astype(bool))[1] == pytest.approx(0.5)


def test_dice_multi_label_and_mean():
    ref = np.array([[1, 1, 2, 2, 3, 3, 0, 0]])
    pred = np.array([[1, 2, 2, 2, 0, 0, 0, 0]])
    scores = dice(pred, ref)
    assert list(scores) == [1, 2, 3]
    assert scores[1] == pytest.approx(2 / 3)
    assert scores[2] == pytest.approx(0.8)
    assert scores[3] == 0.0
    assert mean_dice(scores) == pytest.approx((2 / 3 + 0.8 + 0.0) / 3)


def test_dice_label_absent_from_both_is_nan_and_ignored_by_mean():
    a, b = _squares()
    scores = dice(a, b, labels=[1, 5])
    assert math.isnan(scores[5])
    assert mean_dice(scores) == pytest.approx(0.5)
    assert math.isnan(mean_dice({}))


def test_dice_shape_mismatch_raises():
    with pytest.raises(InputError, match="shapes differ"):
        dice(np.zeros((4, 4)), np.zeros((4, 5)))


def test_assd_single_points_anisotropic_spacing_exact():
    a = np.zeros((9, 9, 9), bool)
    b = np.zeros((9, 9, 9), bool)
    a[4, 4, 2] = True
    b[4, 4, 5] = True
    assert assd(a, b, spacing=(1.0, 1.0, 2.0)) == pytest.approx(6.0)
    assert assd(a, b) == pytest.approx(3.0)


def test_assd_identical_is_zero_and_symmetric():
    a, b = _squares()
    assert assd(a, a, spacing=(1.0, 1.0)) == 0.0
    assert assd(a, b) == pytest.approx(assd(b, a))


def test_assd_parallel_planes_known_distance():
    # two 1-voxel-thick planes 4 voxels apart, spacing 2.5 mm along the gap axis
    a = np.zeros((12, 10, 10), bool)
    b = np.zeros((12, 10, 10), bool)
    a[3] = True
    b[7] = True
    assert assd(a, b, spacing=(2.5, 1.0, 1.0)) == pytest.approx(10.0)


def test_assd_concentric_spheres_radius_difference():
    spacing = (1.0, 1.0, 1.0)
    a = _ball((40, 40, 40), (20, 20, 20), 8.0, spacing)
    b = _ball((40, 40, 40), (20, 20, 20), 12.0, spacing)
    assert assd(a, b, spacing) == pytest.approx(4.0, abs=0.5)


def test_assd_uses_spacing_in_mm():
    # the same physical spheres sampled on an anisotropic grid
    spacing = (1.0, 1.0, 2.0)
    a = _ball((40, 40, 20), (20, 20, 20), 8.0, spacing)
    b = _ball((40, 40, 20), (20, 20, 20), 12.0, spacing)
    assert assd(a, b, spacing) == pytest.approx(4.0, abs=0.6)


def test_assd_empty_masks():
    a, _ = _squares()
    empty = np.zeros_like(a)
    assert math.isnan(assd(empty, empty))
    assert assd(a, empty) == math.inf
    assert assd(empty, a) == math.inf


def test_assd_multilabel_selects_label():
    ref = np.zeros((10, 10), int)
    pred = np.zeros((10, 10), int)
    ref[2, 2], ref[7, 7] = 1, 2
    pred[2, 5], pred[7, 7] = 1, 2
    assert assd(pred, ref, label=1) == pytest.approx(3.0)
    assert assd(pred, ref, label=2) == 0.0


def test_assd_bad_spacing_raises():
    a, b = _squares()
    with pytest.raises(ConfigError):
        assd(a, b, spacing=(1.0, 1.0, 1.0))
    with pytest.raises(ConfigError):
        assd(a, b, spacing=(1.0, 0.0))


def test_psnr_known_mse():
    ref = np.random.default_rng(0).uniform(-1, 1, (16, 16))
    img = ref + 0.1  # MSE = 0.01
    assert psnr(img, ref, data_range=2.0) == pytest.approx(10 * np.log10(4 / 0.01))
    assert psnr(ref, ref, data_range=2.0) == math.inf


def test_psnr_mask_restricts_error():
    ref = np.zeros((10, 10))
    img = np.zeros((10, 10))
    img[:5] = 0.5  # error only in the top half
    mask = np.zeros((10, 10), bool)
    mask[5:] = True
    assert psnr(img, ref, mask=mask, data_range=1.0) == math.inf
    assert psnr(img, ref, mask=~mask, data_range=1.0) == pytest.approx(10 * np.log10(1 / 0.25))


def test_psnr_default_range_matches_skimage():
    rng = np.random.default_rng(1)
    ref = rng.uniform(0, 3, (20, 20))
    img = ref + rng.normal(0, 0.1, ref.shape)
    expected = peak_signal_noise_ratio(ref, img, data_range=ref.max() - ref.min())
    assert psnr(img, ref) == pytest.approx(expected)


def test_psnr_errors():
    ref = np.zeros((8, 8))
    with pytest.raises(InputError, match="constant"):
        psnr(ref + 1, ref)
    with pytest.raises(ConfigError):
        psnr(ref, ref, data_range=-1.0)
    with pytest.raises(InputError, match="mask is empty"):
        psnr(ref, ref, mask=np.zeros((8, 8), bool), data_range=1.0)


@pytest.mark.parametrize("shape", [(32, 32), (16, 16, 16)])
def test_ssim_identical_is_one(shape):
    ref = np.random.default_rng(2).uniform(-1, 1, shape)
    assert ssim(ref, ref, data_range=2.0) == pytest.approx(1.0)
    mask = np.zeros(shape, bool)
    mask[(slice(4, 12),) * len(shape)] = True
    assert ssim(ref, ref, mask=mask, data_range=2.0) == pytest.approx(1.0)


@pytest.mark.parametrize("shape", [(40, 36), (20, 18, 16)])
def test_ssim_no_mask_matches_skimage(shape):
    rng = np.random.default_rng(3)
    ref = rng.uniform(-1, 1, shape)
    img = ref + rng.normal(0, 0.3, shape)
    expected = structural_similarity(img, ref, data_range=2.0)
    assert ssim(img, ref, data_range=2.0) == pytest.approx(expected)
    assert ssim(img, ref) == pytest.approx(structural_similarity(img, ref, data_range=ref.max() - ref.min()))


def test_ssim_mask_averages_the_map():
    rng = np.random.default_rng(4)
    ref = rng.uniform(-1, 1, (40, 40))
    img = ref.copy()
    img[:20] += rng.normal(0, 0.5, (20, 40))  # degrade the top half only
    _, smap = structural_similarity(img, ref, data_range=2.0, full=True)
    bottom = np.zeros(ref.shape, bool)
    bottom[25:] = True
    assert ssim(img, ref, mask=bottom, data_range=2.0) == pytest.approx(smap[bottom].mean())
    assert ssim(img, ref, mask=bottom, data_range=2.0) == pytest.approx(1.0)
    assert ssim(img, ref, mask=~bottom, data_range=2.0) < 0.9


def test_ssim_thin_volume_slicewise():
    rng = np.random.default_rng(5)
    ref = rng.uniform(-1, 1, (24, 24, 2))
    img = ref + rng.normal(0, 0.2, ref.shape)
    per_slice = [structural_similarity(img[..., k], ref[..., k], data_range=2.0, full=True)[1] for k in range(2)]
    assert ssim(img, ref, data_range=2.0) == pytest.approx(np.stack(per_slice, -1).mean())


def test_ssim_errors():
    ref = np.random.default_rng(6).random((4, 4))
    with pytest.raises(InputError, match="window"):
        ssim(ref, ref)
    with pytest.raises(ConfigError, match="win_size"):
        ssim(ref, ref, win_size=4)
    with pytest.raises(InputError, match="shapes differ"):
        ssim(ref, ref[:3])
