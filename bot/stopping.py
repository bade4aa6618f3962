"""How the long-running commands (``serve``, ``worker``, ``demo --web``, ``sandbox``) wait
for SIGINT or SIGTERM.

Python runs a signal's handler on the main thread, but the kernel may deliver a signal to
any of the process's threads. A main thread blocked without a timeout (``Event.wait()``)
is then not woken to run the handler, and the process ignores Ctrl-C or SIGTERM until
something else wakes it (seen in CI: ``demo --web`` still running 30 s after SIGINT).
Waiting in slices lets the handler run within one slice, whichever thread the signal
reached.

Example::

    with stop_signals() as stop:
        server.start()
        wait_until(stop)
        server.stop()
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

#: the longest the main thread sleeps at a time: a stop signal is handled within this
SLICE_SECONDS = 0.5
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def stop_signals(
    on_stop: Callable[[signal.Signals], None] | None = None,
) -> Iterator[threading.Event]:
    """An event set on SIGINT or SIGTERM (after ``on_stop(signal)``, if given); the previous
    handlers are back when the block ends."""
    stop = threading.Event()

    def handle(signum: int, _frame: FrameType | None) -> None:
        if on_stop is not None:
            on_stop(signal.Signals(signum))
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in STOP_SIGNALS}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def wait_until(stop: threading.Event) -> None:
    """Block until ``stop`` is set, waking every ``SLICE_SECONDS`` so that a signal's
    handler gets the main thread (see the module's docstring)."""
    while not stop.wait(SLICE_SECONDS):
        pass


__all__ = ["SLICE_SECONDS", "stop_signals", "wait_until"]
