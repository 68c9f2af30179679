"""Regenerate the napari screenshots of the docs.

* ``docs/images/napari_widget.png`` (README and docs/napari.md): the PD phantom stored
  6° oblique (rotated about the left–right axis), after a *current slice* run: source
  with the guidance preview | translation with its segmentation outlined.
* ``docs/images/napari_whole_head.png`` (docs/napari.md), with ``--head FILE``: a
  whole-head scan opened through the plugin with the widget docked and the mask
  preview on (e.g. a sagittally stored IXI T1).
* ``docs/images/napari_region.png`` (docs/napari.md): the same run with its
  *segmentation region* layer with its anterior third erased and the slice re-segmented
  inside it.
* ``docs/images/napari_tooltips.png`` (docs/napari.md), with ``--head FILE``: the same
  scan with the advanced settings unfolded and the tooltip of a control showing (the
  screen is grabbed, so the tooltip's own window is in the picture).

Usage (needs an X display; under CI-like machines wrap it in ``xvfb-run -a``)::

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python tests/napari/make_screenshot.py \\
        [--model MODEL_DIR] [--head WHOLE_HEAD.nii.gz]

``MODEL_DIR`` is a model folder made by ``zeroshot train`` (the bundled default is
used when it is omitted). The radiological view is the widget's own (nothing is
turned here by hand). Not a test: pytest only collects ``test_*.py``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"
SLICE = 44
TILT_DEGREES = 6.0


def _wait(app, condition, timeout: float = 900.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the viewer did not get there in time")
        app.processEvents()
        time.sleep(0.05)


def _settle(app, rounds: int = 20) -> None:
    for _ in range(rounds):
        app.processEvents()
        time.sleep(0.05)


def _save(viewer, app, name: str) -> Path:
    from PIL import Image as PILImage
    from qtpy.QtWidgets import QApplication

    for toast in QApplication.allWidgets():  # start-up notifications would hide part of the canvas
        if type(toast).__name__ == "NapariQtNotification":
            toast.close()
    _settle(app, 10)
    shot = np.asarray(viewer.screenshot(canvas_only=False, flash=False))
    image = PILImage.fromarray(shot[..., :3]).quantize(colors=128, method=PILImage.Quantize.MEDIANCUT)
    IMAGES.mkdir(parents=True, exist_ok=True)
    out = IMAGES / name
    image.save(out, optimize=True)
    return out


def tilted_pd(folder: Path) -> Path:
    """The PD phantom written with its affine rotated :data:`TILT_DEGREES` about left–right."""
    import nibabel as nib

    from zeroshot_core.api import load_sample

    volume = load_sample("pd")
    angle = np.deg2rad(TILT_DEGREES)
    rotation = np.eye(4)
    rotation[1:3, 1:3] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    path = folder / "phantom_pd_tilted.nii.gz"
    nib.save(nib.Nifti1Image(np.asarray(volume.data, np.float32), rotation @ volume.affine), str(path))
    return path


def _viewer_with_widget(path: Path):
    import napari
    from qtpy.QtWidgets import QApplication

    viewer = napari.Viewer(title="napari-zeroshot")
    viewer.window._qt_window.resize(1500, 900)
    [source] = viewer.open(str(path), plugin="napari-zeroshot")
    _, widget = viewer.window.add_plugin_dock_widget("napari-zeroshot", "Zero-shot translation")
    return viewer, source, widget, QApplication.instance()


def _translated_slice(tmp: Path, model: str | None):
    """Viewer, source, widget and app after translating the slice on screen of the tilted phantom."""
    from napari_zeroshot._model_choice import FOLDER

    viewer, source, widget, app = _viewer_with_widget(tilted_pd(tmp))
    if model:
        widget.model.value = FOLDER
        widget.model_folder.value = Path(model)
    viewer.dims.set_point(0, source.data_to_world((SLICE, 0, 0))[0])
    _wait(app, lambda: len(viewer.layers) >= 3, timeout=60)
    run = widget.start()
    _wait(app, lambda: not run.running)
    return viewer, source, widget, app


def translation_shot(model: str | None) -> Path:
    """The tilted phantom after translating the slice on screen."""
    from napari_zeroshot._qt._preview import MASK_ROLE, owned_layers
    from napari_zeroshot._results import REGION_ROLE, SEGMENTATION_ROLE, TRANSLATION_ROLE

    with tempfile.TemporaryDirectory() as tmp:
        viewer, _, _, app = _translated_slice(Path(tmp), model)
        # side by side: source + guidance preview | translation + segmentation (mask preview and region removed)
        for hidden in owned_layers(viewer, MASK_ROLE) + owned_layers(viewer, REGION_ROLE):  # out of the grid
            viewer.layers.remove(hidden)
        viewer.layers.selection.active = owned_layers(viewer, TRANSLATION_ROLE)[0]
        for labels in owned_layers(viewer, SEGMENTATION_ROLE):
            labels.contour = 1  # outlines, so the translation stays visible
            labels.opacity = 0.8
        viewer.grid.enabled = True
        viewer.grid.stride = 2
        _settle(app)
        viewer.reset_view()
        out = _save(viewer, app, "napari_widget.png")
        viewer.close()
    return out


def region_shot(model: str | None) -> Path:
    """The tilted phantom after a current-slice run, its region trimmed and the slice re-segmented."""
    from napari_zeroshot._qt._preview import GUIDANCE_ROLE, MASK_ROLE, owned_layers
    from napari_zeroshot._results import REGION_ROLE

    with tempfile.TemporaryDirectory() as tmp:
        viewer, source, widget, app = _translated_slice(Path(tmp), model)
        for layer in owned_layers(viewer, MASK_ROLE) + owned_layers(viewer, GUIDANCE_ROLE) + [source]:
            layer.visible = False
        [region] = owned_layers(viewer, REGION_ROLE)
        data = np.array(region.data, copy=True)  # what the eraser does: the anterior third goes
        [plane] = widget.regions.segmented(source.name).result.slices  # axial: the layer's first axis
        rows = np.flatnonzero(data[plane].any(axis=1))
        data[plane, rows[0] + 2 * (rows[-1] - rows[0]) // 3:] = 0
        region.data = data
        widget.regions.resegment()
        viewer.layers.selection.active = region
        region.mode = "erase"
        _settle(app)
        viewer.reset_view()
        out = _save(viewer, app, "napari_region.png")
        viewer.close()
    return out


def _head_viewer(head: Path, advanced: bool = False):
    """A whole-head scan opened through the plugin at a slice above the orbits, preview on."""
    viewer, source, widget, app = _viewer_with_widget(head)
    viewer.dims.set_point(0, source.data_to_world((int(0.62 * source.data.shape[0]), 0, 0))[0])
    _wait(app, lambda: len(viewer.layers) >= 2, timeout=120)
    widget.show_advanced.value = advanced
    _settle(app)
    viewer.reset_view()
    return viewer, widget, app


def whole_head_shot(head: Path) -> Path:
    """A whole-head scan opened through the plugin, with the widget and its mask preview."""
    viewer, _, app = _head_viewer(head)
    out = _save(viewer, app, "napari_whole_head.png")
    viewer.close()
    return out


def tooltip_shot(head: Path) -> Path:
    """The widget with its advanced settings unfolded and one control's tooltip on screen."""
    from PIL import Image as PILImage
    from qtpy.QtCore import QPoint
    from qtpy.QtWidgets import QToolTip

    viewer, widget, app = _head_viewer(head, advanced=True)
    control = widget.sampling.scheduler.native
    QToolTip.showText(control.mapToGlobal(QPoint(control.width() // 3, control.height())), control.toolTip(), control)
    _settle(app, 30)
    window = viewer.window._qt_window
    frame = window.frameGeometry()
    pixmap = app.primaryScreen().grabWindow(0, frame.x(), frame.y(), frame.width(), frame.height())
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "shot.png"
        pixmap.save(str(raw))
        image = PILImage.open(raw).convert("RGB").quantize(colors=128, method=PILImage.Quantize.MEDIANCUT)
        out = IMAGES / "napari_tooltips.png"
        image.save(out, optimize=True)
    QToolTip.hideText()
    viewer.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model folder made by `zeroshot train` (default: the bundled model)")
    parser.add_argument("--head", type=Path, help="a whole-head NIfTI scan for napari_whole_head.png")
    args = parser.parse_args()
    print(translation_shot(args.model))
    print(region_shot(args.model))
    if args.head is not None:
        print(whole_head_shot(args.head))
        print(tooltip_shot(args.head))


if __name__ == "__main__":
    main()
