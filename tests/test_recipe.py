"""Training-recipe switches: prediction types, Min-SNR-γ, CFG, contrast randomisation, whole-head crops."""

import json

import numpy as np
import pytest
import torch

from zeroshot_core.diffusion.sampling import sample_progressive
from zeroshot_core.diffusion.schedulers import make_scheduler
from zeroshot_core.diffusion.translation import TranslateOptions
from zeroshot_core.errors import ConfigError, ModelError
from zeroshot_core.guidance.base import Guidance
from zeroshot_core.guidance.none import NoneGuidance
from zeroshot_core.imaging.head_mask import head_mask
from zeroshot_core.model.prediction import (
    PREDICTION_TYPES,
    min_snr_weight,
    output_from_x0,
    prediction_target,
    split_prediction,
)
from zeroshot_core.model.store import DEFAULT_NOISE_SCHEDULE
from zeroshot_core.training.contrast import randomise_contrast
from zeroshot_core.training.loop import TrainConfig
from zeroshot_core.training.native_data import random_crops


def _alphas() -> torch.Tensor:
    from diffusers import DDPMScheduler

    return DDPMScheduler(**DEFAULT_NOISE_SCHEDULE).alphas_cumprod


# ----------------------------------------------------------------- Min-SNR-γ
def test_min_snr_weights_follow_the_formula():
    alpha_bar = _alphas()[torch.tensor([0, 5, 50, 200, 500, 999])]
    snr = (alpha_bar / (1 - alpha_bar)).double().numpy()
    gamma = 5.0
    expected = {"epsilon": np.minimum(snr, gamma) / snr, "v_prediction": np.minimum(snr, gamma) / (snr + 1),
                "sample": np.minimum(snr, gamma)}
    for prediction, weights in expected.items():
        got = min_snr_weight(alpha_bar, gamma, prediction).numpy()
        np.testing.assert_allclose(got, weights, rtol=1e-5)
    # low-noise steps (SNR > gamma) are down-weighted, high-noise ones keep weight 1 for epsilon
    eps = min_snr_weight(alpha_bar, gamma, "epsilon").numpy()
    assert eps[0] < 0.01 and eps[-1] == pytest.approx(1.0)
    assert torch.equal(min_snr_weight(alpha_bar, None, "v_prediction"), torch.ones(6))


# -------------------------------------------------------- targets round-trip
@pytest.mark.parametrize("prediction", PREDICTION_TYPES)
def test_targets_round_trip_to_x0_and_epsilon(prediction):
    generator = torch.Generator().manual_seed(0)
    x0 = torch.rand(4, 1, 8, 8, generator=generator) * 2 - 1
    noise = torch.randn(4, 1, 8, 8, generator=generator)
    alpha_bar = _alphas()[torch.tensor([1, 100, 600, 990])].float()
    a, s = alpha_bar.sqrt().view(-1, 1, 1, 1), (1 - alpha_bar).sqrt().view(-1, 1, 1, 1)
    x_t = a * x0 + s * noise
    target = prediction_target(x0, noise, alpha_bar, prediction)
    x0_hat, eps_hat = split_prediction(target, x_t, alpha_bar, prediction)
    torch.testing.assert_close(x0_hat, x0, atol=2e-4, rtol=0)
    torch.testing.assert_close(eps_hat, noise, atol=2e-4, rtol=0)
    torch.testing.assert_close(output_from_x0(x0, x_t, alpha_bar, prediction), target, atol=2e-4, rtol=0)


def test_v_target_matches_diffusers_velocity():
    from diffusers import DDPMScheduler

    scheduler = DDPMScheduler(**DEFAULT_NOISE_SCHEDULE)
    x0, noise = torch.rand(3, 1, 4, 4) * 2 - 1, torch.randn(3, 1, 4, 4)
    t = torch.tensor([3, 300, 900])
    torch.testing.assert_close(prediction_target(x0, noise, scheduler.alphas_cumprod[t], "v_prediction"),
                               scheduler.get_velocity(x0, noise, t), atol=1e-5, rtol=0)


