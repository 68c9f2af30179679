"""SIGTERM and SIGINT in the ``zeroshot`` command: stop cleanly, with the conventional exit code.

A cluster scheduler sends SIGTERM some seconds before it kills a job; Ctrl-C sends
SIGINT. By default either one raises :class:`Stopped` wherever the program is, so the
command unwinds and leaves no partial output (outputs are written atomically).
While a command runs work that can be saved (training steps), it sets
:attr:`StopSignals.deferred`: the signal is then only recorded, the command finishes
the current step, saves it and exits; a second signal stops at once.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

HANDLED = (signal.SIGTERM, signal.SIGINT)


class Stopped(BaseException):
    """A stop signal arrived (a ``BaseException``, like ``KeyboardInterrupt``).

    Attributes
    ----------
    signum : int
        The signal number.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """``128 + signum``: 143 for SIGTERM, 130 for SIGINT."""
        return 128 + self.signum


class StopSignals:
    """Context manager that handles SIGTERM and SIGINT (main thread only; elsewhere it does nothing).

    Attributes
    ----------
    received : int or None
        The first signal received, if any.
    deferred : bool
        When true, a first signal is only recorded in :attr:`received`.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self.deferred = False
        self._previous: dict[int, object] = {}

    @property
    def name(self) -> str:
        """Name of the received signal (``SIGTERM``), or ``""``."""
        return signal.Signals(self.received).name if self.received else ""

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        first = self.received is None
        self.received = signum
        if not (self.deferred and first):
            raise Stopped(signum)

    def raise_if_received(self) -> None:
        """Raise :class:`Stopped` if a (deferred) signal has arrived: the stop point of work that
        defers signals to a step boundary."""
        if self.received is not None:
            raise Stopped(self.received)

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for signum in HANDLED:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, signal.SIG_DFL if previous is None else previous)
        self._previous.clear()
