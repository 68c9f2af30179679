import nibabel as nib
import numpy as np
import pytest

from zeroshot_core import api
from zeroshot_core.diffusion.translation import Progress, TranslateOptions, TranslationResult, translate_iter
from zeroshot_core.errors import ModelError


def _options(**kwargs):
    return TranslateOptions(**{"steps": 3, "device": "cpu", "batch_size": 16, **kwargs})


def test_translation_is_on_the_exact_input_grid(tiny_contour_model, t1_path):
    source = nib.load(t1_path)
    volume = api.translate(t1_path, tiny_contour_model, options=_options(slices=(40, 41, 42)))
    assert volume.data.shape == source.shape
    np.testing.assert_array_equal(volume.affine, source.affine)
    assert np.isfinite(volume.data).all()
    card = api.load_model(tiny_contour_model).card
    untouched = np.delete(volume.data, [40, 41, 42], axis=1)  # axis 1 points superior: axial slices
    assert np.allclose(untouched, card.target_intensity["low"])


def test_translate_iter_reports_progress_then_one_result(tiny_contour_model, t1_path):
    events = list(translate_iter(t1_path, tiny_contour_model, options=_options(slices=(30, 31, 32, 33, 34),
                                                                                 batch_size=2)))
    progress = [e for e in events if isinstance(e, Progress)]
    results = [e for e in events if isinstance(e, TranslationResult)]
    assert len(results) == 1 and events[-1] is results[0]
    fractions = [p.fraction for p in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert results[0].slices == (30, 31, 32, 33, 34) and results[0].guidance == "contour"


def test_closing_the_generator_cancels(tiny_contour_model, t1_path):
    model = api.load_model(tiny_contour_model, device="cpu")
    calls = []
    model.unet.register_forward_hook(lambda *_: calls.append(1))
    generator = translate_iter(t1_path, model, options=_options(steps=50))
    seen = [next(generator) for _ in range(3)]
    before = len(calls)
    generator.close()
    assert all(isinstance(e, Progress) for e in seen)
    assert 0 < before <= 3 and len(calls) == before  # no network evaluation after the close
    with pytest.raises(StopIteration):
        next(generator)


def test_same_seed_same_result_other_seed_differs(tiny_contour_model, t1_path):
    a = api.translate(t1_path, tiny_contour_model, options=_options(slices=(45,), seed=3))
    b = api.translate(t1_path, tiny_contour_model, options=_options(slices=(45,), seed=3))
    c = api.translate(t1_path, tiny_contour_model, options=_options(slices=(45,), seed=4))
    np.testing.assert_array_equal(a.data, b.data)
    assert not np.array_equal(a.data, c.data)


def test_consistency_selection_runs_and_is_deterministic(tiny_contour_model, t1_path):
    options = _options(slices=(44, 45, 46), consistency=api.ConsistencyParams(candidates=3, rounds=2))
    events = list(translate_iter(t1_path, tiny_contour_model, options=options))
    first = events[-1].volume.data
    again = api.translate(t1_path, tiny_contour_model, options=options)
    np.testing.assert_array_equal(first, again.data)
    assert sum(isinstance(e, Progress) for e in events) >= 3 * 2 * 3


def test_sdedit_with_an_unconditional_model(tiny_none_model, t1_path):
    volume = api.translate(t1_path, tiny_none_model, "none", _options(slices=(45,)))
    assert volume.data.shape == nib.load(t1_path).shape


def test_a_guidance_the_model_was_not_trained_with_is_refused(tiny_contour_model, t1_path):
    with pytest.raises(ModelError, match="trained with guidance 'contour'"):
        api.translate(t1_path, tiny_contour_model, "none", _options(slices=(45,)))


def test_two_d_source_and_segmentation(tiny_contour_model, t1_path):
    slice_ = nib.load(t1_path).get_fdata()[:, 60, :].astype(np.float32)
    volume = api.translate(slice_, tiny_contour_model, options=_options())
    assert volume.data.shape == slice_.shape + (1,)
    labels = api.segment(volume, tiny_contour_model)
    assert labels.shape == volume.data.shape and labels.dtype == np.int16
    assert set(np.unique(labels)) <= {0, 1, 2, 3}


def test_segment_real_t1_orders_tissues(tiny_contour_model, t1_path):
    data = nib.load(t1_path).get_fdata()
    labels = api.segment(t1_path, tiny_contour_model)
    means = [data[labels == k].mean() for k in (1, 2, 3)]
    assert means == sorted(means), "labels are ordered by T1 intensity (CSF < GM < WM)"
    assert (labels > 0).mean() > 0.1


def test_preview_gives_mask_and_contour(t1_path):
    slice_ = nib.load(t1_path).get_fdata()[:, 60, :]
    mask, channels = api.preview(slice_, "contour")
    assert mask.shape == slice_.shape and mask.any()
    assert channels.shape == (1,) + slice_.shape and (channels > 0).any()


def test_translation_does_not_depend_on_the_file_orientation(tiny_contour_model, t1_path):
    """The same anatomy stored in another voxel order gives the same translation."""
    from zeroshot_core.io.formats import load_volume
    from zeroshot_core.io.volume import Volume

    original = load_volume(t1_path)
    ornt = nib.orientations.ornt_transform(nib.orientations.io_orientation(original.affine),
                                           nib.orientations.axcodes2ornt(("R", "A", "S")))
    turned = Volume(nib.orientations.apply_orientation(original.data, ornt).astype(np.float32),
                    original.affine @ nib.orientations.inv_ornt_aff(ornt, original.data.shape))
    a = api.translate(original, tiny_contour_model, options=_options(slices=(60,)))
    b = api.translate(turned, tiny_contour_model, options=_options(slices=(60,), axis=2))
    back = nib.orientations.apply_orientation(b.data, nib.orientations.ornt_transform(
        nib.orientations.axcodes2ornt(("R", "A", "S")), nib.orientations.io_orientation(original.affine)))
    np.testing.assert_allclose(back, a.data, rtol=0, atol=1e-3 * float(np.abs(a.data).max()))


def test_without_model_or_guidance_the_bundled_default_guidance_translates(t1_path):
    from zeroshot_core.choices import DEFAULT_GUIDANCE
    from zeroshot_core.model.loading import default_model_dir

    assert api.read_card(default_model_dir(None)).guidance == DEFAULT_GUIDANCE == "lmi"
    result = api.run_translation(t1_path, options=TranslateOptions(steps=1, device="cpu", slices=(45,)))
    assert result.guidance == "lmi" and result.model.path == default_model_dir("lmi")
