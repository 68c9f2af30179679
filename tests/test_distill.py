"""Distillation with ``--teacher``: a student trained on a teacher's guided predictions."""

import json

import pytest
import torch

from zeroshot_core.cli.parser import main
from zeroshot_core.errors import ConfigError, ModelError
from zeroshot_core.model import acceleration
from zeroshot_core.model.store import build_unet, read_card, unet_config
from zeroshot_core.model.summary import default_cfg_scale
from zeroshot_core.training.distill import Teacher, load_teacher
from zeroshot_core.training.loop import TrainConfig, train_iter


def _run(files, out, resume=False, **kwargs):
    settings = {"guidance": "lmi", "model_size": "tiny", "image_size": 32, "max_steps": 2, "batch_size": 2,
                    "checkpoint_every": 0, "device": "cpu"}
    settings.update(kwargs)
    return [p.loss for p in train_iter(files, out, TrainConfig(**settings), resume=resume)]


@pytest.fixture(autouse=True)
def float32_teacher(monkeypatch):
    """Exact targets: the teacher in float32 whatever this CPU has (bf16 has its own test)."""
    monkeypatch.setattr(acceleration, "cpu_has_bfloat16", lambda: False)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory, ixi_t1_files):
    """A 3-step tiny LMI model trained with condition dropout (so CFG means something)."""
    out = tmp_path_factory.mktemp("teacher") / "lmi"
    _run(ixi_t1_files[:1], out, max_steps=3, condition_dropout=0.5)
    return out


def test_the_target_is_the_guided_prediction(teacher):
    loaded = load_teacher(teacher, read_card(teacher), 1.5, torch.device("cpu"))
    inputs, t = torch.randn(2, 3, 32, 32), torch.tensor([10, 900])
    with torch.no_grad():
        cond = loaded.unet(inputs, t).sample
        uncond = loaded.unet(torch.cat([inputs[:, :1], torch.zeros_like(inputs[:, 1:])], 1), t).sample
    torch.testing.assert_close(loaded.target(inputs, t), uncond + 1.5 * (cond - uncond), atol=1e-5, rtol=1e-5)
    plain = Teacher(loaded.unet, 1.0, {})
    torch.testing.assert_close(plain.target(inputs, t), cond)
    assert loaded.provenance == {"model": "lmi", "steps": 3, "cfg_scale": 1.5, "autocast": "off"}
    assert not any(p.requires_grad for p in loaded.unet.parameters())


def test_on_a_cpu_with_bfloat16_the_teacher_computes_in_bf16_as_translations_do(teacher, ixi_t1_files, tmp_path,
                                                                                monkeypatch):
    exact = load_teacher(teacher, read_card(teacher), 1.5, torch.device("cpu"))
    monkeypatch.setattr(acceleration, "cpu_has_bfloat16", lambda: True)
    fast = load_teacher(teacher, read_card(teacher), 1.5, torch.device("cpu"))
    assert fast.autocast == "bf16" and fast.provenance["autocast"] == "bf16"
    inputs, t = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)), torch.tensor([10, 900])
    plain, half = exact.target(inputs, t), fast.target(inputs, t)
    assert half.dtype == torch.float32
    difference = (half - plain).abs().mean() / plain.square().mean().sqrt()
    assert 0 < difference < 0.05  # bf16 really ran, and the targets stay close
    # a run started with bf16 targets and resumed with float32 ones says so
    out = tmp_path / "student"
    _run(ixi_t1_files[:1], out, max_steps=1, model_size="lite", teacher=str(teacher))
    assert json.loads((out / "model.json").read_text())["training"]["distilled_from"]["autocast"] == "bf16"
    monkeypatch.setattr(acceleration, "cpu_has_bfloat16", lambda: False)
    _run(ixi_t1_files[:1], out, resume=True, max_steps=2, model_size="lite", teacher=str(teacher))
    assert json.loads((out / "model.json").read_text())["training"]["distilled_from"]["autocast"] == "mixed"


def test_a_student_that_is_its_teacher_has_nothing_to_learn(teacher, ixi_t1_files, tmp_path):
    # the same weights and no guidance: the target is the student's own output, the loss 0
    same = _run(ixi_t1_files[:1], tmp_path / "same", max_steps=1, init_from=str(teacher), teacher=str(teacher))
    assert same[0] < 1e-10
    # with guidance folded in the target moves away from the conditional output
    guided = _run(ixi_t1_files[:1], tmp_path / "guided", max_steps=1, init_from=str(teacher),
                  teacher=str(teacher), teacher_cfg_scale=3.0)
    assert guided[0] > 1e-6
    # and a random start is far from it
    fresh = _run(ixi_t1_files[:1], tmp_path / "fresh", max_steps=1, teacher=str(teacher), seed=4)
    assert fresh[0] > 100 * same[0]


