"""Hook implementations: what napari-zeroshot loads through the entry point."""

from __future__ import annotations

from typing import Any

from zeroshot_core.plugins.hookspecs import RegisterFn, hookimpl
from zeroshot_example_plugin.gradient import GradientGuidance
from zeroshot_example_plugin.quantile import QuantileSegmenter


@hookimpl
def zeroshot_register_guidance(register: RegisterFn) -> None:
    """Register ``gradient``; the factory is the class (``GradientGuidance(**params)``)."""
    register("gradient", GradientGuidance)


def _quantile_factory(state: dict[str, Any] | None = None, **params: Any) -> QuantileSegmenter:
    return QuantileSegmenter(state=state, **params)


@hookimpl
def zeroshot_register_segmenters(register: RegisterFn) -> None:
    """Register ``quantile``; the factory takes ``state=`` from the model card."""
    register("quantile", _quantile_factory)
