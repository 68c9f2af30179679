"""Out-of-domain and almost-empty-mask warnings name the model and the anatomy it was trained on."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from zeroshot_core.api import Volume, translation_warnings
from zeroshot_core.cli import main
from zeroshot_core.diffusion.domain import MIN_MASK_SHARE


def _result(mask: np.ndarray, spacing: float, files: list[str], slices=(0, 1)) -> SimpleNamespace:
    card = SimpleNamespace(target_modality="T1", training={"files": files})
    return SimpleNamespace(mask=mask, slices=tuple(slices), axis=2, volume=Volume(np.zeros(mask.shape, np.float32),
                           np.diag([spacing, spacing, spacing, 1.0])),
                           model=SimpleNamespace(path=Path("/models/t1-contour"), card=card))


def test_a_brain_sized_foreground_with_a_full_mask_gives_no_warning():
    mask = np.zeros((100, 100, 2), bool)
    mask[20:80, 15:85] = True  # 60 x 70 voxels of 2 mm: 120 x 140 mm
    assert translation_warnings(_result(mask, 2.0, ["a_brain.nii.gz"])) == []


def test_an_abdomen_sized_foreground_is_out_of_domain_for_a_brain_model():
    mask = np.zeros((130, 110, 2), bool)
    mask[5:125, 10:100] = True  # 120 x 90 voxels of 3 mm: 360 x 270 mm
    [warning] = translation_warnings(_result(mask, 3.0, ["a_brain.nii.gz", "b_brain.nii.gz"]))
    assert "360 mm" in warning and "t1-contour" in warning and "skull-stripped brains" in warning
    assert translation_warnings(_result(mask, 3.0, ["a_T1w.nii.gz"])) == []  # anatomy unknown: no claim


def test_slices_where_the_mask_is_almost_empty_are_named():
    mask = np.zeros((100, 100, 3), bool)
    mask[20:80, 20:80, 0] = True
    mask[50:55, 50:55, 1] = True  # 25 of 10,000 voxels
    mask[50:60, 50:60, 2] = True  # 100 of 10,000: 1 %
    [warning] = translation_warnings(_result(mask, 1.0, ["a_brain.nii.gz"], slices=(0, 1, 2)))
    assert f"{MIN_MASK_SHARE:.0%}" in warning and "slice(s) 1, 2" in warning and "t1-contour" in warning


def test_cli_warns_when_an_abdominal_ct_goes_through_a_brain_model(shared_data, tmp_path, capsys):
    ct = shared_data / "totalsegmentator" / "example_ct_sm.nii.gz"
    out = tmp_path / "ct_t1.nii.gz"
    code = main(["translate", str(ct), "--out", str(out), "--slices", "15", "--steps", "2", "--device", "cpu",
                 "-q", "--threads", "1"])  # the bundled brain model
    assert code == 0
    err = capsys.readouterr().err
    assert "zeroshot: warning: the foreground spans up to" in err and "skull-stripped brains" in err
    record = json.loads((tmp_path / "ct_t1.json").read_text(encoding="utf-8"))
    assert record["Warnings"] and "out of domain" in record["Warnings"][0]
