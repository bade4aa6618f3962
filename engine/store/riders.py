"""Writes a flow need not wait for, stored ahead of this process's next write.

When a flow takes an answer that another process stored, it judges the answer with its
model and records the verdict (the pause becomes ACCEPTED, with an event and an audit
record). The flow has its answer by then, and nothing it does next depends on that write:
waiting for it would only delay the flow's next line by a transaction (several round trips
on PostgreSQL). So the verdict is queued here, and the flow goes on.

A queued write is stored by the next write of this process, at the start of that write's
transaction (usually the flow's own next step: one transaction then does both), or else by
a background thread within ``CARRY_WINDOW``. A write that starts while queued ones are
being stored waits for them to commit. So a run's events keep their order (a verdict's
before the run's next state), and several verdicts queued under load go in one
transaction. A queued write that fails is queued again and retried; after ``ATTEMPTS``
failures it is dropped and logged, and the answer stays stored as ANSWERED, which the run
judges again if it runs again. A transaction that fails for its other write's reason does
not count against the queued ones it carried.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

logger = logging.getLogger(__name__)

#: how often a queued write is tried before it is dropped
ATTEMPTS = 5
#: the background thread's pause after a failed try, growing with each failure
_RETRY_AFTER = 0.05
#: How long the background thread leaves queued writes for the process's next write to
#: carry. A flow's next write usually comes within it, and one transaction instead of two
#: halves the time a busy worker holds SQLite's write lock for the pair.
CARRY_WINDOW = 0.005


@dataclass
class Rider:
    """One queued write: ``write`` runs in the storing transaction (at its time ``now``),
    and ``then`` once that transaction has committed."""

    write: Callable[[Connection, datetime], object]
    #: names what the write is for, in logs
    about: dict[str, str]
    then: Callable[[], None] | None = None
    attempts: int = 0


class Riders:
    """The queue, and the thread that stores what no other write takes along.

    Example::

        riders = Riders(store_queued)  # store_queued() stores riders.take() in one transaction
        riders.add(Rider(lambda conn, now: ..., {"run_id": run_id}))
    """

    def __init__(self, store_queued: Callable[[], None]) -> None:
        self._store_queued = store_queued
        self._changed = threading.Condition()
        self._queued: list[Rider] = []
        self._storing = False
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, rider: Rider) -> None:
        """Queue ``rider``; it is stored before this process's next write begins."""
        with self._changed:
            self._queued.append(rider)
            if self._thread is None and not self._closed.is_set():
                self._thread = threading.Thread(
                    target=self._run, name="signoff-riders", daemon=True
                )
                self._thread.start()
        self._wake.set()

    def take(self) -> list[Rider]:
        """Everything queued, for the caller to store now (then ``stored``); waits while
        another thread stores earlier ones."""
        with self._changed:
            self._changed.wait_for(lambda: not self._storing)
            taken, self._queued = self._queued, []
            self._storing = bool(taken)
            return taken

    def stored(self, taken: list[Rider], committed: bool, *, counts: bool = True) -> None:
        """Report on what ``take`` returned: committed, or to be tried again. A failure
        ``counts`` against them unless the transaction failed for another write's reason."""
        if not taken:
            return
        dropped: list[Rider] = []
        with self._changed:
            self._storing = False
            if not committed:
                if counts:
                    for rider in taken:
                        rider.attempts += 1
                retry = [r for r in taken if r.attempts < ATTEMPTS]
                dropped = [r for r in taken if r.attempts >= ATTEMPTS]
                self._queued[:0] = retry
            self._changed.notify_all()
        for rider in dropped:
            logger.error(
                "a queued write failed too often and was dropped",
                extra={"action": "queued_write_dropped", **rider.about},
            )
        if committed:
            for rider in taken:
                if rider.then is not None:
                    rider.then()
        elif len(dropped) < len(taken):
            self._wake.set()

    def pending(self) -> bool:
        with self._changed:
            return bool(self._queued) or self._storing

    def close(self) -> None:
        """Stop the thread, storing what is still queued first."""
        with self._changed:
            self._closed.set()
            thread = self._thread
        self._wake.set()
        if thread is not None:
            thread.join(10)
        if self.pending():
            self.store_now()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            # Cleared before the stop is looked at, not after: close() sets the stop, then
            # wakes the thread, so a wake-up cleared here is one whose stop is seen below.
            # Cleared after, a close between the look and the clear lost its wake-up, and
            # the thread slept on until close gave up on it (10 s).
            self._wake.clear()
            if self._closed.wait(CARRY_WINDOW):
                return  # close() stores the rest on its own thread
            with self._changed:
                queued = bool(self._queued)
            if queued and not self.store_now():
                with self._changed:
                    worst = max((r.attempts for r in self._queued), default=0)
                self._closed.wait(_RETRY_AFTER * worst)  # back off, unless closing

    def store_now(self) -> bool:
        """Store what is queued, on this thread; False (logged, and queued again) if that
        failed: the caller goes on either way."""
        try:
            self._store_queued()
        except Exception as exc:
            logger.warning(
                "could not store queued writes; trying again",
                extra={"action": "queued_write_failed", "error": str(exc)},
            )
            return False
        return True


__all__ = ["ATTEMPTS", "CARRY_WINDOW", "Rider", "Riders"]
