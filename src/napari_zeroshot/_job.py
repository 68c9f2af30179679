"""One translation run of the widget, without Qt: the request, the generator that runs
it, and what it returns.

:func:`translation_steps` is a plain generator over
:func:`zeroshot_core.api.translate_iter`: it yields the engine's ``Progress``
events, then :class:`Segmenting`, and returns a :class:`TranslationOutput`.
Closing it between two events closes the engine's generator, which cancels the
work; nothing is written. :mod:`napari_zeroshot._qt._worker` runs it in a napari
thread worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generator

import numpy as np

from zeroshot_core import api
from zeroshot_core.errors import ZeroshotError


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

    source: api.Volume
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
    result = yield from api.progress_then_result(
        api.translate_iter(request.source, request.model, request.guidance, request.options))
    if request.segmenter is None:
        return TranslationOutput(result)
    yield Segmenting(request.segmenter)
    try:
        labels = api.segment_translation(result, request.segmenter)
    except ZeroshotError as exc:
        return TranslationOutput(result, None, f"segmentation skipped: {exc}")
    return TranslationOutput(result, labels)
