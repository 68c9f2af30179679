"""Provenance: every CLI translation leaves a JSON sidecar and a NIfTI descrip; models print their essentials."""

from __future__ import annotations

import hashlib
import json

import nibabel as nib
import numpy as np

from zeroshot_core import __version__
from zeroshot_core.api import card_summary, list_models, sidecar_path
from zeroshot_core.cli import main


def test_cli_translation_records_its_provenance(t1_path, tiny_contour_model, tmp_path, capsys):
    out = tmp_path / "sub-01_T1w.nii.gz"
    code = main(["translate", str(t1_path), "--model", str(tiny_contour_model), "--out", str(out),
                 "--steps", "2", "--slices", "40", "--seed", "7", "--scheduler", "dpm", "--device", "cpu",
                 "--guidance-param", "sigma=1.5", "--samples", "2", "-q", "--threads", "1"])  # global options after the command
    assert code == 0
    sidecar = tmp_path / "sub-01_T1w.json"
    assert sidecar_path(out) == sidecar and sidecar.is_file()
    assert str(sidecar) in capsys.readouterr().out
    record = json.loads(sidecar.read_text(encoding="utf-8"))
    t = record["Translation"]
    card_bytes = (tiny_contour_model / "model.json").read_bytes()
    assert t["model"]["name"] == tiny_contour_model.name
    assert t["model"]["card_sha256"] == hashlib.sha256(card_bytes).hexdigest()
    assert t["model"]["target_modality"] == "T1" and t["guidance"] == "contour"
    assert t["guidance_params"]["sigma"] == 1.5 and "low_threshold" in t["guidance_params"]
    assert (t["steps"], t["scheduler"], t["seed"], t["samples"]) == (2, "dpm", 7, 2)
    assert t["device"] == "cpu" and t["device_requested"] == "cpu"
    assert t["slices"] == [40] and t["mask"]["enabled"] is True
    assert record["GeneratedBy"] == [{"Name": "zeroshot", "Version": __version__}]
    assert record["Sources"] == [str(t1_path.resolve())]

    saved, source = nib.load(str(out)), nib.load(str(t1_path))
    descrip = saved.header["descrip"].item().decode()
    assert descrip.startswith(f"zeroshot {__version__} {tiny_contour_model.name} contour 2 dpm seed 7")
    np.testing.assert_array_equal(saved.affine, source.affine)
    data = saved.get_fdata()
    assert np.isfinite(data).all() and np.ptp(data[:, :, 40]) > 0


def test_models_prints_each_card_s_essentials(capsys):
    assert main(["models"]) == 0
    text = capsys.readouterr().out
    for path, card in list_models():
        assert path.name in text
        for line in card_summary(card):
            assert line in text
    assert "anatomy: brain only" in text and "target: T1" in text and "notes:" in text
    # each guidance's default is marked: the refined student for lmi, its teacher by name only
    assert "\nt1-lmi-lite (default for lmi)\n" in text and "\nt1-lmi\n" in text


def test_card_summary_tells_whole_head_from_brain_only():
    base = {"target_modality": "T1", "guidance": "lmi", "model_size": "tiny", "image_size": 32}
    head = card_summary({**base, "training": {"files": ["a_T1w.nii.gz"], "spacing_mm": 1.5, "mask_kind": "head",
                                               "slices": 5, "steps": 10, "batch_size": 2}})
    assert "spacing: 1.5 mm crops (native-spacing mode)" in head and "anatomy: whole head" in head
    brain = card_summary({**base, "training": {"files": ["a_brain.nii.gz", "b_brain.nii.gz"], "slices": 5}})
    assert any(line.startswith("anatomy: brain only") for line in brain)
    tuned = card_summary({**base, "training": {"files": ["a_brain.nii.gz"], "spacing_mm": 2.0, "steps": 4,
                                                "init_from": {"model": "t1-lmi-64px", "steps": 6741,
                                                              "image_size": 64, "spacing_mm": None}}})
    assert "fine-tuned from: t1-lmi-64px (6741 steps, 64 px)" in tuned and "anatomy: brain only" in " ".join(tuned)
    student = card_summary({**base, "training": {"files": ["a_brain.nii.gz"], "steps": 4,
                                                  "distilled_from": {"model": "t1-lmi", "steps": 8000,
                                                                     "cfg_scale": 1.25}}})
    assert "distilled from: t1-lmi (8000 steps, CFG 1.25 folded in)" in student
    other = card_summary({**base, "training": {"files": ["a.nii.gz"]}})
    assert any(line.startswith("anatomy: the foreground") for line in other)
    assert not any(line.startswith("sampling default") for line in other)
    guided = card_summary({**base, "sampling": {"cfg_scale": 1.25, "note": "best on the validation"}})
    assert "sampling default: --cfg-scale 1.25 — best on the validation" in guided


def test_a_card_s_step_count_is_the_default_and_an_explicit_one_wins(t1_path, tiny_contour_model, tmp_path, capsys):
    import shutil

    model = tmp_path / "distilled"
    shutil.copytree(tiny_contour_model, model)
    card = json.loads((model / "model.json").read_text())
    card["sampling"] = {"steps": 3, "note": "distilled to 3 steps"}
    (model / "model.json").write_text(json.dumps(card))
    assert "sampling default: --steps 3 — distilled to 3 steps" in card_summary(card)
    for given, used in ((None, 3), ("2", 2)):
        out = tmp_path / f"out{used}.nii.gz"
        code = main(["translate", str(t1_path), "--model", str(model), "--out", str(out), "--slices", "40",
                     "--device", "cpu", "-q", "--threads", "1"] + (["--steps", given] if given else []))
        assert code == 0
        t = json.loads(sidecar_path(out).read_text(encoding="utf-8"))["Translation"]
        assert (t["steps"], t["steps_requested"]) == (used, None if given is None else used)
        descrip = nib.load(str(out)).header["descrip"].item().decode()
        assert f"distilled contour {used} ddim" in descrip
