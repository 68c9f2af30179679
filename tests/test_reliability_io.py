"""Reading non-NIfTI layouts by each format's convention, and writing outputs safely:
checks before the work, one-line errors, no partial files, umask permissions, a header
that describes the result and not the source."""

import os
import warnings

import imageio.v3 as iio
import nibabel as nib
import numpy as np
import pytest
import tifffile

from zeroshot_core.errors import InputError, LayoutWarning
from zeroshot_core.io import formats
from zeroshot_core.io.atomic import atomic_write
from zeroshot_core.io.formats import check_output_path, check_outputs, load_volume, save_volume
from zeroshot_core.io.volume import Volume


def _grey(seed=0, shape=(24, 20)):
    return np.random.default_rng(seed).integers(0, 255, shape).astype(np.uint8)


def _files(folder):
    return sorted(p.name for p in folder.iterdir())


# ---------------------------------------------------------------- reading layouts
def test_grey_alpha_png_is_one_grey_slice(tmp_path):
    grey = _grey()
    path = tmp_path / "la.png"
    iio.imwrite(path, np.stack([grey, np.full_like(grey, 255)], axis=-1))
    volume = load_volume(path)
    assert volume.data.shape == (24, 20, 1)
    assert np.array_equal(volume.data[:, :, 0], grey)


