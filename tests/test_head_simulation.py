"""Whole-head PD/T2 simulation from a T1 and its DLMUSE labels (the validation set's source images)."""

from __future__ import annotations

import numpy as np
import pytest

from zeroshot_core.errors import ConfigError, InputError
from zeroshot_core.samples.head_simulation import (
    DLMUSE_CSF,
    DLMUSE_WM,
    HEAD_TISSUES,
    HeadSimulationParams,
    dlmuse_tissue_labels,
    head_tissue_maps,
    simulate_head,
)
from zeroshot_core.samples.phantom import PhantomParams


def test_dlmuse_ids_map_to_csf_gm_wm():
    ids = np.array([0, *sorted(DLMUSE_CSF), 100, 207, 36, 47, *sorted(DLMUSE_WM)])
    labels = dlmuse_tissue_labels(ids)
    assert labels[0] == 0
    assert set(labels[1:1 + len(DLMUSE_CSF)]) == {1}
    assert set(labels[1 + len(DLMUSE_CSF):5 + len(DLMUSE_CSF)]) == {2}  # cortex, caudate, hippocampus
    assert set(labels[5 + len(DLMUSE_CSF):]) == {3}


def _head():
    """A 2-mm 'head': a brain sphere (WM core, GM shell, CSF ventricle) inside scalp layers."""
    shape = (40, 40, 40)
    grid = np.indices(shape).astype(float) - 19.5
    radius = np.sqrt((grid ** 2).sum(0))
    labels = np.zeros(shape, np.uint8)
    labels[radius < 12] = 2
    labels[radius < 9] = 3
    labels[radius < 3] = 1
    t1 = np.zeros(shape, np.float32)
    t1[labels == 3], t1[labels == 2], t1[labels == 1] = 1000.0, 700.0, 300.0
    t1[(radius >= 12) & (radius < 13)] = 150.0   # dark just outside the brain: CSF
    t1[(radius >= 13) & (radius < 16)] = 120.0   # dark and far: bone
    t1[(radius >= 16) & (radius < 18)] = 1300.0  # bright: fat
    t1[(radius >= 18) & (radius < 19)] = 650.0   # intermediate: muscle/skin
    return t1, labels, radius < 19, radius


def test_tissue_fractions_sum_to_one_in_the_head_and_zero_in_the_air():
    t1, labels, head, radius = _head()
    maps = head_tissue_maps(t1, labels, head, (2.0, 2.0, 2.0))
    assert set(maps) == set(HEAD_TISSUES)
    total = sum(maps.values())
    np.testing.assert_allclose(total[head], 1.0, atol=1e-5)
    assert np.all(total[~head] == 0)
    assert all((m >= 0).all() and (m <= 1 + 1e-6).all() for m in maps.values())


def test_non_brain_tissue_follows_the_t1_intensity_and_the_distance_to_the_brain():
    t1, labels, head, radius = _head()
    maps = head_tissue_maps(t1, labels, head, (2.0, 2.0, 2.0), HeadSimulationParams(partial_volume=0.0))
    dominant = np.argmax(np.stack([maps[k] for k in HEAD_TISSUES]), axis=0)

    def share(ring, tissue):
        return float(np.mean(dominant[ring] == HEAD_TISSUES.index(tissue)))

    assert share(radius < 2.5, "csf") == 1.0 and share((radius > 4) & (radius < 8), "wm") == 1.0
    assert share((radius > 10) & (radius < 11.5), "gm") == 1.0
    assert share((radius >= 12.2) & (radius < 13), "csf") > 0.9   # within 4 mm of the brain
    assert share((radius >= 14.5) & (radius < 16), "bone") > 0.9
    assert share((radius >= 16.3) & (radius < 17.7), "fat") == 1.0
    assert share((radius >= 18.2) & (radius < 19), "muscle") == 1.0


def test_simulated_contrasts_are_those_of_pd_and_t2_weighting():
    t1, labels, head, radius = _head()
    params = HeadSimulationParams(brain=PhantomParams(noise=0.0, bias=0.0), partial_volume=0.0)
    maps = head_tissue_maps(t1, labels, head, (2.0, 2.0, 2.0), params)
    pd, t2 = simulate_head(maps, "pd", params), simulate_head(maps, "t2", params)
    for image in (pd, t2):
        csf, gm, wm = (float(np.median(image[labels == k])) for k in (1, 2, 3))
        assert csf > gm > wm  # the T1 order reversed: not an intensity copy of the T1
        assert np.all(image[~head] == 0)
        assert float(np.median(image[(radius >= 14.5) & (radius < 16)])) < 0.05 * csf  # bone is dark
    fat = (radius >= 16.3) & (radius < 17.7)
    assert np.median(pd[fat]) > np.median(pd[labels == 3]) and np.median(t2[fat]) < np.median(t2[labels == 1])


def test_noise_and_bias_are_seeded():
    t1, labels, head, _ = _head()
    maps = head_tissue_maps(t1, labels, head, (2.0, 2.0, 2.0))
    a, b = simulate_head(maps, "pd"), simulate_head(maps, "pd")
    np.testing.assert_array_equal(a, b)
    other = HeadSimulationParams(brain=PhantomParams(noise=0.03, bias=0.2, seed=1))
    assert not np.array_equal(a, simulate_head(maps, "pd", other))
    assert (a[~head] > 0).any()  # Rician noise in the air, as in a magnitude image


def test_bad_inputs_are_refused():
    t1, labels, head, _ = _head()
    with pytest.raises(InputError, match="one shape"):
        head_tissue_maps(t1[:-1], labels, head, (2.0, 2.0, 2.0))
    with pytest.raises(InputError, match="no white matter"):
        head_tissue_maps(t1, np.where(labels == 3, 2, labels), head, (2.0, 2.0, 2.0))
    with pytest.raises(InputError, match="lack bone"):
        simulate_head({k: np.zeros(3) for k in HEAD_TISSUES if k != "bone"}, "pd")
    with pytest.raises(ConfigError):
        simulate_head(head_tissue_maps(t1, labels, head, (2.0, 2.0, 2.0)), "flair")
    with pytest.raises(ConfigError):
        HeadSimulationParams(partial_volume=-1.0)
