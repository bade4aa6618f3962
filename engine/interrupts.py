"""Whether Ctrl-C, rather than the flow's own code, cancelled the async flows of this process.

Under ``asyncio.run``, Ctrl-C raises no ``KeyboardInterrupt`` inside the flow: the runner
cancels its main task, and a flow awaiting input sees a ``CancelledError``, as it does when
its own ``asyncio.wait_for`` runs out. The two must end differently. Ctrl-C stops the
process, so the question stays open and the run is suspended for a worker, as a sync flow's
is; an await the flow gave up on ends its pause at once.

So while an async flow runs in the main thread, the engine puts a SIGINT handler in front of
whichever one was there (``asyncio.run``'s, or Python's own): it notes the interrupt and hands
the signal on unchanged. The last flow to finish puts the previous handler back.

>>> with watching():
...     interrupted()
False
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType

_Handler = Callable[[int, FrameType | None], object]

_interrupted = threading.Event()
#: flows running inside ``watching()``
_watchers = 0
#: the handler the note stands in front of, as long as the note may be called
_previous: _Handler | None = None


def interrupted() -> bool:
    """Whether SIGINT arrived while an async flow of this process ran in the main thread."""
    return _interrupted.is_set()


def _note(signum: int, frame: FrameType | None) -> None:
    _interrupted.set()
    if _previous is not None:
        _previous(signum, frame)


def _watch() -> bool:
    """Start noting Ctrl-C for one flow; whether it counts (``_unwatch`` when it ends)."""
    if threading.current_thread() is not threading.main_thread():
        return False
    global _watchers, _previous
    if _watchers == 0:
        current = signal.getsignal(signal.SIGINT)
        if _previous is None:
            if not callable(current):
                return False
            _previous = current
            signal.signal(signal.SIGINT, _note)
        # else: a handler set during an earlier flow replaced the note and stays; it may
        # hand the signal on to the note, which is not put in front of it a second time.
        _interrupted.clear()
    _watchers += 1
    return True


def _unwatch() -> None:
    global _watchers, _previous
    _watchers -= 1
    if _watchers == 0 and signal.getsignal(signal.SIGINT) is _note:
        signal.signal(signal.SIGINT, _previous)
        _previous = None


class watching:
    """Note Ctrl-C for as long as the block runs. Only in the main thread (the only one that
    receives signals, and may set handlers), and only where SIGINT has a Python handler: where
    it is ignored or kills the process, no flow sees it as a cancellation.

    A small object rather than a generator: one lives as long as each async flow does,
    thousands at once in a process."""

    __slots__ = ("_counted",)

    def __init__(self) -> None:
        self._counted = False

    def __enter__(self) -> None:
        self._counted = _watch()

    def interrupted(self) -> bool:
        """Whether Ctrl-C arrived while this flow ran in the main thread. A flow on another
        thread's loop is never cancelled by it (and a note left from an earlier Ctrl-C, in
        a process that went on, is not this flow's)."""
        return self._counted and _interrupted.is_set()

    def __exit__(self, *_: object) -> None:
        if self._counted:
            _unwatch()


__all__ = ["interrupted", "watching"]
