"""How the audit trail's rows read back: as records (``to_record``) and as export rows
(``export_rows``), each judged as it is read.

A row edited outside Signoff (a time or number that is none, data that is not a JSON
object, bytes in a text column, text that is not UTF-8) is named rather than failing its
page: a record says what cannot be read in its ``problem``; an export row's verdict
(``unexportable``) is given by the database as it reads the row, since export copies
stored text and such a row would make a line that is not JSON.
"""

from __future__ import annotations

import json
import re
from collections import namedtuple
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, String, Text, case, cast, func, select, type_coerce

from signoff.engine.audit import AuditRecord
from signoff.engine.audit_export import ExportRow
from signoff.engine.store.database import json_text
from signoff.engine.store.rows import utc
from signoff.engine.store.tables import AuditRow
from signoff.engine.store.undecodable import NotUtf8, first_not_utf8

AUDIT = AuditRow.__table__  # type: ignore[attr-defined]


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
EXPORT = _export(AUDIT.c.at).add_columns(_UNEXPORTABLE_POSTGRES)
#: SQLite keeps times as text (``2026-01-01 09:30:00.000000``, UTC): reading it as text
#: skips parsing a datetime only to format it again
EXPORT_SQLITE = _export(type_coerce(AUDIT.c.at, String).label("at_text")).add_columns(
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


RECORDS = _record_columns(AUDIT.c.at)
#: SQLite's times as their stored text, parsed row by row too
RECORDS_SQLITE = _record_columns(type_coerce(AUDIT.c.at, String))


#: a row of ``EXPORT_SQLITE`` whose verdict is given in Python (the names are its columns')
_JUDGED_ROW: Any = namedtuple(  # type: ignore[misc]
    "_JudgedRow", list(EXPORT_SQLITE.selected_columns.keys())
)
#: what a record's reader knows an export row's columns by
_EXPORT_NAMES = {**_TEXT_COLUMNS, "at_text": "time", "data_json": "data"}


def judged_undecodable(row: Any) -> Any:
    """An export row read leniently, with text SQLite could not decode judged unexportable
    (the database cannot tell it from text that is UTF-8)."""
    column = first_not_utf8(row)
    if column is None or row.unexportable in _BYTES_VERDICTS:
        return row
    name = _EXPORT_NAMES.get(column, column)
    return _JUDGED_ROW._make([*row[:-1], f"its {name} is not UTF-8 text"])


def iso_from_sqlite(text: str) -> str:
    """``datetime.isoformat()`` of a stored SQLite time, from its text."""
    clock = text[11:19] if text.endswith(".000000") else text[11:]
    return f"{text[:10]}T{clock}+00:00"


def iso_utc(at: datetime) -> str:
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).isoformat()


def filtered(
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
    """A record from a row of ``RECORDS`` (``data`` as text; on SQLite ``at`` as text too).

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


def export_rows(rows: Sequence[Any], iso: Any) -> list[ExportRow]:
    """Export rows from rows of ``EXPORT`` or ``EXPORT_SQLITE``; ``iso`` formats their times."""
    # tuples in EXPORT's column order (named access costs more per row than the rest)
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


__all__ = [
    "AUDIT",
    "EXPORT",
    "EXPORT_SQLITE",
    "RECORDS",
    "RECORDS_SQLITE",
    "export_rows",
    "filtered",
    "iso_from_sqlite",
    "iso_utc",
    "judged_undecodable",
    "to_record",
]
