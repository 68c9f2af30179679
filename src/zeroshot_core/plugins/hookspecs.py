"""Hook specifications of the ``zeroshot`` plugin system.

A plugin is any module or object that implements one or more of these hooks with
:data:`hookimpl`. Built-in strategies are registered the same way as third-party
ones; third-party packages expose their module under the entry-point group
``zeroshot``::

    [project.entry-points.zeroshot]
    my_guidance = "my_package.plugin"

Each hook receives a ``register(name, factory)`` callable (see
:class:`zeroshot_core.plugins.manager.Registry.register`).
"""

from __future__ import annotations

from typing import Callable

import pluggy

PROJECT_NAME = "zeroshot"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

RegisterFn = Callable[[str, Callable[..., object]], None]


@hookspec
def zeroshot_register_guidance(register: RegisterFn) -> None:
    """Register guidance strategies.

    Parameters
    ----------
    register : callable
        ``register(name, factory)``. ``factory(**params)`` must return an object
        implementing :class:`zeroshot_core.guidance.base.Guidance`. Names are unique
        across all plugins; registering a taken name raises
        :class:`zeroshot_core.errors.PluginError`.
    """


@hookspec
def zeroshot_register_segmenters(register: RegisterFn) -> None:
    """Register segmenters.

    Parameters
    ----------
    register : callable
        ``register(name, factory)``. ``factory(state=None, **params)`` must return an
        object implementing :class:`zeroshot_core.segmenters.base.Segmenter`; ``state``
        is the JSON-compatible dict the segmenter returned from ``fit`` at training
        time (``None`` for segmenters that need no fitting).
    """