class _Oracle(torch.nn.Module):
    """Returns the exact output of type ``prediction`` for a known clean image ``value``."""

    def __init__(self, value: float, prediction: str, scale: float = 1.0):
        super().__init__()
        self.value, self.prediction, self.scale, self.calls = value, prediction, scale, []
        self.alphas = _alphas()

    def forward(self, x, t):
        self.calls.append(x.shape[0])
        x_t = x[:, :1]
        alpha_bar = self.alphas[t.long()].float()
        out = output_from_x0(torch.full_like(x_t, self.value), x_t, alpha_bar, self.prediction)
        if x.shape[1] > 1:  # condition-dependent part, for CFG
            out = out + self.scale * x[:, 1:2]
        return type("Out", (), {"sample": out})()


class _Identity(Guidance):
    """Overrides correct_x0 (so the sampler converts output → x0 → output) without changing x0."""

    name = "identity"
    strength = 1.0

    def correct_x0(self, reference, x0_hat, mask, progress):
        return x0_hat


@pytest.mark.parametrize("scheduler_name", ["ddim", "dpm", "ddpm", "sde"])
def test_sampling_reads_the_cards_prediction_type(scheduler_name):
    """An exact network gives the same trajectory whatever it predicts, with or without an x0 correction."""
    reference = torch.zeros(2, 1, 8, 8)
    noise = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    finals = []
    for prediction in PREDICTION_TYPES:
        schedule = dict(DEFAULT_NOISE_SCHEDULE, prediction_type=prediction)
        for guidance in (NoneGuidance(strength=1.0), _Identity()):
            *_, last = sample_progressive(_Oracle(0.4, prediction), make_scheduler(scheduler_name, schedule),
                                          guidance, reference, reference[:, :0], torch.ones_like(reference), noise,
                                          6, torch.Generator().manual_seed(0))
            finals.append(last.sample)
    for final in finals[1:]:
        torch.testing.assert_close(final, finals[0], atol=2e-3, rtol=0)
    if scheduler_name == "dpm":  # ends exactly at the predicted x0
        torch.testing.assert_close(finals[0], torch.full_like(finals[0], 0.4), atol=2e-3, rtol=0)
    else:  # the others end one small noise level above it
        assert float((finals[0] - 0.4).abs().max()) < 0.1


def test_cfg_is_one_batched_call_extrapolating_the_condition():
    schedule = dict(DEFAULT_NOISE_SCHEDULE, prediction_type="epsilon")
    reference = torch.zeros(2, 1, 8, 8)
    static = torch.full((2, 1, 8, 8), 0.05)
    noise = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(2))

    def run(unet, cfg):
        *_, last = sample_progressive(unet, make_scheduler("ddim", schedule), _StaticOnly(), reference, static,
                                      torch.ones_like(reference), noise, 4, cfg_scale=cfg)
        return last.sample

    guided = _Oracle(0.0, "epsilon", scale=1.0)
    with_cfg = run(guided, 3.0)
    assert guided.calls == [4, 4, 4, 4]  # conditional and unconditional halves in one call
    # uncond + 3 (cond - uncond) = oracle + 3 * condition: the same as a model 3x as sensitive
    torch.testing.assert_close(with_cfg, run(_Oracle(0.0, "epsilon", scale=3.0), 1.0), atol=1e-5, rtol=0)
    assert not torch.allclose(with_cfg, run(_Oracle(0.0, "epsilon", scale=1.0), 1.0), atol=1e-3)


