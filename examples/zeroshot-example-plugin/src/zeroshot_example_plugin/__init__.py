"""Example third-party plugin for napari-zeroshot.

The hook implementations live in :mod:`zeroshot_example_plugin.plugin`, which the
``zeroshot`` entry point in ``pyproject.toml`` names.
"""

from zeroshot_example_plugin.gradient import GradientGuidance, gradient_map
from zeroshot_example_plugin.quantile import QuantileSegmenter

__version__ = "0.1.0"
__all__ = ["GradientGuidance", "QuantileSegmenter", "gradient_map"]
