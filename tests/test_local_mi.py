"""Tests of ``zeroshot_core.lmi.dispatch`` against a plain per-pixel reference."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import torch

from zeroshot_core.errors import ConfigError
from zeroshot_core.lmi import dispatch as local_mi
from zeroshot_core.lmi.dispatch import LMIParams, local_mutual_information


def reference_lmi(x: np.ndarray, y: np.ndarray, patch_size: int = 3, search_radius: int = 1, bins: int = 16,
                  bandwidth: float | None = None, normalized: bool = False, padding: str = "reflect") -> np.ndarray:
    """Eq. 1 of Wang et al. with loops over pixels and offsets (slow, obvious)."""
    mode = {"reflect": "reflect", "replicate": "edge"}[padding]
    h, r, n = patch_size // 2, search_radius, patch_size * patch_size
    centres = np.linspace(-1.0, 1.0, bins)
    sigma = bandwidth if bandwidth is not None else 1.0 / (bins - 1)
    xp = np.pad(np.asarray(x, np.float64), h, mode=mode)
    yp = np.pad(np.asarray(y, np.float64), h + r, mode=mode)

    def weights(values: np.ndarray) -> np.ndarray:
        logits = -((values[:, None] - centres[None, :]) ** 2) / (2 * sigma * sigma)
        w = np.exp(logits - logits.max(axis=1, keepdims=True))
        return w / w.sum(axis=1, keepdims=True)

    def entropy(p: np.ndarray) -> float:
        p = p[p > 0]
        return float(-(p * np.log(p)).sum())

    out = np.empty(x.shape)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            wx = weights(xp[i:i + patch_size, j:j + patch_size].ravel())
            hx = entropy(wx.mean(axis=0))
            best = -np.inf
            for dy in range(2 * r + 1):
                for dx in range(2 * r + 1):
                    wy = weights(yp[i + dy:i + dy + patch_size, j + dx:j + dx + patch_size].ravel())
                    hy = entropy(wy.mean(axis=0))
                    mi = hx + hy - entropy(wx.T @ wy / n)
                    best = max(best, 2 * mi / (hx + hy) if normalized else mi)
            out[i, j] = best
    return out


def hard_local_entropy(x: np.ndarray, patch_size: int = 3, padding: str = "reflect") -> np.ndarray:
    """Entropy of the exact values in each patch (no binning)."""
    h = patch_size // 2
    xp = np.pad(x, h, mode={"reflect": "reflect", "replicate": "edge"}[padding])
    out = np.empty(x.shape)
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            _, counts = np.unique(xp[i:i + patch_size, j:j + patch_size], return_counts=True)
            p = counts / counts.sum()
            out[i, j] = -(p * np.log(p)).sum()
    return out


def level_image(shape: tuple[int, int], levels: list[int], bins: int, seed: int, block: int = 3) -> np.ndarray:
    """Piecewise-constant image whose values sit on the bin centres ``levels``."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(levels), size=(shape[0] // block + 1, shape[1] // block + 1))
    labels = np.kron(labels, np.ones((block, block), int))[: shape[0], : shape[1]]
    centres = np.linspace(-1.0, 1.0, bins)
    return centres[np.asarray(levels)[labels]]


def remap_levels(image: np.ndarray, old: list[int], new: list[int], bins: int) -> np.ndarray:
    centres = np.linspace(-1.0, 1.0, bins)
    out = image.copy()
    for a, b in zip(old, new):
        out[np.isclose(image, centres[a])] = centres[b]
    return out


def smooth_image(shape: tuple[int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]] / max(shape)
    image = np.sin(6 * xx + rng.uniform(0, 3)) * np.cos(5 * yy) + 0.3 * rng.standard_normal(shape)
    return np.clip(image / np.abs(image).max(), -1, 1)


def lmi(x: np.ndarray, y: np.ndarray, **options) -> np.ndarray:
    return local_mutual_information(torch.from_numpy(x), torch.from_numpy(y), **options).numpy()


@pytest.mark.parametrize("options", [
    {},
    {"patch_size": 5, "search_radius": 2, "bins": 8, "normalized": True},
    {"patch_size": 1, "search_radius": 0, "bins": 4},
    {"patch_size": 3, "search_radius": 1, "bins": 12, "bandwidth": 0.3, "padding": "replicate"},
    {"patch_size": 7, "search_radius": 1, "bins": 6},  # long-window (cumulative sum) box filter
])
def test_matches_reference(options):
    rng = np.random.default_rng(1)
    x = rng.uniform(-1.1, 1.1, (13, 17))
    y = np.tanh(2 * x) * rng.choice([-1, 1], x.shape) + 0.2 * rng.standard_normal(x.shape)
    expected = reference_lmi(x, y, **options)
    assert np.abs(lmi(x, y, **options) - expected).max() < 1e-4
    got32 = lmi(x.astype(np.float32), y.astype(np.float32), **options)
    assert got32.dtype == np.float32
    assert np.abs(got32 - expected).max() < 1e-4


