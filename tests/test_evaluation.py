"""evaluate(): every method on one pair, one segmenter state, scores in the reference brain mask; report files."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil

import imageio.v3 as iio
import nibabel as nib
import numpy as np
import pytest

from zeroshot_core.diffusion.translation import TranslateOptions
from zeroshot_core.errors import ConfigError, InputError
from zeroshot_core.evaluation.evaluator import DEFAULT_METHODS, evaluate, kmeans_reference
from zeroshot_core.evaluation.report import MethodResult, format_table, to_json, write_report
from zeroshot_core.samples.sample_data import load_sample

SLICES = (38, 39, 40)
FAST = TranslateOptions(steps=2, device="cpu")


@pytest.fixture(scope="module")
def phantom():
    return {key: load_sample(key) for key in ("pd", "t1", "labels")}


@pytest.fixture(scope="module")
def full_run(phantom, tiny_contour_model, tiny_none_model):
    """Every default method on PD -> T1 (lmi has no model)."""
    events = []
    result = evaluate(phantom["pd"], phantom["t1"], phantom["labels"],
                      models={"contour": tiny_contour_model, "none": tiny_none_model},
                      options=FAST, slices=SLICES, progress=lambda m, f: events.append((m, f)))
    return result, events


def test_every_method_is_reported_in_order(full_run, tiny_contour_model, tiny_none_model):
    result, events = full_run
    assert [m.method for m in result.methods] == list(DEFAULT_METHODS)
    statuses = {m.method: m.status for m in result.methods}
    assert statuses == {"identity": "ok", "histmatch": "ok", "shape": "ok", "none": "ok", "contour": "ok",
                        "lmi": "skipped"}
    assert "no model" in result.method("lmi").reason
    assert result.method("contour").model == str(tiny_contour_model)
    assert result.method("none").model == str(tiny_none_model)
    assert {m for m, _ in events} == set(DEFAULT_METHODS)
    assert all(0.0 <= f <= 1.0 for _, f in events)
    assert result.slices == SLICES and result.axis == 2 and result.spacing == (2.0, 2.0, 2.0)


def test_scores_are_in_range_and_restricted_to_the_region(full_run, phantom):
    result, _ = full_run
    brain = phantom["labels"].data > 0
    expected_region = np.zeros_like(brain)
    expected_region[:, :, list(SLICES)] = brain[:, :, list(SLICES)]
    assert np.array_equal(result.region, expected_region)
    for m in [r for r in result.methods if r.status == "ok"] + [result.target]:
        assert set(m.dice) == {1, 2, 3}
        assert all(0.0 <= v <= 1.0 for v in m.dice.values()) and 0.0 <= m.mean_dice <= 1.0
        assert m.mean_assd_mm >= 0.0 and -1.0 <= m.ssim <= 1.0 and m.wall_time_s >= 0.0
        assert not m.labels[~result.region].any() and m.labels[result.region].min() >= 1
        assert m.translation.data.shape == phantom["pd"].data.shape
        assert np.allclose(m.translation.affine, phantom["pd"].affine)
    assert math.isinf(result.target.psnr) and result.target.ssim == pytest.approx(1.0)


def test_diffusion_outputs_only_on_the_chosen_slices(full_run):
    result, _ = full_run
    data = result.method("contour").translation.data
    others = [i for i in range(data.shape[2]) if i not in SLICES]
    assert np.ptp(data[:, :, others]) == 0.0  # untranslated slices hold one fill value
    assert np.ptp(data[:, :, list(SLICES)]) > 0.0


def test_identity_on_the_target_equals_the_segmenter_on_the_target(phantom, tiny_contour_model):
    for models in ({"contour": tiny_contour_model}, {}):  # card state, and fitted on the target
        result = evaluate(phantom["t1"], phantom["t1"], phantom["labels"], models=models,
                          methods=("identity", "contour") if models else ("identity",), options=FAST, slices=SLICES)
        identity = result.method("identity")
        assert np.array_equal(identity.labels, result.target.labels)
        assert identity.dice == result.target.dice and identity.mean_dice == result.target.mean_dice
        assert math.isinf(identity.psnr) and identity.ssim == pytest.approx(1.0)
    assert "no model" in result.protocol["segmenter_state"]
    assert result.target.mean_dice > 0.7  # K-Means fitted on the phantom T1 finds its tissues


def test_histmatch_uses_the_training_distribution_not_the_paired_target(phantom, tiny_contour_model):
    runs = []
    for target in (phantom["t1"], phantom["t1"].with_data(phantom["t1"].data * 3.0 + 7.0)):
        runs.append(evaluate(phantom["pd"], target, phantom["labels"], models={"contour": tiny_contour_model},
                             methods=("histmatch", "contour"), options=FAST, slices=SLICES))
    first, second = (r.method("histmatch").translation.data for r in runs)
    assert np.array_equal(first, second)
    assert "training intensity quantiles" in runs[0].protocol["histmatch_reference"]


def test_histmatch_prefers_training_quantiles_from_the_card(phantom, tiny_contour_model, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(tiny_contour_model, model)
    card = json.loads((model / "model.json").read_text())
    card["training"]["intensity_quantiles"] = [-0.2, -0.1, 0.0, 0.1, 0.2]
    (model / "model.json").write_text(json.dumps(card))
    result = evaluate(phantom["pd"], phantom["t1"], phantom["labels"], models={"contour": model},
                      methods=("histmatch", "contour"), options=FAST, slices=SLICES)
    low, high = card["target_intensity"]["low"], card["target_intensity"]["high"]
    data = result.method("histmatch").translation.data
    inside = data[data > low + 1e-6]  # the filter mask's voxels, mapped into [-0.2, 0.2]
    span = (high - low) / 2.0
    assert inside.min() >= low + 0.8 * span - 1e-3 and inside.max() <= low + 1.2 * span + 1e-3
    assert "quantiles" in result.protocol["histmatch_reference"]


def test_a_model_of_another_guidance_fails_that_method_only(phantom, tiny_contour_model):
    result = evaluate(phantom["pd"], phantom["t1"], phantom["labels"], models={"none": tiny_contour_model},
                      methods=("identity", "none"), options=FAST, slices=(39,))
    assert result.method("identity").status == "ok"
    failed = result.method("none")
    assert failed.status == "failed" and "contour" in failed.reason and failed.translation is None


def test_kmeans_reference_is_centred_on_the_centres():
    values = kmeans_reference([-0.6, 0.1, 0.5], size=3000)
    assert values.size == 3000 and np.all(np.diff(values) >= 0) and values.min() >= -1 and values.max() <= 1
    thirds = [np.median(values[i * 1000:(i + 1) * 1000]) for i in range(3)]
    assert np.allclose(thirds, [-0.6, 0.1, 0.5], atol=1e-3)
    with pytest.raises(ConfigError):
        kmeans_reference([0.3])


@pytest.mark.parametrize("methods", [("identity", "bogus"), ("identity", "identity"), ()])
def test_bad_methods(phantom, methods):
    with pytest.raises(ConfigError, match="methods"):
        evaluate(phantom["pd"], phantom["t1"], phantom["labels"], methods=methods)


def test_bad_inputs(phantom):
    with pytest.raises(InputError, match="grid"):
        evaluate(phantom["pd"], phantom["t1"].data[:-1], phantom["labels"], methods=("identity",))
    with pytest.raises(InputError, match="slice"):
        evaluate(phantom["pd"], phantom["t1"], phantom["labels"], methods=("identity",), slices=(79,))
    with pytest.raises(ConfigError, match="out of range"):
        evaluate(phantom["pd"], phantom["t1"], phantom["labels"], methods=("identity",), slices=(500,))


def test_method_result_is_validated():
    with pytest.raises(ConfigError, match="Dice"):
        MethodResult("x", "skipped", "why", dice={1: 1.5})
    with pytest.raises(ConfigError, match="no translation"):
        MethodResult("x", "ok")
    with pytest.raises(ConfigError, match="reason"):
        MethodResult("x", "skipped")
    with pytest.raises(ConfigError, match="status"):
        MethodResult("x", "done", "why")


def test_report_files(full_run, phantom, tmp_path):
    result, _ = full_run
    paths = write_report(result, tmp_path / "report")
    data = json.loads(paths["json"].read_text(), parse_constant=lambda c: pytest.fail(f"non-strict JSON {c}"))
    assert [m["method"] for m in data["methods"]] == list(DEFAULT_METHODS)
    assert data["target"]["psnr_db"] == "inf" and data["slices"] == list(SLICES)
    assert "labels > 0" in data["protocol"]["scoring_region"]
    assert data["protocol"]["translate_options"]["steps"] == 2  # a number, or null for each model's default
    assert data["protocol"]["translate_options"]["autocast"] == "auto"
    table = paths["markdown"].read_text()
    assert "- Sampling: steps=2, scheduler=ddim," in table
    for method in DEFAULT_METHODS:
        assert f"| {method} " in table
    assert "real target (ceiling)" in table and "lmi: skipped" in table and "evaluation.png" in table
    figure = iio.imread(paths["figure"])
    ok_rows = sum(m.status == "ok" for m in result.methods) + 1  # + reference row
    assert figure.ndim == 3 and figure.shape[2] == 3 and figure.shape[0] > ok_rows * 150
    for method in ("identity", "histmatch", "shape", "none", "contour"):
        image = nib.load(str(paths[f"{method}_translation"]))
        assert image.shape == phantom["pd"].data.shape and np.allclose(image.affine, phantom["pd"].affine)
        labels = np.asarray(nib.load(str(paths[f"{method}_labels"])).dataobj)
        assert np.array_equal(labels, result.method(method).labels)
    assert "lmi_translation" not in paths
    assert not list((tmp_path / "report").glob(".*"))  # no temporary files left behind
    assert format_table(result) in table and to_json(result) == paths["json"].read_text()


def test_a_report_without_steps_names_each_models_default(full_run, tmp_path):
    result, _ = full_run
    protocol = {**result.protocol, "translate_options": {**result.protocol["translate_options"], "steps": None}}
    paths = write_report(dataclasses.replace(result, protocol=protocol), tmp_path / "report")
    assert json.loads(paths["json"].read_text())["protocol"]["translate_options"]["steps"] is None
    assert "- Sampling: steps=each model's default, scheduler=ddim," in paths["markdown"].read_text()


def test_report_refuses_a_file_as_folder(full_run, tmp_path):
    result, _ = full_run
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        write_report(result, tmp_path / "file")
