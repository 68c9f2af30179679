"""Native-spacing models trained on skull-stripped brains: what they saw decides the source mask."""

import nibabel as nib
import numpy as np
import pytest

from zeroshot_core.imaging.head_mask import head_mask
from zeroshot_core.imaging.mask import MaskParams, source_mask
from zeroshot_core.imaging.orientation import slicing_axis
from zeroshot_core.io.formats import load_volume
from zeroshot_core.model.summary import training_anatomy
from zeroshot_core.training.loop import TrainConfig, train_iter


@pytest.fixture(scope="module")
def brain_native_model(tmp_path_factory, shared_data, ixi_t1_files):
    """A 2-step tiny LMI model at 4 mm trained on one skull-stripped IXI T1 (``*_brain``)."""
    folder = tmp_path_factory.mktemp("brain")
    t1 = nib.load(ixi_t1_files[0])
    labels = nib.load(shared_data / "ixi_t1" / "dlmuse" / ixi_t1_files[0].name.replace(".nii.gz", "_DLMUSE.nii.gz"))
    brain = np.where(np.asarray(labels.dataobj) > 0, np.asarray(t1.dataobj, np.float32), 0).astype(np.float32)
    path = folder / "subject_brain.nii.gz"
    nib.save(nib.Nifti1Image(brain, t1.affine), path)
    config = TrainConfig(guidance="lmi", model_size="tiny", image_size=32, max_steps=2, batch_size=2,
                         checkpoint_every=0, device="cpu", spacing_mm=4.0)
    for _ in train_iter([path], folder / "model", config):
        pass
    return folder / "model"


def test_files_decide_the_anatomy_before_the_spacing():
    assert training_anatomy({"files": ["a_brain.nii.gz"], "spacing_mm": 2.0, "mask_kind": "head"}) == "brain"
    assert training_anatomy({"files": ["a_T1.nii.gz", "b_brain.nii.gz"], "spacing_mm": 2.0}) == "head"
    assert training_anatomy({"files": ["a_T1.nii.gz"]}) is None


def test_a_brain_only_native_model_translates_inside_the_filter_mask(brain_native_model, t1_path):
    from zeroshot_core.diffusion.translation import TranslateOptions, translate_iter
    from zeroshot_core.model.store import read_card

    card = read_card(brain_native_model)
    assert card.training["spacing_mm"] == 4.0 and training_anatomy(card.training) == "brain"
    *_, result = translate_iter(t1_path, brain_native_model, options=TranslateOptions(steps=2, device="cpu",
                                                                                      slices=(60,)))
    volume = load_volume(t1_path)
    axis = slicing_axis(volume.affine, volume.data.shape)
    expected = source_mask(volume, axis, MaskParams.resolve(None, card.mask))
    np.testing.assert_array_equal(result.mask, expected)
    head = head_mask(volume.data, axis)
    assert np.take(head, 60, axis=axis).sum() > np.take(result.mask, 60, axis=axis).sum()
    translated = np.take(result.volume.data, 60, axis=axis)
    assert np.isfinite(translated).all() and translated[np.take(result.mask, 60, axis=axis)].std() > 0
