"""Queries for the audit trail: appending chained records, and reading them back in pages
(each row judged as it is read: ``audit_rows``).

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

import logging
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, bindparam, select

from signoff.engine.audit import GENESIS, AuditEntry, AuditRecord, chain_hash, entry_fields
from signoff.engine.audit_export import ExportRow
from signoff.engine.errors import AuditRecordUnreadable
from signoff.engine.store import appending
from signoff.engine.store.audit_rows import (
    AUDIT,
    EXPORT,
    EXPORT_SQLITE,
    RECORDS,
    RECORDS_SQLITE,
    export_rows,
    filtered,
    iso_from_sqlite,
    iso_utc,
    judged_undecodable,
    to_record,
)
from signoff.engine.store.base import ASSUMED_HEAD, AUDIT_LOCKED, StoreBase
from signoff.engine.store.dropped import read_again_if_dropped, write_again_if_dropped
from signoff.engine.store.prepared import Prepared
from signoff.engine.store.undecodable import read_again_if_undecodable, reading_leniently

logger = logging.getLogger(__name__)

_HEAD = Prepared(select(AUDIT.c.seq, AUDIT.c.hash).order_by(AUDIT.c.seq.desc()).limit(1))
#: a queued record's columns that link it into the chain (the rest are its content)
_LINK = frozenset({"seq", "prev_hash", "hash"})
#: records are read in pages of this many: memory stays flat however long the trail is
PAGE = 2000


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
        records = RECORDS_SQLITE if self.is_sqlite else RECORDS
        query = filtered(records, since, until, flow_name, run_id, actor_id, actions)
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
        base, iso = (EXPORT_SQLITE, iso_from_sqlite) if self.is_sqlite else (EXPORT, iso_utc)
        query = filtered(base, since, until, flow_name, None, None, None)
        for rows in self._pages(query, 0, page):
            bad = next((row for row in rows if row.unexportable is not None), None)
            if bad is not None:
                if bad is not rows[0]:
                    yield export_rows(rows[: rows.index(bad)], iso)
                raise AuditRecordUnreadable(bad.seq, bad.unexportable)
            yield export_rows(rows, iso)

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
            return [judged_undecodable(row) for row in found]
        return found

    @read_again_if_dropped
    @read_again_if_undecodable
    def recent_audit(
        self, *, actor_id: str, actions: Sequence[str], limit: int
    ) -> list[AuditRecord]:
        """The newest records by one actor (App Home's "recent decisions")."""
        query = (
            (RECORDS_SQLITE if self.is_sqlite else RECORDS)
            .where(AUDIT.c.actor_id == actor_id, AUDIT.c.action.in_(list(actions)))
            .order_by(AUDIT.c.seq.desc())
            .limit(limit)
        )
        with self._read() as conn:
            return [to_record(r) for r in conn.execute(query)]


__all__ = ["AuditQueries"]
