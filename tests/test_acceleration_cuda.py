"""CUDA against CPU: LMI maps, translations, autocast and channels-last on a GPU.

Marked ``cuda``: the default run deselects them (``addopts = -m 'not cuda'``); run them
with ``pytest -m cuda tests/test_acceleration_cuda.py`` (``benchmarks/gpu_check.sh``
does). Without a CUDA GPU they fail: they are never skipped.

Differences between translations are in normalised units (the target intensity range
mapped to [-1, 1]). The tolerances were set before a GPU was available: the CPU
measurements in ``test_acceleration.py`` with a margin for TF32 convolutions (on by
default in cuDNN) and other summation orders; ``gpu_check.sh`` prints the actual
differences.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from device_probe import DeviceCrossings
from test_acceleration import translate_phantom

from zeroshot_core import api
from zeroshot_core.guidance.lmi import LMIGuidance
from zeroshot_core.lmi.dispatch import local_mutual_information
from zeroshot_core.model.acceleration import Acceleration
from zeroshot_core.samples.sample_data import sample_paths

pytestmark = pytest.mark.cuda


@pytest.fixture(autouse=True)
def cuda() -> torch.device:
    """Fail (never skip) where there is no CUDA GPU."""
    assert torch.cuda.is_available(), ("these tests need a CUDA GPU (torch.cuda.is_available() is False); "
                                       "the default run deselects them, -m cuda asks for them")
    return torch.device("cuda")


@pytest.fixture(scope="module")
def tiny_lmi_model(tmp_path_factory) -> str:
    """A tiny lmi model (32 px, 6 steps) trained on the CPU on the bundled phantom T1, saved."""
    from zeroshot_core.training.loop import TrainConfig, train_iter

    out = tmp_path_factory.mktemp("models") / "lmi"
    config = TrainConfig(guidance="lmi", model_size="tiny", image_size=32, max_steps=6, batch_size=4,
                         checkpoint_every=0, device="cpu", segmenters=())
    for _ in train_iter([sample_paths()["t1"]], out, config):
        pass
    return str(out)


def _images(batch: int = 2, size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.avg_pool2d(torch.rand(batch, 1, size + 4, size + 4, generator=g) * 2 - 1, 5, 1)
    return x, torch.cos(5 * x) + 0.05 * torch.randn(x.shape, generator=g)


@pytest.mark.parametrize("normalized", [False, True])
def test_lmi_maps_on_cuda_agree_with_the_cpu(cuda, normalized):
    x, y = _images()
    on_cpu = local_mutual_information(x, y, normalized=normalized)  # the C kernel
    on_cpu_torch = local_mutual_information(x, y, normalized=normalized, backend="torch")
    on_gpu = local_mutual_information(x.to(cuda), y.to(cuda), normalized=normalized)
    assert on_gpu.device.type == "cuda" and on_gpu.dtype == torch.float32
    torch.testing.assert_close(on_gpu.cpu(), on_cpu, rtol=0, atol=1e-4)
    torch.testing.assert_close(on_gpu.cpu(), on_cpu_torch, rtol=0, atol=1e-4)


def test_lmi_of_cuda_tensors_stays_on_the_gpu(cuda):
    x, y = _images()
    x, y = x.to(cuda), y.to(cuda)
    guidance = LMIGuidance()
    with DeviceCrossings() as probe:
        channels = guidance.dynamic_condition(x, y)
    assert channels.device.type == "cuda" and channels.shape == (2, 2, 64, 64)
    assert probe.moved("cpu", "cuda") == 0
    # Only the tile plan reads back a few numbers (the bins in reach): 4 per tile, not the image.
    assert probe.moved("cuda", "cpu") + probe.moved("cuda", "python") <= 64, probe.crossings


def test_a_translation_on_cuda_agrees_with_the_cpu(cuda, tiny_lmi_model):
    on_cpu, _ = translate_phantom("lmi", Acceleration("off"), "cpu", steps=10, model=tiny_lmi_model)
    on_gpu, result = translate_phantom("lmi", Acceleration("off"), "cuda", steps=10, model=tiny_lmi_model)
    assert result.model.device.type == "cuda"
    difference = np.abs(on_gpu - on_cpu)
    assert difference.mean() <= 0.01 and difference.max() <= 0.05, (difference.mean(), difference.max())


@pytest.mark.parametrize("autocast,mean,largest", [("bf16", 0.015, 0.2), ("fp16", 0.01, 0.1)])
def test_autocast_on_cuda_runs_and_is_close(cuda, autocast, mean, largest):
    model = api.load_model(None, "lmi", cuda)
    dtypes = []
    hook = model.unet.register_forward_hook(lambda module, args, out: dtypes.append(out.sample.dtype))
    try:
        plain, _ = translate_phantom("lmi", Acceleration("off"), "cuda", model=model)
        half, _ = translate_phantom("lmi", Acceleration(autocast=autocast), "cuda", model=model)
    finally:
        hook.remove()
    assert torch.float32 in dtypes and Acceleration(autocast).dtype in dtypes
    difference = np.abs(half - plain)
    assert 1e-6 < difference.mean() <= mean and difference.max() <= largest, (difference.mean(), difference.max())


def test_channels_last_on_cuda_is_close(cuda):
    model = api.load_model(None, "contour", cuda)
    plain, _ = translate_phantom("contour", Acceleration("off"), "cuda", model=model)
    layout, _ = translate_phantom("contour", Acceleration("off", channels_last=True), "cuda", model=model)
    difference = np.abs(layout - plain)
    assert difference.mean() <= 0.002 and difference.max() <= 0.02, (difference.mean(), difference.max())
