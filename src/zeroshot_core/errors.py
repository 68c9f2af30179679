"""Exceptions raised by ``zeroshot_core``.

Every error a user can cause derives from :class:`ZeroshotError`; its message is one
line that names the problem and the fix. The CLI prints it without a traceback and
exits with a non-zero code.
"""

from __future__ import annotations


class ZeroshotError(Exception):
    """Base class of all user-facing errors (one-line message, no traceback)."""


class InputError(ZeroshotError):
    """An input file or array is missing, unreadable or unsuitable."""


class ModelError(ZeroshotError):
    """A model directory is missing, incomplete or incompatible with the request."""


class PluginError(ZeroshotError):
    """A plugin name is unknown, duplicated or its factory failed."""


class ConfigError(ZeroshotError, ValueError):
    """A configuration value is out of range."""



class ZeroshotWarning(UserWarning):
    """Something worked around that the user should know of (one-line message)."""


class LayoutWarning(ZeroshotWarning):
    """An input's axis layout was ambiguous; the message says which was used and how to change it."""
