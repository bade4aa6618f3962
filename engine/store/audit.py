"""Queries for the audit trail: appending chained records, and reading them back in pages.

Appends must be serialised, or two writers could link to the same predecessor. SQLite's
write transactions already are (``BEGIN IMMEDIATE``); on PostgreSQL the appending
transaction takes an advisory lock, held until it commits, before it reads the chain's
head. The record is written in the caller's transaction, so it commits (or not) with the
change it records: queued, and inserted as the transaction ends, with its events (see
``appending``); a second append in the same transaction chains to the first.

On PostgreSQL a process that has the chain to itself does not read the head it appended
last: it chains to it, and the INSERT (under the lock) stores the records only if that is
still the head. When another process appended meanwhile, the head is read and the records
chained to it again, in the same transaction, and the process reads the head before
appending until it finds nobody else appended since its own last record: a round trip
fewer while the lock is held when one process writes the trail, and no extra ones when
several take turns.
"""

from __future__ import annotations

import json
import logging
import re
from collections import namedtuple
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Select,
    String,
    Text,
    bindparam,
    case,
    cast,
    func,
    select,
    type_coerce,
)

from signoff.engine.audit import (
    GENESIS,
    AuditEntry,
    AuditRecord,
    chain_hash,
    entry_fields,
)
from signoff.engine.audit_export import ExportRow
from signoff.engine.errors import AuditRecordUnreadable
from signoff.engine.store import appending
from signoff.engine.store.base import ASSUMED_HEAD, AUDIT_LOCKED, StoreBase
from signoff.engine.store.database import json_text
from signoff.engine.store.dropped import read_again_if_dropped, write_again_if_dropped
from signoff.engine.store.prepared import Prepared
from signoff.engine.store.rows import utc
from signoff.engine.store.tables import AuditRow
from signoff.engine.store.undecodable import (
    NotUtf8,
    first_not_utf8,
    read_again_if_undecodable,
    reading_leniently,
)

logger = logging.getLogger(__name__)

AUDIT = AuditRow.__table__  # type: ignore[attr-defined]

_HEAD = Prepared(select(AUDIT.c.seq, AUDIT.c.hash).order_by(AUDIT.c.seq.desc()).limit(1))
#: a queued record's columns that link it into the chain (the rest are its content)
_LINK = frozenset({"seq", "prev_hash", "hash"})
#: records are read in pages of this many: memory stays flat however long the trail is
PAGE = 2000


def _export(at: Any) -> Select[Any]:
    """Export columns in ``ExportRow`` order, ``data`` as its stored JSON text."""
    return select(
        *(AUDIT.c[name] for name in ("seq",)),
        at,
        *(AUDIT.c[name] for name in ("action", "run_id", "flow_name", "actor_id")),
        *(AUDIT.c[name] for name in ("actor_name", "via", "key")),
        cast(AUDIT.c.data, Text).label("data_json"),
        AUDIT.c.prev_hash,
        AUDIT.c.hash,
    )


