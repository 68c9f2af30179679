"""Running a translation to its end: relay its progress events, return its result.

:func:`~zeroshot_core.diffusion.translation.translate_iter` yields
:class:`~zeroshot_core.diffusion.sampling.Progress` events and then one
:class:`~zeroshot_core.diffusion.translation.TranslationResult`; these helpers drive it
for callers that want a progress callback (scripts, the CLI) or a ``yield from`` relay
(the napari worker).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterator

import numpy as np

from zeroshot_core.diffusion.translation import (
    Progress,
    TranslateOptions,
    TranslationResult,
    translate_iter,
)
from zeroshot_core.errors import ZeroshotError
from zeroshot_core.io.volume import Volume
from zeroshot_core.model.loading import LoadedModel


def progress_then_result(events: Iterator[Progress | TranslationResult]
                         ) -> Generator[Progress, None, TranslationResult]:
    """Relay the :class:`Progress` events of ``events``; return its :class:`TranslationResult`.

    Use it with ``yield from`` in generators (``result = yield from
    progress_then_result(translate_iter(...))``); closing the relay closes
    ``events``, which cancels the translation.

    Raises
    ------
    ZeroshotError
        If ``events`` ends without a result.
    """
    result = None
    try:
        for event in events:
            if isinstance(event, TranslationResult):
                result = event
            else:
                yield event
    finally:
        close = getattr(events, "close", None)
        if close is not None:
            close()
    if result is None:
        raise ZeroshotError("the translation ended without a result")
    return result


def run_translation(source: Volume | str | os.PathLike | np.ndarray, model: str | os.PathLike | LoadedModel | None = None,
                    guidance: str | None = None, options: TranslateOptions | None = None,
                    on_progress: Callable[[Progress], None] | None = None) -> TranslationResult:
    """Run :func:`translate_iter` to the end, calling ``on_progress`` with each event.

    Parameters
    ----------
    source, model, guidance, options
        As for :func:`translate_iter`.
    on_progress : callable, optional
        Called with every :class:`Progress` (slices done, sampling step).

    Returns
    -------
    TranslationResult

    Raises
    ------
    InputError, ModelError, ConfigError, PluginError
    """
    relay = progress_then_result(translate_iter(source, model, guidance, options))
    while True:
        try:
            event = next(relay)
        except StopIteration as stop:
            return stop.value
        if on_progress is not None:
            on_progress(event)
