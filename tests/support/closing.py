"""Closing an engine at the worst moment for one of its store's background threads: just
after the thread looked for the stop and found none, before it waits again."""

from __future__ import annotations

import threading


class StopAfterTheLook:
    """Events for a store thread (its stop, and its wake-up) that hold the thread named
    ``thread`` the first time it looks for the stop and finds none, until ``close`` has set
    the stop and woken it. A close meets that moment every time, where a loaded machine
    met it about once in a full run of the suite.

    Example::

        held = StopAfterTheLook("signoff-riders")
        riders._closed, riders._wake = held.events()
        ...  # make the thread run
        assert held.looked.wait(10)
        engine.close()  # the thread goes on once close has stopped and woken it
    """

    def __init__(self, thread: str) -> None:
        self.thread = thread
        #: the thread found no stop, and is held
        self.looked = threading.Event()
        #: close set the stop, then the wake-up: the thread goes on
        self.woken = threading.Event()

    def events(self) -> tuple[threading.Event, threading.Event]:
        """(stop, wake-up), to stand for the thread's own."""
        held = self

        class Stop(threading.Event):
            def wait(self, timeout: float | None = None) -> bool:
                stopped = super().wait(timeout)
                mine = threading.current_thread().name == held.thread
                if not stopped and mine and not held.looked.is_set():
                    held.looked.set()
                    held.woken.wait(30)
                return stopped

        stop = Stop()

        class WakeUp(threading.Event):
            def set(self) -> None:
                super().set()
                if stop.is_set():
                    held.woken.set()

        return stop, WakeUp()
