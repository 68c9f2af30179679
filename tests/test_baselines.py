"""Classical baselines: identity, histogram matching, shape-only control."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.exposure import match_histograms

from zeroshot_core.errors import ConfigError, InputError
from zeroshot_core.evaluation.baselines import histogram_match, identity, shape_control


def _disk(shape=(41, 41), radius=15.0) -> np.ndarray:
    yy, xx = np.indices(shape) - (np.array(shape)[:, None, None] - 1) / 2
    return np.hypot(yy, xx) <= radius


def test_identity_copies_as_float32():
    source = np.linspace(-1, 1, 24).reshape(2, 3, 4)
    out = identity(source)
    assert out.dtype == np.float32 and np.allclose(out, source)
    out[0, 0, 0] = 5
    assert source[0, 0, 0] == -1


def test_histogram_match_equals_skimage_without_mask():
    rng = np.random.default_rng(0)
    source = rng.normal(0, 0.3, (32, 32))
    reference = rng.uniform(-1, 1, (20, 20))
    assert np.allclose(histogram_match(source, reference), match_histograms(source, reference), atol=1e-6)


def test_histogram_match_reproduces_reference_distribution_in_mask():
    rng = np.random.default_rng(1)
    mask = _disk()
    source = np.where(mask, rng.normal(0.2, 0.1, mask.shape), -1.0)
    target_values = rng.beta(2, 5, 5000) * 2 - 1  # skewed target distribution
    out = histogram_match(source, target_values, mask)
    assert np.all(out[~mask] == -1.0)
    q = [5, 25, 50, 75, 95]
    assert np.allclose(np.percentile(out[mask], q), np.percentile(target_values, q), atol=0.03)


def test_histogram_match_is_monotone_and_keeps_ties():
    rng = np.random.default_rng(2)
    source = rng.integers(0, 10, (30, 30)).astype(float)
    out = histogram_match(source, rng.uniform(-1, 1, 1000))
    order = np.argsort(source, axis=None)
    assert np.all(np.diff(out.ravel()[order]) >= 0)
    for value in np.unique(source):
        assert np.unique(out[source == value]).size == 1


def test_histogram_match_cannot_invert_contrast():
    # a PD-like slice (CSF bright) matched to a T1-like distribution keeps CSF the brightest
    csf, wm = np.zeros((20, 20), bool), np.zeros((20, 20), bool)
    csf[:, :10], wm[:, 10:] = True, True
    pd_like = np.where(csf, 0.8, 0.2)
    t1_like = np.where(csf, -0.6, 0.7)
    out = histogram_match(pd_like, t1_like)
    assert out[csf].mean() > out[wm].mean()


def test_histogram_match_reference_image_with_mask():
    reference = np.full((10, 10), 5.0)
    reference[:5] = 0.5  # only these are in the reference mask
    ref_mask = np.zeros((10, 10), bool)
    ref_mask[:5] = True
    out = histogram_match(np.random.default_rng(3).random((6, 6)), reference, reference_mask=ref_mask)
    assert np.allclose(out, 0.5)


def test_histogram_match_errors():
    source = np.zeros((8, 8))
    with pytest.raises(InputError, match="reference_mask"):
        histogram_match(source, np.zeros(10), reference_mask=np.ones(10, bool))
    with pytest.raises(InputError, match="no reference values"):
        histogram_match(source, np.zeros((4, 4)), reference_mask=np.zeros((4, 4), bool))
    with pytest.raises(InputError, match="mask shape"):
        histogram_match(source, np.zeros(10), mask=np.ones((4, 4), bool))
    with pytest.raises(InputError, match="NaN"):
        histogram_match(np.full((4, 4), np.nan), np.zeros(10))
    assert np.all(histogram_match(source, np.zeros(10), mask=np.zeros((8, 8), bool), fill=-0.5) == -0.5)


def test_shape_control_dark_rim_bright_core():
    mask = _disk()
    out = shape_control(mask, cap_mm=6.0)
    assert out.dtype == np.float32 and out.min() >= -1 and out.max() <= 1
    assert np.all(out[~mask] == -1.0)
    assert out[20, 20] == 1.0  # core (15 px from the edge) saturates
    rim = mask & ~np.roll(mask, 1, axis=0)
    assert out[rim].max() < -0.5
    # non-decreasing inwards along a radius
    profile = out[20, 5:21]
    assert np.all(np.diff(profile) >= 0)


def test_shape_control_known_distances_and_spacing():
    mask = np.zeros((3, 21), bool)
    mask[1, 1:20] = True  # a 1-pixel-wide bar: 2 mm across it, 0.5 mm steps along it
    k = np.arange(19)
    distance = np.minimum(2.0, 0.5 * np.minimum(k + 1, 19 - k))
    assert np.allclose(shape_control(mask, spacing=(2.0, 0.5), cap_mm=8.0)[1, 1:20], -1 + 2 * distance / 8)
    mask = np.zeros((1, 11), bool)
    mask[0, :] = True  # a full row: distance along the axis-1 edges is capped by axis 0
    assert np.allclose(shape_control(mask, spacing=(4.0, 1.0), cap_mm=4.0)[0], [-0.5, 0, 0.5] + [1.0] * 5 + [0.5, 0, -0.5])


def test_shape_control_3d_and_image_edge():
    mask = np.ones((5, 6, 7), bool)  # touches the image edge everywhere
    out = shape_control(mask, spacing=(1.0, 1.0, 1.0), cap_mm=3.0)
    assert out[0, 3, 3] == pytest.approx(-1 + 2 / 3)
    assert out[2, 2, 3] == pytest.approx(1.0)


def test_shape_control_errors():
    with pytest.raises(ConfigError, match="cap_mm"):
        shape_control(_disk(), cap_mm=0.0)
    with pytest.raises(ConfigError, match="spacing"):
        shape_control(_disk(), spacing=(1.0,))
    with pytest.raises(InputError):
        shape_control(np.ones(5, bool))
