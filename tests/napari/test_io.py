"""Reader, writers, sample data and manifest: NIfTI spacing/orientation survive a round trip."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from napari_zeroshot._reader import is_label_volume, layer_name, napari_get_reader, read_nifti
from napari_zeroshot._sample_data import phantom_all, phantom_labels, phantom_pd
from napari_zeroshot._writer import write_image, write_labels
from zeroshot_core.errors import InputError
from zeroshot_core.io.formats import load_volume


def _state(data, kwargs):
    """What napari hands a writer as ``meta`` for a layer built from ``kwargs``."""
    from napari.layers import Image

    return Image(data, **{k: v for k, v in kwargs.items() if k != "colormap"})._get_state()


def test_reader_claims_nifti_only():
    assert napari_get_reader("scan.nii.gz") is read_nifti
    assert napari_get_reader(["a.nii", "b.NII.GZ"]) is read_nifti
    assert napari_get_reader("photo.png") is None
    assert napari_get_reader(["a.nii", "b.png"]) is None
    assert layer_name("/x/sub-01_T1w.nii.gz") == "sub-01_T1w"


def test_read_then_write_image_is_exact(oblique_nifti: Path, tmp_path: Path):
    [(data, kwargs, kind)] = read_nifti(str(oblique_nifti))
    original = nib.load(str(oblique_nifti))
    assert kind == "image" and data.shape == (6, 10, 12)
    # the file's i axis runs leftwards: the layer holds it reversed (closest RAS+ order)
    np.testing.assert_array_equal(data, np.transpose(original.get_fdata()[::-1], (2, 1, 0)))
    assert kwargs["axis_labels"] == ("S", "A", "R")
    out = tmp_path / "copy.nii.gz"
    [written] = write_image(str(out), data, _state(data, kwargs))
    saved = nib.load(written)
    np.testing.assert_array_equal(saved.get_fdata(), original.get_fdata())
    np.testing.assert_array_equal(saved.affine, original.affine)
    assert saved.header["descrip"].tobytes().startswith(b"oblique test volume")
    assert saved.header.get_xyzt_units() == ("mm", "sec")


def test_writer_appends_suffix_and_refuses_the_source(oblique_nifti: Path, tmp_path: Path):
    [(data, kwargs, _)] = read_nifti(str(oblique_nifti))
    [written] = write_image(str(tmp_path / "plain"), data, _state(data, kwargs))
    assert written.endswith("plain.nii.gz") and Path(written).is_file()
    before = oblique_nifti.read_bytes()
    with pytest.raises(InputError, match="overwrite the input"):
        write_image(str(oblique_nifti), data * 2, _state(data, kwargs))
    assert oblique_nifti.read_bytes() == before


def test_label_files_open_as_labels_and_write_as_integers(tmp_path: Path):
    labels = np.zeros((8, 9, 5), np.uint8)
    labels[2:6, 3:7, 1:4] = 3
    labels[0, 0, 0] = 1
    affine = np.diag([1.5, 1.5, 4.0, 1.0])
    path = tmp_path / "sub-01_dseg.nii.gz"  # a BIDS label-map suffix
    nib.save(nib.Nifti1Image(labels, affine), str(path))
    [(data, kwargs, kind)] = read_nifti(str(path))
    assert kind == "labels" and np.issubdtype(data.dtype, np.integer)
    from napari.layers import Labels

    meta = Labels(data, **kwargs)._get_state()
    [written] = write_labels(str(tmp_path / "out.nii.gz"), data, meta)
    saved = nib.load(written)
    assert np.issubdtype(saved.get_data_dtype(), np.integer)
    np.testing.assert_array_equal(np.asarray(saved.dataobj), labels)
    np.testing.assert_array_equal(saved.affine, affine)
    assert saved.header.get_intent()[0] == "label"
    [(_, _, kind)] = read_nifti(written)  # "out": no suffix, the intent code says labels
    assert kind == "labels"


def _labels_kind(tmp_path: Path, name: str, data: np.ndarray, intent: str | None = None,
                 table: str | None = None) -> str:
    image = nib.Nifti1Image(data, np.diag([2.0, 2.0, 2.0, 1.0]))
    if intent:
        image.header.set_intent(intent)
    path = tmp_path / name
    nib.save(image, str(path))
    if table is not None:
        (tmp_path / (name.split(".")[0] + ".tsv")).write_text(table, encoding="utf-8")
    [(_, _, kind)] = read_nifti(str(path))
    return kind


def test_label_maps_are_recognised_by_what_the_file_says_not_by_a_word_or_few_grey_levels(tmp_path: Path):
    rng = np.random.default_rng(1)
    grey = rng.integers(0, 900, size=(10, 8, 4)).astype(np.int16)
    few_levels = rng.integers(0, 20, size=(10, 8, 4)).astype(np.uint8)
    regions = rng.integers(0, 4, size=(10, 8, 4)).astype(np.uint8)
    assert _labels_kind(tmp_path, "sub-01_T1w_masked.nii.gz", grey) == "image"
    assert _labels_kind(tmp_path, "sub-01_PD_8bit.nii.gz", few_levels) == "image"
    assert _labels_kind(tmp_path, "segmentation_mask_atlas.nii", regions) == "image"  # words, not a suffix
    assert _labels_kind(tmp_path, "sub-01_dseg.nii.gz", regions) == "labels"
    assert _labels_kind(tmp_path, "sub-01_desc-brain_mask.nii.gz", (regions > 0).astype(np.uint8)) == "labels"
    assert _labels_kind(tmp_path, "regions.nii.gz", regions.astype(np.float32), intent="label") == "labels"
    assert _labels_kind(tmp_path, "aparc.nii.gz", regions, intent="neuroname") == "labels"
    assert _labels_kind(tmp_path, "tissue.nii.gz", regions, table="index\tname\n1\tCSF\n") == "labels"
    assert _labels_kind(tmp_path, "other.nii.gz", regions, table="onset\tduration\n") == "image"
    assert _labels_kind(tmp_path, "sub-02_dseg.nii.gz", grey.astype(np.float32) + 0.5) == "image"  # not whole


def test_integer_images_with_many_values_stay_images(oblique_nifti: Path):
    assert not is_label_volume(load_volume(oblique_nifti), "oblique")


def test_corrupt_nifti_raises_a_one_line_error(tmp_path: Path):
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"not a nifti file")
    with pytest.raises(InputError, match="cannot read"):
        read_nifti(str(bad))


def test_sample_phantom_layers_share_one_grid():
    layers = phantom_all()
    assert [kind for _, _, kind in layers] == ["image", "image", "image", "labels"]
    assert [kwargs["name"] for _, kwargs, _ in layers] == ["phantom T1", "phantom T2", "phantom PD", "phantom labels"]
    shapes = {data.shape for data, _, _ in layers}
    assert len(shapes) == 1
    for _, kwargs, _ in layers[1:]:
        np.testing.assert_array_equal(kwargs["affine"], layers[0][1]["affine"])
    [(labels, _, _)] = phantom_labels()
    assert set(np.unique(labels)) == {0, 1, 2, 3}
    [(pd, _, _)] = phantom_pd()
    assert pd.dtype == np.float32 and float(pd.max()) > float(pd.min())


def test_manifest_validates_with_imports():
    npe2 = Path(sys.executable).with_name("npe2")
    command = [str(npe2)] if npe2.exists() else [sys.executable, "-m", "npe2"]
    done = subprocess.run([*command, "validate", "napari-zeroshot", "--imports"], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "valid" in done.stdout
