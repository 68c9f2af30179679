"""Source denoising (``--denoise nlm``): the noise estimate, the filter, and its path through translate."""

import json

import numpy as np
import pytest

from zeroshot_core import api
from zeroshot_core.cli.parser import build_parser, main
from zeroshot_core.diffusion.translation import TranslateOptions
from zeroshot_core.errors import ConfigError
from zeroshot_core.imaging.denoise import denoise_volume, noise_sigma
from zeroshot_core.io.volume import Volume


def _noisy_phantom(sigma: float, seed: int = 0) -> tuple[Volume, np.ndarray]:
    """Two tissues (100 and 140) in a disc on a zero background, three slices along z, plus noise."""
    yy, xx = np.mgrid[:96, :96]
    clean = np.where((yy - 48) ** 2 + (xx - 48) ** 2 < 40 ** 2, 100.0, 0.0)
    clean[(clean > 0) & (xx > 48)] = 140.0
    clean = np.repeat(clean[:, :, None], 3, axis=2).astype(np.float32)
    noise = np.random.default_rng(seed).normal(0, sigma, clean.shape).astype(np.float32)
    noisy = np.where(clean > 0, clean + noise, 0.0).astype(np.float32)
    return Volume(noisy, np.diag([2.0, 2.0, 2.0, 1.0])), clean


@pytest.mark.parametrize("sigma", [2.0, 8.0])
def test_the_noise_estimate_finds_the_noise_and_ignores_the_zero_background(sigma):
    volume, _ = _noisy_phantom(sigma)
    assert noise_sigma(volume.data[:, :, 0]) == pytest.approx(sigma, rel=0.15)
    assert noise_sigma(np.zeros((8, 8))) == 0.0


def test_non_local_means_removes_noise_keeps_the_tissue_levels_and_the_input():
    volume, clean = _noisy_phantom(8.0)
    before = volume.data.copy()
    out = denoise_volume(volume, axis=2, method="nlm")
    np.testing.assert_array_equal(volume.data, before)  # the input is not changed
    assert out.data.shape == volume.data.shape and out.data.dtype == np.float32
    np.testing.assert_array_equal(out.affine, volume.affine)
    left, right = (clean == 100) & (np.arange(96)[None, :, None] < 40), (clean == 140) & (np.arange(96)[None, :, None] > 56)
    for region, level in ((left, 100.0), (right, 140.0)):
        assert out.data[region].std() < 0.5 * volume.data[region].std()
        assert abs(out.data[region].mean() - level) < 2.0
    assert np.abs(out.data[clean == 0]).max() < 1.0  # the background stays background


def test_off_is_an_exact_copy_and_bad_settings_are_config_errors():
    volume, _ = _noisy_phantom(4.0)
    np.testing.assert_array_equal(denoise_volume(volume, 2, "off").data, volume.data)
    with pytest.raises(ConfigError, match="denoising"):
        denoise_volume(volume, 2, "gaussian")
    with pytest.raises(ConfigError, match="strength"):
        denoise_volume(volume, 2, "nlm", strength=0)
    with pytest.raises(ConfigError, match="unknown denoising 'median'; valid: off, nlm"):
        TranslateOptions(denoise="median")


def test_translate_denoises_the_source_and_records_it(tiny_contour_model, t1_path, tmp_path):
    options = TranslateOptions(steps=2, device="cpu", slices=(60,), denoise="nlm")
    plain = api.translate(t1_path, tiny_contour_model, options=TranslateOptions(steps=2, device="cpu", slices=(60,)))
    denoised = api.translate(t1_path, tiny_contour_model, options=options)
    assert np.isfinite(denoised.data).all() and not np.array_equal(plain.data, denoised.data)
    out = tmp_path / "t.nii.gz"
    assert main(["-q", "translate", str(t1_path), "--model", str(tiny_contour_model), "--out", str(out),
                 "--steps", "2", "--slices", "60", "--device", "cpu", "--denoise", "nlm"]) == 0
    sidecar = json.loads(api.sidecar_path(out).read_text())
    assert sidecar["Translation"]["denoise"] == "nlm"


def test_the_cli_refuses_an_unknown_method():
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["translate", "in.nii.gz", "--out", "o.nii.gz", "--denoise", "bm3d"])
    assert info.value.code == 2
