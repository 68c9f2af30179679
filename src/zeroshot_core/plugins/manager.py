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
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Callable, Iterator, Mapping

import pluggy

from zeroshot_core.errors import ModelError, PluginError
from zeroshot_core.plugins import hookspecs

BUILTIN_PLUGINS: tuple[str, ...] = (
    "zeroshot_core.guidance.none",
    "zeroshot_core.guidance.contour",
    "zeroshot_core.guidance.lmi",
    "zeroshot_core.segmenters.kmeans",
    "zeroshot_core.segmenters.multiotsu",
)

DISABLE_ENV = "ZEROSHOT_DISABLE_PLUGINS"


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
    """The plugin manager and both registries built from it."""

    manager: pluggy.PluginManager
    guidance: Registry
    segmenters: Registry


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


def _entry_point_plugins() -> list[tuple[object, str, str]]:
    """Load every ``zeroshot`` entry point of every installed distribution.

    Unlike pluggy's ``load_setuptools_entrypoints``, two packages may use the same
    entry-point name: each is loaded and attributed to its own distribution.

    Raises
    ------
    PluginError
        If an entry point fails to import.
    """
    found: list[tuple[object, str, str]] = []
    seen: set[tuple[str, str]] = set()
    for dist in metadata.distributions():
        package = dist.metadata["name"] or "unknown"
        for entry_point in dist.entry_points:
            if entry_point.group != hookspecs.PROJECT_NAME or (package, entry_point.name) in seen:
                continue
            seen.add((package, entry_point.name))
            try:
                plugin = entry_point.load()
            except Exception as exc:  # a broken third-party plugin must not break the tool silently
                raise PluginError(f"plugin {entry_point.name!r} of {package} failed to load: {exc}; "
                                  f"set {DISABLE_ENV}=1 to skip third-party plugins") from None
            found.append((plugin, package, dist.version))
    return found


def build_registries(extra_plugins: tuple[object, ...] = (), load_entry_points: bool | None = None) -> Registries:
    """Create a fresh plugin manager and fill both registries.

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
    """
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    own = _own_distribution()
    origins: dict[int, tuple[str, str]] = {}
    for module_name in BUILTIN_PLUGINS:
        manager.register(importlib.import_module(module_name), name=module_name)
    for plugin in extra_plugins:
        manager.register(plugin)
        origins[id(plugin)] = (getattr(plugin, "__name__", type(plugin).__name__), "")
    if load_entry_points is None:
        load_entry_points = not plugins_disabled()
    if load_entry_points:
        for plugin, package, version in _entry_point_plugins():
            if manager.is_registered(plugin):
                continue
            manager.register(plugin, name=f"{package}:{getattr(plugin, '__name__', id(plugin))}")
            origins[id(plugin)] = (package, version)


    guidance = Registry("guidance")
    segmenters = Registry("segmenter")
    for registry, hook_name in ((guidance, "zeroshot_register_guidance"), (segmenters, "zeroshot_register_segmenters")):
        hook = getattr(manager.hook, hook_name)
        for impl in hook.get_hookimpls():
            package, version = origins.get(id(impl.plugin), own)

            def register(name: str, factory: Callable[..., Any], _p=package, _v=version, _r=registry) -> None:
                _r.register(name, factory, package=_p, version=_v)

            try:
                impl.function(register)
            except PluginError:
                raise
            except Exception as exc:
                if (package, version) == own:  # a bug in a built-in: keep the traceback
                    raise
                raise PluginError(f"plugin {impl.plugin_name} ({package} {version}) failed to register "
                                  f"{registry.kind}: {exc!r}; set {DISABLE_ENV}=1 to skip third-party "
                                  "plugins") from None
    return Registries(manager, guidance, segmenters)


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