def test_rgb_with_equal_channels_is_grey_and_colour_is_refused(tmp_path):
    grey = _grey()
    iio.imwrite(tmp_path / "rgb.png", np.stack([grey] * 3, axis=-1))
    assert np.array_equal(load_volume(tmp_path / "rgb.png").data[:, :, 0], grey)
    iio.imwrite(tmp_path / "rgba.png", np.stack([grey] * 3 + [np.full_like(grey, 255)], axis=-1))
    assert np.array_equal(load_volume(tmp_path / "rgba.png").data[:, :, 0], grey)
    iio.imwrite(tmp_path / "colour.png", np.stack([grey, grey // 2, grey], axis=-1))
    with pytest.raises(InputError, match=r"colour.png: colour image .*convert"):
        load_volume(tmp_path / "colour.png")


def test_tiff_pages_are_slices_in_order(tmp_path):
    stack = np.stack([_grey(k) for k in range(5)])  # 5 pages of 24 x 20
    tifffile.imwrite(tmp_path / "stack.tif", stack)
    volume = load_volume(tmp_path / "stack.tif")
    assert volume.data.shape == (24, 20, 5)
    for k in range(5):
        assert np.array_equal(volume.data[:, :, k], stack[k])
    tifffile.imwrite(tmp_path / "rgb.tif", np.stack([stack[0]] * 3, axis=-1), photometric="rgb")
    assert load_volume(tmp_path / "rgb.tif").data.shape == (24, 20, 1)


def test_npy_axis_order_is_announced_when_ambiguous(tmp_path):
    slice_first = np.random.default_rng(0).normal(size=(6, 32, 40)).astype(np.float32)
    np.save(tmp_path / "zhw.npy", slice_first)
    with pytest.warns(LayoutWarning, match=r"zhw.npy: .*read as \(X, Y, Z\).*--axis 0"):
        volume = load_volume(tmp_path / "zhw.npy")
    assert np.array_equal(volume.data, slice_first)
    np.save(tmp_path / "xyz.npy", np.moveaxis(slice_first, 0, -1))
    with warnings.catch_warnings():
        warnings.simplefilter("error", LayoutWarning)
        assert load_volume(tmp_path / "xyz.npy").data.shape == (32, 40, 6)


# ---------------------------------------------------------------- up-front checks
def test_output_suffix_case_is_accepted_and_written_as_that_format(tmp_path):
    volume = Volume(np.arange(24, dtype=np.float32).reshape(2, 3, 4), np.diag([2.0, 2.0, 3.0, 1.0]))
    out = save_volume(volume, tmp_path / "RESULT.NII.GZ")
    assert out.read_bytes()[:2] == b"\x1f\x8b"  # gzip
    image = nib.load(out)
    assert np.array_equal(image.get_fdata(), volume.data) and np.allclose(image.affine, volume.affine)
    assert _files(tmp_path) == ["RESULT.NII.GZ"]


@pytest.mark.parametrize("name,fragment", [
    ("missing/out.nii.gz", "does not exist"),
    ("out.txt", "unsupported output type"),
    ("folder", "is a folder"),
])
def test_bad_output_places_are_refused(tmp_path, name, fragment):
    (tmp_path / "folder.nii.gz").mkdir()
    path = tmp_path / (name + ".nii.gz" if name == "folder" else name)
    with pytest.raises(InputError, match=fragment):
        check_output_path(path)


def test_read_only_folder_and_full_disk_are_refused_before_the_work(tmp_path, monkeypatch):
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(tmp_path) else real_access(p, mode))
    with pytest.raises(InputError, match="permission denied"):
        check_output_path(tmp_path / "out.nii.gz")
    monkeypatch.setattr(os, "access", real_access)
    monkeypatch.setattr(formats.shutil, "disk_usage", lambda p: type("U", (), {"free": 1000})())
    with pytest.raises(InputError, match="not enough free disk space"):
        check_output_path(tmp_path / "out.nii", shape=(64, 64, 64))
    check_output_path(tmp_path / "out.nii")  # without a shape only the place is checked


@pytest.mark.parametrize("suffix", [".png", ".tif", ".TIFF"])
def test_raster_output_cannot_hold_a_volume(tmp_path, suffix):
    volume = Volume(np.ones((8, 6, 3), np.float32))
    with pytest.raises(InputError, match=r"holds one 2-D slice.*3 slices.*\.nii\.gz, \.nii or \.npy"):
        save_volume(volume, tmp_path / f"out{suffix}")
    assert _files(tmp_path) == []


def test_raster_output_keeps_values_or_refuses(tmp_path):
    plane = np.linspace(0.0, 1500.4, 48, dtype=np.float32).reshape(8, 6, 1)
    save_volume(Volume(plane), tmp_path / "t1.png")
    assert np.array_equal(iio.imread(tmp_path / "t1.png"), np.rint(plane[:, :, 0]).astype(np.uint16))
    save_volume(Volume(plane), tmp_path / "t1.tif")
    assert np.array_equal(tifffile.imread(tmp_path / "t1.tif"), plane[:, :, 0])
    with pytest.raises(InputError, match=r"do not fit a PNG .* write \.tif"):
        save_volume(Volume(plane - 1000), tmp_path / "hu.png")
    assert not (tmp_path / "hu.png").exists()


def test_two_outputs_may_not_be_the_same_file(tmp_path):
    with pytest.raises(InputError, match="--labels and --out are the same file"):
        check_outputs({"--out": tmp_path / "a.nii.gz", "--labels": tmp_path / "x" / ".." / "a.nii.gz"})
    (tmp_path / "a.nii.gz").write_bytes(b"x")
    (tmp_path / "link.nii.gz").symlink_to(tmp_path / "a.nii.gz")
    with pytest.raises(InputError, match="--labels and --out are the same file"):
        check_outputs({"--out": tmp_path / "a.nii.gz", "--labels": tmp_path / "link.nii.gz"})
    with pytest.raises(InputError, match="would overwrite the input file"):
        check_outputs({"--out": tmp_path / "link.nii.gz"}, tmp_path / "a.nii.gz")
    paths = check_outputs({"--out": tmp_path / "t1.nii.gz", "--labels": None})
    assert list(paths) == ["--out"]


# ---------------------------------------------------------------- writing
def test_write_failure_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    def full(path, *args, **kwargs):
        path.write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(formats.nifti, "write", full)
    with pytest.raises(InputError, match=r"out.nii.gz: cannot write \(No space left on device\)") as info:
        save_volume(Volume(np.ones((4, 4, 4), np.float32)), tmp_path / "out.nii.gz")
    assert "\n" not in str(info.value)
    assert _files(tmp_path) == []


def test_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.npy"
    target.write_bytes(b"old")

    def interrupted(tmp):
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, interrupted)
    assert _files(tmp_path) == ["out.npy"] and target.read_bytes() == b"old"


def test_permissions_follow_the_umask_and_replaced_files_keep_theirs(tmp_path):
    old = os.umask(0o027)
    try:
        path = save_volume(Volume(np.ones((3, 3, 3), np.float32)), tmp_path / "new.nii.gz")
        assert path.stat().st_mode & 0o777 == 0o640
        kept = tmp_path / "kept.npy"
        kept.write_bytes(b"x")
        kept.chmod(0o604)
        save_volume(Volume(np.ones((3, 3, 3), np.float32)), kept)
        assert kept.stat().st_mode & 0o777 == 0o604
    finally:
        os.umask(old)


def test_header_describes_the_result_and_keeps_the_geometry(tmp_path):
    source = tmp_path / "pd.nii.gz"
    affine = np.array([[0, 0, 5.0, -10], [-1.0, 0, 0, 20], [0, 1.0, 0, -30], [0, 0, 0, 1]])
    image = nib.Nifti1Image(np.arange(60, dtype=np.int16).reshape(3, 4, 5), affine)
    header = image.header
    header["cal_min"], header["cal_max"], header["descrip"] = 0, 1000, b"PD-weighted TSE"
    header["aux_file"] = b"lut"
    header.set_intent("estimate", name="PD")
    header.set_xyzt_units("mm", "sec")
    header.set_slope_inter(2.0, 5.0)
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=2)
    nib.save(image, source)
    volume = load_volume(source)
    out = nib.load(save_volume(volume.with_data(volume.data * 0.5), tmp_path / "t1.nii.gz",
                               description="zeroshot T1 translation (lmi)"))
    h = out.header
    assert float(h["cal_min"]) == float(h["cal_max"]) == 0.0
    assert h["descrip"].tobytes().rstrip(b"\0") == b"zeroshot T1 translation (lmi)"
    assert h["aux_file"].tobytes().rstrip(b"\0") == b""
    assert h.get_intent()[0] == "none" and h.get_intent()[2] == ""
    assert h.get_slope_inter() in ((1.0, 0.0), (None, None))
    assert np.allclose(out.affine, affine)
    assert int(h["qform_code"]) == 1 and int(h["sform_code"]) == 2 and h.get_xyzt_units() == ("mm", "sec")
    assert np.allclose(out.get_fdata(), volume.data * 0.5)
    labels = nib.load(save_volume(volume.with_data(np.ones(volume.data.shape)), tmp_path / "labels.nii.gz",
                                  dtype="int16", labels=True))
    assert labels.header.get_intent()[0] == "label" and labels.get_data_dtype() == np.int16


