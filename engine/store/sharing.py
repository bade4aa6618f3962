"""Answers to flows waiting in this process, given at the same moment, share one
transaction.

Every answer appends to the audit chain, and holds the chain from its first statement to
its commit: on PostgreSQL its lock, on SQLite the database's one write lock. Answers
therefore queue one transaction at a time. On PostgreSQL each transaction is four round
trips (BEGIN, the answer, its events and audit records, COMMIT), each costing the
answering process CPU of its own; on SQLite each COMMIT writes every page the answer
touched (the pause's, the run's, the events' and the trail's, with their indexes) to the
write-ahead log, and the next answer writes most of the same pages again. So a write that
may share (``transaction``) does not wait for the lock on a transaction of its own: it
queues in this process, behind the shared transaction open now. When a write's statements
are done and another waits, the transaction stays open and passes to it; the last one
appends every write's events and audit records and commits for all. Under a burst, an
answer then costs about two round trips (PostgreSQL) or a fraction of a commit (SQLite),
and each one's caller still returns only once its answer committed.

Only answers to flows waiting here share (``AnswerQueries.answer_pause``): answers to
flows waiting in another process gained nothing measurable from it on PostgreSQL, the
flows' process being the busier one, and their commits then reached it in bursts.

The writes of a shared transaction cannot be undone one by one (a savepoint would cost
the round trips saved). Should one fail, the transaction rolls back for all: that write
raises its own error, and the others ``SharedWriteFailed``, on which their caller stores
them again, alone.

On PostgreSQL the chain's lock is taken by the first write, and the others then lock
their own rows while holding it, where a write alone locks its rows first. A transaction
of another process that locked one of those rows and then waits for the chain's lock
(cancelling that very run at that moment) therefore deadlocks with the shared one;
PostgreSQL breaks it after ``deadlock_timeout`` (1 s by default) by failing one of the
two, which reports a clear error and stores nothing. Both are rare together; nothing is
lost or corrupted. (SQLite has no row locks: its write lock is all there is.)

Example::

    sharing = SharedTransactions(begin, append, committed)
    try:
        with sharing.transaction() as conn:
            ...  # this write's statements; its events go to conn.info["pending_events"]
    except SharedWriteFailed:
        ...  # write it again, in a transaction of its own
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeAlias

from sqlalchemy import Connection
from sqlalchemy.engine import RootTransaction

from signoff.engine.store.turns import FairLock

#: The most writes one transaction carries. The first of them returns only when the last
#: commits, so this bounds what sharing can add to a write's wait. (2, 4 and 8 measured
#: alike with 8 answering threads; 4 keeps that wait short.)
SHARED_LIMIT = 4


#: a finished transaction's connection given back; with the failure that ended it, if any
Release: TypeAlias = Callable[[BaseException | None], None]
#: the events a transaction stored, once it committed
Committed: TypeAlias = Callable[[list[dict[str, Any]]], None]


class SharedWriteFailed(Exception):
    """Another write in the same shared transaction failed, and took this one with it:
    nothing of this write was stored. Store it again, alone. (Caught by the store: never
    reaches the engine's callers.)"""


class _Shared:
    """A transaction open across several writers' turns."""

    __slots__ = (
        *("audit", "connection", "done", "events", "failure", "release", "transaction"),
        "writes",
    )

    def __init__(
        self, connection: Connection, transaction: RootTransaction, release: Release
    ) -> None:
        self.connection = connection
        self.transaction = transaction
        self.release = release
        #: every write's events and audit records, appended as the transaction ends
        self.events: list[dict[str, Any]] = []
        self.audit: list[dict[str, Any]] = []
        self.writes = 0
        self.done = threading.Event()
        #: why it did not commit, once ``done``
        self.failure: BaseException | None = None


class SharedTransactions:
    """The transaction this process's shareable writes take turns in.

    ``begin``: a connection taken for this transaction, its transaction, and how to give
    the connection back once the transaction ended.
    ``append``: stores the events and audit records queued, before the commit.
    ``committed``: told the events stored, after the commit.
    """

    def __init__(
        self,
        begin: Callable[[], tuple[Connection, RootTransaction, Release]],
        append: Callable[[Connection, list[dict[str, Any]], list[dict[str, Any]]], None],
        committed: Committed | None = None,
    ) -> None:
        self._begin = begin
        self._append = append
        self._committed = committed
        self._turns = FairLock()
        #: the transaction open now, which the next write joins
        self._open: _Shared | None = None

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A connection in the shared transaction, committed before this returns.

        Raises ``SharedWriteFailed`` when another write failed the transaction."""
        self._turns.acquire()
        shared = self._open
        if shared is None:
            try:
                shared = self._open = _Shared(*self._begin())
            except BaseException:
                self._turns.release()
                raise
            conn = shared.connection
            conn.info["pending_events"] = shared.events
            conn.info["pending_audit"] = shared.audit
        shared.writes += 1
        try:
            yield shared.connection
        except BaseException as exc:
            self._end(shared, exc)
            raise
        if shared.writes < SHARED_LIMIT and self._turns.waiting():
            self._turns.release()  # the next write joins the open transaction
            shared.done.wait()
            if shared.failure is not None:
                raise SharedWriteFailed(
                    f"a write this one shared a transaction with failed: {shared.failure}"
                ) from shared.failure
            return
        try:
            if shared.events or shared.audit:
                self._append(shared.connection, shared.events, shared.audit)
        except BaseException as exc:
            self._end(shared, exc)
            raise
        self._end(shared, None)

    def _end(self, shared: _Shared, failure: BaseException | None) -> None:
        """Commit (or, after ``failure``, roll back) for every write, and free the turn;
        raises what the commit raised."""
        self._open = None
        try:
            if failure is None:
                shared.transaction.commit()
            else:
                shared.transaction.rollback()
        except BaseException as exc:
            failure = failure or exc
            raise
        finally:
            shared.failure = failure
            try:
                shared.release(failure)
            finally:
                shared.done.set()
                self._turns.release()
        if self._committed is not None:
            self._committed(shared.events)


__all__ = ["SHARED_LIMIT", "Committed", "Release", "SharedTransactions", "SharedWriteFailed"]
