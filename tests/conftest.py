"""Shared fixtures: paths to ../shared/data and tiny models trained once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Small tensors: one thread is fastest, and much faster on a busy machine.
torch.set_num_threads(int(os.environ.get("ZEROSHOT_TEST_THREADS", "1")))

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ZEROSHOT_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the repository (tests need it; the product does not)."""
    assert SHARED.is_dir(), f"test data folder {SHARED} is missing"
    return SHARED


@pytest.fixture(scope="session")
def ixi_t1_files(shared_data: Path) -> list[Path]:
    files = sorted((shared_data / "ixi_t1" / "nifti").glob("*T1_ds.nii.gz"))
    assert len(files) >= 2
    return files


def _train_tiny(out: Path, files: list[Path], guidance: str, **params) -> Path:
    from zeroshot_core.training.loop import TrainConfig, train_iter

    config = TrainConfig(guidance=guidance, guidance_params=params, model_size="tiny", image_size=32,
                         max_steps=4, batch_size=4, checkpoint_every=0, device="cpu")
    for _ in train_iter(files, out, config):
        pass
    return out


@pytest.fixture(scope="session")
def tiny_contour_model(tmp_path_factory, ixi_t1_files) -> Path:
    """A 4-step tiny contour model (32 px) trained on two IXI T1 volumes."""
    return _train_tiny(tmp_path_factory.mktemp("models") / "contour", ixi_t1_files[:2], "contour")


@pytest.fixture(scope="session")
def tiny_none_model(tmp_path_factory, ixi_t1_files) -> Path:
    """A 4-step tiny unconditional (SDEdit) model."""
    return _train_tiny(tmp_path_factory.mktemp("models") / "none", ixi_t1_files[:1], "none")


@pytest.fixture()
def t1_path(ixi_t1_files) -> Path:
    return ixi_t1_files[0]
