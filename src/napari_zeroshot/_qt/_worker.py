"""Running a translation (and its segmentation) in a napari thread worker.

:class:`TranslationRun` drives :func:`napari_zeroshot._job.translation_steps` with
napari's ``thread_worker``: ``cancel()`` is ``worker.quit()``, which stops between
two sampling steps; the generator is then closed (which closes the engine's
generator), no layer is added and nothing is written.
"""

from __future__ import annotations

from typing import Any, Callable, Generator

from napari.qt.threading import thread_worker

from napari_zeroshot._job import (
    TranslationOutput,
    TranslationRequest,
    error_message,
    translation_steps,
)


@thread_worker(start_thread=False, ignore_errors=True)
def _drive(steps: Generator[Any, None, TranslationOutput]) -> Generator[Any, None, TranslationOutput]:
    """The worker body: relay ``steps`` (a generator function, as thread_worker needs)."""
    return (yield from steps)


class TranslationRun:
    """One translation running in a thread worker.

    Parameters
    ----------
    request : TranslationRequest
        Source volume, model, guidance, sampling options and optional segmenter of the
        run, built on the GUI thread; the generator is created at once but nothing
        runs before :meth:`start`.
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