_DIGITS = "[0-9][0-9]"
#: a time as SQLite holds it: ``2026-01-01 09:30:00.000000``
_SQLITE_TIME = f"{_DIGITS * 2}-{_DIGITS}-{_DIGITS} {_DIGITS}:{_DIGITS}:{_DIGITS}.{_DIGITS * 3}"
#: Signoff writes ``data`` in ASCII, escaping the rest (``json_text``): a line break or any
#: other character outside printable ASCII was put there by an edit, which export would
#: copy out (a break makes a line that is not JSON). Cheap enough for the database to judge
#: as it reads; ``to_record`` compares the whole text with what Signoff would write.
_NOT_ASCII_GLOB = "*[^ -~]*"
_NOT_ASCII_REGEX = "[^ -~]"
_NOT_AS_WRITTEN = "its data is not written as Signoff writes it"
#: ``_SQLITE_TIME`` for Python
_SQLITE_TIME_TEXT = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}")
#: the text columns, by the name a record's reader knows each by
_TEXT_COLUMNS = {
    "action": "action",
    "run_id": "run_id",
    "flow_name": "flow",
    "actor_id": "actor_id",
    "actor_name": "actor_name",
    "via": "via",
    "key": "key",
    "prev_hash": "prev_hash",
    "hash": "hash",
}
#: Why a row cannot be exported as it is stored (None when it can), judged by the database
#: as it reads the row: export copies stored text, so a row edited outside Signoff (data
#: that is not a JSON object, a time or number that is none) would make a line that is not
#: JSON. SQLite keeps any value in any column; PostgreSQL's types hold all but ``data``'s.
_UNEXPORTABLE_SQLITE = case(
    (func.typeof(AUDIT.c.seq) != "integer", "its number is not a whole number"),
    # The form SQLAlchemy writes, which export turns into ISO 8601 by slicing the text.
    # A comparison (a boolean): NOT on a String, as a plain op() gives, warns at import.
    # Nested, so that a row in that form (every row Signoff wrote) pays one GLOB.
    (
        ~type_coerce(AUDIT.c.at, String).bool_op("GLOB")(_SQLITE_TIME),
        case(
            (func.datetime(AUDIT.c.at).is_(None), "its time is not a time"),
            else_="its time is not written as Signoff writes times",
        ),
    ),
    # sqlite3's X'..' stores bytes in a text column: copied out, they are no one's name
    *(
        (func.typeof(AUDIT.c[column]) == "blob", f"its {name} is not text")
        for column, name in _TEXT_COLUMNS.items()
    ),
    # export casts it to text, but JSON that is bytes is not what Signoff stored either
    (func.typeof(AUDIT.c.data) == "blob", "its data is not text"),
    (AUDIT.c.data.is_(None) | (type_coerce(AUDIT.c.data, String) == "null"), None),
    (func.json_valid(AUDIT.c.data) == 0, "its data is not JSON"),
    # Valid JSON that Signoff wrote (compactly): an object starts with its brace.
    (func.substr(AUDIT.c.data, 1, 1) != "{", "its data is not a JSON object"),
    (type_coerce(AUDIT.c.data, String).bool_op("GLOB")(_NOT_ASCII_GLOB), _NOT_AS_WRITTEN),
    else_=None,
).label("unexportable")
_UNEXPORTABLE_POSTGRES = case(
    (
        func.json_typeof(AUDIT.c.data).not_in(["object", "null"]),
        "its data is not a JSON object",
    ),
    (cast(AUDIT.c.data, Text).bool_op("~")(_NOT_ASCII_REGEX), _NOT_AS_WRITTEN),
    else_=None,
).label("unexportable")
#: the verdicts on bytes stored as bytes, which say more than that they are not UTF-8
_BYTES_VERDICTS = frozenset(
    [f"its {name} is not text" for name in _TEXT_COLUMNS.values()] + ["its data is not text"]
)
_EXPORT = _export(AUDIT.c.at).add_columns(_UNEXPORTABLE_POSTGRES)
#: SQLite keeps times as text (``2026-01-01 09:30:00.000000``, UTC): reading it as text
#: skips parsing a datetime only to format it again
_EXPORT_SQLITE = _export(type_coerce(AUDIT.c.at, String).label("at_text")).add_columns(
    _UNEXPORTABLE_SQLITE
)


def _record_columns(at: Any) -> Select[Any]:
    """Every column of a record, ``data`` as its stored JSON text: decoded row by row (see
    ``to_record``), so that one row edited outside Signoff is named rather than failing
    the whole page as the JSON type's decoding would."""
    return select(
        *(c for c in AUDIT.c if c.name not in ("at", "data")),
        at.label("at"),
        cast(AUDIT.c.data, Text).label("data"),
    )


_RECORDS = _record_columns(AUDIT.c.at)
#: SQLite's times as their stored text, parsed row by row too
_RECORDS_SQLITE = _record_columns(type_coerce(AUDIT.c.at, String))


#: a row of ``_EXPORT_SQLITE`` whose verdict is given in Python (the names are its columns')
_JUDGED_ROW: Any = namedtuple(  # type: ignore[misc]
    "_JudgedRow", list(_EXPORT_SQLITE.selected_columns.keys())
)
#: what a record's reader knows an export row's columns by
_EXPORT_NAMES = {**_TEXT_COLUMNS, "at_text": "time", "data_json": "data"}


