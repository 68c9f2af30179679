"""Fine-tuning with ``--init-from``: a run that starts from another model's weights."""

import json

import pytest
import torch
from safetensors.torch import load_file

from zeroshot_core.errors import ModelError
from zeroshot_core.training.loop import TrainConfig, train_iter


def _run(files, out, resume=False, **kwargs):
    settings = dict(guidance="lmi", model_size="tiny", image_size=32, max_steps=2, batch_size=2,
                    checkpoint_every=0, device="cpu")
    settings.update(kwargs)
    for _ in train_iter(files, out, TrainConfig(**settings), resume=resume):
        pass
    return out


@pytest.fixture(scope="module")
def tiny_lmi_resized(tmp_path_factory, ixi_t1_files):
    """A 2-step tiny LMI model of the pad-and-resize kind (32 px)."""
    return _run(ixi_t1_files[:1], tmp_path_factory.mktemp("init") / "lmi")


def test_a_native_spacing_run_starts_from_the_models_weights(tiny_lmi_resized, ixi_t1_files, tmp_path):
    out = _run(ixi_t1_files[:1], tmp_path / "fine", max_steps=1, learning_rate=1e-9, spacing_mm=4.0,
               init_from=str(tiny_lmi_resized))
    start = load_file(str(tiny_lmi_resized / "model.safetensors"))
    tuned = load_file(str(out / "model.safetensors"))
    assert start.keys() == tuned.keys()
    for key in start:  # one step at lr 1e-9 moves nothing measurable; a random start differs by O(0.1)
        torch.testing.assert_close(tuned[key].float(), start[key].float(), atol=1e-6, rtol=0)
    training = json.loads((out / "model.json").read_text())["training"]
    assert training["init_from"] == {"model": "lmi", "steps": 2, "image_size": 32, "spacing_mm": None}
    assert training["steps"] == 1 and training["spacing_mm"] == 4.0


def test_without_init_from_the_start_is_random(tiny_lmi_resized, ixi_t1_files, tmp_path):
    out = _run(ixi_t1_files[:1], tmp_path / "fresh", max_steps=1, learning_rate=1e-9, seed=5)
    start = load_file(str(tiny_lmi_resized / "model.safetensors"))
    fresh = load_file(str(out / "model.safetensors"))
    assert any(not torch.allclose(fresh[k].float(), start[k].float(), atol=1e-3) for k in start)
    assert json.loads((out / "model.json").read_text())["training"]["init_from"] is None


def test_resuming_a_fine_tuned_run_keeps_its_origin(tiny_lmi_resized, ixi_t1_files, tmp_path):
    out = _run(ixi_t1_files[:1], tmp_path / "fine", max_steps=1, init_from=str(tiny_lmi_resized))
    _run(ixi_t1_files[:1], out, resume=True, max_steps=2, init_from=str(tiny_lmi_resized))
    training = json.loads((out / "model.json").read_text())["training"]
    assert training["steps"] == 2 and training["init_from"]["model"] == "lmi"


@pytest.mark.parametrize("change, word", [({"guidance": "contour"}, "guidance"),
                                          ({"prediction": "v_prediction"}, "prediction"),
                                          ({"model_size": "small"}, "model size")])
def test_an_incompatible_model_is_refused_before_the_data_load(tiny_lmi_resized, ixi_t1_files, tmp_path,
                                                               monkeypatch, change, word):
    from zeroshot_core.training import loop

    def no_load(*args, **kwargs):
        raise AssertionError("the data were loaded before the model was checked")

    monkeypatch.setattr(loop, "load_training_set", no_load)
    with pytest.raises(ModelError, match=word) as info:
        _run(ixi_t1_files[:1], tmp_path / "bad", init_from=str(tiny_lmi_resized), **change)
    assert str(tiny_lmi_resized) in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "bad").exists()


def test_the_cli_names_a_missing_model_in_one_line(ixi_t1_files, tmp_path, capsys):
    from zeroshot_core.cli.parser import main

    code = main(["-q", "train", str(ixi_t1_files[0]), "--out", str(tmp_path / "m"), "--guidance", "lmi",
                 "--model-size", "tiny", "--image-size", "32", "--max-steps", "1", "--device", "cpu",
                 "--init-from", str(tmp_path / "nowhere")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "nowhere" in err and err.count("\n") == 0


def test_an_empty_init_from_is_a_config_error():
    from zeroshot_core.errors import ConfigError

    with pytest.raises(ConfigError, match="init-from"):
        TrainConfig(init_from=" ")
