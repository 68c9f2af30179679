"""Tests of the ``lmi`` guidance strategy."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from zeroshot_core.errors import ConfigError, PluginError
from zeroshot_core.guidance import lmi as lmi_module
from zeroshot_core.guidance.lmi import LMIGuidance
from zeroshot_core.lmi.dispatch import local_mutual_information


def phantom(size: int = 24, seed: int = 0) -> torch.Tensor:
    """Two nested regions plus noise, (1, 1, size, size) in [-1, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - size / 2
    image = np.full((size, size), -1.0)
    image[yy**2 + xx**2 < (size / 2.5) ** 2] = 0.2
    image[(yy - 2) ** 2 + (xx + 3) ** 2 < (size / 6) ** 2] = 0.8
    image += 0.05 * rng.standard_normal(image.shape)
    return torch.tensor(np.clip(image, -1, 1), dtype=torch.float32)[None, None]


def registry():
    from zeroshot_core.plugins.manager import build_registries

    return build_registries(load_entry_points=False).guidance


def test_channel_counts_per_variant():
    paper = LMIGuidance()
    assert (paper.static_channels, paper.dynamic_channels, paper.condition_channels) == (0, 2, 2)
    assert paper.strength == 1.0 and not paper.corrects_x0
    both = LMIGuidance(gradient_scale=0.05)
    assert both.condition_channels == 2 and both.corrects_x0 and both.strength == 1.0
    gradient_only = LMIGuidance(channels=False, gradient_scale=0.05)
    assert gradient_only.condition_channels == 0 and gradient_only.corrects_x0
    assert gradient_only.strength == 0.5
    assert LMIGuidance(channels=False, gradient_scale=0.05, strength=0.3).strength == 0.3
    x = torch.zeros(2, 1, 8, 8)
    assert gradient_only.dynamic_condition(x, x).shape == (2, 0, 8, 8)
    assert gradient_only.static_condition(np.zeros((8, 8), np.float32), np.ones((8, 8), bool)).shape == (0, 8, 8)


def test_dynamic_condition_shape_range_and_meaning():
    guidance = LMIGuidance(bins=8)
    reference = phantom().repeat(2, 1, 1, 1)
    noisy = 0.3 * reference + 0.95 * torch.randn(reference.shape, generator=torch.Generator().manual_seed(1))
    channels = guidance.dynamic_condition(reference, noisy)
    assert channels.shape == (2, 2, 24, 24) and channels.dtype == torch.float32
    assert channels.min() >= -1.0 and channels.max() <= 1.0
    # channel 1 is LMI(ref, ref) scaled by log(bins)
    expected = local_mutual_information(reference, reference, bins=8) * (2 / math.log(8)) - 1
    assert torch.allclose(channels[:, 1:], expected, atol=1e-6)
    # the cross channel is higher for a cleaner sample
    clean = guidance.dynamic_condition(reference, reference)
    assert clean[:, 0].mean() > channels[:, 0].mean()
    assert torch.allclose(clean[:, 0], clean[:, 1])
    unscaled = LMIGuidance(bins=8, scale_channels=False).dynamic_condition(reference, noisy)
    assert torch.allclose(unscaled[:, 1:], local_mutual_information(reference, reference, bins=8), atol=1e-6)
    normalized = LMIGuidance(bins=8, normalized=True).dynamic_condition(reference, noisy)
    assert normalized.min() >= -1.0 and normalized.max() <= 1.0


def test_self_channel_is_cached_per_reference_tensor(monkeypatch):
    guidance = LMIGuidance(bins=8)
    reference, sample = phantom(), torch.zeros(1, 1, 24, 24)
    calls = []
    original = lmi_module.local_mutual_information

    def counting(x, y, **options):
        calls.append(x is y)
        return original(x, y, **options)

    monkeypatch.setattr(lmi_module, "local_mutual_information", counting)
    first = guidance.dynamic_condition(reference, sample)
    second = guidance.dynamic_condition(reference, sample + 0.1)
    assert calls.count(True) == 1 and torch.equal(first[:, 1], second[:, 1])
    reference.mul_(-1.0)  # modified in place: recomputed
    guidance.dynamic_condition(reference, sample)
    assert calls.count(True) == 2
    guidance.dynamic_condition(phantom(seed=3), sample)  # another tensor: recomputed
    assert calls.count(True) == 3


def test_dynamic_condition_works_in_inference_mode():
    guidance = LMIGuidance(bins=8)
    with torch.inference_mode():
        reference = phantom()
        out = guidance.dynamic_condition(reference, reference)
    assert out.shape == (1, 2, 24, 24)


@pytest.mark.parametrize("channels", [True, False])
def test_correct_x0_increases_lmi_to_the_reference(channels):
    guidance = LMIGuidance(channels=channels, gradient_scale=0.05, bins=8)
    reference = phantom().repeat(2, 1, 1, 1)
    generator = torch.Generator().manual_seed(2)
    # a different "modality": intensities remapped non-monotonically, structure blurred by noise
    x0_hat = (torch.cos(3 * reference) * 0.6 + 0.6 * torch.randn(reference.shape, generator=generator)).clamp(-1, 1)
    mask = torch.ones_like(reference)
    mask[..., :4, :] = 0.0

    def score(image: torch.Tensor) -> float:
        lmi = local_mutual_information(reference, image, bins=8)
        return float((lmi * mask).sum() / mask.sum())

    scores, current = [score(x0_hat)], x0_hat
    for step in range(4):
        current = guidance.correct_x0(reference, current, mask, step / 4)
        scores.append(score(current))
    assert all(b > a for a, b in zip(scores, scores[1:])), scores
    assert scores[-1] > scores[0] + 0.015
    assert torch.equal(current[..., :4, :], x0_hat[..., :4, :])  # outside the mask untouched
    assert current.min() >= -1.0 and current.max() <= 1.0
    assert current.shape == x0_hat.shape and current.dtype == x0_hat.dtype and not current.requires_grad
    # one step moves the masked pixels by gradient_scale in RMS
    inner = 0.5 * x0_hat  # far enough from +-1 for the clipping not to matter
    moved = (guidance.correct_x0(reference, inner, mask, 0.0) - inner) * mask
    rms = moved.square().sum(dim=(1, 2, 3)).div(mask.sum(dim=(1, 2, 3))).sqrt()
    assert torch.allclose(rms, torch.full_like(rms, 0.05), rtol=1e-3)


def test_correct_x0_under_no_grad_and_inference_mode():
    guidance = LMIGuidance(gradient_scale=0.05, bins=8)
    reference, mask = phantom(), torch.ones(1, 1, 24, 24)
    with torch.no_grad():
        a = guidance.correct_x0(reference, torch.zeros(1, 1, 24, 24), mask, 0.5)
    with torch.inference_mode():
        b = guidance.correct_x0(reference, torch.zeros(1, 1, 24, 24), mask, 0.5)
    assert torch.allclose(a, b) and a.abs().sum() > 0


def test_correct_x0_is_identity_without_gradient_scale():
    guidance = LMIGuidance()
    x0_hat = torch.rand(1, 1, 8, 8)
    assert guidance.correct_x0(x0_hat, x0_hat, torch.ones_like(x0_hat), 0.0) is x0_hat


def test_compatibility_rules():
    paper = LMIGuidance()
    trained = paper.params()
    assert paper.compatibility_error("lmi", trained, 2) is None
    # sampling-time parameters may differ
    assert LMIGuidance(gradient_scale=0.1).compatibility_error("lmi", trained, 2) is None
    assert LMIGuidance(strength=0.7).compatibility_error("lmi", trained, 2) is None
    # parameters that change what the network sees may not
    assert "bins" in LMIGuidance(bins=8).compatibility_error("lmi", trained, 2)
    assert "scale_channels" in LMIGuidance(scale_channels=False).compatibility_error("lmi", trained, 2)
    message = paper.compatibility_error("none", {"strength": 0.5}, 0)
    assert "'none'" in message and "channels=false" in message
    assert paper.compatibility_error("contour", {}, 1) is not None

    gradient_only = LMIGuidance(channels=False, gradient_scale=0.05, bins=8, patch_size=5)
    assert gradient_only.compatibility_error("none", {"strength": 0.5}, 0) is None
    lmi_without_channels = LMIGuidance(channels=False, gradient_scale=0.1).params()
    assert gradient_only.compatibility_error("lmi", lmi_without_channels, 0) is None
    assert "channels" in gradient_only.compatibility_error("lmi", trained, 2)
    assert gradient_only.compatibility_error("contour", {}, 1) is not None
    assert {"patch_size", "bins", "strength", "gradient_scale"} <= gradient_only.sampling_params()
    assert paper.sampling_params() == {"strength", "gradient_scale"}


def test_params_are_json_and_round_trip_through_the_factory():
    registry_ = registry()
    assert "lmi" in registry_.names()
    for params in ({}, {"channels": False, "gradient_scale": 0.05, "bins": 8, "bandwidth": 0.1},
                   {"gradient_scale": 0.02, "normalized": True, "patch_size": 5, "search_radius": 2,
                    "padding": "replicate", "scale_channels": False, "strength": 0.8}):
        guidance = registry_.create("lmi", **params)
        assert isinstance(guidance, LMIGuidance)
        stored = json.loads(json.dumps(guidance.params()))
        rebuilt = registry_.create("lmi", **stored)
        assert rebuilt.params() == guidance.params() == stored
        assert rebuilt.condition_channels == guidance.condition_channels
        for key, value in params.items():
            assert stored[key] == value
    numpy_typed = LMIGuidance(bins=np.int64(8), normalized=np.bool_(True), gradient_scale=np.float32(0.5))
    json.dumps(numpy_typed.params())


@pytest.mark.parametrize("params", [
    {"channels": "yes"}, {"channels": False}, {"channels": False, "gradient_scale": 0.0},
    {"gradient_scale": -0.1}, {"gradient_scale": 2.0}, {"gradient_scale": float("nan")},
    {"strength": 0.0}, {"strength": 1.5}, {"strength": "half"}, {"bins": 1}, {"patch_size": 4},
    {"bandwidth": 0.0}, {"padding": "zeros"}, {"scale_channels": 1},
])
def test_bad_parameters(params):
    with pytest.raises(ConfigError):
        LMIGuidance(**params)
    with pytest.raises(PluginError):
        registry().create("lmi", **params)


def test_unknown_parameter_is_a_plugin_error():
    with pytest.raises(PluginError):
        registry().create("lmi", sigma=2)


def test_module_examples():
    import doctest

    assert doctest.testmod(lmi_module, raise_on_error=False).failed == 0


def test_translation_with_both_lmi_variants(tmp_path, ixi_t1_files, tiny_none_model):
    """End to end through training and the sampler: channels model, and gradient on a 'none' model."""
    from zeroshot_core import api
    from zeroshot_core.diffusion.translation import TranslateOptions
    from zeroshot_core.errors import ModelError
    from zeroshot_core.training.loop import TrainConfig

    config = TrainConfig(guidance="lmi", guidance_params={"bins": 8}, model_size="tiny", image_size=32,
                         max_steps=2, batch_size=4, checkpoint_every=0, device="cpu")
    lmi_model = api.train(ixi_t1_files[:1], tmp_path / "lmi", config)
    source = ixi_t1_files[1]
    slices = (40,)
    both = TranslateOptions(steps=3, device="cpu", slices=slices, guidance_params={"gradient_scale": 0.05})
    out = api.translate(source, lmi_model, options=both)
    assert np.isfinite(out.data).all()
    gradient = TranslateOptions(steps=3, device="cpu", slices=slices,
                                guidance_params={"channels": False, "gradient_scale": 0.05})
    out = api.translate(source, tiny_none_model, guidance="lmi", options=gradient)
    assert np.isfinite(out.data).all()
    with pytest.raises(ModelError, match="channels=false"):
        api.translate(source, tiny_none_model, guidance="lmi", options=TranslateOptions(steps=3, device="cpu",
                                                                                       slices=slices))
