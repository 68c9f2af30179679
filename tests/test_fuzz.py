"""Property-based fuzzing (hypothesis) of the readers, the filter mask, the LMI map and the model card.

Each property is bounded (``max_examples``, ``deadline``); the whole file runs in well
under a minute. Run with ``--hypothesis-show-statistics`` to see how many examples
each property tried.
"""

from __future__ import annotations

import json
import math
import tempfile
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from zeroshot_core.errors import ConfigError, InputError, ModelError
from zeroshot_core.imaging.mask import MaskParams, filter_mask
from zeroshot_core.io.formats import load_volume
from zeroshot_core.io.volume import Volume
from zeroshot_core.lmi import native as lmi_native
from zeroshot_core.lmi.dispatch import LMIParams, local_mutual_information
from zeroshot_core.model.store import CARD_FILE, WEIGHTS_FILE, ModelCard, read_card, unet_config

FUZZ = settings(deadline=30000, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
                derandomize=True, database=None, print_blob=True)

# --------------------------------------------------------------------------- volume readers

DTYPES = st.sampled_from(["u1", "i1", "<u2", ">u2", "<i2", ">i2", "<i4", ">i4", "<f4", ">f4", "<f8", ">f8",
                          "<c8", "?", ">i8"])
SHAPES = hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=6)
SPECIALS = st.sampled_from([np.nan, np.inf, -np.inf, 1e38, -1e38, 3.4e38, 1e300, 0.0, -0.0, 5e-324])


@st.composite
def arrays(draw, dtype=DTYPES, shape=SHAPES) -> np.ndarray:
    """Arrays of any of :data:`DTYPES`, with NaN/Inf/extremes sprinkled into float ones."""
    dt = np.dtype(draw(dtype))
    data = draw(hnp.arrays(dt, draw(shape)))
    if dt.kind in "fc" and data.size and draw(st.booleans()):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data.flat[draw(st.integers(0, data.size - 1))] = draw(SPECIALS)
    return data


def check_loaded(path: Path) -> None:
    """The property of every reader: a valid Volume, or InputError."""
    try:
        volume = load_volume(path)
    except InputError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert isinstance(volume, Volume)
    assert volume.data.ndim == 3 and volume.data.size > 0 and volume.data.dtype == np.float32
    assert np.isfinite(volume.data).all()
    assert volume.affine.shape == (4, 4) and np.isfinite(volume.affine).all()


@settings(FUZZ, max_examples=120)
@given(data=arrays())
def test_npy_reader_returns_a_volume_or_input_error(data):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "image.npy"
        np.save(path, data, allow_pickle=False)
        with warnings.catch_warnings():  # a reader that only warns while dropping imaginary parts is wrong
            warnings.simplefilter("error", np.exceptions.ComplexWarning)
            check_loaded(path)
        if data.dtype.kind == "c":
            with pytest.raises(InputError, match="not real numbers"):
                load_volume(path)


NIFTI_DTYPES = st.sampled_from(["u1", "i1", "<i2", ">i2", "<u2", "<i4", ">i4", "<f4", ">f4", "<f8", ">f8"])


@settings(FUZZ, max_examples=120)
@given(data=arrays(NIFTI_DTYPES, hnp.array_shapes(min_dims=1, max_dims=5, min_side=1, max_side=5)),
       slope=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True, width=32)),
       inter=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True, width=32)),
       suffix=st.sampled_from([".nii", ".nii.gz"]),
       zooms=st.lists(st.floats(-5, 5, width=32), min_size=3, max_size=3))
def test_nifti_reader_returns_a_volume_or_input_error(data, slope, inter, suffix, zooms):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"image{suffix}"
        try:
            image = nib.Nifti1Image(data, np.diag([*zooms, 1.0]))
            image.header.set_data_dtype(data.dtype)
            nib.save(image, path)
        except Exception:  # nibabel refuses to write some affines (all-zero zooms): not a reader's problem
            assume(False)
        if slope is not None or inter is not None:  # raw header fields: nibabel's setter refuses odd values
            raw = nib.load(path, mmap=False)
            header = raw.header
            header["scl_slope"] = np.nan if slope is None else slope
            header["scl_inter"] = np.nan if inter is None else inter
            nib.save(nib.Nifti1Image(np.array(raw.dataobj.get_unscaled()), raw.affine, header), path)
        if data.dtype.byteorder == ">" and suffix == ".nii":
            swapped = nib.load(path, mmap=False)
            header = swapped.header.as_byteswapped(">")
            nib.save(nib.Nifti1Image(np.array(swapped.dataobj.get_unscaled()), swapped.affine, header), path)
        check_loaded(path)


