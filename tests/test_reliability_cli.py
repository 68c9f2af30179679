"""The command line on thin slabs, partial slabs and bad requests: a correct output on the
source grid, or a one-line error before the expensive work; never a partial file."""

import hashlib

import nibabel as nib
import numpy as np
import pytest

from zeroshot_core.cli import build_parser, commands, main
from zeroshot_core.cli.options import _mask_params
from zeroshot_core.diffusion.running import run_translation
from zeroshot_core.diffusion.translation import TranslateOptions
from zeroshot_core.imaging.mask import MaskParams, source_mask
from zeroshot_core.io.formats import load_volume
from zeroshot_core.model.loading import load_model


def _slab(path, slices, tissue_slices=None, spacing=5.0):
    """A PD-like head slab (X, Y, slices) with 1 mm pixels and ``spacing`` mm slices."""
    rng = np.random.default_rng(0)
    x, y = np.meshgrid(np.linspace(-1, 1, 48), np.linspace(-1, 1, 56), indexing="ij")
    r = np.sqrt((x / 0.8) ** 2 + (y / 0.85) ** 2)
    plane = np.select([r < 0.5, r < 0.75, r < 0.85, r < 0.95], [650.0, 800.0, 950.0, 400.0], 0.0)
    data = np.zeros((48, 56, slices), np.float32)
    for k in (range(slices) if tissue_slices is None else tissue_slices):
        data[:, :, k] = plane + rng.normal(0, 20, plane.shape) * (plane > 0)
    nib.save(nib.Nifti1Image(data, np.diag([1.0, 1.0, spacing, 1.0])), path)
    return path


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _one_line_error(capsys, code, fragment):
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("zeroshot: error:") and "\n" not in err and "Traceback" not in err, err
    assert fragment in err, err


@pytest.mark.parametrize("extra,fragment", [
    (["--slices", "8:4"], "slice selection is empty"),
    (["--slices", "12"], "out of range 0..9"),
    (["--out", "{d}/t1.png"], "holds one 2-D slice"),
    (["--out", "{d}/T1.TIF"], "holds one 2-D slice"),
    (["--labels", "{d}/t1.nii.gz"], "--labels and --out are the same file"),
    (["--out", "{d}/missing/t1.nii.gz"], "does not exist"),
])
def test_errors_known_up_front_come_before_the_model(tmp_path, capsys, extra, fragment):
    source = _slab(tmp_path / "pd.nii.gz", 10)
    before = _digest(source)
    out = tmp_path / "out"
    out.mkdir()
    args = ["-q", "translate", str(source), "--model", str(tmp_path / "no-such-model"),
            "--out", str(out / "t1.nii.gz")] + [a.format(d=out) for a in extra]
    _one_line_error(capsys, main(args), fragment)  # a model error would mean the check came too late
    assert list(out.iterdir()) == [] and _digest(source) == before


@pytest.mark.parametrize("slices", [4, 2])
def test_thin_slab_is_translated_and_labelled_in_every_slice(tmp_path, tiny_contour_model, slices):
    source = _slab(tmp_path / "pd.nii.gz", slices)
    before = _digest(source)
    out, labels = tmp_path / "t1.nii.gz", tmp_path / "labels.nii.gz"
    assert main(["-q", "translate", str(source), "--model", str(tiny_contour_model), "--steps", "2",
                 "--device", "cpu", "--out", str(out), "--labels", str(labels)]) == 0
    t1, lab = nib.load(out), nib.load(labels)
    assert t1.shape == lab.shape == (48, 56, slices) and np.allclose(t1.affine, nib.load(source).affine)
    data, label_data = t1.get_fdata(), np.asarray(lab.dataobj)
    assert all((data[:, :, k] > data.min() + 1e-3).sum() > 500 for k in range(slices))
    assert all((label_data[:, :, k] > 0).sum() > 500 for k in range(slices))
    assert _digest(source) == before


