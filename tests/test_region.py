"""Segmenting inside a region the user gives (API and CLI) instead of the automatic filter mask."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from zeroshot_core import api
from zeroshot_core.cli import main
from zeroshot_core.errors import InputError
from zeroshot_core.imaging.mask import MaskParams, source_mask
from zeroshot_core.imaging.orientation import slicing_axis
from zeroshot_core.model.store import read_card


@pytest.fixture()
def t1(t1_path: Path) -> api.Volume:
    return api.load_volume(t1_path)


def _automatic_mask(volume: api.Volume, model: Path) -> np.ndarray:
    axis = slicing_axis(volume.affine, volume.data.shape)
    return source_mask(volume, axis, MaskParams.resolve(None, read_card(model).mask))


def _half(mask: np.ndarray) -> np.ndarray:
    """``mask`` without its voxels in the upper half of the first axis."""
    kept = mask.copy()
    kept[mask.shape[0] // 2:] = False
    return kept


def _save_mask(path: Path, data: np.ndarray, affine: np.ndarray) -> Path:
    nib.save(nib.Nifti1Image(np.asarray(data, np.uint8), affine), str(path))
    return path


def _one_line(message: str, *fragments: str) -> None:
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message


def test_the_automatic_mask_as_region_gives_the_automatic_labels(t1, tiny_contour_model):
    automatic = api.segment(t1, tiny_contour_model)
    region = _automatic_mask(t1, tiny_contour_model)
    np.testing.assert_array_equal(api.segment(t1, tiny_contour_model, region=region), automatic)


def test_labels_are_zero_outside_the_region_and_fill_it(t1, tiny_contour_model):
    automatic = api.segment(t1, tiny_contour_model)
    region = _half(_automatic_mask(t1, tiny_contour_model))
    data_before, region_before = t1.data.copy(), region.copy()
    labels = api.segment(t1, tiny_contour_model, region=region)
    assert labels.shape == t1.data.shape and labels.dtype == np.int16
    assert not labels[~region].any()
    assert (labels[region] > 0).all()  # every voxel of the region gets a class
    # the normalisation is fitted inside the region, so the classes move little
    assert np.mean(labels[region] == automatic[region]) > 0.9
    np.testing.assert_array_equal(t1.data, data_before)
    np.testing.assert_array_equal(region, region_before)


def test_a_region_may_be_a_file_a_volume_or_any_non_zero_values(t1, t1_path, tiny_contour_model, tmp_path):
    region = _half(_automatic_mask(t1, tiny_contour_model))
    expected = api.segment(t1, tiny_contour_model, region=region)
    weights = np.where(region, 0.25, 0.0).astype(np.float32)  # a probability map: non-zero is inside
    path = _save_mask(tmp_path / "brain.nii.gz", region, t1.affine)
    for given in (weights, api.Volume(region.astype(np.float32), t1.affine), path, str(path)):
        np.testing.assert_array_equal(api.segment(t1, tiny_contour_model, region=given), expected)
    np.testing.assert_array_equal(api.segment(t1_path, tiny_contour_model, region=path), expected)
    assert weights.max() == np.float32(0.25)


def test_bad_regions_are_refused_in_one_line_naming_the_file(t1, tiny_contour_model, tmp_path):
    region = _automatic_mask(t1, tiny_contour_model)
    shifted = t1.affine.copy()
    shifted[0, 3] += 1.0
    cases = {
        "resample it onto the image grid": _save_mask(tmp_path / "shifted.nii.gz", region, shifted),
        "differs from the image's": _save_mask(tmp_path / "small.nii.gz", region[:, :, :-1], t1.affine),
        "empty": _save_mask(tmp_path / "empty.nii.gz", np.zeros_like(region), t1.affine),
        "no such file": tmp_path / "missing.nii.gz",
    }
    for fragment, path in cases.items():
        with pytest.raises(InputError) as caught:
            api.segment(t1, tiny_contour_model, region=path)
        _one_line(str(caught.value), str(path), fragment)
    with pytest.raises(InputError) as caught:
        api.segment(t1, tiny_contour_model, region=region[:-1])
    _one_line(str(caught.value), "the region", "shape")
    with pytest.raises(InputError) as caught:
        api.segment(t1, tiny_contour_model, region=region, mask=MaskParams())
    _one_line(str(caught.value), "not both")
    nudged = t1.affine.copy()
    nudged[0, 3] += 1e-4  # rounding in a file's affine is the same grid
    labels = api.segment(t1, tiny_contour_model, region=_save_mask(tmp_path / "ok.nii.gz", region, nudged))
    assert labels.any()


def test_the_region_is_checked_before_the_model_is_read(t1, tmp_path):
    with pytest.raises(InputError, match="empty"):
        api.segment(t1, tmp_path / "no_model_here", region=np.zeros(t1.data.shape, bool))


def test_a_translation_is_segmented_inside_a_given_region(t1, tiny_contour_model):
    axis = slicing_axis(t1.affine, t1.data.shape)
    options = api.TranslateOptions(steps=2, device="cpu", slices=(58, 59))
    result = api.run_translation(t1, tiny_contour_model, None, options)
    automatic = api.segment_translation(result)
    np.testing.assert_array_equal(api.segment_translation(result, region=result.mask), automatic)
    region = _half(np.asarray(result.mask, bool))
    mask_before = np.array(result.mask, copy=True)
    labels = api.segment_translation(result, region=region)
    assert not labels[~region].any()
    on_slices = np.zeros(t1.data.shape, bool)
    np.moveaxis(on_slices, axis, 0)[[58, 59]] = True
    assert (labels[region & on_slices] > 0).all() and not labels[~on_slices].any()
    np.testing.assert_array_equal(result.mask, mask_before)
    with pytest.raises(InputError, match="shape"):
        api.segment_translation(result, region=region[..., :-1])


def _cli_error(capsys, code: int, *fragments: str) -> None:
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("zeroshot: error:") and "Traceback" not in err
    _one_line(err, *fragments)


def test_cli_segments_inside_a_region_file(t1_path, t1, tiny_contour_model, tmp_path, capsys):
    region = _half(_automatic_mask(t1, tiny_contour_model))
    mask_file = _save_mask(tmp_path / "brain.nii.gz", region, t1.affine)
    out = tmp_path / "labels.nii.gz"
    assert main(["-q", "segment", str(t1_path), "--model", str(tiny_contour_model), "--out", str(out),
                 "--region", str(mask_file)]) == 0
    saved = nib.load(str(out))
    np.testing.assert_allclose(saved.affine, t1.affine)
    labels = np.asarray(saved.dataobj)
    assert not labels[~region].any() and (labels[region] > 0).all()
    np.testing.assert_array_equal(labels, api.segment(t1, tiny_contour_model, region=region))


def test_cli_refuses_a_region_off_the_grid_or_with_many_inputs(t1_path, t1, tiny_contour_model, tmp_path,
                                                              capsys, ixi_t1_files):
    region = _automatic_mask(t1, tiny_contour_model)
    shifted = t1.affine.copy()
    shifted[2, 3] -= 2.0
    mask_file = _save_mask(tmp_path / "shifted.nii.gz", region, shifted)
    out = tmp_path / "labels.nii.gz"
    code = main(["-q", "segment", str(t1_path), "--model", str(tiny_contour_model), "--out", str(out),
                 "--region", str(mask_file)])
    _cli_error(capsys, code, str(mask_file), "resample it onto the image grid")
    assert not out.exists()
    good = _save_mask(tmp_path / "brain.nii.gz", region, t1.affine)
    code = main(["-q", "segment", str(ixi_t1_files[0]), str(ixi_t1_files[1]), "--model", str(tiny_contour_model),
                 "--out", str(tmp_path / "many"), "--region", str(good)])
    _cli_error(capsys, code, "--region", "one image")
    assert not (tmp_path / "many").exists()
    code = main(["-q", "segment", str(t1_path), "--model", str(tiny_contour_model), "--out", str(out),
                 "--region", str(good), "--mask-erosion", "1"])
    _cli_error(capsys, code, "--region", "--mask-")
    code = main(["-q", "segment", str(t1_path), "--model", str(tiny_contour_model), "--out", str(good),
                 "--region", str(good)])
    _cli_error(capsys, code, "overwrite the input")
    assert not out.exists()
