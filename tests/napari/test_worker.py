"""The translation generator behind the thread worker (no Qt): progress, result, cancellation."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest

from napari_zeroshot._job import (
    Segmenting,
    TranslationOutput,
    TranslationRequest,
    error_message,
    translation_steps,
)
from zeroshot_core import api
from zeroshot_core.errors import ModelError
from zeroshot_core.samples.sample_data import load_sample


def _request(model: Path, steps: int = 2, slices=(40,), segmenter="kmeans") -> TranslationRequest:
    options = api.TranslateOptions(steps=steps, device="cpu", slices=slices, axis=2)
    return TranslationRequest(load_sample("pd"), model, None, options, segmenter)


def _drain(generator):
    events = []
    while True:
        try:
            events.append(next(generator))
        except StopIteration as stop:
            return events, stop.value


def test_steps_yield_progress_then_segmenting_and_return_layers_data(tiny_model: Path):
    events, output = _drain(translation_steps(_request(tiny_model)))
    progress = [e for e in events if isinstance(e, api.Progress)]
    assert progress and progress[-1].slices_done == 1 and progress[-1].steps_total == 2
    assert isinstance(events[-1], Segmenting)
    assert isinstance(output, TranslationOutput) and output.segmentation_error is None
    volume = output.result.volume
    assert volume.data.shape == load_sample("pd").data.shape
    translated = np.moveaxis(volume.data, 2, 0)
    others = np.delete(translated, 40, axis=0)
    assert np.all(others == others.min()) and translated[40].max() > others.min()
    labels = np.moveaxis(output.labels, 2, 0)
    assert labels.dtype == np.int16 and labels[40].any()
    assert not np.delete(labels, 40, axis=0).any()


def test_without_segmenter_no_labels(tiny_model: Path):
    events, output = _drain(translation_steps(_request(tiny_model, segmenter=None)))
    assert not any(isinstance(e, Segmenting) for e in events)
    assert output.labels is None


def test_unfitted_segmenter_keeps_the_translation(tiny_model: Path, monkeypatch):
    def refuse(*_, **__):
        raise ModelError("the model holds no fitted 'x' segmenter")

    monkeypatch.setattr(api, "segment_translation", refuse)
    _, output = _drain(translation_steps(_request(tiny_model)))
    assert output.labels is None and output.result is not None
    assert output.segmentation_error.startswith("segmentation skipped: the model holds no fitted")


def test_closing_between_steps_closes_the_engine(tiny_model: Path, monkeypatch):
    engines = []
    real = api.translate_iter

    def recording(*args, **kwargs):
        engines.append(real(*args, **kwargs))
        return engines[-1]

    monkeypatch.setattr(api, "translate_iter", recording)
    steps = translation_steps(_request(tiny_model, steps=50))
    first = next(steps)
    assert isinstance(first, api.Progress)
    (engine,) = engines
    next(steps)
    assert inspect.getgeneratorstate(engine) == inspect.GEN_SUSPENDED
    steps.close()
    assert inspect.getgeneratorstate(steps) == inspect.GEN_CLOSED
    assert inspect.getgeneratorstate(engine) == inspect.GEN_CLOSED


def test_bad_model_folder_raises_model_error(tmp_path: Path):
    with pytest.raises(ModelError, match="not a model folder"):
        _drain(translation_steps(_request(tmp_path)))


def test_error_messages_are_one_line():
    assert error_message(ModelError("no model; train one")) == "no model; train one"
    assert error_message(RuntimeError("boom\ntraceback")) == "translation failed (RuntimeError: boom)"
    assert error_message(ValueError()) == "translation failed (ValueError: ValueError)"