@settings(FUZZ, max_examples=60)
@given(data=arrays(st.sampled_from(["u1", "<u2"]),
                   st.one_of(hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=8),
                             st.tuples(st.integers(1, 6), st.integers(1, 6), st.sampled_from([1, 2, 3, 4])))),
       suffix=st.sampled_from([".png", ".tif"]))
def test_raster_reader_returns_a_volume_or_input_error(data, suffix):
    import imageio.v3 as iio

    if suffix == ".png" and data.dtype == np.uint16 and data.ndim == 3:
        data = data.astype(np.uint8)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"image{suffix}"
        try:
            iio.imwrite(path, data, extension=suffix)
        except Exception:  # a layout the writer itself refuses is not a reader's problem
            assume(False)
        check_loaded(path)


@settings(FUZZ, max_examples=80)
@given(content=st.binary(max_size=600), suffix=st.sampled_from([".nii", ".nii.gz", ".npy", ".png", ".tif"]),
       header_of=st.sampled_from([None, ".nii", ".npy"]))
def test_corrupt_files_give_input_error(content, suffix, header_of):
    if header_of == ".nii":  # a valid NIfTI header followed by garbage (or truncated data)
        content = nib.Nifti1Image(np.zeros((4, 4, 4), np.float32), np.eye(4)).header.binaryblock + content
    elif header_of == ".npy":
        content = b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (4, 4, 4), }" + \
                  b" " * 51 + b"\n" + content
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"image{suffix}"
        if suffix == ".nii.gz":
            import gzip

            content = gzip.compress(content)
        path.write_bytes(content)
        check_loaded(path)


# --------------------------------------------------------------------------- filter mask

# classes=5 is left out for time only: scikit-image's multi-Otsu search over 256 bins takes ~5 s per call
# for 5 classes on any image (O(bins^4)), against milliseconds for 2-4.
MASK_PARAMS = st.builds(MaskParams, enabled=st.booleans(), classes=st.integers(2, 4),
                        erosion_radius=st.integers(0, 3), min_object_size=st.integers(0, 80),
                        hole_area=st.integers(0, 200), keep_largest=st.booleans())
FINITE = st.floats(allow_nan=False, allow_infinity=False, width=32)


@settings(FUZZ, max_examples=150)
@given(image=st.one_of(
    hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=3, min_side=1, max_side=12), elements=FINITE),
    hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=3, min_side=1, max_side=12),
               elements=st.floats(allow_nan=False, allow_infinity=False)),
    hnp.arrays(np.int16, hnp.array_shapes(min_dims=2, max_dims=3, min_side=1, max_side=12))),
    params=MASK_PARAMS)
def test_filter_mask_of_any_finite_image_is_a_bool_mask_of_its_shape(image, params):
    mask = filter_mask(image, params)
    assert mask.dtype == bool and mask.shape == image.shape
    if not params.enabled:
        assert mask.all()


# --------------------------------------------------------------------------- LMI map

LMI_PARAMS = st.builds(LMIParams, patch_size=st.sampled_from([1, 3, 5]), search_radius=st.integers(0, 2),
                       bins=st.integers(2, 16), bandwidth=st.one_of(st.none(), st.floats(0.01, 2.0)),
                       normalized=st.booleans(), padding=st.sampled_from(["reflect", "replicate"]))


@st.composite
def image_pairs(draw) -> tuple[torch.Tensor, torch.Tensor]:
    shape = (draw(st.integers(1, 2)), 1, draw(st.integers(1, 12)), draw(st.integers(1, 12)))
    scale = draw(st.sampled_from([1.0, 1.0, 10.0, 1e6, 1e30]))
    values = st.floats(-1.0, 1.0, width=32)
    x = draw(hnp.arrays(np.float32, shape, elements=values)) * np.float32(scale)
    y = draw(hnp.arrays(np.float32, shape, elements=values)) * np.float32(scale)
    return torch.from_numpy(x), torch.from_numpy(y)


