"""How the long-running commands (``serve``, ``worker``, ``demo --web``, ``sandbox``) wait
for SIGINT, SIGTERM or SIGHUP, and how every other command unwinds on SIGTERM.

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

The other commands (``run --wait``, ``runs wait``, ...) end on SIGTERM the way they end
on Ctrl-C: ``Terminated`` is raised in the main thread, and the command's ``finally``
blocks close its engine. Python's default would end the process on the spot, leaving its
wake-up socket behind and its database connections to time out.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

logger = logging.getLogger(__name__)

#: the longest the main thread sleeps at a time: a stop signal is handled within this
SLICE_SECONDS = 0.5
#: SIGHUP too: a closed terminal or SSH session ended the process on the spot, its paused
#: runs left to a dead owner (unless ignored, as ``nohup`` does)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def stop_signals(
    on_stop: Callable[[signal.Signals], None] | None = None,
) -> Iterator[threading.Event]:
    """An event set on SIGINT, SIGTERM or SIGHUP (after ``on_stop(signal)``, if given); the
    previous handlers are back when the block ends. A signal ignored (``nohup``) stays so."""
    stop = threading.Event()

    def handle(signum: int, _frame: FrameType | None) -> None:
        if on_stop is not None:
            on_stop(signal.Signals(signum))
        stop.set()

    previous = {
        sig: signal.signal(sig, handle)
        for sig in STOP_SIGNALS
        if signal.getsignal(sig) is not signal.SIG_IGN
    }
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class Terminated(BaseException):
    """SIGTERM arrived while a command ran; raised in the main thread to unwind it.

    Not an error, and not an ``Exception``: like ``KeyboardInterrupt``, it passes through
    the ``except Exception`` of code it interrupts."""


@contextmanager
def unwind_on_sigterm() -> Iterator[None]:
    """Within the block, SIGTERM raises ``Terminated`` in the main thread, and Ctrl-C
    ``KeyboardInterrupt`` once: a second Ctrl-C ends the process at once, as the signal's
    default does. Python raised one ``KeyboardInterrupt`` per Ctrl-C, and a second one
    landing in the first one's unwinding, inside a lock's release in ``threading``, failed
    the command with 'unexpected RuntimeError: release unlocked lock'. Elsewhere than the
    main thread (a test calling the command line in a thread), nothing changes: only the
    main thread may set a handler."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_terminated(_signum: int, _frame: FrameType | None) -> None:
        raise Terminated

    interrupted = False

    def interrupt_once(_signum: int, _frame: FrameType | None) -> None:
        nonlocal interrupted
        if interrupted:
            return  # a second Ctrl-C pressed before this handler ran
        interrupted = True
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, raise_terminated)
    # Not where SIGINT is ignored (a job started in the background by a script), which
    # stays so, as Python leaves it.
    own_sigint = signal.getsignal(signal.SIGINT) is signal.default_int_handler
    previous_sigint = signal.signal(signal.SIGINT, interrupt_once) if own_sigint else None
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        if previous_sigint is not None:
            signal.signal(signal.SIGINT, previous_sigint)


#: a step of stopping that takes this long is said at WARNING, with its name: each step
#: waits for something (requests in flight, a thread) within a bound, and a stop that
#: takes many seconds otherwise says nothing of which
SLOW_STOP_SECONDS = 2.0


@contextmanager
def stop_step(step: str) -> Iterator[None]:
    """Time one step of stopping a long-running command (logged as ``serve_stop_step``).

    Example::

        with stop_step("HTTP listener"):
            listener.stop()
    """
    began = time.monotonic()
    try:
        yield
    finally:
        took = time.monotonic() - began
        logger.log(
            logging.WARNING if took >= SLOW_STOP_SECONDS else logging.DEBUG,
            "stopping: the %s took %.1f s",
            step,
            took,
            extra={"action": "serve_stop_step", "step": step, "seconds": round(took, 3)},
        )


def wait_until(stop: threading.Event, *also: threading.Event) -> None:
    """Block until ``stop`` (or one of ``also``) is set, waking every ``SLICE_SECONDS`` so
    that a signal's handler gets the main thread (see the module's docstring)."""
    while not stop.wait(SLICE_SECONDS):
        if any(event.is_set() for event in also):
            return


__all__ = [
    "SLICE_SECONDS",
    "SLOW_STOP_SECONDS",
    "Terminated",
    "stop_signals",
    "stop_step",
    "unwind_on_sigterm",
    "wait_until",
]