def test_partial_slab_translation_is_segmented_on_its_slices(tmp_path, tiny_contour_model):
    source = _slab(tmp_path / "pd.nii.gz", 10)
    out, seg = tmp_path / "t1.nii.gz", tmp_path / "seg.nii.gz"
    assert main(["-q", "translate", str(source), "--model", str(tiny_contour_model), "--steps", "2",
                 "--device", "cpu", "--slices", "4,5", "--out", str(out)]) == 0
    assert main(["-q", "segment", str(out), "--model", str(tiny_contour_model), "--out", str(seg)]) == 0
    per_slice = (np.asarray(nib.load(seg).dataobj) > 0).sum(axis=(0, 1))
    # (a 4-step model translates poorly, so its translation's mask is small, but never empty)
    assert per_slice[4] > 50 and per_slice[5] > 50, per_slice
    assert per_slice.sum() == per_slice[4] + per_slice[5]


def test_slices_the_mask_removes_entirely_are_an_error(tmp_path, tiny_contour_model, capsys):
    source = _slab(tmp_path / "pd.nii.gz", 10, tissue_slices=range(3, 7))
    out = tmp_path / "t1.nii.gz"
    code = main(["-q", "translate", str(source), "--model", str(tiny_contour_model), "--steps", "2",
                 "--device", "cpu", "--slices", "0,1", "--out", str(out)])
    _one_line_error(capsys, code, "leaves nothing in the selected slices 0,1")
    assert not out.exists()


def test_translation_and_segmentation_use_the_cards_mask_unless_set(tmp_path, tiny_contour_model):
    parser = build_parser()
    assert _mask_params(parser.parse_args(["translate", "x.nii.gz", "--out", "y.nii.gz"])) is None
    assert _mask_params(parser.parse_args(["segment", "x.nii.gz", "--out", "y.nii.gz"])) is None
    chosen = _mask_params(parser.parse_args(["translate", "x.nii.gz", "--out", "y.nii.gz", "--mask-erosion", "0"]))
    assert chosen == MaskParams(erosion_radius=0)
    assert _mask_params(parser.parse_args(["translate", "x", "--out", "y", "--no-mask"])).enabled is False
    source = load_volume(_slab(tmp_path / "pd.nii.gz", 6))
    model = load_model(tiny_contour_model, None, "cpu")
    card_mask = dict(model.card.mask, erosion_radius=0)  # differs from the defaults
    model.card.mask.update(card_mask)
    result = run_translation(source, model, None, TranslateOptions(steps=2, device="cpu"))
    expected = source_mask(source, result.axis, MaskParams.resolve(None, card_mask))
    assert np.array_equal(result.mask, expected)
    assert result.mask_params == MaskParams.resolve(None, card_mask)
    assert not np.array_equal(expected, source_mask(source, result.axis, MaskParams()))


class _Bar:
    """A progress bar whose third refresh fails the way ``fail`` says."""

    def __init__(self, fail):
        self.fail, self.calls, self.n, self.total = fail, 0, 0, 1

    def set_postfix(self, **kwargs):
        pass

    def refresh(self):
        self.calls += 1
        if self.calls == 3:
            raise self.fail

    def close(self):
        pass


@pytest.mark.parametrize("fail", [KeyboardInterrupt, RuntimeError("crash")])
def test_crash_or_cancel_mid_translation_leaves_no_output(tmp_path, tiny_contour_model, monkeypatch, capsys, fail):
    source = _slab(tmp_path / "pd.nii.gz", 6)
    out = tmp_path / "out"
    out.mkdir()
    bar = _Bar(fail)
    monkeypatch.setattr(commands, "_progress_bar", lambda *a: bar)
    args = ["-q", "translate", str(source), "--model", str(tiny_contour_model), "--steps", "4", "--device", "cpu",
            "--batch-size", "1", "--out", str(out / "t1.nii.gz"), "--labels", str(out / "labels.nii.gz")]
    if isinstance(fail, RuntimeError):
        with pytest.raises(RuntimeError):
            main(args)
    else:
        assert main(args) == 130
        assert "no output was written" in capsys.readouterr().err
    assert bar.calls == 3
    assert list(out.iterdir()) == []


def test_ambiguous_npy_layout_is_noted_in_one_line(tmp_path, capsys):
    path = tmp_path / "stack.npy"
    np.save(path, np.random.default_rng(0).normal(size=(6, 32, 40)).astype(np.float32))
    code = main(["-q", "translate", str(path), "--model", str(tmp_path / "no-model"), "--out", str(tmp_path / "o.npy")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 2 and "Traceback" not in "".join(lines)
    assert lines[0].startswith(f"zeroshot: note: {path}: 3-D array of shape (6, 32, 40)") and "--axis 0" in lines[0]
