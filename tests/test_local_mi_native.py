"""The fused CPU kernel of the LMI map gives the same maps as the tensor-op version."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from test_local_mi import reference_lmi

from zeroshot_core.errors import ConfigError
from zeroshot_core.lmi import native as local_mi_native
from zeroshot_core.lmi.dispatch import local_mutual_information


def pair(shape: tuple[int, ...], seed: int = 0, low: float = -1.1, high: float = 1.1) -> tuple[torch.Tensor, torch.Tensor]:
    """An image and a noisy non-monotone remapping of it, float32."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=generator) * (high - low) + low
    y = torch.tanh(2 * x) * torch.where(torch.rand(shape, generator=generator) < 0.5, -1.0, 1.0)
    return x, y + 0.2 * torch.randn(shape, generator=generator)


def test_kernel_is_built_where_a_compiler_is():
    compiler = shutil.which("cc") or shutil.which("gcc")
    assert local_mi_native.available() or compiler is None, \
        f"{compiler} is here, so pip install should have compiled zeroshot_core.lmi._native"


@pytest.mark.parametrize("options", [
    {},
    {"patch_size": 5, "search_radius": 2, "bins": 8, "normalized": True},
    {"patch_size": 1, "search_radius": 0, "bins": 4},
    {"patch_size": 3, "search_radius": 1, "bins": 12, "bandwidth": 0.3, "padding": "replicate"},
    {"patch_size": 7, "search_radius": 1, "bins": 6},
    {"bins": 64},                        # several vector chunks per histogram row
    {"bins": 2},
    {"bins": 40, "bandwidth": 0.01},     # narrow windows: 3 bins
    {"bins": 16, "bandwidth": 2.0},      # wide kernel: the window is every bin
])
def test_native_matches_reference_and_tensor_ops(options):
    x, y = pair((13, 17), seed=1)
    expected = reference_lmi(x.double().numpy(), y.double().numpy(), **options)
    native = local_mutual_information(x, y, backend="native", **options)
    tensor_ops = local_mutual_information(x, y, backend="torch", **options)
    assert native.dtype == torch.float32
    assert np.abs(native.numpy() - expected).max() < 1e-4
    assert (native - tensor_ops).abs().max() < 2e-5


def test_batches_odd_sizes_and_far_out_values():
    x, y = pair((3, 1, 37, 53), seed=2, low=-4.0, high=4.0)  # most values far outside [-1, 1]
    native = local_mutual_information(x, y, backend="native")
    assert native.shape == (3, 1, 37, 53)
    assert (native - local_mutual_information(x, y, backend="torch")).abs().max() < 2e-5


def test_threads_do_not_change_the_result():
    x, y = pair((4, 1, 40, 24), seed=3)
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = local_mutual_information(x, y, backend="native")
        torch.set_num_threads(2)
        two = local_mutual_information(x, y, backend="native")
    finally:
        torch.set_num_threads(previous)
    assert torch.equal(one, two)


def test_nan_and_inf_give_nan_where_the_tensor_ops_do():
    x, y = pair((12, 14), seed=4)
    x[3, 4] = float("nan")
    y[8, 9] = float("inf")
    native = local_mutual_information(x, y, backend="native")
    tensor_ops = local_mutual_information(x, y, backend="torch")
    assert torch.equal(native.isnan(), tensor_ops.isnan())
    assert native.isnan().any() and native.isfinite().any()
    finite = native.isfinite()
    assert (native[finite] - tensor_ops[finite]).abs().max() < 2e-5


def test_auto_uses_tensor_ops_for_gradients_and_float64():
    x, y = pair((10, 11), seed=5)
    y.requires_grad_(True)
    local_mutual_information(x, y).mean().backward()  # auto: gradients need the tensor ops
    assert y.grad is not None and y.grad.abs().sum() > 0
    with pytest.raises(ConfigError, match="gradients"):
        local_mutual_information(x, y, backend="native")
    assert local_mutual_information(x.double(), y.detach().double()).dtype == torch.float64
    with pytest.raises(ConfigError, match="float32"):
        local_mutual_information(x.double(), y.detach().double(), backend="native")
    with torch.no_grad():
        assert local_mutual_information(x, y, backend="native").shape == (10, 11)
    with pytest.raises(ConfigError, match="backend"):
        local_mutual_information(x, y, backend="fast")


def test_without_the_kernel_auto_falls_back_and_native_says_why(monkeypatch):
    x, y = pair((9, 9), seed=6)
    with_kernel = local_mutual_information(x, y)
    monkeypatch.setattr(local_mi_native, "_lmi_native", None)
    assert not local_mi_native.available()
    assert (local_mutual_information(x, y) - with_kernel).abs().max() < 2e-5
    with pytest.raises(ConfigError, match="not built"):
        local_mutual_information(x, y, backend="native")
    with pytest.raises(RuntimeError, match="not built"):
        local_mi_native.native_map(x[None, None], y[None, None], 3, 1, 16, 1 / 15, False, 3)


def test_bands_of_rows_give_the_same_map(monkeypatch):
    x, y = pair((2, 1, 29, 23), seed=7)
    whole = local_mutual_information(x, y, backend="native", search_radius=2, patch_size=5)
    monkeypatch.setattr(local_mi_native, "_WEIGHTS_BUDGET", 8000)  # bands of a few rows
    banded = local_mutual_information(x, y, backend="native", search_radius=2, patch_size=5)
    assert torch.equal(whole, banded)
