"""Transactions and the outbox append that every store query builds on."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any, Self

from sqlalchemy import Connection, Engine, event, insert, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import RootTransaction
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import QueuePool

from signoff.engine.errors import (
    DatabaseNotFound,
    DatabaseUnavailable,
    SchemaOutdated,
    StoreError,
)
from signoff.engine.runs import JSON, EventKind
from signoff.engine.store import appending, lenient, undecodable
from signoff.engine.store.checkpoints import Checkpointer
from signoff.engine.store.database import (
    HeldConnection,
    create_db_engine,
    failure_reason,
    is_sqlite,
    open_failure,
    open_write_connection,
    unreachable,
    write_connection,
    write_failure,
)
from signoff.engine.store.dropped import failed_write
from signoff.engine.store.lock_waits import bound_lock_waits, lock_timed_out
from signoff.engine.store.prepared import Prepared
from signoff.engine.store.revisions import ensure_schema
from signoff.engine.store.riders import Riders
from signoff.engine.store.sharing import Release, SharedTransactions
from signoff.engine.store.slots import ConnectionSlots
from signoff.engine.store.sqlite_files import sqlite_file
from signoff.engine.store.tables import EventRow, LogRow, RunRow
from signoff.engine.store.turns import TurnNotGiven
from signoff.engine.store.urgency import HANDED_OVER, PROMPT_NOTICE, wakes_a_flow
from signoff.engine.store.wakeups import LocalWakeups
from signoff.engine.store.writer import SqliteWriter

logger = logging.getLogger(__name__)

RUNS = RunRow.__table__  # type: ignore[attr-defined]
#: a run's columns, without the two only a worker re-running it needs
RUN_COLUMNS = tuple(c for c in RUNS.c if c.name not in ("parameters", "flow_ref"))
#: ``RUN_COLUMNS`` with the JSON and time ones as text, for a read of runs made again for a
#: value that could not be read: ``rows.to_run`` and ``rows.to_listed_run`` decode them, and
#: name those they cannot (see ``lenient``)
RUN_COLUMNS_AS_TEXT = lenient.as_text(RUN_COLUMNS)


def run_columns() -> tuple[Any, ...]:
    """The columns to read runs with: as text on a read made again (``RUN_COLUMNS_AS_TEXT``)."""
    return RUN_COLUMNS_AS_TEXT if undecodable.reading_leniently() else RUN_COLUMNS


EVENTS = EventRow.__table__  # type: ignore[attr-defined]
LOGS = LogRow.__table__  # type: ignore[attr-defined]

#: built once: constructing statements costs more than running them on SQLite
_INSERT_LOGS = Prepared(insert(LOGS))
#: names the advisory lock that orders event ids on PostgreSQL
EVENT_LOCK = 727_361_002
#: the PostgreSQL NOTIFY channel that tells other processes to read new events
NOTIFY_CHANNEL = "signoff_events"


_NOTIFY = text("SELECT pg_notify(:channel, '')")
#: names the advisory lock that serialises audit appends on PostgreSQL
AUDIT_LOCK = 727_361_003
_AUDIT_LOCK = Prepared(text("SELECT pg_advisory_xact_lock(:k)"))
#: in a write connection's ``info``: its transaction holds the audit chain's lock already
#: (a statement that took it with other work; ``AuditQueries._audit`` then skips taking it)
AUDIT_LOCKED = "signoff.audit_locked"
#: in a write connection's ``info``: the hash of the record its audit records were chained
#: to without reading the chain, which inserting them checks (``AuditQueries._append``)
ASSUMED_HEAD = "signoff.assumed_head"


class _RiderFailed(Exception):
    """A queued write failed in the transaction that carried it (the cause says why)."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def _closed_store() -> BaseException:
    return StoreError("the store is closed (its engine was closed); it opens no connection again")