@settings(FUZZ, max_examples=120)
@given(pair=image_pairs(), params=LMI_PARAMS)
def test_lmi_of_finite_images_is_finite_bounded_and_backends_agree(pair, params):
    x, y = pair
    options = params.to_dict()
    try:
        reference = local_mutual_information(x, y, backend="torch", **options)
    except ConfigError as exc:  # documented: reflect padding needs an image larger than the patch reach
        assert params.padding == "reflect" and "reflect padding" in str(exc)
        return
    assert reference.shape == x.shape and torch.isfinite(reference).all()
    assert float(reference.min()) >= -1e-5 and float(reference.max()) <= params.upper_bound + 1e-4
    if lmi_native.available():
        native = local_mutual_information(x, y, backend="native", **options)
        torch.testing.assert_close(native, reference, atol=2e-4, rtol=1e-4)


def test_the_native_lmi_kernel_is_built_here():
    assert lmi_native.available()  # otherwise the backend comparison above compares nothing


# --------------------------------------------------------------------------- model card

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=12)


def valid_card_dict() -> dict:
    return ModelCard(guidance="contour", guidance_params={"sigma": 1.0}, condition_channels=1, image_size=32,
                     model_size="tiny", unet=unet_config("tiny", 32, 2)).to_dict()


FIELDS = sorted(valid_card_dict())


def check_card(make) -> None:
    """The property of the card parser: a card whose fields have the documented types, or ModelError."""
    try:
        card = make()
    except ModelError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert isinstance(card, ModelCard)
    assert isinstance(card.guidance, str) and isinstance(card.model_size, str)
    assert isinstance(card.target_modality, str) and isinstance(card.notes, str)
    for name in ("guidance_params", "unet", "noise_schedule", "target_intensity", "mask", "training", "segmenters",
                 "sampling"):
        assert isinstance(getattr(card, name), dict), name
    for name in ("condition_channels", "image_size", "format_version"):
        assert isinstance(getattr(card, name), int) and not isinstance(getattr(card, name), bool), name
    assert card.condition_channels >= 0 and card.image_size > 0
    assert card.unet.get("in_channels") == 1 + card.condition_channels
    assert len(card.percentiles) == 2 and all(isinstance(p, (int, float)) and math.isfinite(p) for p in card.percentiles)
    low, high = card.target_intensity["low"], card.target_intensity["high"]
    assert all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (low, high))
    cfg = card.sampling.get("cfg_scale", 1.0)
    assert isinstance(cfg, (int, float)) and not isinstance(cfg, bool) and 0.0 <= cfg <= 20.0
    steps = card.sampling.get("steps", 50)
    assert isinstance(steps, int) and not isinstance(steps, bool) and 1 <= steps <= 1000
    assert set(card.sampling) <= {"cfg_scale", "steps", "note"} and isinstance(card.sampling.get("note", ""), str)
    json.dumps(card.to_dict())


@settings(FUZZ, max_examples=200)
@given(data=st.one_of(JSON, st.dictionaries(st.sampled_from(FIELDS), JSON, max_size=len(FIELDS))))
def test_any_json_gives_a_card_or_model_error(data):
    check_card(lambda: ModelCard.from_dict(data))


@settings(FUZZ, max_examples=200)
@given(changes=st.dictionaries(st.sampled_from(FIELDS), JSON, min_size=1, max_size=3),
       dropped=st.lists(st.sampled_from(FIELDS), max_size=2))
def test_a_damaged_valid_card_gives_a_card_or_model_error(changes, dropped):
    data = {**valid_card_dict(), **changes}
    for name in dropped:
        data.pop(name, None)
    check_card(lambda: ModelCard.from_dict(data))


@settings(FUZZ, max_examples=80)
@given(text=st.one_of(st.binary(max_size=200), JSON.map(lambda d: json.dumps(d).encode()),
                      st.integers(1, 5000).map(lambda n: b"[" * n + b"]" * n),
                      st.just(b'{"guidance": NaN, "image_size": Infinity}')))
def test_read_card_of_any_file_gives_a_card_or_model_error(text):
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / CARD_FILE).write_bytes(text)
        (Path(folder) / WEIGHTS_FILE).write_bytes(b"")
        check_card(lambda: read_card(folder))


