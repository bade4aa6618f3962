"""The rows a write transaction appends as it ends: its events and its audit records.

A transaction queues both as it goes (``StoreBase._emit``, ``AuditQueries._audit``) and
stores them just before it commits. On SQLite each kind is one INSERT, with no round trip
to pay. On PostgreSQL every statement is one, so the audit records and the events go
together in a single statement: each kind is bound as one JSON array, which
``json_to_recordset`` turns back into rows (one statement text, whatever the number of
rows, which psycopg prepares on the server after a few uses; and one ``json.dumps``, where
an array per column had psycopg adapt every value in Python). Events are inserted in the
order they were emitted (``WITH ORDINALITY``), so their ids follow it.

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

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    JSON,
    BigInteger,
    Connection,
    String,
    Table,
    bindparam,
    insert,
    text,
)
from sqlalchemy.dialects import postgresql

from signoff.engine.store.database import json_text
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


def _json_columns(table: Table, columns: Sequence[str]) -> frozenset[str]:
    return frozenset(c for c in columns if isinstance(table.c[c].type, JSON))


def _from_json(table: Table, columns: Sequence[str], name: str) -> str:
    """``INSERT INTO table (columns) SELECT ... FROM json_to_recordset(:name)``, rows in
    the order of the JSON array bound as ``name``.

    A JSON column's value comes as its own JSON text, cast back: PostgreSQL's JSON
    functions refuse to take apart a value holding ``\\u0000``, which a JSON column
    stores as it is given."""
    dialect = postgresql.psycopg.dialect()  # type: ignore[no-untyped-call]
    as_text = _json_columns(table, columns)
    defined: list[str] = []
    for column in columns:
        column_type = table.c[column].type
        # Strings without their length: the column refuses one too long, where a cast to
        # VARCHAR(n) would cut it short.
        underlying = getattr(column_type, "impl_instance", column_type)  # sqlmodel's AutoString
        if column in as_text:
            spelled = "TEXT"
        elif isinstance(underlying, String):
            spelled = "VARCHAR"
        else:
            spelled = column_type.compile(dialect)
        defined.append(f"{column} {spelled}")
    listed = ", ".join(columns)
    selected = ", ".join(f"CAST({c} AS JSON)" if c in as_text else c for c in columns)
    return (
        f"INSERT INTO {table.name} ({listed}) SELECT {selected} "
        f"FROM ROWS FROM (json_to_recordset(CAST(:{name} AS JSON)) AS ({', '.join(defined)})) "
        f"WITH ORDINALITY AS given({listed}, position) ORDER BY position"
    )


_EVENTS_SQL = _from_json(EVENTS, EVENT_COLUMNS, "events")
_AUDIT_SQL = _from_json(AUDIT, AUDIT_COLUMNS, "audit")
#: the audit records, only if the chain's head is still the record whose hash is ``head``
_AUDIT_AFTER_SQL = _AUDIT_SQL.replace(
    " ORDER BY position",
    " WHERE (SELECT hash FROM audit_records ORDER BY seq DESC LIMIT 1) = :head ORDER BY position",
)
#: The events' lock and the NOTIFY, joined to the events' rows: every row needs the lock's
#: row first, so the lock is held before the first event id is drawn, and to the commit.
_LOCKED = (
    "locked AS MATERIALIZED (SELECT pg_advisory_xact_lock(:lock_key), pg_notify(:channel, :notice))"
)
_LOCKED_EVENTS_SQL = _EVENTS_SQL.replace(" FROM ROWS FROM (", " FROM locked, ROWS FROM (", 1)
_LOCK_BINDS = [bindparam("lock_key", type_=BigInteger), bindparam("channel"), bindparam("notice")]
_EVENTS_FROM_JSON = Prepared(text(f"WITH {_LOCKED} {_LOCKED_EVENTS_SQL}").bindparams(*_LOCK_BINDS))
_AUDIT_FROM_JSON = Prepared(text(_AUDIT_SQL))
#: a data-modifying WITH always runs to completion, though nothing reads from it
_BOTH_FROM_JSON = Prepared(
    text(f"WITH recorded AS ({_AUDIT_SQL}), {_LOCKED} {_LOCKED_EVENTS_SQL}").bindparams(
        *_LOCK_BINDS
    )
)
#: ... the audit records after ``head``: the statement's row count is theirs
_AUDIT_AFTER_FROM_JSON = Prepared(text(_AUDIT_AFTER_SQL))
_BOTH_AFTER_FROM_JSON = Prepared(
    text(f"WITH {_LOCKED}, stored AS ({_LOCKED_EVENTS_SQL}) {_AUDIT_AFTER_SQL}").bindparams(
        *_LOCK_BINDS
    )
)


def _json_default(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not stored as JSON")


_EVENT_JSON = _json_columns(EVENTS, EVENT_COLUMNS)
_AUDIT_JSON = _json_columns(AUDIT, AUDIT_COLUMNS)


#: the rows' array, times included (JSON columns are already text by then)
_rows_array = json.JSONEncoder(allow_nan=False, default=_json_default).encode


def _rows_json(
    rows: Sequence[Mapping[str, Any]], columns: Sequence[str], as_text: frozenset[str]
) -> str:
    """The rows as one JSON array: one C call, where binding an array per column had
    psycopg adapt every value in Python. JSON columns go as their own text (``_from_json``)."""
    dumps = json_text
    return _rows_array(
        [
            {name: dumps(row[name]) if name in as_text else row[name] for name in columns}
            for row in rows
        ]
    )


def append(
    conn: Connection,
    events: Sequence[Mapping[str, Any]],
    audit: Sequence[Mapping[str, Any]],
    *,
    postgres: EventLock | None = None,
    head: str | None = None,
) -> bool:
    """Insert ``events`` (``EVENT_COLUMNS``) and ``audit`` records (``AUDIT_COLUMNS``) in
    the caller's transaction. On PostgreSQL (``postgres``) the statement that inserts the
    events also takes the lock that orders them and sends the NOTIFY; the caller holds
    the audit chain's lock already.

    ``head`` (PostgreSQL): the hash of the record the first of ``audit`` chains to, as the
    caller last knew the chain without reading it. The records are inserted only if that
    is still the chain's head; False if it is not (the events are inserted either way)."""
    if postgres is None:
        if audit:
            _INSERT_AUDIT.execute(conn, list(audit))
        if events:
            # Only the columns: a pending event may carry marks of its own (``_emit``).
            _INSERT_EVENT.execute(conn, [{c: e[c] for c in EVENT_COLUMNS} for e in events])
        return True
    recorded: dict[str, Any] = {}
    if audit:
        recorded["audit"] = _rows_json(audit, AUDIT_COLUMNS, _AUDIT_JSON)
        if head is not None:
            recorded["head"] = head
    if not events:
        if audit:
            statement = _AUDIT_FROM_JSON if head is None else _AUDIT_AFTER_FROM_JSON
            inserted = statement.execute(conn, recorded).rowcount
            return head is None or inserted > 0
        return True
    values = {
        "events": _rows_json(events, EVENT_COLUMNS, _EVENT_JSON),
        "lock_key": postgres.key,
        "channel": postgres.channel,
        "notice": postgres.notice,
    }
    if not audit:
        _EVENTS_FROM_JSON.execute(conn, values)
        return True
    if head is None:
        _BOTH_FROM_JSON.execute(conn, {**values, **recorded})
        return True
    return _BOTH_AFTER_FROM_JSON.execute(conn, {**values, **recorded}).rowcount > 0


__all__ = ["AUDIT_COLUMNS", "EVENT_COLUMNS", "EventLock", "append"]
