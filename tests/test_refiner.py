"""A refiner (a second model for the last sampling steps): sampling, loading, checks, CLI."""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import pytest
import torch

from zeroshot_core.cli import main
from zeroshot_core.diffusion.options import TranslateOptions
from zeroshot_core.diffusion.provenance import translation_provenance
from zeroshot_core.diffusion.sampling import Refinement, sample_progressive
from zeroshot_core.diffusion.schedulers import make_scheduler
from zeroshot_core.diffusion.translation import translate_iter
from zeroshot_core.errors import ConfigError, ModelError
from zeroshot_core.guidance.base import Guidance
from zeroshot_core.model.loading import bundled_model_dirs, model_directory
from zeroshot_core.model.store import DEFAULT_NOISE_SCHEDULE


class _Recorder(torch.nn.Module):
    """A stand-in score network that predicts zero noise and records its calls."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[int, int]] = []  # (batch rows, timestep)

    def forward(self, x, t):
        self.calls.append((x.shape[0], int(t[0])))
        return SimpleNamespace(sample=torch.zeros_like(x[:, :1]))


def _run(refinement: Refinement | None, steps: int = 6, cfg_scale: float = 1.0):
    model = _Recorder()
    scheduler = make_scheduler("ddim", dict(DEFAULT_NOISE_SCHEDULE))
    images = torch.zeros(2, 1, 8, 8)
    empty = torch.zeros(2, 0, 8, 8)
    events = list(sample_progressive(model, scheduler, Guidance(), images, empty, torch.ones_like(images),
                                     torch.randn(2, 1, 8, 8), steps, cfg_scale=cfg_scale, refinement=refinement))
    return model, events


def test_the_refiner_takes_exactly_the_last_steps_with_its_own_guidance_scale():
    refiner = _Recorder()
    model, events = _run(Refinement(refiner, steps=2, cfg_scale=1.5), steps=6, cfg_scale=1.0)
    assert len(events) == 6
    assert [rows for rows, _ in model.calls] == [2, 2, 2, 2]  # the model: 4 unguided steps
    assert [rows for rows, _ in refiner.calls] == [4, 4]  # the refiner: 2 guided steps (conditional + unconditional)
    # the refiner's timesteps are the two lowest of the schedule
    assert max(t for _, t in refiner.calls) < min(t for _, t in model.calls)


def test_an_unguided_refiner_after_a_guided_model_calls_once_per_step():
    refiner = _Recorder()
    model, _ = _run(Refinement(refiner, steps=1, cfg_scale=1.0), steps=4, cfg_scale=2.0)
    assert [rows for rows, _ in model.calls] == [4, 4, 4]
    assert [rows for rows, _ in refiner.calls] == [2]


def test_without_a_refiner_the_model_takes_every_step():
    model, _ = _run(None, steps=5)
    assert len(model.calls) == 5


@pytest.fixture()
def model_pair(tmp_path, tiny_contour_model):
    """Two copies of a tiny contour model, side by side: ``a`` (the model) and ``b`` (its refiner)."""
    for name in ("a", "b"):
        shutil.copytree(tiny_contour_model, tmp_path / name)
    return tmp_path / "a", tmp_path / "b"


def _name_refiner_in_card(folder, refiner: str, steps: int) -> None:
    card_file = folder / "model.json"
    card = json.loads(card_file.read_text())
    card.setdefault("sampling", {}).update({"refiner": refiner, "refine_steps": steps})
    card_file.write_text(json.dumps(card))


def _result(t1_path, model, **options):
    *_, result = translate_iter(t1_path, model, options=TranslateOptions(steps=3, device="cpu", slices=(45,),
                                                                         **options))
    return result


def test_a_refiner_named_by_the_card_is_found_beside_the_model_and_recorded(t1_path, model_pair):
    a, b = model_pair
    _name_refiner_in_card(a, "b", 1)
    result = _result(t1_path, a)
    assert result.refiner.path == b and result.refine_steps == 1
    record = translation_provenance(result, TranslateOptions(steps=3))["Translation"]
    assert record["refiner"]["name"] == "b" and record["refiner"]["steps"] == 1
    assert record["refiner_requested"] is None and record["refine_steps_requested"] is None
    # refine steps 0 switch the card's refiner off
    assert _result(t1_path, a, refine_steps=0).refiner is None


def test_the_refiner_changes_the_result_only_in_its_steps(t1_path, model_pair):
    a, b = model_pair
    plain = _result(t1_path, a)
    same = _result(t1_path, a, refiner=str(b), refine_steps=1)  # identical weights: identical result
    assert plain.refiner is None and same.refiner.path == b
    assert torch.allclose(torch.from_numpy(plain.volume.data), torch.from_numpy(same.volume.data), atol=1e-5)


def test_a_refiner_trained_otherwise_is_refused_before_sampling(t1_path, tiny_contour_model, tiny_none_model):
    events = translate_iter(t1_path, tiny_contour_model, options=TranslateOptions(
        steps=3, device="cpu", slices=(45,), refiner=str(tiny_none_model), refine_steps=1))
    with pytest.raises(ModelError, match="does not fit.*guidance"):
        next(events)


def test_a_refiner_at_another_pixel_spacing_is_refused_naming_it(t1_path, model_pair):
    a, b = model_pair
    card_file = b / "model.json"
    card = json.loads(card_file.read_text())
    card["training"]["spacing_mm"] = 2.0
    card_file.write_text(json.dumps(card))
    with pytest.raises(ModelError, match=r"pixel spacing \(mm\) is 2.0, the model's none \(slices resized"):
        _result(t1_path, a, refiner=str(b), refine_steps=1)


@pytest.mark.parametrize("options, error, fragment", [
    ({"refine_steps": 3}, ConfigError, "leaves no step"),
    ({"refine_steps": 1, "refiner": None}, ConfigError, "needs a refiner"),
    ({"refiner": "no-such-model"}, ModelError, "no bundled model of that name"),
])
def test_bad_refiner_settings_fail_in_one_line(t1_path, model_pair, options, error, fragment):
    a, b = model_pair
    options = {"refiner": str(b), **options}
    with pytest.raises(error, match=fragment) as caught:
        _result(t1_path, a, **options)
    assert "\n" not in str(caught.value)


def test_refine_steps_are_validated():
    with pytest.raises(ConfigError, match="refine steps"):
        TranslateOptions(refine_steps=-1)
    with pytest.raises(ConfigError, match="refiner must name"):
        TranslateOptions(refiner=" ")


def test_bundled_models_are_found_by_name():
    names = [d.name for d in bundled_model_dirs()]
    assert names and model_directory(names[0]) == bundled_model_dirs()[0]
    with pytest.raises(ModelError, match=names[0]):  # the message lists the bundled names
        model_directory("not-a-bundled-model")


def test_cli_translate_with_a_refiner_writes_it_to_the_sidecar(t1_path, model_pair, tmp_path, capsys):
    a, b = model_pair
    out = tmp_path / "t.nii.gz"
    code = main(["-q", "translate", str(t1_path), "--model", str(a), "--out", str(out), "--steps", "3",
                 "--slices", "45", "--device", "cpu", "--refiner", str(b), "--refine-steps", "2"])
    assert code == 0
    assert "(contour, 1 slices, last 2 steps by b) written to" in capsys.readouterr().out
    record = json.loads(out.with_name("t.json").read_text())["Translation"]
    assert record["refiner"]["path"] == str(b) and record["refiner"]["steps"] == 2


def test_cli_refuses_too_many_refine_steps_in_one_line(t1_path, model_pair, tmp_path, capsys):
    a, b = model_pair
    code = main(["-q", "translate", str(t1_path), "--model", str(a), "--out", str(tmp_path / "t.nii.gz"),
                 "--steps", "3", "--device", "cpu", "--refiner", str(b), "--refine-steps", "3"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "leaves no step" in err and "\n" not in err
    assert not (tmp_path / "t.nii.gz").exists()


@pytest.mark.parametrize("options", [{"refine_steps": 1.5}, {"refine_steps": True}, {"steps": "2"},
                                     {"cfg_scale": "2"}, {"refiner": 5}, {"samples": 2.0}])
def test_options_of_the_wrong_type_are_a_config_error(options):
    with pytest.raises(ConfigError, match="must be"):
        TranslateOptions(**options)


def test_a_named_refiner_must_exist_even_with_no_step_for_it(t1_path, model_pair):
    a, _ = model_pair
    with pytest.raises(ModelError, match="no bundled model of that name"):
        _result(t1_path, a, refiner="no-such-model", refine_steps=0)


def test_evaluate_gives_the_refiner_to_the_models_of_its_guidance_only_and_records_it(model_pair, tiny_none_model):
    from zeroshot_core.evaluation.evaluator import evaluate
    from zeroshot_core.samples.sample_data import sample_paths

    a, b = model_pair
    paths = sample_paths()
    result = evaluate(paths["pd"], paths["t1"], paths["labels"], models={"contour": a, "none": tiny_none_model},
                      methods=("contour", "none"), slices=(40,),
                      options=TranslateOptions(steps=3, device="cpu", refiner=str(b), refine_steps=1))
    rows = {m.method: m for m in result.methods}
    assert rows["contour"].status == rows["none"].status == "ok"
    assert rows["contour"].refiner == "b (1 step, CFG 1)" and rows["none"].refiner is None
    assert rows["contour"].scores()["refiner"] == "b (1 step, CFG 1)"
    with pytest.raises(ModelError, match="no bundled model"):  # an unknown refiner stops before any work
        evaluate(paths["pd"], paths["t1"], paths["labels"], models={"contour": a}, methods=("contour",),
                 slices=(40,), options=TranslateOptions(steps=3, device="cpu", refiner="no-such-model"))


def test_many_inputs_with_a_misfit_refiner_fail_once_before_any_file(t1_path, model_pair, tiny_none_model, tmp_path,
                                                                      capsys):
    a, _ = model_pair
    inputs = [tmp_path / "in" / f"s{k}.nii.gz" for k in (1, 2)]
    inputs[0].parent.mkdir()
    for path in inputs:
        shutil.copyfile(t1_path, path)
    code = main(["-q", "translate", *map(str, inputs), "--model", str(a), "--out", str(tmp_path / "out"),
                 "--steps", "3", "--device", "cpu", "--refiner", str(tiny_none_model)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("does not fit") == 1 and "\n" not in err
    assert not any((tmp_path / "out").glob("*"))
