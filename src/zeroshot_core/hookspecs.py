"""Former home of the plugin hook specifications, kept so that existing plugins import.

New code imports :mod:`zeroshot_core.plugins.hookspecs`.
"""

from zeroshot_core.plugins.hookspecs import (  # noqa: F401
                                             PROJECT_NAME,
                                             RegisterFn,
                                             hookimpl,
                                             hookspec,
                                             zeroshot_register_guidance,
                                             zeroshot_register_segmenters,
)