class StoreBase:
    """A SQLAlchemy engine plus the clock the store stamps rows with."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self.clock = clock
        self.is_sqlite = is_sqlite(engine)
        #: sent with every NOTIFY, so that a listener can tell its own commits from others'
        self.origin = uuid.uuid4().hex
        #: SQLite: writers queue here rather than in SQLite's sleeping busy handler
        database = sqlite_file(engine.url) if self.is_sqlite else None
        self.writer = SqliteWriter(str(database) if database else None) if self.is_sqlite else None
        #: SQLite: the one connection every write transaction uses, under the writer's turn
        self._writing = HeldConnection(self._open_writing)
        #: the transaction answers given at the same moment share
        self._sharing = SharedTransactions(self._begin_shared, self._append, self._committed)
        #: SQLite: a connection held for reading events, which a process does after each
        #: burst of commits (one thread at a time reads on it, under the lock)
        self._events_reading = HeldConnection(engine.connect)
        self._events_lock = threading.Lock()
        #: PostgreSQL: threads wait for a pooled connection rather than open one past it
        self._slots = ConnectionSlots(
            engine.pool.size()
            if not self.is_sqlite and isinstance(engine.pool, QueuePool)
            else None
        )
        #: writes queued to be stored ahead of this process's next write
        self.riders = Riders(self._store_riders)
        #: SQLite file: copies the write-ahead log into the database, after commits
        self.checkpointer = Checkpointer(str(database)) if database else None
        #: SQLite file: how a commit here wakes the other processes' dispatchers at once
        self.wakeups = LocalWakeups(str(database)) if database else None
        #: set by ``close``: a connection asked for after it is refused (``_refuse_closed``)
        self._closed = False
        #: the error that refusal raises; the engine's makes a flow's call unwind the flow
        self.closed_error: Callable[[], BaseException] = _closed_store
        event.listen(engine, "do_connect", self._refuse_closed)

    def _refuse_closed(self, *_: Any) -> None:
        """Refuse to open a connection once the store is closed: a sync flow that went on
        after its engine closed, or a job that fired as it closed, would otherwise open
        connections that nothing closes."""
        if self._closed:
            raise self.closed_error()

    @classmethod
    def open(
        cls,
        url: str,
        clock: Callable[[], datetime] = utcnow,
        *,
        pool_size: int = 10,
        max_overflow: int = 40,
        migrate: bool = True,
        create: bool = True,
    ) -> Self:
        """Connect, check or bring the schema up to date, and return the store.

        With ``migrate=False`` an empty database still gets the schema, but one at an
        older revision is refused (``SchemaOutdated``) rather than changed. With
        ``create=False`` a SQLite file that is not there, or a database with no Signoff
        schema, is refused (``DatabaseNotFound``) rather than made or given the schema.
        """
        try:
            engine = create_db_engine(
                url, pool_size=pool_size, max_overflow=max_overflow, create=create
            )
            try:
                ensure_schema(engine, migrate=migrate, create=create)
            except (SchemaOutdated, DatabaseNotFound):
                engine.dispose()
                raise
        except (SQLAlchemyError, OSError) as exc:
            failure = DatabaseUnavailable if unreachable(exc) else StoreError
            raise failure(open_failure(url, exc)) from exc
        return cls(engine, clock)

    def close(self) -> None:
        self.riders.close()
        if self.writer is not None:
            with self.writer.turn():
                self._writing.close()
        if self.checkpointer is not None:
            self.checkpointer.close()
        with self._events_lock:
            self._events_reading.close()
        self._closed = True
        self.engine.dispose()
        if self.writer is not None:
            self.writer.close()
        if self.wakeups is not None:
            self.wakeups.close()

    def _open_writing(self) -> Connection:
        conn = open_write_connection(self.engine)
        try:
            Prepared.ready_writes(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def notify(self, channel: str) -> None:
        """PostgreSQL: send an empty notification to whoever LISTENs on ``channel``."""
        try:
            with self.engine.begin() as conn:
                conn.execute(_NOTIFY, {"channel": channel})
        except SQLAlchemyError as exc:
            raise StoreError(f"could not notify {channel}: {failure_reason(exc)}") from exc

    def _dialect_insert(self, table: Any) -> Any:
        """An INSERT that can say ON CONFLICT (both dialects spell it the same way)."""
        return sqlite_insert(table) if self.is_sqlite else postgresql_insert(table)

    @contextmanager
    def _write(
        self, *, urgent: bool = False, shared: bool = False, within: float | None = None
    ) -> Iterator[Connection]:
        """A write transaction; the events it emits are appended just before it commits.
        Queued writes (``riders``) go first, in the same transaction: one BEGIN, COMMIT
        and write turn serve both.

        ``urgent``: on SQLite, this process's other queued writers let it go first (see
        ``SqliteWriter.turn``).

        ``shared``: a transaction that other shared writes of this process may join
        (``sharing``), without queued writes; urgent on SQLite; raises ``SharedWriteFailed`` when
        another write in it failed, so that the caller writes again without ``shared``.

        ``within``: seconds this write may wait for its turn (SQLite: this process's queue and
        the file lock; PostgreSQL: each lock its statements take), else ``TurnNotGiven``
        is raised and nothing was written. Queued writes do not go with it: their own
        waits are not bounded (another thread may be storing them).
        """
        if within is not None:
            with self._transaction(urgent, ends=time.monotonic() + within) as conn:
                yield conn
            return
        if shared:
            done = False
            try:
                with self._sharing.transaction() as conn:
                    yield conn
                    done = True  # the others' statements, or the COMMIT, may follow
            except SQLAlchemyError as exc:
                message = write_failure(self.engine, exc)
                raise failed_write(message, exc, commit_sent=done) from exc
            return
        taken = self.riders.take() if self.riders.pending() else []
        if taken:
            committed = theirs = False
            try:
                with self._transaction(urgent) as conn:
                    try:
                        now = self.clock()
                        for rider in taken:
                            rider.write(conn, now)
                    except Exception as exc:
                        theirs = True
                        raise _RiderFailed() from exc
                    yield conn
                committed = True
                return
            except _RiderFailed as exc:
                # Rolled back: they are queued again, and this write goes ahead alone.
                logger.warning(
                    "could not store queued writes; trying again",
                    extra={"action": "queued_write_failed", "error": str(exc.__cause__)},
                )
            finally:
                # A failure of this write's own is not held against them.
                self.riders.stored(taken, committed, counts=theirs)
        with self._transaction(urgent) as conn:
            yield conn

    def _store_riders(self) -> None:
        """Store every queued write in one transaction."""
        taken = self.riders.take()
        if not taken:
            return
        committed = False
        try:
            with self._transaction() as conn:
                now = self.clock()
                for rider in taken:
                    rider.write(conn, now)
            committed = True
        finally:
            self.riders.stored(taken, committed)

    def _begin_shared(self) -> tuple[Connection, RootTransaction, Release]:
        """A connection and a transaction for ``sharing`` to share, and how to give the
        connection back: on SQLite the writer's own, under the write turn held until then
        (an answer's: someone waits on it)."""
        held = ExitStack()
        if self.writer is None:
            conn = held.enter_context(open_write_connection(self.engine))
        else:
            held.enter_context(self.writer.turn(urgent=True))
            conn = held.enter_context(self._writing.use())
        try:
            transaction = conn.begin()
        except BaseException as exc:
            held.__exit__(type(exc), exc, exc.__traceback__)
            raise
        conn.info[AUDIT_LOCKED] = False
        conn.info[ASSUMED_HEAD] = None

        def release(failure: BaseException | None) -> None:
            # A database error passes through ``HeldConnection.use``, which then drops
            # the connection as in doubt.
            if failure is None:
                held.close()
            else:
                held.__exit__(type(failure), failure, failure.__traceback__)

        return conn, transaction, release

    def _committed(self, events: list[dict[str, Any]]) -> None:
        """After a commit that stored ``events``: on SQLite, copy the log on and wake
        the other processes."""
        if self.checkpointer is not None:
            self.checkpointer.committed()
        if events and self.wakeups is not None:
            # After the commit, so that whoever wakes finds the events.
            self.wakeups.send(prompt=any(map(wakes_a_flow, events)))

    @contextmanager
    def _transaction(self, urgent: bool = False, ends: float | None = None) -> Iterator[Connection]:
        """``ends``: a ``time.monotonic()`` by which it must have its turn (see ``_write``)."""
        pending: list[dict[str, Any]] = []
        audit: list[dict[str, Any]] = []
        committing = False
        try:
            with self._writer_connection(urgent, ends) as conn, conn.begin():
                if ends is not None and self.writer is None:
                    bound_lock_waits(conn, ends)
                # conn.info outlives the transaction (pooled connection): reset per write.
                conn.info["pending_events"] = pending
                conn.info["pending_audit"] = audit
                conn.info[AUDIT_LOCKED] = False
                conn.info[ASSUMED_HEAD] = None
                yield conn
                if pending or audit:
                    self._append(conn, pending, audit)
                committing = True  # leaving the block sends the COMMIT
        except SQLAlchemyError as exc:
            if ends is not None and lock_timed_out(exc):
                raise TurnNotGiven() from exc
            message = write_failure(self.engine, exc)
            raise failed_write(message, exc, commit_sent=committing) from exc
        self._committed(pending)

    @contextmanager
    def _writer_connection(self, urgent: bool, ends: float | None = None) -> Iterator[Connection]:
        """A connection to write on: on SQLite, the writer's own, held between writes
        (there is one writer at a time, and checking a connection out of the pool and
        back in cost more than the transaction's statements), once its turn came (by
        ``ends``, if given)."""
        if self.writer is None:
            with self._slots.taken(), write_connection(self.engine) as conn:
                yield conn
            return
        with self.writer.turn(urgent, ends), self._writing.use() as conn:
            yield conn

    @contextmanager
    def _write_one(self) -> Iterator[Connection]:
        """A connection for one statement that emits no events. PostgreSQL runs it as its
        own transaction (autocommit), without the round trips of BEGIN and COMMIT."""
        if self.is_sqlite:
            with self._write() as conn:
                yield conn
            return
        if self.riders.pending():
            # Queued ones first; should they fail, they are queued again and this goes ahead.
            self.riders.store_now()
        try:
            with self._slots.taken(), self.engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT")
                # emitting or auditing here fails loudly
                conn.info["pending_events"] = conn.info["pending_audit"] = None
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(write_failure(self.engine, exc)) from exc

    @contextmanager
    def _read(self, *, slotted: bool = True) -> Iterator[Connection]:
        """A connection to read on; ``slotted=False``: without waiting for a slot."""
        try:
            with self._slots.taken() if slotted else nullcontext(), self.engine.connect() as conn:
                if not self.is_sqlite:
                    # PostgreSQL reads at READ COMMITTED see a fresh snapshot per statement
                    # anyway; autocommit saves the BEGIN and ROLLBACK round trips.
                    conn.execution_options(isolation_level="AUTOCOMMIT")
                elif undecodable.reading_leniently():
                    with undecodable.decoding(conn):
                        yield conn
                    return
                yield conn
        except SQLAlchemyError as exc:
            message = f"database read failed: {failure_reason(exc)}"
            if undecodable.is_not_utf8(exc):
                raise undecodable.TextNotUtf8(message) from exc
            if undecodable.is_malformed_json(exc):
                # a StoreError still: a reader that steps past such a row tells it apart
                raise undecodable.JsonNotJson(message) from exc
            raise (DatabaseUnavailable if unreachable(exc) else StoreError)(message) from exc

    @contextmanager
    def _read_events(self) -> Iterator[Connection]:
        """A connection to read events on: on SQLite, one held for it (checking one out of
        the pool and back costs more than reading a few events)."""
        if not self.is_sqlite:
            # One thread reads events, and it hands answers to flows: it does not queue.
            with self._read(slotted=False) as conn:
                yield conn
            return
        try:
            # Each statement runs on its own (no BEGIN): it sees what is committed now.
            with self._events_lock, self._events_reading.use() as conn:
                if undecodable.reading_leniently():
                    with undecodable.decoding(conn):
                        yield conn
                    return
                yield conn
        except SQLAlchemyError as exc:
            message = f"database read failed: {failure_reason(exc)}"
            # Either has the page read again, stepping past the row (``event_rows``).
            if undecodable.is_not_utf8(exc):
                raise undecodable.TextNotUtf8(message) from exc
            if undecodable.is_malformed_json(exc):
                raise undecodable.JsonNotJson(message) from exc
            raise StoreError(message) from exc

    def _emit(
        self,
        conn: Connection,
        run_id: str,
        kind: EventKind,
        data: dict[str, JSON],
        at: datetime,
        *,
        handed_over: bool = False,
    ) -> None:
        """Queue an event for the outbox; it is stored with the transaction or not at all.

        ``handed_over``: the flow it concerns has it already (an answer this process gave
        to the flow waiting here), so no process needs to read it at once."""
        event: dict[str, Any] = {"run_id": run_id, "kind": kind.value, "data": data, "at": at}
        if handed_over:
            event[HANDED_OVER] = True
        conn.info["pending_events"].append(event)

    def _append(
        self, conn: Connection, events: list[dict[str, Any]], audit: list[dict[str, Any]]
    ) -> None:
        """Store the transaction's queued events and audit records, as it ends."""
        appending.append(conn, events, audit, postgres=self._event_lock(events))

    def _lock_audit_chain(self, conn: Connection) -> None:
        """PostgreSQL: hold the audit chain's lock to the end of the transaction (before
        the events' lock, which the events' INSERT takes; see ``appending``)."""
        _AUDIT_LOCK.execute(conn, {"k": AUDIT_LOCK})

    def _notice(self, events: list[dict[str, Any]]) -> str:
        """A NOTIFY's payload: who committed, and whether a waiting flow needs the events
        at once (``PROMPT_NOTICE``) or they may wait for the listener's next paced read."""
        return f"{self.origin} {PROMPT_NOTICE if any(map(wakes_a_flow, events)) else 'paced'}"

    def _event_lock(self, events: list[dict[str, Any]]) -> appending.EventLock | None:
        """PostgreSQL: the lock and NOTIFY the INSERT of ``events`` takes; None on SQLite,
        whose one writer at a time orders them."""
        if self.is_sqlite:
            return None
        return appending.EventLock(EVENT_LOCK, NOTIFY_CHANNEL, self._notice(events))

    @staticmethod
    def _insert_logs(
        conn: Connection, run_id: str, logs: Sequence[tuple[datetime, str, str, str | None]]
    ) -> None:
        if logs:
            _INSERT_LOGS.execute(
                conn,
                [
                    {"run_id": run_id, "at": at, "level": level, "message": msg, "task_key": task}
                    for at, level, msg, task in logs
                ],
            )
