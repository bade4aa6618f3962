"""SQLite checkpoints on a thread of their own, not in a writer's commit.

In WAL mode a commit appends pages to the write-ahead log; a checkpoint copies them back
into the database file and syncs it to disk. SQLite runs one automatically in the commit
that takes the log past ``wal_autocheckpoint`` pages (1,000 by default), and that commit
then holds the write lock through two fsyncs: 15-25 ms on our test machine, every hundred
or so commits, while every other writer of every process waits. Those few commits cost
more than half of all the time spent committing.

So a Signoff process checkpoints in the background, shortly after its writes, with
``PRAGMA wal_checkpoint(PASSIVE)``, which neither takes the write lock nor waits for
readers. Its connections checkpoint in a commit only when the log passes ``BACKSTOP_PAGES``
(a checkpoint that cannot keep up, or a process killed before it checkpointed).
"""

from __future__ import annotations

import logging
import sqlite3
import threading

logger = logging.getLogger(__name__)

#: the log's size, in pages, at which a commit checkpoints after all (about 40 MB)
BACKSTOP_PAGES = 10_000
#: how long after a commit the checkpoint waits, to serve the commits that follow it too
AFTER_COMMIT_SECONDS = 0.25


class Checkpointer:
    """Checkpoints ``database`` in the background after ``committed`` is called.

    Example::

        checkpointer = Checkpointer("/var/lib/signoff/runs.db")
        ...  # a write transaction commits
        checkpointer.committed()
        checkpointer.close()
    """

    def __init__(self, database: str) -> None:
        self.database = database
        self._due = threading.Event()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._connection: sqlite3.Connection | None = None

    def committed(self) -> None:
        """A write committed: checkpoint soon."""
        if self._thread is None:
            with self._lock:
                if self._thread is None and not self._closed.is_set():
                    self._thread = threading.Thread(
                        target=self._run, name="signoff-checkpoint", daemon=True
                    )
                    self._thread.start()
        self._due.set()

    def checkpoint(self) -> bool:
        """Copy what the log holds into the database file now; False if that failed."""
        try:
            if self._connection is None:
                # Its own connection, outside the pool: a checkpoint must not wait for one.
                self._connection = sqlite3.connect(
                    self.database, timeout=0, isolation_level=None, check_same_thread=False
                )
            self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:
            logger.warning(
                "SQLite checkpoint failed; a commit does it once the log is large",
                extra={"action": "checkpoint_failed", "error": str(exc)},
            )
            return False
        return True

    def close(self) -> None:
        """Stop the thread (a checkpoint in progress finishes first)."""
        with self._lock:
            self._closed.set()
            thread = self._thread
        self._due.set()
        if thread is not None:
            thread.join(10)
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _run(self) -> None:
        while True:
            self._due.wait()
            # Cleared before the stop is looked at (as in ``riders``): a close after the
            # look cleared its own wake-up, and the thread slept until close gave up (10 s).
            self._due.clear()
            if self._closed.wait(AFTER_COMMIT_SECONDS):
                return
            self.checkpoint()


__all__ = ["AFTER_COMMIT_SECONDS", "BACKSTOP_PAGES", "Checkpointer"]