def test_odd_sizes_and_batches():
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, (37, 53))
    y = smooth_image((37, 53), 3)
    expected = reference_lmi(x, y, search_radius=0)
    assert np.abs(lmi(x, y, search_radius=0) - expected).max() < 1e-4
    batch = torch.from_numpy(np.stack([x, y]))[:, None]
    out = local_mutual_information(batch, batch.flip(0), search_radius=0)
    assert out.shape == (2, 1, 37, 53)
    assert np.abs(out[0, 0].numpy() - expected).max() < 1e-4
    assert local_mutual_information(batch, batch.flip(0), tile=10).shape == (2, 1, 37, 53)


def test_self_lmi_is_local_entropy():
    bins = 16
    x = level_image((24, 30), [0, 5, 10, 15], bins, seed=4, block=2)
    entropy = hard_local_entropy(x)
    assert entropy.max() > 1.0  # patches hold several levels
    assert np.abs(lmi(x, x, bins=bins) - entropy).max() < 1e-3


def test_property_1_self_lmi_is_the_upper_bound():
    bins = 16
    x = level_image((24, 30), [0, 5, 10, 15], bins, seed=5, block=2)
    self_lmi = lmi(x, x, bins=bins)
    rng = np.random.default_rng(6)
    others = [
        rng.uniform(-1, 1, x.shape),
        np.roll(x, (1, 2), axis=(0, 1)),
        remap_levels(x, [0, 5, 10, 15], [10, 0, 15, 5], bins) + 0.05 * rng.standard_normal(x.shape),
        smooth_image(x.shape, 7),
    ]
    for y in others:
        assert (lmi(x, y, bins=bins) <= self_lmi + 1e-3).all()
    # for any x: LMI is bounded by the entropy of the exact values in x's patch
    z = smooth_image((20, 20), 8)
    bound = hard_local_entropy(z)
    for y in (np.roll(z, 1, axis=0), -z, rng.uniform(-1, 1, z.shape)):
        assert (lmi(z, y) <= bound + 1e-6).all()


def test_invariant_to_bijective_level_remapping():
    bins = 24
    levels = [0, 6, 12, 18]
    rng = np.random.default_rng(9)
    x = smooth_image((26, 26), 10)
    y = level_image(x.shape, levels, bins, seed=11, block=2)
    base = lmi(x, y, bins=bins)
    assert base.mean() > 0.3
    permuted = remap_levels(y, levels, [12, 23, 0, 6], bins)    # non-monotone
    monotone = remap_levels(y, levels, [0, 5, 15, 23], bins)    # monotone, not affine
    assert np.abs(lmi(x, permuted, bins=bins) - base).max() < 1e-3
    assert np.abs(lmi(x, monotone, bins=bins) - base).max() < 1e-3
    # continuous images: bijective remappings change LMI only by binning error, far
    # less than the gap to an unrelated image
    yy, xx = np.mgrid[0:40, 0:40] / 40
    smooth = np.clip(np.sin(7 * xx) * np.cos(6 * yy) + 0.05 * rng.standard_normal(xx.shape), -1, 1)
    options = {"patch_size": 7, "bins": 8}
    self_lmi = lmi(smooth, smooth, **options).mean()
    unrelated = lmi(smooth, rng.uniform(-1, 1, smooth.shape), **options).mean()
    assert self_lmi > 3 * unrelated
    for remapped in (np.tanh(1.5 * smooth) / np.tanh(1.5), np.where(smooth > 0, smooth - 1, smooth + 1)):
        assert abs(lmi(smooth, remapped, **options).mean() - self_lmi) < 0.2 * self_lmi


def test_independent_noise_is_near_zero():
    rng = np.random.default_rng(12)
    x, y = rng.uniform(-1, 1, (2, 40, 40))
    options = {"patch_size": 15, "search_radius": 1, "bins": 8}
    entropy = lmi(x, x, **options).mean()
    assert entropy > 0.8
    assert lmi(x, y, **options).mean() < 0.1 * entropy
    assert lmi(x, np.sin(3 * x), **options).mean() > 0.5 * entropy


def test_normalized_is_in_unit_interval():
    x = smooth_image((20, 22), 13)
    nmi = lmi(x, x ** 2, normalized=True)
    assert nmi.min() >= 0.0 and nmi.max() <= 1.0 + 1e-6
    assert lmi(x, x, normalized=True).mean() > nmi.mean() - 1e-6