def _judged_undecodable(row: Any) -> Any:
    """An export row read leniently, with text SQLite could not decode judged unexportable
    (the database cannot tell it from text that is UTF-8)."""
    column = first_not_utf8(row)
    if column is None or row.unexportable in _BYTES_VERDICTS:
        return row
    name = _EXPORT_NAMES.get(column, column)
    return _JUDGED_ROW._make([*row[:-1], f"its {name} is not UTF-8 text"])


def _iso_from_sqlite(text: str) -> str:
    """``datetime.isoformat()`` of a stored SQLite time, from its text."""
    clock = text[11:19] if text.endswith(".000000") else text[11:]
    return f"{text[:10]}T{clock}+00:00"


def _iso(at: datetime) -> str:
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).isoformat()


def _filtered(
    query: Select[Any],
    since: datetime | None,
    until: datetime | None,
    flow_name: str | None,
    run_id: str | None,
    actor_id: str | None,
    actions: Sequence[str] | None,
) -> Select[Any]:
    if since is not None:
        query = query.where(AUDIT.c.at >= since)
    if until is not None:
        query = query.where(AUDIT.c.at < until)
    if flow_name is not None:
        query = query.where(AUDIT.c.flow_name == flow_name)
    if run_id is not None:
        query = query.where(AUDIT.c.run_id == run_id)
    if actor_id is not None:
        query = query.where(AUDIT.c.actor_id == actor_id)
    if actions:
        query = query.where(AUDIT.c.action.in_(list(actions)))
    return query


#: what an unreadable record shows for a time it does not have
_NO_TIME = datetime(1970, 1, 1, tzinfo=UTC)


def _text_kind(value: Any) -> str:
    """What a value that is not a ``str`` is not: bytes stored as bytes are not text; text
    SQLite could not decode (read leniently, see ``undecodable``) is not UTF-8 text."""
    return "UTF-8 text" if isinstance(value, NotUtf8) else "text"


def to_record(row: Any) -> AuditRecord:
    """A record from a row of ``_RECORDS`` (``data`` as text; on SQLite ``at`` as text too).

    A row edited outside Signoff (a time or number that is none, data that is not a JSON
    object, bytes in a text column, text that is not UTF-8) still becomes a record: its
    ``problem`` says what cannot be read, and the fields that could not be read are left
    empty (``seq`` 0, ``at`` 1970, ``data`` {}, text None or "").
    """
    problems: list[str] = []
    seq = row.seq
    if not isinstance(seq, int):
        problems.append(f"its number {seq!r} is not a whole number")
        seq = 0
    at = row.at
    if not isinstance(at, datetime):
        try:
            parsed = datetime.fromisoformat(at)
        except (TypeError, ValueError):
            problems.append(f"its time {at!r} is not a time")
            parsed = _NO_TIME
        else:
            if not _SQLITE_TIME_TEXT.fullmatch(at):
                # A time that means the same, written otherwise: as export says of it.
                problems.append(f"its time {at!r} is not written as Signoff writes times")
        at = parsed
    texts: dict[str, str | None] = {}
    for column, name in _TEXT_COLUMNS.items():
        value = getattr(row, column)
        if value is not None and not isinstance(value, str):
            problems.append(f"its {name} is not {_text_kind(value)}: {bytes(value)!r:.60}")
            value = None
        texts[column] = value
    data: Any = {}
    if isinstance(row.data, bytes):
        problems.append(f"its data is not {_text_kind(row.data)}: {bytes(row.data)!r:.60}")
    elif row.data is not None:
        try:
            data = json.loads(row.data)
        except ValueError as exc:
            problems.append(f"its data is not JSON: {exc}")
        if data is None:
            data = {}
        elif not isinstance(data, dict):
            problems.append(f"its data is not a JSON object: {row.data[:40]!r}")
            data = {}
        elif not _as_written(data, row.data):
            # The same values in other text (a key given twice, which readers take first
            # or last; a line break) hash alike: the chain would call the edit intact.
            problems.append(_NOT_AS_WRITTEN)
    return AuditRecord(
        seq=seq,
        at=utc(at),
        action=texts["action"] or "",
        run_id=texts["run_id"],
        flow_name=texts["flow_name"],
        actor_id=texts["actor_id"],
        actor_name=texts["actor_name"],
        via=texts["via"],
        key=texts["key"],
        data=data,
        prev_hash=texts["prev_hash"] or "",
        hash=texts["hash"] or "",
        problem="; ".join(problems) or None,
    )


