import json
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

from zeroshot_core.cli import main
from zeroshot_core.imaging.orientation import slicing_axis


def _nifti(path, data):
    nib.save(nib.Nifti1Image(np.asarray(data, np.float32), np.diag([2.0, 2.0, 2.0, 1.0])), path)
    return path


def _assert_one_line_error(capsys, code, fragment):
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("zeroshot: error:") and "\n" not in err and "Traceback" not in err
    assert fragment in err, err


@pytest.fixture()
def bad_inputs(tmp_path):
    rng = np.random.default_rng(0)
    four_d = tmp_path / "four_d.nii.gz"
    nib.save(nib.Nifti1Image(rng.normal(size=(8, 8, 8, 3)).astype(np.float32), np.eye(4)), four_d)
    nan = rng.normal(size=(8, 8, 8)).astype(np.float32)
    nan[2, 2, 2] = np.nan
    corrupt = tmp_path / "corrupt.nii.gz"
    corrupt.write_bytes(b"\x1f\x8b garbage")
    return {
        "missing": (tmp_path / "missing.nii.gz", "no such file"),
        "corrupt": (corrupt, "cannot read"),
        "four_d": (four_d, "4-D"),
        "nan": (_nifti(tmp_path / "nan.nii.gz", nan), "NaN"),
        "constant": (_nifti(tmp_path / "constant.nii.gz", np.ones((8, 8, 8))), "constant"),
    }


@pytest.mark.parametrize("case", ["missing", "corrupt", "four_d", "nan", "constant"])
def test_translate_bad_source(case, bad_inputs, tiny_contour_model, tmp_path, capsys):
    path, fragment = bad_inputs[case]
    before = path.read_bytes() if path.exists() else None
    out = tmp_path / "out.nii.gz"
    code = main(["-q", "translate", str(path), "--model", str(tiny_contour_model), "--out", str(out),
                 "--steps", "2", "--device", "cpu"])
    _assert_one_line_error(capsys, code, fragment)
    assert not out.exists()
    if before is not None:
        assert path.read_bytes() == before


def test_wrong_model_folder(t1_path, tmp_path, capsys):
    (tmp_path / "not_a_model").mkdir()
    code = main(["-q", "translate", str(t1_path), "--model", str(tmp_path / "not_a_model"),
                 "--out", str(tmp_path / "o.nii.gz")])
    _assert_one_line_error(capsys, code, "not a model folder")
    code = main(["-q", "translate", str(t1_path), "--model", str(tmp_path / "nowhere"),
                 "--out", str(tmp_path / "o.nii.gz")])
    _assert_one_line_error(capsys, code, "model folder not found")


def test_guidance_the_model_was_not_trained_with(t1_path, tiny_contour_model, tmp_path, capsys):
    code = main(["-q", "translate", str(t1_path), "--model", str(tiny_contour_model), "--guidance", "none",
                 "--out", str(tmp_path / "o.nii.gz"), "--steps", "2", "--device", "cpu"])
    _assert_one_line_error(capsys, code, "trained with guidance 'contour'")
    code = main(["-q", "translate", str(t1_path), "--model", str(tiny_contour_model), "--guidance", "nope",
                 "--out", str(tmp_path / "o.nii.gz"), "--device", "cpu"])
    _assert_one_line_error(capsys, code, "valid names")


def test_output_equal_to_input_is_refused(tmp_path, tiny_contour_model, t1_path, capsys):
    source = tmp_path / "source.nii.gz"
    source.write_bytes(t1_path.read_bytes())
    before = source.read_bytes()
    code = main(["-q", "translate", str(source), "--model", str(tiny_contour_model), "--out", str(source)])
    _assert_one_line_error(capsys, code, "overwrite the input")
    code = main(["-q", "segment", str(source), "--model", str(tiny_contour_model), "--out", str(source)])
    _assert_one_line_error(capsys, code, "overwrite the input")
    assert source.read_bytes() == before


