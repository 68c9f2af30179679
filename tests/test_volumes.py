import nibabel as nib
import numpy as np
import pytest

from zeroshot_core.errors import InputError
from zeroshot_core.imaging.intensity import Normalisation
from zeroshot_core.imaging.orientation import slicing_axis, stack_slices, volume_slices
from zeroshot_core.imaging.resize import from_model_size, to_model_size
from zeroshot_core.io.formats import load_volume, save_volume
from zeroshot_core.io.volume import Volume


def _oblique_affine():
    affine = np.diag([0.9, 1.1, 3.0, 1.0])
    angle = np.deg2rad(12)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    affine[:3, :3] = rotation @ affine[:3, :3]
    affine[:3, 3] = [-90.5, 12.25, 40.0]
    return affine


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_nifti_round_trip_keeps_affine_and_header(tmp_path, suffix):
    data = np.random.default_rng(0).normal(size=(7, 9, 5)).astype(np.float32)
    affine = _oblique_affine()
    source = tmp_path / f"in{suffix}"
    image = nib.Nifti1Image(data, affine)
    image.header.set_xyzt_units("mm")
    nib.save(image, source)
    volume = load_volume(source)
    np.testing.assert_allclose(volume.affine, affine, atol=1e-5)
    out = save_volume(volume.with_data(volume.data * 2), tmp_path / f"out{suffix}")
    again = nib.load(out)
    np.testing.assert_allclose(again.affine, affine, atol=1e-5)
    np.testing.assert_allclose(again.get_fdata(), data * 2, rtol=1e-6)
    assert again.header.get_xyzt_units() == ("mm", "unknown")


def test_real_ixi_volume_round_trip(tmp_path, t1_path):
    volume = load_volume(t1_path)
    out = save_volume(volume.with_data(volume.data), tmp_path / "copy.nii.gz")
    np.testing.assert_array_equal(nib.load(out).affine, nib.load(t1_path).affine)
    np.testing.assert_allclose(load_volume(out).data, volume.data)


def test_two_d_images_are_one_slice_volumes(tmp_path):
    import imageio.v3 as iio

    image = (np.arange(20 * 30).reshape(20, 30) % 251).astype(np.uint8)
    iio.imwrite(tmp_path / "a.png", image)
    np.save(tmp_path / "a.npy", image.astype(np.float32))
    for name in ("a.png", "a.npy"):
        volume = load_volume(tmp_path / name)
        assert volume.data.shape == (20, 30, 1)
        np.testing.assert_array_equal(volume.data[:, :, 0], image)
        assert slicing_axis(volume.affine, volume.data.shape) == 2


def test_saving_over_the_input_is_refused(tmp_path):
    path = tmp_path / "x.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((4, 4, 4), np.float32), np.eye(4)), path)
    before = path.read_bytes()
    volume = load_volume(path)
    with pytest.raises(InputError, match="overwrite the input"):
        save_volume(volume, path)
    assert path.read_bytes() == before


@pytest.mark.parametrize("data, message", [
    (np.zeros((3, 3, 3, 2), np.float32), "4-D"),
    (np.full((3, 3, 3), np.nan, np.float32), "NaN"),
])
def test_bad_volumes_raise_one_line_errors(tmp_path, data, message):
    path = tmp_path / "bad.nii.gz"
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    with pytest.raises(InputError, match=message) as info:
        load_volume(path)
    assert "\n" not in str(info.value)


def test_corrupt_and_missing_files(tmp_path):
    corrupt = tmp_path / "corrupt.nii.gz"
    corrupt.write_bytes(b"not a nifti at all")
    with pytest.raises(InputError, match="cannot read"):
        load_volume(corrupt)
    with pytest.raises(InputError, match="no such file"):
        load_volume(tmp_path / "missing.nii.gz")
    with pytest.raises(InputError, match="unsupported"):
        load_volume(__file__)


def test_slicing_axis_follows_the_affine():
    assert slicing_axis(np.diag([1.0, 1.0, 5.0, 1.0])) == 2
    assert slicing_axis(np.diag([4.0, 1.0, 1.0, 1.0])) == 0
    # isotropic: the axis pointing superior is through-plane (axial slices)
    sagittal_stack = np.array([[0, 0, 1, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1.0]])
    assert slicing_axis(sagittal_stack) == 1


def test_slices_round_trip():
    data = np.random.default_rng(1).normal(size=(4, 5, 6))
    for axis in range(3):
        np.testing.assert_array_equal(stack_slices(volume_slices(data, axis), axis), data)


def test_normalisation_is_invertible_and_rejects_constant_images():
    data = np.linspace(0, 1000, 1000, dtype=np.float32).reshape(10, 10, 10)
    norm = Normalisation.fit(data, (1, 99))
    inner = data[(data > norm.low) & (data < norm.high)]
    np.testing.assert_allclose(norm.invert(norm.apply(inner)), inner, rtol=1e-4, atol=1e-2)
    assert norm.apply(data).min() == -1 and norm.apply(data).max() == 1
    with pytest.raises(InputError, match="constant"):
        Normalisation.fit(np.ones((5, 5, 5)))


def test_model_size_round_trip_keeps_aspect_and_position():
    slices = -np.ones((2, 40, 60), np.float32)
    slices[:, 10:30, 20:40] = 1.0
    small = to_model_size(slices, 32)
    assert small.shape == (2, 32, 32)
    back = from_model_size(small, (40, 60))
    assert back.shape == (2, 40, 60)
    assert np.abs(back[:, 12:28, 22:38] - 1).max() < 0.05
    assert np.abs(back[:, :5] + 1).max() < 0.05


def test_volume_requires_three_dimensions():
    with pytest.raises(InputError):
        Volume(np.zeros((3, 3)))


def test_reorientation_to_canonical_and_back():
    from zeroshot_core.imaging.orientation import CANONICAL_CODES, Reorientation

    rng = np.random.default_rng(0)
    data = rng.normal(size=(4, 5, 6))
    for affine in (np.diag([2.0, 2.0, 2.0, 1.0]), _oblique_affine(),
                   np.array([[0, 0, -1, 0], [-1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1.0]])):
        reorient = Reorientation.for_affine(affine, data.shape)
        canonical = reorient.apply(data)
        np.testing.assert_array_equal(reorient.invert(canonical), data)
        canonical_affine = affine @ nib.orientations.inv_ornt_aff(reorient.to_canonical, data.shape)
        assert nib.aff2axcodes(canonical_affine) == CANONICAL_CODES
        for axis in range(3):
            target_axis, _ = reorient.axis(axis)
            np.testing.assert_array_equal(np.sort(np.take(data, 1, axis).ravel()),
                                          np.sort(np.take(canonical, reorient.index(axis, 1), target_axis).ravel()))
