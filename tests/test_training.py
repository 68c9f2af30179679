import json

import numpy as np
import pytest
from safetensors.torch import load_file

from zeroshot_core.errors import ConfigError, InputError, ModelError
from zeroshot_core.guidance.contour import ContourGuidance
from zeroshot_core.imaging.mask import MaskParams
from zeroshot_core.model.store import CARD_FILE, WEIGHTS_FILE, read_card
from zeroshot_core.training.data import augment, collect_files, load_training_set
from zeroshot_core.training.loop import TrainConfig, train_iter


def test_model_folder_has_safetensors_and_a_complete_card(tiny_contour_model, ixi_t1_files):
    files = sorted(p.name for p in tiny_contour_model.iterdir())
    assert CARD_FILE in files and WEIGHTS_FILE in files
    assert not any(name.endswith((".pt", ".pth", ".pkl", ".bin")) for name in files)
    card = json.loads((tiny_contour_model / CARD_FILE).read_text())
    assert card["guidance"] == "contour" and card["condition_channels"] == 1
    assert card["unet"]["in_channels"] == 2 and card["image_size"] == 32
    assert card["training"]["steps"] == 4 and card["training"]["files"] == [p.name for p in ixi_t1_files[:2]]
    assert card["target_intensity"]["high"] > card["target_intensity"]["low"]
    centres = card["segmenters"]["kmeans"]
    assert json.loads(json.dumps(centres)) == centres
    assert load_file(str(tiny_contour_model / WEIGHTS_FILE))


def test_training_slices_skip_empty_ones_and_carry_contours(ixi_t1_files):
    data = load_training_set(ixi_t1_files[:1], ContourGuidance(), 32, MaskParams())
    assert data.images.shape[1:] == (2, 32, 32)
    assert 30 < len(data) < 120  # 120 axial slices (axis 1 points superior), the empty ones skipped
    assert data.images[:, 0].min() >= -1 and data.images[:, 0].max() <= 1
    assert set(np.unique(data.images[:, 1].numpy())) <= {-1.0, 1.0}
    assert data.masks.mean(axis=(1, 2)).min() > 0.02


def test_augmentation_keeps_shape_range_and_channels_aligned():
    import torch

    batch = -torch.ones(4, 2, 16, 16)
    batch[:, :, 4:12, 4:12] = 1.0
    out = augment(batch, torch.Generator().manual_seed(0))
    assert out.shape == batch.shape
    assert out.min() >= -1.0001 and out.max() <= 1.0001
    torch.testing.assert_close(out[:, 0], out[:, 1])


def test_resume_continues_cumulative_steps(tmp_path, ixi_t1_files):
    config = TrainConfig(guidance="none", model_size="tiny", image_size=32, max_steps=2, batch_size=2,
                         device="cpu", segmenters=())
    out = tmp_path / "m"
    losses = [e.loss for e in train_iter(ixi_t1_files[:1], out, config)]
    assert len(losses) == 2 and read_card(out).training["steps"] == 2
    with pytest.raises(ModelError, match="--resume"):
        list(train_iter(ixi_t1_files[:1], out, config))
    more = TrainConfig(**{**config.__dict__, "max_steps": 5})
    steps = [e.step for e in train_iter(ixi_t1_files[:1], out, more, resume=True)]
    assert steps == [3, 4, 5]
    assert read_card(out).training["steps"] == 5


def test_resume_without_state_and_bad_targets(tmp_path):
    with pytest.raises(ModelError, match="resume"):
        list(train_iter([tmp_path], tmp_path / "m", TrainConfig(model_size="tiny"), resume=True))
    with pytest.raises(InputError, match="no training images"):
        collect_files([tmp_path])
    with pytest.raises(InputError, match="no such file"):
        collect_files([tmp_path / "missing"])


@pytest.mark.parametrize("kwargs", [{"model_size": "huge"}, {"image_size": 8}, {"max_steps": 0},
                                    {"ema_decay": 1.0}, {"learning_rate": -1}])
def test_invalid_configs(kwargs):
    with pytest.raises(ConfigError):
        TrainConfig(**kwargs)


def test_a_resumed_run_takes_the_learning_rate_it_is_given(tmp_path, ixi_t1_files):
    import json

    config = TrainConfig(guidance="none", model_size="tiny", image_size=32, max_steps=1, batch_size=2,
                         device="cpu", segmenters=())
    out = tmp_path / "m"
    list(train_iter(ixi_t1_files[:1], out, config))
    lower = TrainConfig(**{**config.__dict__, "max_steps": 2, "learning_rate": 5e-5})
    list(train_iter(ixi_t1_files[:1], out, lower, resume=True))
    state = json.loads((out / "training_state.json").read_text())
    assert [group["lr"] for group in state["param_groups"]] == [5e-5]  # the saved 2e-4 did not win
    assert read_card(out).training["learning_rate"] == 5e-5
