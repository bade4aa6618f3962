"""Reading the events outbox past a row edited outside Signoff.

Every process reads every new event in id order, and a durable consumer reads from its
cursor: one events row that cannot be read (its data not JSON, nor an object; its time not
a time; its kind none; text that is not UTF-8) failed each read of the page holding it, so
every reader stopped there for good, and nothing after it was heard (answers, timeouts,
questions to post). Now a page that fails to read (``UNREADABLE``) is read once more, with
the JSON column and the time as text (``lenient``), and ``read_past`` hands on the events
it can read, in order, and steps past the others: each skipped row is said once by each
reader, which moves its position past it, at ERROR (``event_unreadable``: the event's id,
its run's id and why, never its payload). Such an event is lost to every reader: what it
says cannot be known. Nothing stored is changed. The usual read stays as it was: only a
page that failed is read again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, NamedTuple

from sqlalchemy import bindparam, func, select

from signoff.engine.runs import Event, EventKind
from signoff.engine.store import lenient, rows
from signoff.engine.store.base import EVENTS, StoreBase
from signoff.engine.store.prepared import Prepared
from signoff.engine.store.undecodable import JsonNotJson, TextNotUtf8, leniently

logger = logging.getLogger(__name__)

#: what a read of a page of events fails with on a row edited outside Signoff
UNREADABLE = (ValueError, TypeError, TextNotUtf8, JsonNotJson)
_KINDS = frozenset(k.value for k in EventKind)
# Prepared, as the usual reads: on SQLite's held events connection a SQLAlchemy execute
# would begin a transaction that nothing ends, and its snapshot would hide every later event.
_NEWEST = Prepared(select(func.coalesce(func.max(EVENTS.c.id), 0).label("newest")))
#: every event of the page, up to the newest when the read began, as text (see ``lenient``)
_PAGE_AS_TEXT = Prepared(
    select(*lenient.as_text(EVENTS.c))
    .where(EVENTS.c.id > bindparam("position"), EVENTS.c.id <= bindparam("upto"))
    .order_by(EVENTS.c.id)
    .limit(bindparam("limit"))
)


class EventPage(NamedTuple):
    """A page of events read in id order."""

    events: list[Event]
    #: where the next read starts: past every row read, those skipped too
    position: int
    #: as many rows were read as asked: more may follow at once
    full: bool
    #: the ids of the rows that could not be read, stepped past
    skipped: tuple[int, ...] = ()


#: (a kind, the event's data or None when it cannot be read) -> whether the reader wants it
Wanted = Callable[[str, dict[str, Any] | None], bool]


def read_past(
    store: StoreBase,
    position: int,
    limit: int,
    failure: Exception,
    *,
    reader: str,
    wanted: Wanted | None = None,
) -> EventPage:
    """The page of events after ``position`` that failed with ``failure``, read again: the
    events it can read (those ``wanted``, of every row read) and the rows it steps past.
    A row that cannot be read is said (once per reader, which moves past it) when the
    reader might have wanted it: its kind is one it wants, or cannot be read."""
    logger.info(
        "an event cannot be read; reading the page again to step past it",
        extra={"action": "event_read_again", "reader": reader, "error": str(failure)[:300]},
    )
    with leniently(), store._read_events() as conn:
        upto = int(_NEWEST.execute(conn).scalar())
        found = _PAGE_AS_TEXT.execute(
            conn, {"position": position, "upto": upto, "limit": limit}
        ).all()
    events: list[Event] = []
    skipped: list[int] = []
    for row in found:
        values, reasons = lenient.read(row, rows.EVENT)
        kind, data = values["kind"], values["data"]
        if reasons:
            if wanted is None or kind not in _KINDS or wanted(kind, None):
                say_skipped(values, reasons, reader)
            skipped.append(int(values["id"]))
        elif wanted is None or wanted(kind, data):
            events.append(
                Event(
                    id=int(values["id"]),
                    run_id=values["run_id"],
                    kind=EventKind(kind),
                    at=rows.utc(values["at"]),
                    data=dict(data or {}),
                )
            )
    full = len(found) == limit
    # A short page read every row up to the newest: the next read starts past it.
    return EventPage(
        events, int(found[-1].id) if full else max(upto, position), full, tuple(skipped)
    )


def say_skipped(values: dict[str, Any], reasons: list[str], reader: str) -> None:
    event, run_id, why = int(values["id"]), str(values["run_id"]), "; ".join(reasons)
    logger.error(
        "event %d of run %s cannot be read (%s): it was changed outside Signoff; %s skips it",
        event,
        run_id,
        why,
        reader,
        extra={
            "action": "event_unreadable",
            "event_id": event,
            "run_id": run_id,
            "reason": why,
            "reader": reader,
        },
    )


__all__ = ["UNREADABLE", "EventPage", "Wanted", "read_past", "say_skipped"]
