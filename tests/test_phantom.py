"""Multi-contrast phantom: physics, labels, noise, bias field and the shipped sample."""

from __future__ import annotations

import numpy as np
import pytest

from zeroshot_core.errors import ConfigError, InputError
from zeroshot_core.samples.phantom import (
    LABELS,
    Phantom,
    PhantomParams,
    SequenceParams,
    TissueParams,
    bias_field,
    make_phantom,
    signal,
    simulate,
    tissue_labels,
)
from zeroshot_core.samples.sample_data import SAMPLE_KEYS, license_text, load_sample, sample_paths


def _tiny_maps() -> dict[str, np.ndarray]:
    """Concentric shells on a 16^3 grid: CSF rim, GM shell, WM core, with a blurred edge."""
    grid = np.indices((16, 16, 16)) - 7.5
    r = np.sqrt((grid ** 2).sum(0))
    wm = np.clip(4.5 - r, 0, 1)
    gm = np.clip(5.5 - r, 0, 1) * (1 - wm)
    csf = np.clip(7.0 - r, 0, 1) * (1 - wm - gm)
    return {"csf": csf, "gm": gm, "wm": wm}


def _means(image: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    return {LABELS[k]: float(image[labels == k].mean()) for k in (1, 2, 3)}


def _assert_contrast(images: dict[str, np.ndarray], labels: np.ndarray) -> None:
    t1, t2, pd = (_means(images[m], labels) for m in ("t1", "t2", "pd"))
    assert t1["wm"] > t1["gm"] > t1["csf"]
    assert t2["csf"] > t2["gm"] > t2["wm"]
    assert pd["csf"] > pd["gm"] > pd["wm"]


def test_signal_equation():
    tissue = TissueParams(1000.0, 100.0, 0.8)
    seq = SequenceParams(2000.0, 50.0)
    assert signal(tissue, seq) == pytest.approx(0.8 * (1 - np.exp(-2.0)) * np.exp(-0.5))


def test_contrast_ordering_on_tiny_maps():
    maps = _tiny_maps()
    labels = tissue_labels(maps)
    _assert_contrast({m: simulate(maps, m) for m in ("t1", "t2", "pd")}, labels)


def test_partial_volume_is_linear_mix():
    pure = {k: np.eye(3)[i][None] for i, k in enumerate(("csf", "gm", "wm"))}
    mixed = {"csf": np.array([[0.25]]), "gm": np.array([[0.5]]), "wm": np.array([[0.25]])}
    for modality in ("t1", "t2", "pd"):
        levels = simulate(pure, modality)[0]
        assert simulate(mixed, modality)[0, 0] == pytest.approx(0.25 * levels[0] + 0.5 * levels[1] + 0.25 * levels[2])


def test_background_is_zero_without_noise():
    maps = _tiny_maps()
    empty = sum(maps.values()) == 0
    assert empty.any()
    for modality in ("t1", "t2", "pd"):
        image = simulate(maps, modality)
        assert np.all(image[empty] == 0.0) and np.all(image[~empty] > 0.0)


def test_labels_follow_the_most_probable_class():
    maps = _tiny_maps()
    labels = tissue_labels(maps)
    stack = np.stack([1 - sum(maps.values()), maps["csf"], maps["gm"], maps["wm"]])
    assert labels.dtype == np.uint8
    assert set(np.unique(labels)) == {0, 1, 2, 3}
    picked = np.take_along_axis(stack, labels[None].astype(int), 0)[0]
    assert np.allclose(picked, stack.max(0))
    assert labels[8, 8, 8] == 3 and labels[0, 0, 0] == 0


def test_rician_noise_seeded_and_reproducible():
    maps = _tiny_maps()
    a = simulate(maps, "t1", PhantomParams(noise=0.05, seed=3))
    b = simulate(maps, "t1", PhantomParams(noise=0.05, seed=3))
    c = simulate(maps, "t1", PhantomParams(noise=0.05, seed=4))
    clean = simulate(maps, "t1")
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.min() >= 0  # magnitude data
    background = tissue_labels(maps) == 0
    assert a[background].mean() > 0  # Rician floor in the background
    # other weightings get their own noise stream
    t2_noise = simulate(maps, "t2", PhantomParams(noise=0.05, seed=3)) - simulate(maps, "t2")
    assert not np.allclose(t2_noise[background], (a - clean)[background])


def test_noise_level_is_relative_to_brightest_tissue():
    flat = {"csf": np.zeros((64, 64)), "gm": np.zeros((64, 64)), "wm": np.ones((64, 64))}
    params = PhantomParams(noise=0.05, seed=0)
    level = signal(params.wm, params.t1w)
    noisy = simulate(flat, "t1", params)
    # at high SNR Rician noise is close to Gaussian with the same sigma
    assert noisy.std() == pytest.approx(0.05 * level, rel=0.1)


def test_bias_field_smooth_mean_one_and_bounded():
    field = bias_field((24, 28, 20), 0.3, seed=5)
    assert field.mean() == pytest.approx(1.0, abs=1e-5)
    assert np.log(field).max() - np.log(field).min() == pytest.approx(0.3, rel=1e-4)
    # smooth: neighbouring voxels differ far less than the whole span
    assert np.abs(np.diff(field, axis=0)).max() < 0.05
    assert np.array_equal(field, bias_field((24, 28, 20), 0.3, seed=5))
    assert not np.array_equal(field, bias_field((24, 28, 20), 0.3, seed=6))
    assert np.array_equal(bias_field((4, 4), 0.0), np.ones((4, 4)))


def test_bias_field_is_shared_by_all_weightings():
    maps = _tiny_maps()
    params = PhantomParams(bias=0.2, seed=1)
    for modality in ("t1", "t2", "pd"):
        clean = simulate(maps, modality)
        ratio = simulate(maps, modality, params)[clean > 0] / clean[clean > 0]
        assert np.allclose(ratio, bias_field(clean.shape, 0.2, seed=1)[clean > 0], rtol=1e-5)


def test_make_phantom_bundles_the_weightings():
    maps = _tiny_maps()
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    phantom = make_phantom(maps, PhantomParams(noise=0.01, seed=2), affine)
    assert isinstance(phantom, Phantom)
    assert phantom.t1.shape == phantom.t2.shape == phantom.pd.shape == phantom.labels.shape == (16, 16, 16)
    assert np.array_equal(phantom.affine, affine)
    assert np.array_equal(phantom.image("pd"), phantom.pd)
    assert np.array_equal(phantom.labels, tissue_labels(maps))


def test_two_dimensional_maps():
    maps = {k: v[8] for k, v in _tiny_maps().items()}
    image = simulate(maps, "t2", PhantomParams(noise=0.02, bias=0.1))
    assert image.shape == (16, 16) and image.dtype == np.float32


@pytest.mark.parametrize("kwargs", [
    {"noise": -0.1}, {"noise": 0.9}, {"bias": 1.0}, {"bias": float("nan")}, {"seed": -1}, {"seed": 1.5},
    {"csf": (2569.0, 329.0, 1.0)},
])
def test_params_validated(kwargs):
    with pytest.raises(ConfigError):
        PhantomParams(**kwargs)


def test_tissue_and_sequence_validated():
    with pytest.raises(ConfigError):
        TissueParams(-1.0, 80.0, 0.8)
    with pytest.raises(ConfigError):
        TissueParams(800.0, 80.0, 1.5)
    with pytest.raises(ConfigError):
        SequenceParams(100.0, 200.0)


def test_bad_inputs():
    maps = _tiny_maps()
    with pytest.raises(ConfigError, match="modality"):
        simulate(maps, "flair")
    with pytest.raises(InputError, match="lack"):
        simulate({"gm": maps["gm"], "wm": maps["wm"]}, "t1")
    with pytest.raises(InputError, match="sum"):
        simulate({**maps, "csf": np.ones_like(maps["csf"])}, "t1")
    with pytest.raises(InputError, match="shape"):
        simulate({**maps, "csf": maps["csf"][:8]}, "t1")


# --- the shipped sample -------------------------------------------------------------------

def test_sample_volumes_share_one_grid():
    volumes = {key: load_sample(key) for key in SAMPLE_KEYS}
    shape, affine = volumes["t1"].data.shape, volumes["t1"].affine
    for volume in volumes.values():
        assert volume.data.shape == shape
        assert np.allclose(volume.affine, affine)
        assert np.isfinite(volume.data).all()
    assert volumes["t1"].spacing == pytest.approx((2.0, 2.0, 2.0))
    assert min(shape) >= 64  # a whole brain, not a toy


def test_sample_contrast_and_labels():
    labels = load_sample("labels").data
    assert set(np.unique(labels).astype(int)) == {0, 1, 2, 3}
    labels = labels.astype(np.uint8)
    images = {m: load_sample(m).data for m in ("t1", "t2", "pd")}
    _assert_contrast(images, labels)
    for image in images.values():  # background dark, brain bright
        assert image[labels == 0].mean() < 0.2 * image[labels > 0].mean()


def test_sample_files_are_small_and_licensed():
    paths = sample_paths()
    assert sum(p.stat().st_size for p in paths.values()) < 3 * 1024 * 1024
    text = license_text()
    assert "Louis Collins" in text and "Fonov" in text


def test_unknown_sample_raises():
    with pytest.raises(ConfigError, match="unknown sample"):
        load_sample("ct")
