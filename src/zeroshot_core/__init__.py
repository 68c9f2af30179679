"""zeroshot_core: source-free diffusion translation of medical images.

The public API lives in :mod:`zeroshot_core.api`; the names below are re-exported
lazily so that importing the package stays cheap.
"""

from __future__ import annotations

from zeroshot_core.version import __version__

_API_NAMES = ("translate", "translate_iter", "train", "segment", "load_model")

__all__ = ["__version__", *_API_NAMES]


def __getattr__(name: str):
    if name in _API_NAMES:
        from zeroshot_core import api

        return getattr(api, name)
    raise AttributeError(f"module 'zeroshot_core' has no attribute {name!r}")
