"""Transactions and the outbox append that every store query builds on."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Self

from sqlalchemy import Connection, Engine, insert, text, update
from sqlalchemy.exc import SQLAlchemyError

from engine.errors import StoreError
from engine.runs import JSON, EventKind, RunState
from engine.store.database import create_db_engine, is_sqlite, upgrade, write_connection
from engine.store.tables import EventRow, RunRow

RUNS = RunRow.__table__  # type: ignore[attr-defined]
EVENTS = EventRow.__table__  # type: ignore[attr-defined]

#: built once: constructing statements costs more than running them on SQLite
_INSERT_EVENT = insert(EVENTS)
#: names the advisory lock that orders event ids on PostgreSQL
_EVENT_LOCK = 727_361_002
#: the PostgreSQL NOTIFY channel that tells other processes to read new events
NOTIFY_CHANNEL = "signoff_events"


def utcnow() -> datetime:
    return datetime.now(UTC)


class StoreBase:
    """A SQLAlchemy engine plus the clock the store stamps rows with."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self.clock = clock
        self.is_sqlite = is_sqlite(engine)

    @classmethod
    def open(cls, url: str, clock: Callable[[], datetime] = utcnow) -> Self:
        """Connect, bring the schema up to date, and return the store."""
        try:
            engine = create_db_engine(url)
            upgrade(engine)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open the database: {exc.__class__.__name__}: {exc}") from exc
        return cls(engine, clock)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        try:
            with write_connection(self.engine) as conn, conn.begin():
                # conn.info outlives the transaction (pooled connection): reset per write.
                conn.info.pop("event_lock", None)
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"database write failed: {exc}") from exc

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"database read failed: {exc}") from exc

    def _emit(
        self, conn: Connection, run_id: str, kind: EventKind, data: dict[str, JSON], at: datetime
    ) -> None:
        if not self.is_sqlite and not conn.info.get("event_lock"):
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _EVENT_LOCK})
            # Delivered at commit, once per transaction however many events it appends.
            conn.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))
            conn.info["event_lock"] = True
        conn.execute(_INSERT_EVENT, {"run_id": run_id, "kind": kind.value, "data": data, "at": at})

    def _change_state(
        self,
        conn: Connection,
        run_id: str,
        state: RunState,
        name: str,
        message: str | None,
        at: datetime,
        *conditions: Any,
        **columns: Any,
    ) -> bool:
        """Update the run (only where ``conditions`` hold) and record the change; True if done."""
        done = conn.execute(
            update(RUNS)
            .where(RUNS.c.id == run_id, *conditions)
            .values(
                state=state.value, state_name=name, state_message=message, updated_at=at, **columns
            )
        )
        if done.rowcount != 1:
            return False
        self._emit(
            conn,
            run_id,
            EventKind.STATE_CHANGED,
            {"state": state.value, "name": name, "message": message},
            at,
        )
        return True
