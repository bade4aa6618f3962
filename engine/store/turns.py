"""A lock that threads get in the order they asked for it, urgent ones first: the turn
SQLite's writers take (``writer``) and the turn answers take in a shared transaction on
PostgreSQL (``sharing``).

Example::

    turns = FairLock()
    turns.acquire(urgent=True)
    try:
        ...
    finally:
        turns.release()  # the longest-waiting thread (urgent first) has it now
"""

from __future__ import annotations

import collections
import threading


class TurnNotGiven(Exception):
    """A write bounded in time did not get its turn before its deadline: another writer
    held it (a thread of this process, another process, a PostgreSQL lock). Nothing of
    the write was done."""


class FairLock:
    """A lock granted in arrival order (``threading.Lock`` lets a releaser barge back in,
    which starves waiters under a steady stream of writes), urgent waiters first."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False
        self._queue: collections.deque[threading.Lock] = collections.deque()
        self._urgent: collections.deque[threading.Lock] = collections.deque()

    def acquire(self, urgent: bool = False, timeout: float | None = None) -> bool:
        """Wait for the lock; False if ``timeout`` seconds passed first (the waiter has left
        the queue then, and whoever waits behind it is served in its place)."""
        with self._mutex:
            if not self._held:
                self._held = True
                return True
            turn = threading.Lock()
            turn.acquire()
            queue = self._urgent if urgent else self._queue
            queue.append(turn)
        if timeout is None:
            turn.acquire()  # released by the holder that hands the lock to us
            return True
        if turn.acquire(timeout=max(timeout, 0)):
            return True
        with self._mutex:
            try:
                queue.remove(turn)
            except ValueError:
                # Handed to us as the wait ended: ours, as if it had come in time.
                return True
        return False

    def waiting(self) -> bool:
        """Whether a thread waits for the lock."""
        with self._mutex:
            return bool(self._urgent or self._queue)

    def release(self) -> None:
        with self._mutex:
            waiting = self._urgent or self._queue
            if waiting:
                waiting.popleft().release()  # stays held: ownership passes on
            else:
                self._held = False


__all__ = ["FairLock", "TurnNotGiven"]
