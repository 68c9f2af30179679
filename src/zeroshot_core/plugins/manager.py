"""Plugin manager and the registries of guidance strategies and segmenters.

Built-in strategies live in ordinary modules listed in :data:`BUILTIN_PLUGINS` and
are registered through the same hooks as third-party plugins, which are loaded from
the entry-point group ``zeroshot`` unless the environment variable
``ZEROSHOT_DISABLE_PLUGINS`` is set to a non-empty value other than ``0``,
``false`` or ``no``.

Examples
--------
>>> from zeroshot_core.plugins.manager import guidance_registry
>>> "contour" in guidance_registry().names()
True
"""

from __future__ import annotations

import importlib
import os
import threading
import warnings
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Callable, Iterator, Mapping

import pluggy

from zeroshot_core.errors import ModelError, PluginError
from zeroshot_core.plugins import hookspecs
from zeroshot_core.plugins.discovery import DISABLE_ENV, PluginFailure, PluginWarning, _entry_point_plugins

BUILTIN_PLUGINS: tuple[str, ...] = (
    "zeroshot_core.guidance.none",
    "zeroshot_core.guidance.contour",
    "zeroshot_core.guidance.lmi",
    "zeroshot_core.segmenters.kmeans",
    "zeroshot_core.segmenters.multiotsu",
)



@dataclass(frozen=True)
class PluginEntry:
    """One registered factory and where it came from.

    Attributes
    ----------
    name : str
        The name users pass (``--guidance NAME``).
    factory : callable
        Builds the strategy from keyword parameters.
    package : str
        Distribution that provided it (``napari-zeroshot`` for built-ins).
    version : str
        Version of that distribution.
    """

    name: str
    factory: Callable[..., Any]
    package: str
    version: str