def _as_written(data: dict[str, Any], text: str) -> bool:
    """Whether ``text`` is what Signoff writes for ``data`` (``json_text``)."""
    try:
        return bool(json_text(data) == text)
    except ValueError:  # NaN or an infinity: never written by Signoff
        return False


class AuditQueries(StoreBase):
    #: set by the engine from ``SIGNOFF_AUDIT_KEY``: hashes become HMACs under this key
    audit_secret: bytes | None = None
    #: PostgreSQL: (seq, hash) of the last record this process appended; the chain's head
    #: unless another process appended since (checked as the records are inserted)
    _last_appended: tuple[int, str] | None = None
    #: PostgreSQL: another process appended since this one's last append, the last time
    #: it looked. While so, the head is read: taking it on trust would mostly miss, and a
    #: miss costs two round trips under the chain's lock where the read costs one.
    _chain_shared: bool = True

    def _audit(self, conn: Connection, entries: Sequence[AuditEntry], at: datetime) -> None:
        """Append ``entries`` to the chain inside the caller's write transaction."""
        if not entries:
            return
        queued: list[dict[str, Any]] | None = conn.info.get("pending_audit")
        if queued is None:
            raise RuntimeError("audit records are written in a write transaction (_write)")
        if queued:
            # This transaction holds the chain (and its lock): its own last record is the head.
            seq, prev = queued[-1]["seq"], queued[-1]["hash"]
        elif self.is_sqlite:
            seq, prev = self._head(conn)
        else:
            if not conn.info.get(AUDIT_LOCKED):
                self._lock_audit_chain(conn)
            last = self._last_appended
            if last is None or self._chain_shared:
                seq, prev = self._head(conn)
                # Alone on the chain since the last append: take the head on trust next time.
                self._chain_shared = (seq, prev) != last
            else:
                seq, prev = last
                conn.info[ASSUMED_HEAD] = prev
        rows = [{"at": at, **entry_fields(entry)} for entry in entries]
        self._link(rows, seq, prev)
        # Appended as the transaction ends, with its events (see appending).
        queued.extend(rows)

    @staticmethod
    def _head(conn: Connection) -> tuple[int, str]:
        head = _HEAD.execute(conn).first()
        return (int(head.seq), head.hash) if head is not None else (0, GENESIS)

    def _link(self, rows: list[dict[str, Any]], seq: int, prev: str) -> None:
        """Number and hash ``rows`` (each an ``at`` and an entry's fields) after record
        ``seq``, whose hash is ``prev``."""
        for row in rows:
            seq += 1
            fields = {name: value for name, value in row.items() if name not in _LINK}
            digest = chain_hash(seq=seq, prev_hash=prev, secret=self.audit_secret, **fields)
            row.update(seq=seq, prev_hash=prev, hash=digest)
            prev = digest

    def _append(
        self, conn: Connection, events: list[dict[str, Any]], audit: list[dict[str, Any]]
    ) -> None:
        lock = self._event_lock(events)
        assumed = conn.info.get(ASSUMED_HEAD)
        if not appending.append(conn, events, audit, postgres=lock, head=assumed):
            # Another process appended since this one last did: chain to the head now.
            logger.debug("audit chain moved", extra={"action": "audit_head_moved"})
            self._chain_shared = True
            self._link(audit, *self._head(conn))
            appending.append(conn, [], audit, postgres=lock)
        if audit and not self.is_sqlite:
            # Before the commit: should it fail, the next append finds the head moved.
            self._last_appended = (audit[-1]["seq"], audit[-1]["hash"])

    @write_again_if_dropped
    def record_audit(self, *entries: AuditEntry) -> None:
        """Append records in a transaction of their own (refusals, which change nothing else)."""
        now = self.clock()
        with self._write() as conn:
            self._audit(conn, entries, now)

    @read_again_if_dropped
    def newest_audit_record(self) -> AuditRecord | None:
        """The last record of the chain, or None while there is none."""
        with self._read() as conn:
            seq, _ = self._head(conn)
        return next(self.audit_records(after_seq=seq - 1, page=1), None) if seq else None

    def audit_records(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        flow_name: str | None = None,
        run_id: str | None = None,
        actor_id: str | None = None,
        actions: Sequence[str] | None = None,
        after_seq: int = 0,
        page: int = PAGE,
    ) -> Iterator[AuditRecord]:
        """Records in ``seq`` order, read a page at a time (keyset paging: each page is one
        short query, so neither the database nor this process holds the whole trail)."""
        records = _RECORDS_SQLITE if self.is_sqlite else _RECORDS
        query = _filtered(records, since, until, flow_name, run_id, actor_id, actions)
        for rows in self._pages(query, after_seq, page):
            yield from map(to_record, rows)

    def audit_export_pages(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        flow_name: str | None = None,
        page: int = PAGE,
    ) -> Iterator[list[ExportRow]]:
        """The same records for export, a page at a time, with ``data`` as its stored JSON
        text: an export of millions of records decodes nothing only to encode it again.

        Raises:
            AuditRecordUnreadable: a record was edited outside Signoff so that it cannot be
                exported as it is stored (raised after the page's records before it).
        """
        base, iso = (_EXPORT_SQLITE, _iso_from_sqlite) if self.is_sqlite else (_EXPORT, _iso)
        query = _filtered(base, since, until, flow_name, None, None, None)
        for rows in self._pages(query, 0, page):
            bad = next((row for row in rows if row.unexportable is not None), None)
            if bad is not None:
                if bad is not rows[0]:
                    yield self._export_rows(rows[: rows.index(bad)], iso)
                raise AuditRecordUnreadable(bad.seq, bad.unexportable)
            yield self._export_rows(rows, iso)

    @staticmethod
    def _export_rows(rows: Sequence[Any], iso: Any) -> list[ExportRow]:
        # tuples in _EXPORT's column order (named access costs more per row than the rest)
        return [
            ExportRow(
                seq,
                iso(at),
                action,
                run_id,
                flow,
                actor_id,
                actor_name,
                via,
                key,
                data if data and data != "null" else "{}",
                prev_hash,
                digest,
            )
            for (
                seq,
                at,
                action,
                run_id,
                flow,
                actor_id,
                actor_name,
                via,
                key,
                data,
                prev_hash,
                digest,
                _unexportable,
            ) in rows
        ]

    def _pages(self, query: Select[Any], after_seq: int, page: int) -> Iterator[Sequence[Any]]:
        query = query.where(AUDIT.c.seq > bindparam("after")).order_by(AUDIT.c.seq).limit(page)
        position = after_seq
        while True:
            found = self._audit_page(query, position)
            if found:
                yield found
            if len(found) < page:
                return
            # As stored: a SQLite seq edited into text sorts after every number, and pages go on.
            position = found[-1].seq

    @read_again_if_dropped
    @read_again_if_undecodable
    def _audit_page(self, query: Select[Any], after: int) -> Sequence[Any]:
        """One page of ``_pages``: a read of its own, so that a dropped connection costs it
        a second read and not an export or a verification an error (a decorator on the
        generator would cover none of its reads). Text SQLite cannot decode is read as
        bytes, the second time: ``to_record`` names its record, and so does an export
        row's verdict."""
        with self._read() as conn:
            found = conn.execute(query, {"after": after}).all()
        if reading_leniently() and "unexportable" in query.selected_columns:
            return [_judged_undecodable(row) for row in found]
        return found

    @read_again_if_dropped
    @read_again_if_undecodable
    def recent_audit(
        self, *, actor_id: str, actions: Sequence[str], limit: int
    ) -> list[AuditRecord]:
        """The newest records by one actor (App Home's "recent decisions")."""
        query = (
            (_RECORDS_SQLITE if self.is_sqlite else _RECORDS)
            .where(AUDIT.c.actor_id == actor_id, AUDIT.c.action.in_(list(actions)))
            .order_by(AUDIT.c.seq.desc())
            .limit(limit)
        )
        with self._read() as conn:
            return [to_record(r) for r in conn.execute(query)]


__all__ = ["AUDIT", "AuditQueries"]
