"""Exporting the audit trail: JSON lines or CSV, from records or from rows read for export.

CSV cells a spreadsheet would run as a formula start with ``'``; JSON lines keep every
value exactly. See ``engine.audit`` for the records themselves.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from json.encoder import encode_basestring
from typing import Any, NamedTuple, TextIO

from signoff.engine.audit import AuditRecord

__all__ = ["CSV_COLUMNS", "ExportRow", "export_csv", "export_jsonl", "write_csv", "write_jsonl"]

#: the columns of a CSV export, in order (the fields of ``AuditRecord.as_dict``)
CSV_COLUMNS = (
    "seq",
    "at",
    "action",
    "run_id",
    "flow",
    "actor_id",
    "actor_name",
    "via",
    "key",
    "data",
    "prev_hash",
    "hash",
)


def write_jsonl(records: Iterable[AuditRecord], out: TextIO) -> int:
    """Write one JSON object per line; returns how many. Holds one record at a time."""
    count = 0
    dumps = json.dumps
    for record in records:
        out.write(dumps(record.as_dict(), ensure_ascii=False, separators=(",", ":")))
        out.write("\n")
        count += 1
    return count


#: A spreadsheet runs a cell that starts with one of these as a formula (OWASP's list). A
#: person's Slack name is theirs to choose, so a CSV export starts such a cell with ``'``,
#: which spreadsheets show as text; JSON lines keep every value exactly.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _spreadsheet_row(row: Iterable[Any]) -> list[Any]:
    return [
        f"'{value}" if isinstance(value, str) and value.startswith(_FORMULA_START) else value
        for value in row
    ]


def write_csv(records: Iterable[AuditRecord], out: TextIO) -> int:
    """Write a header and one row per record (``data`` as JSON); returns how many. A text
    cell a spreadsheet would run as a formula starts with ``'``."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for record in records:
        row = record.as_dict()
        row["data"] = json.dumps(record.data, ensure_ascii=False, separators=(",", ":"))
        writer.writerow(_spreadsheet_row(row[c] for c in CSV_COLUMNS))
        count += 1
    return count


class ExportRow(NamedTuple):
    """One record as the store reads it for export, in ``CSV_COLUMNS`` order: ``at`` is ISO
    8601 text and ``data`` the stored JSON text, so exporting decodes nothing."""

    seq: int
    at: str
    action: str
    run_id: str | None
    flow: str | None
    actor_id: str | None
    actor_name: str | None
    via: str | None
    key: str | None
    data: str
    prev_hash: str
    hash: str


def _text(value: str | None) -> str:
    return "null" if value is None else encode_basestring(value)


def export_jsonl(pages: Iterable[Sequence[ExportRow]], out: TextIO) -> int:
    """Write pages of export rows as JSON lines (the objects ``write_jsonl`` writes, with
    ``data`` as stored); returns how many. One page is held at a time."""
    count = 0
    hex_text = encode_basestring
    for page in pages:
        out.write(
            "".join(
                f'{{"seq":{r.seq},"at":"{r.at}","action":{_text(r.action)},'
                f'"run_id":{_text(r.run_id)},"flow":{_text(r.flow)},'
                f'"actor_id":{_text(r.actor_id)},"actor_name":{_text(r.actor_name)},'
                f'"via":{_text(r.via)},"key":{_text(r.key)},"data":{r.data},'
                # Quoted as text too: a quote edited into a hash would otherwise add a field
                # to the line, which a reader takes for the record's own.
                f'"prev_hash":{hex_text(r.prev_hash)},"hash":{hex_text(r.hash)}}}\n'
                for r in page
            )
        )
        count += len(page)
    return count


def export_csv(pages: Iterable[Sequence[ExportRow]], out: TextIO) -> int:
    """Write a header and pages of export rows as CSV (``data`` as JSON); returns how many.
    A text cell a spreadsheet would run as a formula starts with ``'``."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for page in pages:
        writer.writerows(map(_spreadsheet_row, page))
        count += len(page)
    return count
