"""Report commands of the ``zeroshot`` CLI: ``evaluate`` and ``demo``."""

from __future__ import annotations

import argparse


def add_report_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``evaluate`` and ``demo`` to the sub-command parser (filled in by the evaluation module)."""
    return None