def test_translate_then_segment_end_to_end(tmp_path, tiny_contour_model, t1_path, capsys):
    out = tmp_path / "t1_translated.nii.gz"
    labels = tmp_path / "labels.nii.gz"
    assert main(["-q", "translate", str(t1_path), "--model", str(tiny_contour_model), "--out", str(out),
                 "--steps", "2", "--device", "cpu", "--slices", "58:61", "--labels", str(labels)]) == 0
    source = nib.load(t1_path)
    for path in (out, labels):
        image = nib.load(path)
        assert image.shape == source.shape
        np.testing.assert_allclose(image.affine, source.affine)
    label_data = np.asarray(nib.load(labels).dataobj)
    assert label_data.dtype == np.int16
    axis = slicing_axis(source.affine, source.shape)
    per_slice = np.moveaxis(label_data > 0, axis, 0).reshape(source.shape[axis], -1).sum(axis=1)
    assert all(per_slice[i] > 1000 for i in (58, 59, 60)), per_slice[55:64]  # a partial slab is labelled
    assert per_slice.sum() == per_slice[58:61].sum()  # and only the translated slices are
    assert set(np.unique(label_data)) <= {0, 1, 2, 3}
    seg = tmp_path / "seg.nii.gz"
    assert main(["-q", "segment", str(t1_path), "--model", str(tiny_contour_model), "--out", str(seg)]) == 0
    seg_data = np.asarray(nib.load(seg).dataobj)
    assert seg_data.shape == source.shape and (seg_data > 0).sum() > 1000
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind


def test_train_cli_writes_a_model(tmp_path, ixi_t1_files, capsys):
    out = tmp_path / "model"
    assert main(["-q", "train", str(ixi_t1_files[0]), "--out", str(out), "--model-size", "tiny",
                 "--image-size", "32", "--max-steps", "2", "--batch-size", "2", "--device", "cpu",
                 "--guidance", "contour", "--guidance-param", "sigma=1.5"]) == 0
    card = json.loads((out / "model.json").read_text())
    assert card["guidance_params"]["sigma"] == 1.5 and card["training"]["steps"] == 2
    code = main(["-q", "train", str(ixi_t1_files[0]), "--out", str(tmp_path / "m2"), "--model-size", "tiny",
                 "--image-size", "31"])
    _assert_one_line_error(capsys, code, "multiple of")


def test_plugins_command_lists_builtins_with_package(capsys):
    assert main(["plugins", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    names = {(r["kind"], r["name"]) for r in rows}
    assert {("guidance", "contour"), ("guidance", "none"), ("segmenter", "kmeans")} <= names
    assert all(r["package"] and r["version"] for r in rows)


def test_console_script_reports_errors_without_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "zeroshot_core.cli", "segment", str(tmp_path / "x.nii.gz"),
                             "--out", str(tmp_path / "y.nii.gz")], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("zeroshot: error:") and "Traceback" not in result.stderr


def _choices(parser, command, option):
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    return tuple(next(a for a in sub._actions if option in a.option_strings).choices)


def test_one_table_of_device_and_scheduler_names():
    from zeroshot_core.choices import DEVICE_NAMES, SCHEDULER_NAMES
    from zeroshot_core.cli import build_parser
    from zeroshot_core.diffusion.schedulers import make_scheduler
    from zeroshot_core.diffusion.translation import TranslateOptions
    from zeroshot_core.errors import ConfigError
    from zeroshot_core.model.store import DEFAULT_NOISE_SCHEDULE

    parser = build_parser()
    for command in ("translate", "evaluate", "demo"):
        assert _choices(parser, command, "--scheduler") == tuple(SCHEDULER_NAMES)
        assert _choices(parser, command, "--device") == DEVICE_NAMES
    assert _choices(parser, "train", "--device") == DEVICE_NAMES
    for name in SCHEDULER_NAMES:
        assert hasattr(make_scheduler(name, DEFAULT_NOISE_SCHEDULE), "step")
        TranslateOptions(scheduler=name)
    with pytest.raises(ConfigError, match="valid: ddim"):
        make_scheduler("euler", DEFAULT_NOISE_SCHEDULE)
    with pytest.raises(ConfigError, match="unknown scheduler"):
        TranslateOptions(scheduler="euler")


def test_building_the_parser_imports_no_torch():
    code = "import sys; from zeroshot_core.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