def test_cfg_steps_guides_only_the_noisiest_share_of_the_steps():
    schedule = dict(DEFAULT_NOISE_SCHEDULE, prediction_type="epsilon")
    reference = torch.zeros(2, 1, 8, 8)
    static = torch.full((2, 1, 8, 8), 0.05)
    noise = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(2))

    def run(unet, cfg, share):
        return list(sample_progressive(unet, make_scheduler("ddim", schedule), _StaticOnly(), reference, static,
                                       torch.ones_like(reference), noise, 4, cfg_scale=cfg, cfg_steps=share))

    half = _Oracle(0.0, "epsilon", scale=1.0)
    steps = run(half, 3.0, 0.5)
    assert half.calls == [4, 4, 2, 2]  # two guided steps (batched), then the conditional network alone
    # the guided steps are those of the guided run, the rest those of the unguided network
    full = run(_Oracle(0.0, "epsilon", scale=1.0), 3.0, 1.0)
    torch.testing.assert_close(steps[1].sample, full[1].sample)
    assert not torch.allclose(steps[-1].sample, full[-1].sample, atol=1e-4)
    third = _Oracle(0.0, "epsilon", scale=1.0)
    run(third, 3.0, 0.3)
    assert third.calls == [4, 4, 2, 2]  # ceil(0.3 * 4) = 2 guided steps
    off = _Oracle(0.0, "epsilon", scale=1.0)
    run(off, 1.0, 0.5)
    assert off.calls == [2, 2, 2, 2]  # no guidance: never the doubled batch


@pytest.mark.parametrize("share", [0.0, -0.1, 1.5])
def test_cfg_steps_is_a_share(share):
    with pytest.raises(ConfigError, match="cfg steps"):
        TranslateOptions(cfg_steps=share)


class _StaticOnly(Guidance):
    name = "static-only"
    static_channels = 1
    strength = 1.0


# ---------------------------------------------------- contrast randomisation
def _slice(t1_path):
    from zeroshot_core.imaging.intensity import Normalisation
    from zeroshot_core.io.formats import load_volume

    volume = load_volume(t1_path)
    mask = head_mask(volume.data, 1)
    image = Normalisation.fit(volume.data, (0.5, 99.5), mask).apply(volume.data)[:, 60]
    return np.where(mask[:, 60], image, -1.0), mask[:, 60]


def test_contrast_randomisation_is_non_monotone_and_keeps_the_background(t1_path):
    image, mask = _slice(t1_path)
    assert mask.mean() > 0.3 and (~mask).any()
    edges = np.quantile(image[mask], np.linspace(0, 1, 7)[1:-1])
    bins = np.digitize(image, edges)
    for seed in range(5):
        out = randomise_contrast(image, mask, np.random.default_rng(seed))
        assert out.shape == image.shape and out.dtype == np.float32
        assert np.all(out[~mask] == -1.0)
        assert out[mask].min() >= -1.0 and out[mask].max() <= 1.0 and out[mask].std() > 0.1
        means = np.array([out[mask & (bins == k)].mean() for k in range(6)])
        steps = np.diff(means)
        assert (steps > 0.02).any() and (steps < -0.02).any(), means  # neither T1's order nor its reverse
    again = randomise_contrast(image, mask, np.random.default_rng(3))
    np.testing.assert_array_equal(again, randomise_contrast(image, mask, np.random.default_rng(3)))


def test_fixed_monotone_levels_without_bias_or_noise_preserve_order(t1_path):
    image, mask = _slice(t1_path)
    out = randomise_contrast(image, mask, np.random.default_rng(0), levels=np.linspace(-1, 1, 6),
                             bias_strength=0.0, noise_std=0.0)
    order = np.argsort(image[mask])
    assert np.all(np.diff(out[mask][order]) >= -1e-5)


# ------------------------------------------------------------ whole head
def test_head_mask_holds_the_brain_and_skull_not_the_air(shared_data, t1_path):
    from zeroshot_core.io.formats import load_volume

    volume = load_volume(t1_path)
    labels = load_volume(shared_data / "ixi_t1" / "dlmuse" / t1_path.name.replace(".nii.gz", "_DLMUSE.nii.gz"))
    mask = head_mask(volume.data, 1)
    brain = labels.data > 0
    assert mask[brain].mean() > 0.995
    assert 1.3 < mask.sum() / brain.sum() < 4.0  # skull, scalp and neck too
    assert not mask[0, 0, 0] and not mask[-1, -1, -1]


