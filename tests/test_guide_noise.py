"""Guide-noise augmentation: Rician noise on the training guide's reference, inside the object."""

import json

import pytest
import torch

from zeroshot_core.errors import ConfigError
from zeroshot_core.training.contrast import draw_guide_noise, noisy_reference
from zeroshot_core.training.loop import TrainConfig, train_iter


def _reference() -> torch.Tensor:
    reference = torch.full((3, 1, 64, 64), -1.0)
    reference[:, :, 16:48, 16:48] = 0.2  # the object: y = 0.6 in [0, 1] units
    return reference


def test_zero_std_leaves_the_reference_and_the_background_is_kept():
    reference = _reference()
    std, real, imaginary = draw_guide_noise(reference.shape, 0.1, torch.Generator().manual_seed(0))
    out = noisy_reference(reference, torch.tensor([0.0, std[1], std[2]]), real, imaginary)
    torch.testing.assert_close(out[0], reference[0])
    outside = reference == -1.0
    assert (out[outside] == -1.0).all()
    assert not torch.equal(out[1:], reference[1:]) and out.min() >= -1.0 and out.max() <= 1.0


def test_the_noise_has_the_drawn_strength_inside():
    reference = _reference()
    _, real, imaginary = draw_guide_noise(reference.shape, 0.1, torch.Generator().manual_seed(1))
    std = torch.tensor([0.02, 0.05, 0.1])
    out = noisy_reference(reference, std, real, imaginary)
    inside = (out[:, 0, 16:48, 16:48] + 1.0) / 2.0  # back to [0, 1]
    measured = inside.reshape(3, -1).std(dim=1)
    torch.testing.assert_close(measured, std, rtol=0.15, atol=0.0)  # Rician ≈ Gaussian at SNR 6..30
    assert (inside.reshape(3, -1).mean(dim=1) - 0.6).abs().max() < 0.01


def test_draws_are_reproducible_and_bounded():
    a = draw_guide_noise((8, 1, 4, 4), 0.1, torch.Generator().manual_seed(3))
    b = draw_guide_noise((8, 1, 4, 4), 0.1, torch.Generator().manual_seed(3))
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y)
    assert ((a[0] >= 0) & (a[0] <= 0.1)).all()


@pytest.mark.parametrize("value", [-0.1, 0.6])
def test_invalid_guide_noise_is_refused(value):
    with pytest.raises(ConfigError, match="guide noise"):
        TrainConfig(guide_noise=value)


def test_a_run_with_guide_noise_trains_and_records_it(ixi_t1_files, tmp_path):
    out = tmp_path / "m"
    config = TrainConfig(guidance="lmi", model_size="tiny", image_size=32, max_steps=2, batch_size=2,
                         checkpoint_every=0, device="cpu", guide_noise=0.1)
    losses = [event.loss for event in train_iter(ixi_t1_files[:1], out, config)]
    assert len(losses) == 2 and all(loss == loss for loss in losses)
    assert json.loads((out / "model.json").read_text())["training"]["guide_noise"] == 0.1
