"""Fixtures of the napari plugin tests: a tiny model, NIfTI files, notifications, a docked widget."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import nibabel as nib
import numpy as np
import pytest
from napari_helpers import oblique_affine

from zeroshot_core import api
from zeroshot_core.samples.sample_data import sample_paths

WIDGET_NAME = "Zero-shot translation"
PLUGIN = "napari-zeroshot"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-step tiny contour model (32 px) trained on the phantom T1, with a kmeans segmenter."""
    out = tmp_path_factory.mktemp("napari_models") / "tiny_contour"
    config = api.TrainConfig(model_size="tiny", image_size=32, max_steps=3, batch_size=2, guidance="contour",
                             device="cpu", checkpoint_every=0)
    return api.train([sample_paths()["t1"]], out, config)


@pytest.fixture(scope="session")
def pd_path() -> Path:
    """The shipped PD-weighted phantom (read-only)."""
    return sample_paths()["pd"]


@pytest.fixture()
def oblique_nifti(tmp_path: Path) -> Path:
    """A (X=12, Y=10, Z=6) int16 NIfTI with an oblique affine and a descriptive header."""
    rng = np.random.default_rng(0)
    data = rng.integers(0, 1000, size=(12, 10, 6)).astype(np.int16)
    image = nib.Nifti1Image(data, oblique_affine())
    image.header["descrip"] = b"oblique test volume"
    image.header.set_xyzt_units("mm", "sec")
    path = tmp_path / "oblique.nii.gz"
    nib.save(image, str(path))
    return path


@pytest.fixture()
def notifications() -> Callable[[], list[Any]]:
    """Returns a function listing the napari notifications shown since the fixture started."""
    from napari.utils.notifications import notification_manager

    start = len(notification_manager.records)
    return lambda: list(notification_manager.records[start:])


@pytest.fixture()
def docked(make_napari_viewer, pd_path):
    """A viewer with the PD phantom opened through the reader and the widget docked via the manifest."""
    viewer = make_napari_viewer()
    viewer.open(str(pd_path), plugin=PLUGIN)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, WIDGET_NAME)
    return viewer, widget