def test_random_crops_are_windows_of_each_sample():
    batch = torch.arange(2 * 3 * 10 * 12, dtype=torch.float32).reshape(2, 3, 10, 12)
    crops = random_crops(batch, 6, torch.Generator().manual_seed(0))
    assert crops.shape == (2, 3, 6, 6)
    for sample, crop in zip(batch, crops):
        y, x = divmod(int(crop[0, 0, 0]) - int(sample[0, 0, 0]), 12)
        torch.testing.assert_close(crop, sample[:, y:y + 6, x:x + 6])


# ------------------------------------------------------------- end to end
def test_invalid_recipe_configs():
    for kwargs in ({"prediction": "score"}, {"min_snr_gamma": 0.0}, {"condition_dropout": 1.0},
                   {"contrast_randomisation": -0.1}, {"spacing_mm": 0.0}, {"contrast_variants": 0}):
        with pytest.raises(ConfigError):
            TrainConfig(**kwargs)


@pytest.fixture(scope="module")
def recipe_model(tmp_path_factory, ixi_t1_files):
    from zeroshot_core.cli.parser import main

    out = tmp_path_factory.mktemp("recipe") / "model"
    assert main(["-q", "train", str(ixi_t1_files[0]), "--out", str(out), "--guidance", "lmi", "--model-size", "tiny",
                 "--image-size", "32", "--max-steps", "3", "--batch-size", "2", "--device", "cpu",
                 "--prediction", "v_prediction", "--min-snr-gamma", "5", "--condition-dropout", "0.5",
                 "--contrast-randomisation", "0.5", "--contrast-variants", "2", "--spacing-mm", "4",
                 "--notes", "held out: none"]) == 0
    return out


def test_every_switch_is_recorded_in_the_card(recipe_model):
    card = json.loads((recipe_model / "model.json").read_text())
    assert card["noise_schedule"]["prediction_type"] == "v_prediction"
    training = card["training"]
    assert training["prediction"] == "v_prediction" and training["min_snr_gamma"] == 5.0
    assert training["condition_dropout"] == 0.5 and training["contrast_randomisation"] == 0.5
    assert training["contrast_variants"] == 2 and training["spacing_mm"] == 4.0 and training["crop_size"] == 32
    assert training["mask_kind"] == "head" and training["steps"] == 3 and card["notes"] == "held out: none"


def test_a_recipe_model_translates_end_to_end_with_cfg(recipe_model, t1_path):
    from zeroshot_core.diffusion.translation import TranslateOptions, translate_iter

    options = TranslateOptions(steps=2, device="cpu", slices=(59, 60), cfg_scale=2.0, scheduler="dpm")
    *_, result = translate_iter(t1_path, recipe_model, options=options)
    data = result.volume.data
    assert data.shape == (120, 120, 90) and np.isfinite(data).all()
    assert result.mask[:, 60].mean() > 0.3  # the whole head is translated
    translated = data[:, 60][result.mask[:, 60]]
    assert translated.std() > 0


def test_the_cards_measured_cfg_scale_is_the_default(recipe_model, t1_path, tmp_path):
    import shutil

    from zeroshot_core.diffusion.provenance import translation_provenance
    from zeroshot_core.diffusion.translation import TranslateOptions, translate_iter

    model = tmp_path / "model"
    shutil.copytree(recipe_model, model)
    card = json.loads((model / "model.json").read_text())
    assert card["sampling"] == {}  # training records no default: CFG stays off
    card["sampling"] = {"cfg_scale": 2.0, "note": "chosen on a validation"}
    (model / "model.json").write_text(json.dumps(card))

    def run(cfg_scale):
        options = TranslateOptions(steps=2, device="cpu", slices=(60,), cfg_scale=cfg_scale)
        *_, result = translate_iter(t1_path, model, options=options)
        return result, options

    default, options = run(None)
    explicit, _ = run(2.0)
    off, _ = run(1.0)
    assert default.cfg_scale == explicit.cfg_scale == 2.0 and off.cfg_scale == 1.0
    np.testing.assert_array_equal(default.volume.data, explicit.volume.data)
    assert not np.array_equal(default.volume.data, off.volume.data)
    record = translation_provenance(default, options)["Translation"]
    assert record["cfg_scale"] == 2.0 and record["cfg_scale_requested"] is None


