"""napari plugin of napari-zeroshot.

Contributions (see ``napari.yaml``): a NIfTI reader and writers that keep the
physical grid, the brain phantom as sample data, and the "Zero-shot translation"
dock widget. All computation goes through :mod:`zeroshot_core.api`.
"""

from __future__ import annotations

__all__ = ["__version__"]

from zeroshot_core import __version__