def test_a_lite_student_records_its_teacher_and_keeps_it_on_resume(teacher, ixi_t1_files, tmp_path):
    out = tmp_path / "lite"
    _run(ixi_t1_files[:1], out, max_steps=1, model_size="lite", teacher=str(teacher), teacher_cfg_scale=1.25)
    _run(ixi_t1_files[:1], out, resume=True, max_steps=2, model_size="lite", teacher=str(teacher),
         teacher_cfg_scale=1.25)
    card = json.loads((out / "model.json").read_text())
    assert card["model_size"] == "lite" and card["unet"]["block_out_channels"] == [16, 32, 48, 64]
    assert card["training"]["steps"] == 2
    assert card["training"]["distilled_from"] == {"model": "lmi", "steps": 3, "cfg_scale": 1.25, "autocast": "off"}
    assert card["training"]["teacher_cfg_scale"] == 1.25
    assert default_cfg_scale(card.get("sampling")) == 1.0  # the student samples without CFG
    with pytest.raises(ModelError, match="teacher-cfg-scale"):
        _run(ixi_t1_files[:1], out, resume=True, max_steps=3, model_size="lite", teacher=str(teacher),
             teacher_cfg_scale=2.0)


@pytest.mark.parametrize("change, word", [({"guidance": "contour"}, "guidance"),
                                          ({"prediction": "v_prediction"}, "prediction"),
                                          ({"guidance_params": {"bins": 8}}, "guidance parameters"),
                                          ({"spacing_mm": 4.0}, "spacing")])
def test_an_unfit_teacher_is_refused_before_the_data_load(teacher, ixi_t1_files, tmp_path, monkeypatch,
                                                          change, word):
    from zeroshot_core.training import loop

    def no_load(*args, **kwargs):
        raise AssertionError("the data were loaded before the teacher was checked")

    monkeypatch.setattr(loop, "load_training_set", no_load)
    monkeypatch.setattr("zeroshot_core.training.native_data.load_native_training_set", no_load)
    with pytest.raises(ModelError, match=word) as info:
        _run(ixi_t1_files[:1], tmp_path / "bad", teacher=str(teacher), **change)
    assert str(teacher) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("settings, word", [({"teacher_cfg_scale": 1.5}, "needs --teacher"),
                                            ({"teacher": "m", "teacher_cfg_scale": 0.5}, r"\[1, 20\]"),
                                            ({"teacher": "m", "condition_dropout": 0.1}, "condition dropout"),
                                            ({"teacher": " "}, "model folder")])
def test_distillation_settings_are_validated(settings, word):
    with pytest.raises(ConfigError, match=word):
        TrainConfig(**settings)


def test_the_cli_offers_every_model_size():
    from zeroshot_core.choices import MODEL_SIZE_NAMES
    from zeroshot_core.model.store import MODEL_SIZES

    assert set(MODEL_SIZE_NAMES) == set(MODEL_SIZES)


def test_the_lite_network_is_a_quarter_of_small_and_fits_64_px_crops():
    config = unet_config("lite", 64, 3)
    lite, small = build_unet(config), build_unet(unet_config("small", 64, 3))
    assert sum(p.numel() for p in lite.parameters()) < 0.5 * sum(p.numel() for p in small.parameters())
    # attention only in the middle block (15 x 12 tokens on a 120 x 96 slice), none in the levels
    assert set(config["down_block_types"]) == {"DownBlock2D"} and set(config["up_block_types"]) == {"UpBlock2D"}
    with torch.no_grad():
        assert lite(torch.randn(1, 3, 120, 96), torch.tensor([5])).sample.shape == (1, 1, 120, 96)
    with pytest.raises(ModelError, match="multiple of 8"):
        unet_config("lite", 60, 3)
    deep = unet_config("lite-deep", 64, 3)  # the same widths and levels, twice the layers per block
    assert deep["block_out_channels"] == config["block_out_channels"] and deep["layers_per_block"] == 2
    deeper = build_unet(deep)
    assert len(deeper.down_blocks[0].resnets) == 2 and len(deeper.up_blocks[0].resnets) == 3
    with torch.no_grad():
        assert deeper(torch.randn(1, 3, 120, 96), torch.tensor([5])).sample.shape == (1, 1, 120, 96)


def test_the_cli_names_a_missing_teacher_in_one_line(ixi_t1_files, tmp_path, capsys):
    code = main(["-q", "train", str(ixi_t1_files[0]), "--out", str(tmp_path / "m"), "--guidance", "lmi",
                 "--model-size", "lite", "--image-size", "32", "--max-steps", "1", "--device", "cpu",
                 "--teacher", str(tmp_path / "nowhere"), "--teacher-cfg-scale", "1.25"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and "nowhere" in err and len(err.splitlines()) == 1
