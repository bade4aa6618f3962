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


class FairLock:
    """A lock granted in arrival order (``threading.Lock`` lets a releaser barge back in,
    which starves waiters under a steady stream of writes), urgent waiters first."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False
        self._queue: collections.deque[threading.Lock] = collections.deque()
        self._urgent: collections.deque[threading.Lock] = collections.deque()

    def acquire(self, urgent: bool = False) -> None:
        with self._mutex:
            if not self._held:
                self._held = True
                return
            turn = threading.Lock()
            turn.acquire()
            (self._urgent if urgent else self._queue).append(turn)
        turn.acquire()  # released by the holder that hands the lock to us

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


__all__ = ["FairLock"]