def test_gradients_flow_to_both_inputs():
    rng = np.random.default_rng(14)
    x = torch.tensor(rng.uniform(-1, 1, (2, 1, 11, 12)), requires_grad=True)
    y = torch.tensor(rng.uniform(-1, 1, (2, 1, 11, 12)), requires_grad=True)
    local_mutual_information(x, y).mean().backward()
    for grad in (x.grad, y.grad):
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0

    a = torch.tensor(rng.uniform(-0.8, 0.8, (1, 1, 5, 6)), requires_grad=True)
    b = torch.tensor(rng.uniform(-0.8, 0.8, (1, 1, 5, 6)), requires_grad=True)
    for options in ({"search_radius": 0, "bins": 5, "tile": 3},
                    {"search_radius": 1, "bins": 6, "normalized": True},
                    {"patch_size": 5, "search_radius": 1, "bins": 4, "padding": "replicate", "tile": 4}):
        assert torch.autograd.gradcheck(lambda u, v: local_mutual_information(u, v, **options), (a, b), atol=1e-5)


def test_gradient_is_finite_for_constant_and_saturated_images():
    x = torch.full((1, 1, 8, 8), -1.0, requires_grad=True)
    y = torch.full((1, 1, 8, 8), 3.0, requires_grad=True)    # far outside [-1, 1]
    local_mutual_information(x, y).sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(y.grad).all()


def test_tiled_equals_untiled():
    rng = np.random.default_rng(15)
    x = torch.tensor(rng.uniform(-1, 1, (2, 1, 17, 23)), dtype=torch.float32, requires_grad=True)
    y = torch.tensor(smooth_image((17, 23), 16)[None, None].repeat(2, 0), dtype=torch.float32, requires_grad=True)
    maps, grads = [], []
    for tile in (None, 5, 1000):
        out = local_mutual_information(x, y, patch_size=5, search_radius=2, tile=tile)
        gx, gy = torch.autograd.grad(out.square().mean(), (x, y))
        maps.append(out.detach())
        grads.append((gx, gy))
    for out, (gx, gy) in zip(maps[1:], grads[1:]):
        assert torch.allclose(out, maps[0], atol=1e-5)
        assert torch.allclose(gx, grads[0][0], atol=1e-6) and torch.allclose(gy, grads[0][1], atol=1e-6)


def test_two_dimensional_input_gives_two_dimensional_output():
    x = torch.zeros(9, 10)
    assert local_mutual_information(x, x).shape == (9, 10)


@pytest.mark.parametrize("options", [
    {"patch_size": 2}, {"patch_size": 0}, {"patch_size": 3.0}, {"search_radius": -1}, {"bins": 1},
    {"bins": True}, {"bandwidth": 0.0}, {"bandwidth": -0.1}, {"bandwidth": float("nan")},
    {"bandwidth": "wide"}, {"normalized": "yes"}, {"padding": "zeros"}, {"tile": 0}, {"tile": 2.5},
])
def test_bad_options_raise_config_error(options):
    x = torch.zeros(1, 1, 8, 8)
    with pytest.raises(ConfigError):
        local_mutual_information(x, x, **options)


@pytest.mark.parametrize("x, y", [
    (torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 9)),
    (torch.zeros(8, 8, 2), torch.zeros(8, 8, 2)),
    (torch.zeros(1, 2, 8, 8), torch.zeros(1, 2, 8, 8)),
    (np.zeros((8, 8)), np.zeros((8, 8))),
    (torch.zeros(8, 8, dtype=torch.complex64), torch.zeros(8, 8, dtype=torch.complex64)),
    (torch.zeros(2, 2), torch.zeros(2, 2)),  # too small to reflect-pad by 2
])
def test_bad_inputs_raise_config_error(x, y):
    with pytest.raises(ConfigError):
        local_mutual_information(x, y)


def test_empty_batch_and_nan():
    assert local_mutual_information(torch.zeros(0, 1, 8, 8), torch.zeros(0, 1, 8, 8)).shape == (0, 1, 8, 8)
    x = torch.zeros(10, 10)
    x[5, 5] = float("nan")
    out = local_mutual_information(x, torch.rand(10, 10))
    assert out[5, 5].isnan() and out[0, 0].isfinite()
    with pytest.raises(ConfigError):
        local_mutual_information(torch.zeros(1, 1, 0, 8), torch.zeros(1, 1, 0, 8))


def test_small_images_work_with_replicate_padding():
    x = torch.tensor([[0.0, 1.0], [-1.0, 0.5]])
    assert torch.isfinite(local_mutual_information(x, x, padding="replicate")).all()


def test_params_dataclass():
    params = LMIParams(bins=8)
    assert params.sigma == pytest.approx(1 / 7)
    assert params.upper_bound == pytest.approx(np.log(8))
    assert LMIParams(normalized=True).upper_bound == 1.0
    assert LMIParams(**params.to_dict()) == params
    with pytest.raises(ConfigError):
        LMIParams(patch_size=4)


def test_docstring_examples():
    assert doctest.testmod(local_mi, raise_on_error=False).failed == 0
