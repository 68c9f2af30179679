"""``--denoise auto``: the training noise in the card, the measure, and the choice made per source."""

import json
import shutil

import numpy as np
import pytest

from zeroshot_core import api
from zeroshot_core.cli.parser import main
from zeroshot_core.diffusion.auto_denoise import CARD_KEY, FACTOR, choose_denoise
from zeroshot_core.diffusion.translation import TranslateOptions
from zeroshot_core.errors import ConfigError
from zeroshot_core.imaging.denoise import denoise_volume, noise_sigma, relative_noise
from zeroshot_core.io.formats import save_volume, to_volume
from zeroshot_core.model.store import CARD_FILE, read_card, write_json


def test_the_mask_keeps_the_normalised_background_and_the_edge_out_of_the_noise_estimate():
    rng = np.random.default_rng(1)
    plane = np.full((64, 64), -1.0)
    plane[8:56, 8:57] = 0.5 + rng.normal(0, 0.02, (48, 49))  # odd width: the edge cuts 2x2 blocks
    mask = plane > -1
    assert noise_sigma(plane, mask) == pytest.approx(0.02, rel=0.2)
    # without it, the flat -1 background (not 0, so not skipped) counts as noise-free and pulls the median down
    assert noise_sigma(plane) < 0.5 * noise_sigma(plane, mask)
    masks = np.repeat(mask[None], 3, axis=0)
    masks[2] = False  # a slice without foreground is left out, not counted as noise-free
    assert relative_noise(np.repeat(plane[None], 3, axis=0), masks) == pytest.approx(0.01, rel=0.2)
    assert relative_noise(plane[None], np.zeros((1, 64, 64), bool)) is None


def test_auto_is_off_without_a_reference_and_for_clean_sources():
    rng = np.random.default_rng(0)
    masks = np.ones((2, 32, 32), bool)
    noisy = choose_denoise(rng.normal(0, 0.2, (2, 32, 32)), masks, {CARD_KEY: 0.04})
    assert (noisy.applied, noisy.training_noise) == ("nlm", 0.04) and noisy.source_noise > 0.04
    assert "above 1.5 × the training images' 4.0%" in noisy.reason
    clean = choose_denoise(rng.normal(0, 0.1, (2, 32, 32)), masks, {CARD_KEY: 0.04})  # 5 %: not above 6 %
    assert clean.applied == "off" and "not above" in clean.reason
    for training in ({}, {CARD_KEY: None}, {CARD_KEY: True}, {CARD_KEY: 0.0}):
        unknown = choose_denoise(rng.normal(0, 0.2, (2, 32, 32)), masks, training)
        assert unknown.applied == "off" and "no training noise level" in unknown.reason
    with pytest.raises(ConfigError, match="'auto' is decided by a translation"):
        denoise_volume(api.Volume(np.ones((4, 4, 2), np.float32), np.eye(4)), 2, "auto")


def test_training_records_the_noise_of_the_slices_it_learned_from(tiny_contour_model):
    noise = read_card(tiny_contour_model).training[CARD_KEY]
    assert isinstance(noise, float) and 0.0 < noise < 0.2


@pytest.fixture()
def model_with_noise_level(tiny_contour_model, tmp_path):
    """A copy of the tiny model whose card sets the training noise level (the card is all that differs)."""
    def make(level: float):
        folder = tmp_path / f"model-{level}"
        if folder.is_dir():
            return folder
        shutil.copytree(tiny_contour_model, folder)
        card = read_card(folder)
        write_json(folder / CARD_FILE, {**card.to_dict(), "training": {**card.training, CARD_KEY: level}})
        return folder
    return make


def test_translate_auto_denoises_a_noisy_source_like_nlm_and_a_clean_one_like_off(model_with_noise_level, t1_path,
                                                                                  tmp_path):
    source = to_volume(t1_path)
    noisy = source.with_data(source.data + np.random.default_rng(0).normal(0, 0.08 * float(np.percentile(
        source.data, 99.5)), source.data.shape).astype(np.float32) * (source.data > 0))
    noisy_path = tmp_path / "noisy.nii.gz"
    save_volume(noisy, noisy_path)
    before = noisy.data.copy()
    base = dict(steps=2, device="cpu", slices=(60,))
    quiet = api.run_translation(noisy_path, model_with_noise_level(0.9), options=TranslateOptions(**base, denoise="auto"))
    measured = quiet.denoise.source_noise  # on the model's grid: the 32-px resize averages much of the noise away
    assert quiet.denoise.applied == "off" and 0.0 < measured < 0.9
    off = api.translate(noisy_path, model_with_noise_level(0.9), options=TranslateOptions(**base))
    np.testing.assert_array_equal(quiet.volume.data, off.data)
    model = model_with_noise_level(round(measured / 2 / FACTOR, 5))
    auto = api.run_translation(noisy_path, model, options=TranslateOptions(**base, denoise="auto"))
    assert auto.denoise.applied == "nlm" and auto.denoise.source_noise == measured
    nlm = api.translate(noisy_path, model, options=TranslateOptions(**base, denoise="nlm"))
    np.testing.assert_array_equal(auto.volume.data, nlm.data)
    assert not np.array_equal(auto.volume.data, off.data)
    np.testing.assert_array_equal(to_volume(noisy_path).data, before)  # the input file is not changed


def test_the_cli_says_when_auto_denoised_and_the_sidecar_records_why(model_with_noise_level, t1_path, tmp_path,
                                                                      capsys):
    args = ["-q", "translate", str(t1_path), "--steps", "2", "--slices", "60", "--device", "cpu"]
    quiet, noisy = tmp_path / "quiet.nii.gz", tmp_path / "noisy.nii.gz"
    assert main(args + ["--model", str(model_with_noise_level(0.9)), "--out", str(quiet)]) == 0
    assert capsys.readouterr().err == ""  # nothing done, nothing said
    record = json.loads(api.sidecar_path(quiet).read_text())["Translation"]
    assert record["denoise"] == "auto"
    assert record["denoise_choice"]["applied"] == "off" and record["denoise_choice"]["training_noise"] == 0.9
    assert "not above 1.5 × the training images' 90.0%" in record["denoise_choice"]["reason"]
    assert main(args + ["--model", str(model_with_noise_level(0.0001)), "--out", str(noisy)]) == 0
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("zeroshot: note: --denoise auto: the source was denoised (source noise ")
    assert json.loads(api.sidecar_path(noisy).read_text())["Translation"]["denoise_choice"]["applied"] == "nlm"
