"""One writer at a time for a SQLite file, queued without SQLite's busy handler.

SQLite lets one connection write at a time. A connection that finds the lock taken sleeps
in its busy handler, in growing steps (up to 100 ms) and without being told when the lock
frees: under a burst of writers, most of the wait is sleep while the lock is already free.
So writers queue before they ask SQLite: threads of one process on a lock that hands over
in arrival order, processes on an advisory file lock (``fcntl.flock``) beside the database,
which the kernel grants the moment it is released (and releases if its holder dies). The
busy handler remains a fallback for writers that are not Signoff processes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from signoff.engine.store.turns import FairLock

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
    def turn(self, urgent: bool = False) -> Iterator[None]:
        """Hold the write turn: this thread is the only Signoff writer on the file.

        ``urgent``: a write someone is waiting on (an answer, which a flow waits for) goes
        ahead of this process's other queued writes; urgent ones keep their arrival order.
        """
        self._threads.acquire(urgent)
        try:
            if self._file is not None and fcntl is not None:
                fcntl.flock(self._file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                if self._file is not None and fcntl is not None:
                    fcntl.flock(self._file, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def close(self) -> None:
        if self._file is not None:
            os.close(self._file)
            self._file = None


__all__ = ["SqliteWriter"]
