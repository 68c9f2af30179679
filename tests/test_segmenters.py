"""Tests of the built-in segmenters (kmeans, multiotsu) and their contract."""

from __future__ import annotations

import json
from importlib import metadata

import numpy as np
import pytest

from zeroshot_core.errors import ConfigError, InputError, ModelError, PluginError
from zeroshot_core.plugins import manager as plugins
from zeroshot_core.segmenters.base import Segmenter, intensity_label_names, masked_pixels
from zeroshot_core.segmenters.kmeans import KMeansSegmenter
from zeroshot_core.segmenters.multiotsu import MultiOtsuSegmenter

LEVELS = (-0.6, 0.0, 0.6)  # CSF, grey matter, white matter on a T1


def phantom(shape: tuple[int, ...], noise: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Concentric shells with three intensity levels inside a ball, -1 outside.

    The brightest class is the outer shell and the darkest the core, so the
    order of the classes in space is not the order of their intensities.

    Returns
    -------
    image, mask, truth (1 = darkest ... 3 = brightest, 0 outside)
    """
    grids = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    radius = np.sqrt(sum(g**2 for g in grids))
    truth = np.zeros(shape, dtype=np.int16)
    truth[radius < 0.9] = 3
    truth[radius < 0.6] = 2
    truth[radius < 0.3] = 1
    image = np.full(shape, -1.0, dtype=np.float32)
    for label, level in enumerate(LEVELS, start=1):
        image[truth == label] = level
    if noise:
        image += np.random.default_rng(seed).normal(0, noise, shape).astype(np.float32)
    mask = truth > 0
    image[~mask] = -1.0
    return image, mask, truth


@pytest.fixture(scope="module")
def registry() -> plugins.Registry:
    return plugins.build_registries(load_entry_points=False).segmenters


def fitted_kmeans(registry: plugins.Registry, n_clusters: int = 3) -> Segmenter:
    slices = [phantom((48, 48), noise=0.05, seed=s) for s in range(3)]
    segmenter = registry.create("kmeans", n_clusters=n_clusters)
    segmenter.fit([s[0] for s in slices], [s[1] for s in slices])
    return segmenter


# --------------------------------------------------------------------------- kmeans


def test_kmeans_labels_are_ordered_by_intensity(registry):
    segmenter = fitted_kmeans(registry)
    centres = segmenter.state()["centres"]
    assert centres == sorted(centres)
    assert np.allclose(centres, LEVELS, atol=0.02)
    image, mask, truth = phantom((64, 64), noise=0.05, seed=7)
    labels = segmenter.segment(image, mask)
    assert (labels == truth).mean() > 0.99
    means = [image[labels == k].mean() for k in (1, 2, 3)]
    assert means == sorted(means)
    assert segmenter.label_names() == {0: "background", 1: "CSF", 2: "grey matter", 3: "white matter"}


def test_kmeans_generic_label_names_for_other_cluster_counts(registry):
    segmenter = fitted_kmeans(registry, n_clusters=4)
    names = segmenter.label_names()
    assert sorted(names) == [0, 1, 2, 3, 4]
    assert names[1] == "class 1 (darkest)" and names[4] == "class 4 (brightest)"
    assert "CSF" not in names.values()
    assert len(segmenter.state()["centres"]) == 4


@pytest.mark.parametrize("shape", [(40, 40), (12, 32, 32)])
def test_kmeans_state_survives_json_and_registry(registry, shape):
    segmenter = fitted_kmeans(registry)
    text = json.dumps(segmenter.state())
    rebuilt = registry.create("kmeans", state=json.loads(text))
    assert rebuilt.state() == segmenter.state()
    image, mask, _ = phantom(shape, noise=0.1, seed=3)
    expected = segmenter.segment(image, mask)
    got = rebuilt.segment(image, mask)
    assert got.dtype == np.int16 and got.shape == shape
    assert np.array_equal(got, expected)


def test_kmeans_is_deterministic_for_a_seed(registry):
    assert fitted_kmeans(registry).state() == fitted_kmeans(registry).state()


def test_kmeans_without_state_fits_itself_on_the_image():
    image, mask, truth = phantom((10, 40, 40), noise=0.05)
    segmenter = KMeansSegmenter()
    assert not segmenter.fitted
    labels = segmenter.segment(image, mask)
    assert segmenter.fitted
    assert (labels == truth).mean() > 0.99
    assert np.allclose(segmenter.state()["centres"], LEVELS, atol=0.02)


def test_kmeans_empty_state_means_unfitted():
    segmenter = KMeansSegmenter(state={})
    assert not segmenter.fitted
    with pytest.raises(ModelError, match="not fitted"):
        segmenter.state()


@pytest.mark.parametrize(
    "state",
    [
        {"centres": [0.5, -0.5, 0.0]},
        {"centres": [0.1]},
        {"centres": ["a", "b"]},
        {"centres": [0.0, float("nan")]},
        {"format": 99, "centres": [-0.5, 0.5]},
        {"something": 1},
    ],
)
def test_kmeans_rejects_corrupt_state(registry, state):
    with pytest.raises(ModelError, match="retrain|update"):
        registry.create("kmeans", state=state)


def test_kmeans_parameters_are_validated(registry):
    with pytest.raises(ConfigError):
        KMeansSegmenter(n_clusters=1)
    with pytest.raises(ConfigError, match="contradicts"):
        KMeansSegmenter(state={"centres": [-0.5, 0.5]}, n_clusters=3)
    with pytest.raises(PluginError, match="kmeans"):
        registry.create("kmeans", colour="red")


def test_kmeans_needs_enough_distinct_values():
    image = np.where(np.arange(100).reshape(10, 10) < 50, -0.5, 0.5).astype(np.float32)
    with pytest.raises(InputError, match="distinct"):
        KMeansSegmenter(n_clusters=3).fit([image], [np.ones(image.shape, bool)])


def test_masked_pixels_subsample_is_bounded_seeded_and_from_the_masks():
    rng = np.random.default_rng(1)
    images = [rng.uniform(-1, 1, (30, 30)).astype(np.float32) for _ in range(5)]
    masks = [img > 0 for img in images]
    everything = masked_pixels(images, masks)
    assert everything.size == sum(int(m.sum()) for m in masks)
    sample = masked_pixels(images, masks, max_pixels=500, seed=3)
    assert sample.size == 500
    assert np.all(sample > 0)
    assert np.isin(sample, everything).all()
    assert np.array_equal(sample, masked_pixels(images, masks, max_pixels=500, seed=3))
    assert not np.array_equal(sample, masked_pixels(images, masks, max_pixels=500, seed=4))


# ------------------------------------------------------------------------ multiotsu


@pytest.mark.parametrize("shape", [(64, 64), (16, 40, 40)])
def test_multiotsu_recovers_three_levels(registry, shape):
    image, mask, truth = phantom(shape)
    segmenter = registry.create("multiotsu")
    assert not segmenter.needs_fit and segmenter.state() == {}
    labels = segmenter.segment(image, mask)
    assert labels.dtype == np.int16 and labels.shape == shape
    assert np.array_equal(labels, truth)


def test_multiotsu_on_noisy_levels_and_two_classes(registry):
    image, mask, truth = phantom((64, 64), noise=0.05)
    labels = registry.create("multiotsu").segment(image, mask)
    assert (labels == truth).mean() > 0.99
    two = registry.create("multiotsu", classes=2).segment(image, mask)
    assert set(np.unique(two[mask]).tolist()) == {1, 2}
    assert registry.create("multiotsu", classes=2).label_names()[2] == "class 2 (brightest)"


def test_multiotsu_state_round_trip(registry):
    segmenter = registry.create("multiotsu", classes=3)
    rebuilt = registry.create("multiotsu", state=json.loads(json.dumps(segmenter.state())))
    image, mask, _ = phantom((32, 32), noise=0.1)
    assert np.array_equal(segmenter.segment(image, mask), rebuilt.segment(image, mask))


def test_multiotsu_errors(registry):
    flat = np.zeros((16, 16), dtype=np.float32)
    flat[:8] = 0.5
    with pytest.raises(InputError, match="classes"):
        MultiOtsuSegmenter(classes=3).segment(flat, np.ones(flat.shape, bool))
    with pytest.raises(ConfigError):
        MultiOtsuSegmenter(classes=9)
    with pytest.raises(PluginError, match="multiotsu"):
        registry.create("multiotsu", classes=1)


# ---------------------------------------------------------------------- both


@pytest.mark.parametrize("name", ["kmeans", "multiotsu"])
@pytest.mark.parametrize("shape", [(48, 48), (8, 32, 32)])
def test_background_stays_zero(registry, name, shape):
    image, mask, _ = phantom(shape, noise=0.05)
    image[~mask] = 1.0  # bright outside: must still be background
    image[tuple(n // 2 for n in shape)] = np.nan  # not finite: background too
    segmenter = fitted_kmeans(registry) if name == "kmeans" else registry.create(name)
    labels = segmenter.segment(image, mask)
    assert labels.shape == shape and labels.dtype == np.int16
    assert np.all(labels[~mask] == 0)
    assert labels[tuple(n // 2 for n in shape)] == 0
    inside = mask.copy()
    inside[tuple(n // 2 for n in shape)] = False
    assert np.all(labels[inside] >= 1)


@pytest.mark.parametrize("name", ["kmeans", "multiotsu"])
def test_empty_mask_gives_all_background(registry, name):
    image, _, _ = phantom((20, 20), noise=0.05)
    labels = registry.create(name).segment(image, np.zeros(image.shape, bool))
    assert labels.dtype == np.int16 and not labels.any()


@pytest.mark.parametrize("name", ["kmeans", "multiotsu"])
def test_input_validation(registry, name):
    segmenter = registry.create(name)
    with pytest.raises(InputError, match="mask shape"):
        segmenter.segment(np.zeros((8, 8), np.float32), np.ones((8, 9), bool))
    with pytest.raises(InputError, match="2-D or 3-D"):
        segmenter.segment(np.zeros(8, np.float32), np.ones(8, bool))


def test_registry_lists_both_with_package_and_version(registry):
    version = metadata.version("napari-zeroshot")
    for name, cls in (("kmeans", KMeansSegmenter), ("multiotsu", MultiOtsuSegmenter)):
        entry = registry.entry(name)
        assert (entry.package, entry.version) == ("napari-zeroshot", version)
        made = registry.create(name)
        assert isinstance(made, cls) and isinstance(made, Segmenter) and made.name == name
    plugins.reset_registries()
    assert {"kmeans", "multiotsu"} <= set(plugins.segmenter_registry().names())


def test_intensity_label_names():
    assert intensity_label_names(3) == {0: "background", 1: "CSF", 2: "grey matter", 3: "white matter"}
    assert list(intensity_label_names(5)) == [0, 1, 2, 3, 4, 5]
    assert intensity_label_names(5)[3] == "class 3"