def test_resume_with_another_prediction_is_refused(recipe_model, ixi_t1_files):
    from zeroshot_core.training.loop import train_iter

    config = TrainConfig(guidance="lmi", model_size="tiny", image_size=32, max_steps=4, batch_size=2, device="cpu",
                         prediction="epsilon", spacing_mm=4.0)
    with pytest.raises(ModelError, match="prediction"):
        next(train_iter(ixi_t1_files[:1], recipe_model, config, resume=True))


def test_cfg_is_refused_for_a_model_without_dropout(tiny_contour_model, t1_path, tmp_path, capsys):
    from zeroshot_core.cli.parser import main

    out = tmp_path / "t.nii.gz"
    code = main(["-q", "translate", str(t1_path), "--model", str(tiny_contour_model), "--out", str(out),
                 "--steps", "2", "--slices", "45", "--device", "cpu", "--cfg-scale", "2"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "--condition-dropout" in err and not out.exists()


def test_bundled_epsilon_models_still_load_and_run(t1_path):
    from zeroshot_core import api
    from zeroshot_core.diffusion.translation import TranslateOptions
    from zeroshot_core.model.loading import bundled_model_dirs
    from zeroshot_core.model.store import read_card

    dirs = bundled_model_dirs()
    assert dirs
    older_cards = 0
    for directory in dirs:
        card = read_card(directory)
        assert card.noise_schedule["prediction_type"] == "epsilon"
        older_cards += "prediction" not in card.training  # written before the recipe switches existed
        volume = api.translate(t1_path, directory, options=TranslateOptions(steps=2, device="cpu", slices=(45,)))
        assert np.isfinite(volume.data).all()
    assert older_cards >= 1  # t1-contour and t1-none keep the card layout of before the recipe switches


def test_the_bundled_lmi_samples_with_its_measured_cfg_scale_and_steps_and_the_others_without(t1_path):
    from zeroshot_core.diffusion.translation import TranslateOptions, translate_iter
    from zeroshot_core.model.loading import bundled_model_dirs

    scales, steps, refiners = {}, {}, {}
    for directory in bundled_model_dirs():
        *_, result = translate_iter(t1_path, directory, options=TranslateOptions(steps=1, device="cpu", slices=(45,)))
        scales[directory.name] = result.cfg_scale
        assert result.refiner is None  # a one-step run leaves no step to a card's refiner: it is dropped
        *_, result = translate_iter(t1_path, directory, options=TranslateOptions(device="cpu", slices=(45,)))
        steps[directory.name] = result.steps
        refiners[directory.name] = (result.refiner.path.name, result.refine_steps, result.refiner_cfg_scale
                                    ) if result.refiner else None
    assert scales.pop("t1-lmi") == 1.5
    assert set(scales.values()) == {1.0}
    # the 2 mm models sample in 25 (t1-lmi) and 20 steps (t1-lmi-lite, the last one by t1-lmi), the others in 50
    assert (steps.pop("t1-lmi"), steps.pop("t1-lmi-lite")) == (25, 20)
    assert set(steps.values()) == {50}
    assert refiners.pop("t1-lmi-lite") == ("t1-lmi", 1, 1.5)
    assert set(refiners.values()) == {None}


def test_the_default_lmi_model_is_the_refined_lite_student_and_t1_lmi_stays_available_by_name():
    from zeroshot_core.model.loading import default_model_dir, model_directory

    assert default_model_dir("lmi").name == default_model_dir(None).name == "t1-lmi-lite"
    assert model_directory("t1-lmi").name == "t1-lmi"
