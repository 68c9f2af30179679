"""Discovery of third-party plugins: the ``zeroshot`` entry points, and what failed.

A broken third-party plugin is described by a :class:`PluginFailure` (package,
version, entry point, reason, and how to switch it off) instead of raising.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata

from zeroshot_core.errors import ZeroshotWarning
from zeroshot_core.plugins import hookspecs

DISABLE_ENV = "ZEROSHOT_DISABLE_PLUGINS"


@dataclass(frozen=True)
class PluginFailure:
    """A third-party plugin that was skipped, and why.

    Attributes
    ----------
    package : str
        Distribution that provides it (what ``pip uninstall`` takes).
    version : str
        Version of that distribution.
    entry_point : str
        Name of its ``zeroshot`` entry point.
    reason : str
        What went wrong (import error, exception in a hook, a name already taken).
    """

    package: str
    version: str
    entry_point: str
    reason: str

    @property
    def message(self) -> str:
        """One line: which plugin, what went wrong, and how to switch it off."""
        return (f"plugin {self.package} {self.version} (entry point {self.entry_point!r}) skipped: {self.reason}; "
                f"uninstall it with 'pip uninstall {self.package}' or set {DISABLE_ENV}=1 to skip third-party "
                "plugins")


class PluginWarning(ZeroshotWarning):
    """A third-party plugin is broken and was skipped (see :class:`PluginFailure`)."""


def _entry_point_plugins() -> tuple[list[tuple[object, str, str, str]], list[PluginFailure]]:
    """Load every ``zeroshot`` entry point of every installed distribution.

    Unlike pluggy's ``load_setuptools_entrypoints``, two packages may use the same
    entry-point name: each is loaded and attributed to its own distribution.

    Returns
    -------
    loaded : list of (plugin, package, version, entry point name)
    failed : list of PluginFailure
        Entry points that raised on import (any exception, ``SystemExit`` included).
    """
    found: list[tuple[object, str, str, str]] = []
    failed: list[PluginFailure] = []
    seen: set[tuple[str, str]] = set()
    for dist in metadata.distributions():
        package = dist.metadata["name"] or "unknown"
        for entry_point in dist.entry_points:
            if entry_point.group != hookspecs.PROJECT_NAME or (package, entry_point.name) in seen:
                continue
            seen.add((package, entry_point.name))
            try:
                plugin = entry_point.load()
            except (Exception, SystemExit) as exc:  # a broken third-party plugin is skipped, not fatal
                failed.append(PluginFailure(package, dist.version or "", entry_point.name,
                                            f"import failed ({type(exc).__name__}: {exc})"))
                continue
            found.append((plugin, package, dist.version or "", entry_point.name))
    return found, failed