def test_output_folders_are_checked_before_the_work(tmp_path, monkeypatch):
    from zeroshot_core.io.formats import check_output_folder
    from zeroshot_core.training.loop import TrainConfig, train_iter

    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(InputError, match="exists and is not a folder"):
        check_output_folder(tmp_path / "file")
    assert check_output_folder(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(tmp_path) else real_access(p, mode))
    with pytest.raises(InputError, match=r"cannot write in .*permission denied"):
        check_output_folder(tmp_path / "new" / "deeper")
    # training refuses before reading its targets (which do not exist here)
    with pytest.raises(InputError, match="permission denied"):
        next(train_iter([tmp_path / "missing.nii.gz"], tmp_path / "model", TrainConfig(device="cpu")))
    assert _files(tmp_path) == ["file"]


def test_saving_the_same_image_again_keeps_its_header(tmp_path):
    image = nib.Nifti1Image(np.arange(24, dtype=np.float32).reshape(2, 3, 4), np.eye(4))
    image.header["descrip"], image.header["cal_max"] = b"T1 MPRAGE", 400
    nib.save(image, tmp_path / "t1.nii.gz")
    again = nib.load(save_volume(load_volume(tmp_path / "t1.nii.gz"), tmp_path / "copy.nii.gz"))
    assert again.header["descrip"].tobytes().rstrip(b"\0") == b"T1 MPRAGE" and float(again.header["cal_max"]) == 400