class Registry:
    """Named factories of one kind ("guidance" or "segmenter").

    Parameters
    ----------
    kind : str
        What is registered, used in error messages.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, PluginEntry] = {}

    def register(
        self,
        name: str,
        factory: Callable[..., Any],
        *,
        package: str = "unknown",
        version: str = "",
    ) -> None:
        """Add ``factory`` under ``name``.

        Raises
        ------
        PluginError
            If ``name`` is empty, not a string, or already registered.
        """
        if not isinstance(name, str) or not name.strip():
            raise PluginError(f"{self.kind} name must be a non-empty string, got {name!r}")
        if not callable(factory):
            raise PluginError(f"{self.kind} {name!r}: factory must be callable")
        if name in self._entries:
            other = self._entries[name]
            raise PluginError(
                f"{self.kind} {name!r} is already registered by {other.package}; "
                "choose another name"
            )
        self._entries[name] = PluginEntry(name, factory, package, version)

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._entries)

    def entry(self, name: str) -> PluginEntry:
        """The entry registered under ``name``.

        Raises
        ------
        PluginError
            If ``name`` is unknown; the message lists the valid names.
        """
        try:
            return self._entries[name]
        except KeyError:
            valid = ", ".join(self.names()) or "none"
            raise PluginError(f"unknown {self.kind} {name!r}; valid names: {valid}") from None

    def create(self, name: str, **params: Any) -> Any:
        """Build the strategy ``name`` with ``params``.

        Raises
        ------
        PluginError
            If the name is unknown or the factory rejects the parameters.
        """
        entry = self.entry(name)
        try:
            return entry.factory(**params)
        except PluginError:
            raise
        except (TypeError, ValueError) as exc:
            raise PluginError(f"{self.kind} {name!r}: {exc}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[PluginEntry]:
        return iter(self._entries[n] for n in self.names())


@dataclass(frozen=True)
class Registries:
    """The plugin manager, both registries built from it, and the plugins that were skipped."""

    manager: pluggy.PluginManager
    guidance: Registry
    segmenters: Registry
    failures: tuple[PluginFailure, ...] = ()


_lock = threading.Lock()
_cached: Registries | None = None


def _own_distribution() -> tuple[str, str]:
    try:
        return "napari-zeroshot", metadata.version("napari-zeroshot")
    except metadata.PackageNotFoundError:  # running from a source tree
        return "napari-zeroshot", "dev"


def plugins_disabled() -> bool:
    """Whether entry-point auto-loading is switched off by :data:`DISABLE_ENV`."""
    value = os.environ.get(DISABLE_ENV, "").strip().lower()
    return value not in ("", "0", "false", "no")


HOOKS = (("guidance", "zeroshot_register_guidance"), ("segmenters", "zeroshot_register_segmenters"))


def _registrations(manager: pluggy.PluginManager, plugin: object) -> dict[str, list[tuple[str, Callable[..., Any]]]]:
    """Call ``plugin``'s own hook implementations and collect what they register.

    Raises
    ------
    Exception
        Whatever a hook implementation raises.
    """
    collected: dict[str, list[tuple[str, Callable[..., Any]]]] = {kind: [] for kind, _ in HOOKS}
    for kind, hook_name in HOOKS:
        for impl in getattr(manager.hook, hook_name).get_hookimpls():
            if impl.plugin is plugin:
                impl.function(lambda name, factory, _k=kind: collected[_k].append((name, factory)))
    return collected


def _add(registries: dict[str, Registry], collected: dict[str, list[tuple[str, Callable[..., Any]]]],
         package: str, version: str) -> None:
    """Register everything ``collected`` or nothing.

    Raises
    ------
    PluginError
        If a name is invalid or taken (by an earlier plugin, or twice by this one).
    """
    staged = {kind: Registry(registries[kind].kind) for kind in registries}
    for kind, items in collected.items():
        for name, factory in items:
            if isinstance(name, str) and name in registries[kind]:
                registries[kind].register(name, factory, package=package, version=version)  # raises: taken
            staged[kind].register(name, factory, package=package, version=version)
    for kind, registry in staged.items():
        for entry in registry:
            registries[kind].register(entry.name, entry.factory, package=entry.package, version=entry.version)


def build_registries(extra_plugins: tuple[object, ...] = (), load_entry_points: bool | None = None) -> Registries:
    """Create a fresh plugin manager and fill both registries.

    Built-ins and ``extra_plugins`` must register cleanly (their errors propagate).
    A third-party entry-point plugin that fails to import, raises in a hook, or
    registers an invalid or taken name is skipped as a whole: it is recorded in
    :attr:`Registries.failures` and reported once as a :class:`PluginWarning` that
    names its package and how to disable it; everything else keeps working.

    Parameters
    ----------
    extra_plugins : tuple of objects
        Additional plugin objects/modules to register (tests use this).
    load_entry_points : bool, optional
        Load the ``zeroshot`` entry-point group; default: unless disabled by
        :data:`DISABLE_ENV`.

    Returns
    -------
    Registries

    Raises
    ------
    PluginError
        If a built-in or an extra plugin registers an invalid or taken name, or an
        extra plugin's hook raises.
    """
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    own = _own_distribution()
    targets = {"guidance": Registry("guidance"), "segmenters": Registry("segmenter")}
    for module_name in BUILTIN_PLUGINS:
        module = importlib.import_module(module_name)
        manager.register(module, name=module_name)
        _add(targets, _registrations(manager, module), *own)  # a bug in a built-in keeps its traceback
    for plugin in extra_plugins:
        manager.register(plugin)
        name = manager.get_name(plugin) or getattr(plugin, "__name__", type(plugin).__name__)
        try:
            collected = _registrations(manager, plugin)
        except PluginError:
            raise
        except Exception as exc:
            raise PluginError(f"plugin {name} failed to register: {exc!r}") from None
        _add(targets, collected, getattr(plugin, "__name__", type(plugin).__name__), "")
    failures: list[PluginFailure] = []
    if load_entry_points is None:
        load_entry_points = not plugins_disabled()
    if load_entry_points:
        loaded, failures = _entry_point_plugins()
        for plugin, package, version, entry_point in loaded:
            if manager.is_registered(plugin):
                continue
            try:
                manager.register(plugin, name=f"{package}:{getattr(plugin, '__name__', id(plugin))}")
                _add(targets, _registrations(manager, plugin), package, version)
            except (Exception, SystemExit) as exc:
                if manager.is_registered(plugin):
                    manager.unregister(plugin)
                reason = str(exc) if isinstance(exc, PluginError) else f"registration failed ({exc!r})"
                failures.append(PluginFailure(package, version, entry_point, reason))
    for failure in failures:
        warnings.warn(failure.message, PluginWarning, stacklevel=2)
    return Registries(manager, targets["guidance"], targets["segmenters"], tuple(failures))


def registries() -> Registries:
    """The process-wide registries, built on first use."""
    global _cached
    with _lock:
        if _cached is None:
            _cached = build_registries()
        return _cached


def reset_registries() -> None:
    """Forget the cached registries (after installing a plugin, or in tests)."""
    global _cached
    with _lock:
        _cached = None


def guidance_registry() -> Registry:
    """Registry of guidance strategies."""
    return registries().guidance


def segmenter_registry() -> Registry:
    """Registry of segmenters."""
    return registries().segmenters


def fitted_segmenter(name: str, states: Mapping[str, Any], **params: Any) -> Any:
    """Segmenter ``name`` rebuilt from fitted states (a model card's ``segmenters``).

    Raises
    ------
    ModelError
        If the segmenter needs fitting and ``states`` holds no state for it.
    PluginError
        If the name is unknown.
    """
    state = states.get(name)
    instance = segmenter_registry().create(name, state=state, **params)
    if getattr(instance, "needs_fit", False) and state is None:
        raise ModelError(f"the model holds no fitted {name!r} segmenter; available: "
                         f"{', '.join(states) or 'none'} (retrain with --segmenters {name})")
    return instance
