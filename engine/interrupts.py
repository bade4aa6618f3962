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

import asyncio
import signal
import threading
from collections.abc import Callable
from types import FrameType

_Handler = Callable[[int, FrameType | None], object]

_interrupted = threading.Event()
#: flows running inside ``watching()``, by the event loop each runs in (None: none)
_watchers: dict[asyncio.AbstractEventLoop | None, int] = {}
#: the loops of flows that ended off the main thread (collected there, their loop closed
#: under them), for the main thread to count out: only it may put the handler back
_ended_elsewhere: list[asyncio.AbstractEventLoop | None] = []
#: the handler the note stands in front of, as long as the note may be called
_previous: _Handler | None = None


def interrupted() -> bool:
    """Whether SIGINT arrived while an async flow of this process ran in the main thread."""
    return _interrupted.is_set()


def _note(signum: int, frame: FrameType | None) -> None:
    _interrupted.set()
    if _previous is not None:
        _previous(signum, frame)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _watch(loop: asyncio.AbstractEventLoop | None) -> bool:
    """Start noting Ctrl-C for one flow; whether it counts (``_unwatch`` when it ends)."""
    if threading.current_thread() is not threading.main_thread():
        return False
    global _previous
    while _ended_elsewhere:
        _count_out(_ended_elsewhere.pop())
    # A flow whose loop was closed under it (not run to its end) never ends here: it counts
    # no more, or a later flow would find the note set by a Ctrl-C long caught. (A copy:
    # the collector may end such a flow, on any line.)
    for gone in [found for found in list(_watchers) if found is not None and found.is_closed()]:
        _watchers.pop(gone, None)
    if not _watchers:
        current = signal.getsignal(signal.SIGINT)
        if _previous is None:
            if not callable(current):
                return False
            _previous = current
            signal.signal(signal.SIGINT, _note)
        # else: a handler set during an earlier flow replaced the note and stays; it may
        # hand the signal on to the note, which is not put in front of it a second time.
        # (Or the note stayed, when the last flow ended off the main thread.)
        _interrupted.clear()
    _watchers[loop] = _watchers.get(loop, 0) + 1
    return True


def _unwatch(loop: asyncio.AbstractEventLoop | None) -> None:
    global _previous
    if threading.current_thread() is not threading.main_thread():
        # The collector ending a flow whose loop was closed under it: no handler may be
        # set here, so the main thread counts it out, at its next flow.
        _ended_elsewhere.append(loop)
        return
    if _count_out(loop) and signal.getsignal(signal.SIGINT) is _note:
        signal.signal(signal.SIGINT, _previous)
        _previous = None


def _count_out(loop: asyncio.AbstractEventLoop | None) -> bool:
    """One flow of ``loop`` ended; whether none is left."""
    count = _watchers.get(loop)
    if count is None:
        return False  # its loop was closed under it, and it was counted out then
    if count > 1:
        _watchers[loop] = count - 1
        return False
    del _watchers[loop]
    return not _watchers


class watching:
    """Note Ctrl-C for as long as the block runs. Only in the main thread (the only one that
    receives signals, and may set handlers), and only where SIGINT has a Python handler: where
    it is ignored or kills the process, no flow sees it as a cancellation.

    A small object rather than a generator: one lives as long as each async flow does,
    thousands at once in a process."""

    __slots__ = ("_counted", "_loop")

    def __init__(self) -> None:
        self._counted = False
        self._loop: asyncio.AbstractEventLoop | None = None

    def __enter__(self) -> None:
        self._loop = _running_loop()
        self._counted = _watch(self._loop)

    def interrupted(self) -> bool:
        """Whether Ctrl-C arrived while this flow ran in the main thread. A flow on another
        thread's loop is never cancelled by it (and a note left from an earlier Ctrl-C, in
        a process that went on, is not this flow's)."""
        return self._counted and _interrupted.is_set()

    def __exit__(self, *_: object) -> None:
        if self._counted:
            _unwatch(self._loop)


__all__ = ["interrupted", "watching"]
