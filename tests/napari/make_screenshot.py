"""Regenerate ``docs/images/napari_widget.png``: the viewer with the docked widget after a translation.

Usage (needs an X display; under CI-like machines wrap it in ``xvfb-run -a``)::

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python tests/napari/make_screenshot.py MODEL_DIR

``MODEL_DIR`` is a model folder made by ``zeroshot train`` (the bundled default is
used when it is omitted). Not a test: pytest only collects ``test_*.py``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[2] / "docs" / "images" / "napari_widget.png"
SLICE = 44


def _wait(app, condition, timeout: float = 900.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the translation did not finish")
        app.processEvents()
        time.sleep(0.05)


def main(model: str | None) -> Path:
    import napari
    from PIL import Image as PILImage
    from qtpy.QtWidgets import QApplication

    from napari_zeroshot._model_choice import FOLDER
    from zeroshot_core.samples.sample_data import sample_paths

    viewer = napari.Viewer(title="napari-zeroshot")
    viewer.window._qt_window.resize(1500, 900)
    [source] = viewer.open(str(sample_paths()["pd"]), plugin="napari-zeroshot")
    _, widget = viewer.window.add_plugin_dock_widget("napari-zeroshot", "Zero-shot translation")
    app = QApplication.instance()
    if model:
        widget.model.value = FOLDER
        widget.model_folder.value = Path(model)
    viewer.dims.set_point(0, source.data_to_world((SLICE, 0, 0))[0])
    widget.sampling.steps.value = 25
    _wait(app, lambda: len(viewer.layers) >= 3, timeout=30)
    run = widget.start()
    _wait(app, lambda: not run.running)
    from napari_zeroshot._qt._preview import MASK_ROLE, owned_layers
    from napari_zeroshot._results import SEGMENTATION_ROLE, TRANSLATION_ROLE

    # side by side: source + contour preview | translation + segmentation (mask preview hidden)
    [mask] = owned_layers(viewer, MASK_ROLE)
    viewer.layers.move(viewer.layers.index(mask), len(viewer.layers))
    mask.visible = False
    viewer.layers.selection.active = owned_layers(viewer, TRANSLATION_ROLE)[0]
    for labels in owned_layers(viewer, SEGMENTATION_ROLE):
        labels.contour = 1  # outlines, so the translation stays visible
        labels.opacity = 0.8
    viewer.camera.orientation2d = ("up", "right")  # anterior up
    viewer.grid.enabled = True
    viewer.grid.stride = 2
    for _ in range(20):
        app.processEvents()
        time.sleep(0.05)
    viewer.reset_view()
    for toast in QApplication.allWidgets():  # start-up notifications would hide part of the canvas
        if type(toast).__name__ == "NapariQtNotification":
            toast.close()
    for _ in range(10):
        app.processEvents()
        time.sleep(0.05)
    shot = np.asarray(viewer.screenshot(canvas_only=False, flash=False))
    image = PILImage.fromarray(shot[..., :3]).quantize(colors=128, method=PILImage.Quantize.MEDIANCUT)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    image.save(OUT, optimize=True)
    viewer.close()
    return OUT


if __name__ == "__main__":
    print(main(sys.argv[1] if len(sys.argv) > 1 else None))
