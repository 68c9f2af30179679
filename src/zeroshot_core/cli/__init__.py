"""The ``zeroshot`` command line: the parser and entry point (:mod:`.parser`), shared
options (:mod:`.options`), and the sub-commands (:mod:`.commands`, :mod:`.report_commands`).

Every user error prints one line ``zeroshot: error: ...`` and exits with code 2;
Ctrl-C exits with 130 and leaves no partial output.
"""

from zeroshot_core.cli.parser import build_parser, main

__all__ = ["build_parser", "main"]
