"""A real third-party package (examples/zeroshot-example-plugin) found through its entry point.

The example is built with pip (offline, no build isolation) into a temporary
``--target`` folder that is put on ``sys.path`` only while a test runs, so the
shared virtual environment is never modified.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from zeroshot_core.errors import ModelError, PluginError
from zeroshot_core.guidance.base import Guidance
from zeroshot_core.plugins import manager as plugins
from zeroshot_core.segmenters.base import Segmenter

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "zeroshot-example-plugin"
PACKAGE = "zeroshot-example-plugin"
MODULE = "zeroshot_example_plugin"


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory) -> Path:
    """Folder holding the built example package and its ``.dist-info``."""
    work = tmp_path_factory.mktemp("example-plugin")
    source = work / "source"  # build from a copy: setuptools writes build/ and egg-info next to it
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = work / "site"
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
         "--quiet", "--target", str(target), str(source)],
        check=True, env=env, capture_output=True, text=True, timeout=300,
    )
    return target


@pytest.fixture
def example_on_path(installed_example, monkeypatch):
    """The example is importable and discoverable; fresh registries before and after."""
    monkeypatch.syspath_prepend(str(installed_example))
    monkeypatch.delenv(plugins.DISABLE_ENV, raising=False)
    plugins.reset_registries()
    yield installed_example
    for name in [m for m in sys.modules if m == MODULE or m.startswith(MODULE + ".")]:
        del sys.modules[name]
    plugins.reset_registries()


def example_version(site: Path) -> str:
    (info,) = site.glob(f"{MODULE}-*.dist-info")
    return info.name[len(MODULE) + 1 : -len(".dist-info")]


def test_example_is_discovered_with_package_and_version(example_on_path):
    version = example_version(example_on_path)
    assert version == "0.1.0"
    for registry, name in ((plugins.guidance_registry(), "gradient"), (plugins.segmenter_registry(), "quantile")):
        entry = registry.entry(name)
        assert (entry.package, entry.version) == (PACKAGE, version)
    # the built-ins are still there and still ours
    assert plugins.guidance_registry().entry("contour").package == "napari-zeroshot"
    assert plugins.segmenter_registry().entry("kmeans").package == "napari-zeroshot"


def test_example_is_absent_when_plugins_are_disabled(example_on_path, monkeypatch):
    monkeypatch.setenv(plugins.DISABLE_ENV, "1")
    plugins.reset_registries()
    assert "gradient" not in plugins.guidance_registry()
    assert "quantile" not in plugins.segmenter_registry()
    with pytest.raises(PluginError, match="unknown guidance 'gradient'; valid names: .*contour"):
        plugins.guidance_registry().create("gradient")


def test_example_guidance_is_a_working_strategy(example_on_path):
    guidance = plugins.guidance_registry().create("gradient", sigma=0.5)
    assert isinstance(guidance, Guidance) and guidance.name == "gradient"
    assert guidance.condition_channels == 1
    assert guidance.params() == {"sigma": 0.5, "percentile": 99.0, "strength": 1.0}
    rebuilt = plugins.guidance_registry().create("gradient", **json.loads(json.dumps(guidance.params())))
    image = -np.ones((32, 32), np.float32)
    image[8:24, 8:24] = 0.5
    mask = image > -1
    channels = rebuilt.static_condition(image, mask)
    assert channels.shape == (1, 32, 32) and channels.dtype == np.float32
    assert channels.min() == -1.0 and channels.max() == 1.0
    assert channels[0, 16, 16] == -1.0  # flat inside
    assert channels[0, 8, 16] > 0  # on the outline
    assert np.array_equal(channels, guidance.static_condition(image, mask))
    # a model trained with another sigma cannot be used; strength may differ
    assert rebuilt.compatibility_error("gradient", {"sigma": 0.5, "strength": 0.3}, 1) is None
    assert "sigma" in rebuilt.compatibility_error("gradient", {"sigma": 2.0}, 1)
    with pytest.raises(PluginError, match="gradient"):
        plugins.guidance_registry().create("gradient", sigma=-1)


def test_example_segmenter_round_trips_its_state(example_on_path):
    registry = plugins.segmenter_registry()
    rng = np.random.default_rng(0)
    image = rng.uniform(-1, 1, (40, 40)).astype(np.float32)
    mask = np.ones(image.shape, bool)
    segmenter = registry.create("quantile")
    assert isinstance(segmenter, Segmenter) and segmenter.needs_fit
    with pytest.raises(ModelError, match="not fitted"):
        segmenter.segment(image, mask)
    segmenter.fit([image], [mask])
    rebuilt = registry.create("quantile", state=json.loads(json.dumps(segmenter.state())))
    labels = rebuilt.segment(image, mask)
    assert np.array_equal(labels, segmenter.segment(image, mask))
    counts = np.bincount(labels.ravel(), minlength=4)
    assert counts[0] == 0 and all(abs(c - image.size / 3) < 2 for c in counts[1:])


def phantom_volume(shape=(40, 40, 6), invert: bool = False) -> np.ndarray:
    """A head-like ellipsoid with three tissue levels on a dark background."""
    x, y = np.meshgrid(np.linspace(-1, 1, shape[0]), np.linspace(-1, 1, shape[1]), indexing="ij")
    r = np.sqrt((x / 0.85) ** 2 + (y / 0.7) ** 2)
    levels = (300.0, 600.0, 900.0)[::-1] if invert else (300.0, 600.0, 900.0)
    plane = np.zeros(shape[:2], np.float32)
    plane[r < 0.95] = levels[2]
    plane[r < 0.6] = levels[1]
    plane[r < 0.3] = levels[0]
    return np.repeat(plane[:, :, None], shape[2], axis=2)


def test_train_and_translate_with_the_example_guidance(example_on_path, tmp_path, monkeypatch):
    from zeroshot_core import api
    from zeroshot_core.model.store import read_card

    targets = tmp_path / "targets"
    targets.mkdir()
    np.save(targets / "t1.npy", phantom_volume())
    config = api.TrainConfig(model_size="tiny", image_size=32, max_steps=3, batch_size=2, guidance="gradient",
                             guidance_params={"sigma": 0.5}, segmenters=("kmeans", "quantile"), device="cpu",
                             checkpoint_every=0)
    model = api.train([targets], tmp_path / "model", config)
    card = read_card(model)
    assert card.guidance == "gradient" and card.condition_channels == 1
    assert card.guidance_params == {"sigma": 0.5, "percentile": 99.0, "strength": 1.0}
    assert len(card.segmenters["quantile"]["thresholds"]) == 2

    source = phantom_volume(invert=True)
    options = api.TranslateOptions(steps=2, device="cpu", seed=0, batch_size=8)
    result = api.translate(source, model=model, options=options)
    assert result.data.shape == source.shape
    assert np.isfinite(result.data).all()

    labels = api.segment(result, model=model, segmenter="quantile")
    assert labels.shape == source.shape and labels.dtype == np.int16
    assert set(np.unique(labels).tolist()) <= {0, 1, 2, 3}
    # the model cannot be used once the plugin that made it is switched off
    monkeypatch.setenv(plugins.DISABLE_ENV, "1")
    plugins.reset_registries()
    with pytest.raises(PluginError, match="unknown guidance 'gradient'"):
        api.translate(source, model=model, options=options)
