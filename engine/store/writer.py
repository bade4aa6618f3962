"""One writer at a time for a SQLite file, queued without SQLite's busy handler.

SQLite lets one connection write at a time. A connection that finds the lock taken sleeps
in its busy handler, in growing steps (up to 100 ms) and without being told when the lock
frees: under a burst of writers, most of the wait is sleep while the lock is already free.
So writers queue before they ask SQLite: threads of one process on a lock that hands over
in arrival order, processes on an advisory file lock (``fcntl.flock``) beside the database,
which the kernel grants the moment it is released (and releases if its holder dies). The
busy handler remains a fallback for writers that are not Signoff processes.

A writer may bound its wait for the turn (``turn(ends=...)``): one that has to answer
someone quickly would rather say the database is busy than keep them waiting. The file
lock is then tried without blocking first, so an uncontended turn costs what it did; only
while another process holds it does a thread wait for it (``flock`` has no timeout), and a
wait given up on hands this process's turn on once that thread has had the file lock.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from signoff.engine.store.turns import FairLock, TurnNotGiven

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # not on Windows: the busy handler alone orders processes there
    fcntl = None

logger = logging.getLogger(__name__)


class SqliteWriter:
    """Orders the write transactions of every thread and process on one SQLite file.

    Example::

        writer = SqliteWriter("/var/lib/signoff/runs.db")
        with writer.turn():
            ...  # BEGIN IMMEDIATE ... COMMIT
    """

    def __init__(self, database: str | None) -> None:
        self._threads = FairLock()
        self._file: int | None = None
        if fcntl is not None and database and database != ":memory:":
            path = Path(database).expanduser()
            try:
                self._file = os.open(f"{path}.write-lock", os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as exc:
                logger.warning(
                    "no write lock file beside the database; writers fall back to SQLite's "
                    "busy handler",
                    extra={"action": "write_lock_unavailable", "error": str(exc)},
                )

    @contextmanager
    def turn(self, urgent: bool = False, ends: float | None = None) -> Iterator[None]:
        """Hold the write turn: this thread is the only Signoff writer on the file.

        ``urgent``: a write someone is waiting on (an answer, which a flow waits for) goes
        ahead of this process's other queued writes; urgent ones keep their arrival order.

        ``ends``: a ``time.monotonic()`` by which the turn must be had, else
        ``TurnNotGiven`` is raised (the queue goes on as if this writer had not asked).
        """
        timeout = None if ends is None else ends - time.monotonic()
        if not self._threads.acquire(urgent, timeout):
            raise TurnNotGiven()
        handed_on = False
        try:
            if self._file is not None and fcntl is not None:
                if ends is None:
                    fcntl.flock(self._file, fcntl.LOCK_EX)
                elif not _file_lock_by(self._file, ends, self._threads):
                    handed_on = True  # the thread waiting for the file lock releases it
                    raise TurnNotGiven()
            try:
                yield
            finally:
                if self._file is not None and fcntl is not None:
                    fcntl.flock(self._file, fcntl.LOCK_UN)
        finally:
            if not handed_on:
                self._threads.release()

    def close(self) -> None:
        if self._file is not None:
            os.close(self._file)
            self._file = None


def _file_lock_by(file: int, ends: float, threads: FairLock) -> bool:
    """Take the file lock on ``file`` before ``ends`` (holding ``threads``); False if
    another process held it until then, and ``threads`` is then released once the waiting
    thread has had the file lock and let it go."""
    assert fcntl is not None
    try:
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        pass
    return _FileLockWait(file, threads).wait(ends - time.monotonic())


class _FileLockWait:
    """A thread blocked on the file lock for a writer that may give up waiting. It must
    not leave the lock to the next thread of this process before it is through: the lock
    belongs to the open file, shared by every thread, so another thread's ``flock`` would
    pass while this one still waits, and this one's unlock would then free the lock under
    it."""

    def __init__(self, file: int, threads: FairLock) -> None:
        self._file = file
        self._threads = threads
        self._mutex = threading.Lock()
        self._done = threading.Event()
        self._given_up = False
        self._error: OSError | None = None
        threading.Thread(target=self._wait, name="signoff-write-lock", daemon=True).start()

    def _wait(self) -> None:
        assert fcntl is not None
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX)
        except OSError as exc:
            self._error = exc
        with self._mutex:
            if not self._given_up:
                self._done.set()
                return
        if self._error is None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
        self._threads.release()

    def wait(self, seconds: float) -> bool:
        """Whether the file lock is held now (then by the caller), within ``seconds``."""
        if not self._done.wait(max(seconds, 0)):
            with self._mutex:
                if not self._done.is_set():
                    self._given_up = True
                    return False
        if self._error is not None:
            raise self._error
        return True


__all__ = ["SqliteWriter"]
