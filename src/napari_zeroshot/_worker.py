"""Running a translation (and its segmentation) in a napari thread worker.

:func:`translation_steps` is a plain generator over
:func:`zeroshot_core.api.translate_iter`: it yields the engine's ``Progress``
events, then :class:`Segmenting`, and returns a :class:`TranslationOutput`. It
needs no Qt and is tested on its own. :class:`TranslationRun` drives it with
napari's ``thread_worker``: ``cancel()`` is ``worker.quit()``, which stops between
two sampling steps; the generator is then closed (which closes the engine's
generator), no layer is added and nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Generator

import numpy as np
from napari.qt.threading import thread_worker

from zeroshot_core import api
from zeroshot_core.errors import ZeroshotError
from zeroshot_core.volumes import Volume


@dataclass(frozen=True)
class TranslationRequest:
    """Everything one run needs (built on the GUI thread, read on the worker).

    Attributes
    ----------
    source : Volume
    model : Path or None
        Model folder; ``None`` for the bundled default.
    guidance : str or None
        ``None`` uses the guidance the model was trained with.
    options : TranslateOptions
    segmenter : str or None
        Segmenter to run on the translation; ``None`` for none.
    """

    source: Volume
    model: Path | None
    guidance: str | None
    options: api.TranslateOptions
    segmenter: str | None = None


@dataclass(frozen=True)
class Segmenting:
    """Yielded once the translation is done and the segmenter starts."""

    segmenter: str


@dataclass(frozen=True)
class TranslationOutput:
    """What a finished run returns.

    Attributes
    ----------
    result : TranslationResult
    labels : ndarray of int16 (X, Y, Z) or None
        Segmentation of the translated slices (0 elsewhere).
    segmentation_error : str or None
        One-line reason the segmentation failed (the translation is still valid).
    """

    result: Any
    labels: np.ndarray | None = None
    segmentation_error: str | None = None


def error_message(exc: BaseException) -> str:
    """One-line message for a notification.

    A :class:`ZeroshotError` carries its own one-line message; anything else is an
    unexpected failure and gets its type prepended.
    """
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, ZeroshotError):
        return text
    return f"translation failed ({type(exc).__name__}: {text})"


def segment_result(result: Any, segmenter: str, mask: api.MaskParams) -> np.ndarray:
    """Segment the translated slices of a :class:`TranslationResult`.

    A whole-volume translation is segmented as a volume; a partial one slice by
    slice (the untranslated slices hold background and would distort a 3-D mask).

    Returns
    -------
    ndarray of int16, shape of ``result.volume.data``
    """
    volume = result.volume
    axis, count = result.axis, volume.data.shape[result.axis]
    if len(result.slices) == count:
        return np.asarray(api.segment(volume, result.model, segmenter, mask), dtype=np.int16)
    labels = np.zeros(volume.data.shape, dtype=np.int16)
    view = np.moveaxis(labels, axis, 0)
    for index in result.slices:
        plane = np.take(volume.data, index, axis=axis)
        view[index] = np.asarray(api.segment(plane, result.model, segmenter, mask)).reshape(plane.shape)
    return labels


def translation_steps(request: TranslationRequest) -> Generator[Any, None, TranslationOutput]:
    """Translate, then segment; yields progress, returns :class:`TranslationOutput`.

    Yields
    ------
    Progress
        The engine's events (slices and step).
    Segmenting
        Once, before the segmenter runs (if one is requested).

    Raises
    ------
    ZeroshotError
        Bad input, model or settings (one-line message).
    """
    events = api.translate_iter(request.source, request.model, request.guidance, request.options)
    result = None
    try:
        for event in events:
            if isinstance(event, api.Progress):
                yield event
            else:
                result = event
    finally:
        events.close()
    if result is None:  # pragma: no cover - the engine always ends with a result
        raise ZeroshotError("the translation ended without a result")
    if request.segmenter is None:
        return TranslationOutput(result)
    yield Segmenting(request.segmenter)
    try:
        labels = segment_result(result, request.segmenter, request.options.mask)
    except ZeroshotError as exc:
        return TranslationOutput(result, None, f"segmentation skipped: {exc}")
    return TranslationOutput(result, labels)


@thread_worker(start_thread=False, ignore_errors=True)
def _drive(steps: Generator[Any, None, TranslationOutput]) -> Generator[Any, None, TranslationOutput]:
    """The worker body: relay ``steps`` (a generator function, as thread_worker needs)."""
    return (yield from steps)


class TranslationRun:
    """One translation running in a thread worker.

    Parameters
    ----------
    request : TranslationRequest
    on_event : callable
        Called on the GUI thread with each ``Progress`` / ``Segmenting``.
    on_done : callable
        Called with the :class:`TranslationOutput` when the run completes.
    on_error : callable
        Called with a one-line message when the run fails.
    on_finished : callable
        Called with ``cancelled: bool`` last, in every case.
    """

    def __init__(self, request: TranslationRequest, on_event: Callable[[Any], None],
                 on_done: Callable[[TranslationOutput], None], on_error: Callable[[str], None],
                 on_finished: Callable[[bool], None]) -> None:
        self._steps = translation_steps(request)
        self._cancelled = False
        self._running = False
        self.worker = _drive(self._steps)
        self.worker.yielded.connect(on_event)
        self.worker.returned.connect(on_done)
        self.worker.errored.connect(lambda exc: on_error(error_message(exc)))
        self.worker.finished.connect(lambda: self._finish(on_finished))

    @property
    def running(self) -> bool:
        """Whether the worker has started and not finished yet."""
        return self._running

    @property
    def cancelled(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self._cancelled

    def start(self) -> None:
        """Start the worker thread."""
        self._running = True
        self.worker.start()

    def cancel(self) -> None:
        """Ask the worker to stop after the current step (``worker.quit()``)."""
        if self._running:
            self._cancelled = True
            self.worker.quit()

    def _finish(self, on_finished: Callable[[bool], None]) -> None:
        # The worker thread has left the generator: closing it here releases the
        # engine's generator (cancellation) and its memory.
        self._steps.close()
        self._running = False
        on_finished(self._cancelled)