@pytest.mark.parametrize("field, value", [("unet", []), ("condition_channels", "1"), ("image_size", True),
                                          ("percentiles", [1]), ("target_intensity", {"low": "a", "high": 1}),
                                          ("guidance_params", [1, 2]), ("sampling", {"cfg_scale": 50.0}),
                                          ("sampling", {"cfg_scale": True}), ("sampling", {"steps": 0}),
                                          ("sampling", {"steps": 2.5}), ("sampling", {"seed": 1}),
                                          ("sampling", [])])
def test_card_fields_of_the_wrong_type_name_the_field(field, value):
    with pytest.raises(ModelError, match=field):
        ModelCard.from_dict({**valid_card_dict(), field: value})


# --------------------------------------------------------------------------- what the fuzzing found


@pytest.mark.parametrize("value", [708231.75, 1e30, -3.4e38])
def test_lmi_of_values_far_outside_the_bins_is_finite_and_backends_agree(value):
    x, y = torch.zeros(1, 1, 3, 3), torch.full((1, 1, 3, 3), value)
    y[0, 0, 1, 1] = 0.0
    for options in ({"bins": 2}, {"bins": 16, "bandwidth": 2.0}, {"bins": 8, "normalized": True}):
        maps = [local_mutual_information(x, y, patch_size=3, search_radius=1, backend=b, **options)
                for b in ("torch", "native")]
        assert all(torch.isfinite(m).all() for m in maps), options
        torch.testing.assert_close(maps[0], maps[1], atol=2e-4, rtol=1e-4)
        # far outside is the same as just beyond the reach of the kernel
        beyond = torch.where(y == 0, 0.0, math.copysign(3e3, value))
        near = local_mutual_information(x, beyond, patch_size=3, search_radius=1, backend="torch", **options)
        torch.testing.assert_close(maps[0], near, atol=1e-6, rtol=0)


def test_normalised_lmi_of_constant_patches_is_zero_in_both_backends():
    x = torch.full((1, 1, 4, 4), 10.0)
    for backend in ("torch", "native"):
        nmi = local_mutual_information(x, x.clone(), patch_size=1, search_radius=0, bins=8, normalized=True,
                                       backend=backend)
        assert torch.equal(nmi, torch.zeros_like(nmi)), backend
    x = torch.full((1, 1, 4, 4), 1.0, requires_grad=True)  # exactly on a bin centre
    nmi = local_mutual_information(x, x.detach() * 0.5, patch_size=3, bins=8, normalized=True, backend="torch")
    nmi.sum().backward()
    assert torch.equal(nmi, torch.zeros_like(nmi)) and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("shape", [(0, 4), (3, 0, 2), (2, 2, 0)])
def test_an_empty_array_file_is_refused(tmp_path, shape):
    path = tmp_path / "empty.npy"
    np.save(path, np.zeros(shape, np.float32))
    with pytest.raises(InputError, match="holds no voxels"):
        load_volume(path)


def test_the_filter_mask_of_an_image_spanning_the_float32_range_is_computed():
    image = np.array([[5.8986318e35, -3.3969249e38], [0.0, 1.0]], np.float32)  # max - min overflows float32
    mask = filter_mask(image, MaskParams(erosion_radius=0, min_object_size=0, hole_area=0, keep_largest=False))
    assert mask.dtype == bool and mask.tolist() == [[True, False], [True, True]]


@pytest.mark.parametrize("bins, bandwidth", [(2, 2.0), (4, 1.0), (8, None), (16, 0.3)])
def test_native_lmi_bin_weights_are_finite_beyond_the_last_bin(bins, bandwidth):
    # lanes past a value's bin window once got weight inf * 0 = NaN for values beyond the edge bin
    values = torch.arange(-60.0, 60.0, 0.25)
    x, y = torch.zeros(1, 1, 1, values.numel()), values.view(1, 1, 1, -1)
    options = dict(patch_size=1, search_radius=0, bins=bins, bandwidth=bandwidth, padding="replicate")
    native = local_mutual_information(x, y, backend="native", **options)
    assert torch.isfinite(native).all()
    torch.testing.assert_close(native, local_mutual_information(x, y, backend="torch", **options), atol=2e-4,
                               rtol=1e-4)
