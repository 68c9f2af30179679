"""The ``zeroshot demo`` and ``zeroshot evaluate`` commands."""

from __future__ import annotations

import json

import imageio.v3 as iio
import nibabel as nib
import numpy as np
import pytest

from zeroshot_core.cli.parser import main
from zeroshot_core.cli.report_commands import model_folders
from zeroshot_core.errors import ModelError
from zeroshot_core.evaluation.evaluator import DEFAULT_METHODS
from zeroshot_core.imaging.orientation import central_slices, slicing_axis
from zeroshot_core.model.loading import models_by_guidance
from zeroshot_core.samples.sample_data import sample_paths

REPORT_FILES = ("evaluation.json", "evaluation.md", "evaluation.png")


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory, tiny_contour_model, tiny_none_model):
    """A folder with model subfolders (contour, none) and a non-model folder to ignore."""
    root = tmp_path_factory.mktemp("models_dir")
    (root / "a_contour").symlink_to(tiny_contour_model, target_is_directory=True)
    (root / "b_none").symlink_to(tiny_none_model, target_is_directory=True)
    (root / "notes").mkdir()
    return root


def _methods(report) -> dict[str, str]:
    return {m["method"]: m["status"] for m in json.loads(report.read_text())["methods"]}


def test_demo_with_tiny_models(models_dir, tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(["-q", "demo", "--out", str(out), "--models-dir", str(models_dir), "--steps", "2",
                 "--slices", "38:41"])
    printed = capsys.readouterr().out
    assert code == 0
    for name in REPORT_FILES:
        assert (out / "pd" / name).is_file()
    for method in ("identity", "histmatch", "shape", "none", "contour"):
        assert (out / "pd" / "nifti" / f"{method}_translation.nii.gz").is_file()
        assert (out / "pd" / "nifti" / f"{method}_labels.nii.gz").is_file()
    assert _methods(out / "pd" / "evaluation.json") == {**{m: "ok" for m in DEFAULT_METHODS}, "lmi": "skipped"}
    assert "3 slices (38..40) along axis 2" in printed and "2 ddim steps" in printed
    for method in DEFAULT_METHODS:
        assert f"| {method} " in printed
    assert "lmi: skipped" in printed and not (out / "t2").exists()


def test_demo_translates_a_real_whole_head_without_labels(models_dir, ixi_t1_files, tmp_path, capsys):
    head = ixi_t1_files[0]
    before = head.read_bytes()
    out = tmp_path / "demo"
    code = main(["-q", "demo", "--out", str(out), "--models-dir", str(models_dir), "--steps", "2",
                 "--slices", "40", "--methods", "identity,contour", "--real", str(head)])
    printed = capsys.readouterr().out
    assert code == 0 and head.read_bytes() == before
    name = head.name.removesuffix(".nii.gz")
    summary = json.loads((out / "real" / "unlabelled.json").read_text())
    assert summary["scored"] is False and [i["name"] for i in summary["images"]] == [name]
    image = summary["images"][0]
    # no lmi model in this folder: the next requested guidance with a model translates
    source = nib.load(head)
    axis = slicing_axis(source.affine, source.shape)
    assert image["guidance"] == "contour" and image["axis"] == axis
    slices = image["slices"]
    centre = source.shape[axis] / 2
    assert len(slices) == 8 and slices == list(range(slices[0], slices[0] + 8)) and abs(slices[4] - centre) < 15
    translation = nib.load(out / "real" / f"{name}_t1.nii.gz")
    labels = np.asarray(nib.load(out / "real" / f"{name}_labels.nii.gz").dataobj)
    assert translation.shape == source.shape and np.allclose(translation.affine, source.affine)
    inside = np.take(labels, slices, axis=axis)
    assert set(np.unique(inside)) == {0, 1, 2, 3}
    assert not np.delete(labels, slices, axis=axis).any()  # untranslated slices stay unlabelled
    figure = iio.imread(out / "real" / "figure.png")
    assert figure.ndim == 3 and figure.shape[1] > 3 * 160
    assert "shown, not scored" in printed and f"{name}: 8 slices along axis {axis}" in printed


def test_demo_with_a_missing_real_image_fails_before_any_work(models_dir, tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(["-q", "demo", "--out", str(out), "--models-dir", str(models_dir),
                 "--real", str(tmp_path / "nowhere.nii.gz")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "nowhere.nii.gz" in err and "\n" not in err and "Traceback" not in err
    assert not out.exists()


def test_demo_without_models_runs_the_baselines_and_fails_in_one_line(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "demo"
    code = main(["-q", "demo", "--out", str(out), "--models-dir", str(empty), "--slices", "39,40",
                 "--source", "all"])
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert code == 2 and err.startswith("zeroshot: error:") and "\n" not in err and "Traceback" not in err
    assert "--models-dir" in err and "zeroshot train" in err and "skipped" in err
    for source in ("pd", "t2"):
        statuses = _methods(out / source / "evaluation.json")
        assert statuses == {"identity": "ok", "histmatch": "ok", "shape": "ok",
                            "none": "skipped", "contour": "skipped", "lmi": "skipped"}
        assert all((out / source / name).is_file() for name in REPORT_FILES)
    assert "none: skipped — no model" in captured.out and "T2 -> T1" in captured.out


def test_demo_with_a_missing_models_dir(tmp_path, capsys):
    code = main(["-q", "demo", "--out", str(tmp_path / "o"), "--models-dir", str(tmp_path / "nowhere")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "models folder not found" in err and "\n" not in err
    assert not (tmp_path / "o").exists()


def test_evaluate_command(tiny_contour_model, tmp_path, capsys):
    paths = sample_paths()
    out = tmp_path / "eval"
    code = main(["-q", "evaluate", "--source", str(paths["t2"]), "--target", str(paths["t1"]),
                 "--labels", str(paths["labels"]), "--model", str(tiny_contour_model),
                 "--methods", "identity,contour", "--out", str(out), "--steps", "2", "--slices", "39,40",
                 "--device", "cpu"])
    printed = capsys.readouterr().out
    assert code == 0
    report = json.loads((out / "evaluation.json").read_text())
    assert [m["method"] for m in report["methods"]] == ["identity", "contour"]
    assert all(m["status"] == "ok" for m in report["methods"]) and report["slices"] == [39, 40]
    assert report["methods"][1]["model"] == str(tiny_contour_model)
    assert "| contour " in printed and (out / "nifti" / "contour_labels.nii.gz").is_file()


def test_evaluate_with_a_model_of_the_wrong_guidance_fails_in_one_line(tiny_contour_model, tmp_path, capsys):
    paths = sample_paths()
    code = main(["-q", "evaluate", "--source", str(paths["pd"]), "--target", str(paths["t1"]),
                 "--labels", str(paths["labels"]), "--model", str(tiny_contour_model), "--methods", "identity,none",
                 "--out", str(tmp_path / "eval"), "--steps", "2", "--slices", "40"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "no diffusion method ran" in err and "contour" in err and "\n" not in err
    assert _methods(tmp_path / "eval" / "evaluation.json") == {"identity": "ok", "none": "failed"}


@pytest.mark.parametrize("argv, fragment", [
    (["--methods", "identity,bogus"], "methods must be"),
    (["--slices", "4x"], "--slices"),
    (["--steps", "0"], "steps must be"),
])
def test_evaluate_bad_arguments(argv, fragment, tmp_path, capsys):
    paths = sample_paths()
    code = main(["-q", "evaluate", "--source", str(paths["pd"]), "--target", str(paths["t1"]),
                 "--labels", str(paths["labels"]), "--out", str(tmp_path / "eval"), *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2 and fragment in err and "\n" not in err
    assert not (tmp_path / "eval").exists()


def test_models_by_guidance_picks_one_folder_per_guidance(models_dir, tiny_contour_model, tiny_none_model):
    found = models_by_guidance(model_folders(str(models_dir)))
    assert found == {"contour": models_dir / "a_contour", "none": models_dir / "b_none"}
    with pytest.raises(ModelError, match="not found"):
        model_folders(str(models_dir / "missing"))


def test_models_by_guidance_prefers_a_card_that_names_itself_default(tmp_path, tiny_contour_model):
    import shutil

    for name in ("a_first", "b_fast"):
        shutil.copytree(tiny_contour_model, tmp_path / name)
    card_file = tmp_path / "b_fast" / "model.json"
    card = json.loads(card_file.read_text())
    card["training"]["default_for"] = ["contour"]
    card_file.write_text(json.dumps(card))
    folders = [tmp_path / "a_first", tmp_path / "b_fast"]
    assert models_by_guidance(folders) == {"contour": tmp_path / "b_fast"}
    # without the claim, the first folder trained with the guidance wins
    card["training"].pop("default_for")
    card_file.write_text(json.dumps(card))
    assert models_by_guidance(folders) == {"contour": tmp_path / "a_first"}


def test_central_slices():
    region = np.zeros((4, 4, 30), bool)
    region[:, :, 10:20] = True
    assert central_slices(region, 2, 4) == (13, 14, 15, 16)
    assert central_slices(region, 2, 50) == tuple(range(30))
    assert central_slices(np.zeros((4, 4, 6), bool), 2, 2) == (2, 3)
