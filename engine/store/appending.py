"""The rows a write transaction appends as it ends: its events and its audit records.

A transaction queues both as it goes (``StoreBase._emit``, ``AuditQueries._audit``) and
stores them just before it commits. On SQLite each kind is one INSERT, with no round trip
to pay. On PostgreSQL every statement is one, so the audit records and the events go
together in a single statement: each column is bound as an array and ``unnest`` turns the
arrays back into rows (one statement text, whatever the number of rows, which psycopg
prepares on the server after a few uses). Events are inserted in the order they were
emitted (``WITH ORDINALITY``), so their ids follow it.

Event ids must become visible in id order, or a reader could skip one that commits late:
on PostgreSQL a transaction holds an advisory lock from drawing its first event id to its
commit. The statement that inserts the events takes it (and asks for the NOTIFY, which is
delivered at commit), so the lock is held for that statement and the COMMIT alone: a
transaction that also appends to the audit chain took the chain's lock earlier, and
always in that order, chain then events, so no two can deadlock on them.

Example::

    append(conn, events=[{"run_id": run_id, "kind": "state_changed", ...}], audit=[])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    BindParameter,
    Connection,
    String,
    Table,
    bindparam,
    insert,
    text,
)
from sqlalchemy.dialects import postgresql

from signoff.engine.store.prepared import Prepared
from signoff.engine.store.tables import AuditRow, EventRow

EVENTS = EventRow.__table__  # type: ignore[attr-defined]
AUDIT = AuditRow.__table__  # type: ignore[attr-defined]

EVENT_COLUMNS = ("run_id", "kind", "data", "at")
AUDIT_COLUMNS = (
    *("seq", "at", "prev_hash", "hash", "action", "run_id", "flow_name"),
    *("actor_id", "actor_name", "via", "key", "data"),
)

_INSERT_EVENT = Prepared(insert(EVENTS), columns=[EVENT_COLUMNS])
_INSERT_AUDIT = Prepared(insert(AUDIT), columns=[AUDIT_COLUMNS])


class EventLock(NamedTuple):
    """PostgreSQL: the advisory lock that orders event ids, and the NOTIFY to send."""

    key: int
    channel: str
    notice: str


def _unnested(
    table: Table, columns: Sequence[str], prefix: str
) -> tuple[str, list[BindParameter[Any]]]:
    """``INSERT INTO table (columns) SELECT ... FROM unnest(<one array per column>)``,
    rows in array order; the arrays are bound as ``<prefix>_<column>``."""
    dialect = postgresql.psycopg.dialect()  # type: ignore[no-untyped-call]
    binds: list[BindParameter[Any]] = []
    arrays: list[str] = []
    for name in columns:
        column_type = table.c[name].type
        binds.append(bindparam(f"{prefix}_{name}", type_=postgresql.ARRAY(column_type)))
        # Strings without their length: the column refuses one too long, where a cast to
        # VARCHAR(n) would cut it short.
        underlying = getattr(column_type, "impl_instance", column_type)  # sqlmodel's AutoString
        spelled = "VARCHAR" if isinstance(underlying, String) else column_type.compile(dialect)
        arrays.append(f"CAST(:{prefix}_{name} AS {spelled}[])")
    listed = ", ".join(columns)
    sql = (
        f"INSERT INTO {table.name} ({listed}) SELECT {listed} "
        f"FROM unnest({', '.join(arrays)}) WITH ORDINALITY AS given({listed}, position) "
        "ORDER BY position"
    )
    return sql, binds


_EVENTS_SQL, _EVENT_BINDS = _unnested(EVENTS, EVENT_COLUMNS, "event")
_AUDIT_SQL, _AUDIT_BINDS = _unnested(AUDIT, AUDIT_COLUMNS, "audit")
#: The events' lock and the NOTIFY, joined to the events' rows: every row needs the lock's
#: row first, so the lock is held before the first event id is drawn, and to the commit.
_LOCKED = (
    "locked AS MATERIALIZED (SELECT pg_advisory_xact_lock(:lock_key), pg_notify(:channel, :notice))"
)
_LOCKED_EVENTS_SQL = _EVENTS_SQL.replace(" FROM unnest(", " FROM locked, unnest(", 1)
_LOCK_BINDS = [bindparam("lock_key", type_=BigInteger), bindparam("channel"), bindparam("notice")]
_EVENTS_UNNESTED = Prepared(
    text(f"WITH {_LOCKED} {_LOCKED_EVENTS_SQL}").bindparams(*_EVENT_BINDS, *_LOCK_BINDS)
)
_AUDIT_UNNESTED = Prepared(text(_AUDIT_SQL).bindparams(*_AUDIT_BINDS))
#: a data-modifying WITH always runs to completion, though nothing reads from it
_BOTH_UNNESTED = Prepared(
    text(f"WITH recorded AS ({_AUDIT_SQL}), {_LOCKED} {_LOCKED_EVENTS_SQL}").bindparams(
        *_AUDIT_BINDS, *_EVENT_BINDS, *_LOCK_BINDS
    )
)


def _arrays(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str], prefix: str
) -> dict[str, list[Any]]:
    return {f"{prefix}_{name}": [row[name] for row in rows] for name in columns}


def append(
    conn: Connection,
    events: Sequence[Mapping[str, Any]],
    audit: Sequence[Mapping[str, Any]],
    *,
    postgres: EventLock | None = None,
) -> None:
    """Insert ``events`` (``EVENT_COLUMNS``) and ``audit`` records (``AUDIT_COLUMNS``) in
    the caller's transaction. On PostgreSQL (``postgres``) the statement that inserts the
    events also takes the lock that orders them and sends the NOTIFY; the caller holds
    the audit chain's lock already."""
    if postgres is None:
        if audit:
            _INSERT_AUDIT.execute(conn, list(audit))
        if events:
            _INSERT_EVENT.execute(conn, list(events))
        return
    if not events:
        if audit:
            _AUDIT_UNNESTED.execute(conn, _arrays(audit, AUDIT_COLUMNS, "audit"))
        return
    values = {
        **_arrays(events, EVENT_COLUMNS, "event"),
        "lock_key": postgres.key,
        "channel": postgres.channel,
        "notice": postgres.notice,
    }
    if audit:
        _BOTH_UNNESTED.execute(conn, {**values, **_arrays(audit, AUDIT_COLUMNS, "audit")})
    else:
        _EVENTS_UNNESTED.execute(conn, values)


__all__ = ["AUDIT_COLUMNS", "EVENT_COLUMNS", "EventLock", "append"]
