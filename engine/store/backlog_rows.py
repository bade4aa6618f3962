"""Reading a new durable consumer's backlog past a question edited outside Signoff.

A consumer made with a backlog first hears the question (``WAITING_FOR_INPUT``) of each
pause waiting when it was made. One such events row that could not be read (its data not
JSON, its time not a time, text that is not UTF-8) failed the read of the backlog, or the
making of the cursor itself (SQLite's ``json_extract`` refuses data that is not JSON), so
the Slack app's first start on such a database posted no question at all. Now a read
that fails is made once more, on SQLite with the key looked up only in data that is JSON
(``json_valid``) and the row's values as text (``lenient``): the questions it can read
are handed on, in order, and each it cannot is stepped past and said once by the
consumer (``event_unreadable``: the event's id, its run's id and why, never its payload).
A question whose data is not JSON names no pause: it counts when its run has one waiting.
Nothing stored is changed; the usual reads stay as they were.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from sqlalchemy import and_, bindparam, case, exists, func, literal, or_, select

from signoff.engine.runs import Event, EventKind
from signoff.engine.store import lenient, rows
from signoff.engine.store.base import EVENTS, StoreBase
from signoff.engine.store.event_rows import EventPage, say_skipped
from signoff.engine.store.pauses import IS_WAITING, PAUSES
from signoff.engine.store.prepared import Prepared
from signoff.engine.store.undecodable import leniently

logger = logging.getLogger(__name__)

_ASKED = EVENTS.c.kind == literal(EventKind.WAITING_FOR_INPUT.value)


def _key(table: Any, guarded: bool) -> Any:
    """The pause key of an event of ``table``; ``guarded``: NULL where its data is not JSON
    (SQLite's ``json_extract`` fails the whole statement on it; CASE reads it only if valid)."""
    key = table.c.data["key"].as_string()
    return case((func.json_valid(table.c.data) == 1, key)) if guarded else key


def _still_waits(guarded: bool) -> Any:
    """The event asks the question of a pause that waits now."""
    return exists().where(
        PAUSES.c.run_id == EVENTS.c.run_id, PAUSES.c.key == _key(EVENTS, guarded), IS_WAITING
    )


def _unkeyed(guarded: bool) -> Any:
    """The event's data is not JSON, and its run waits: it may be one of the backlog."""
    if not guarded:
        return literal(False)
    run_waits = exists().where(PAUSES.c.run_id == EVENTS.c.run_id, IS_WAITING)
    return and_(func.json_valid(EVENTS.c.data) == 0, run_waits)


@functools.cache
def waiting_questions(guarded: bool = False) -> Any:
    """The ids of the questions of the pauses waiting now, newest first (a new cursor's
    backlog: the ``backlog`` newest of them)."""
    return (
        select(EVENTS.c.id)
        .where(_ASKED, or_(_still_waits(guarded), _unkeyed(guarded)))
        .order_by(EVENTS.c.id.desc())
    )


@functools.cache
def backlog(guarded: bool = False) -> Prepared:
    """A page of a cursor's backlog: the questions asked up to ``until`` (after ``after``)
    whose pause still waits, or whose pause something happened to after ``until`` (it
    waited then, most likely: answered since, say, it still gets its closed prompt).
    ``guarded``: the read made again, with the columns as text."""
    later = EVENTS.alias("later")
    since = exists().where(
        later.c.run_id == EVENTS.c.run_id,
        later.c.id > bindparam("until"),
        _key(later, guarded) == _key(EVENTS, guarded),
    )
    return Prepared(
        select(*(lenient.as_text(EVENTS.c) if guarded else EVENTS.c))
        .where(
            _ASKED,
            EVENTS.c.id > bindparam("after"),
            EVENTS.c.id <= bindparam("until"),
            or_(_still_waits(guarded), since, _unkeyed(guarded)),
        )
        .order_by(EVENTS.c.id)
        .limit(bindparam("limit"))
    )


def read_past(
    store: StoreBase, params: dict[str, int], failure: Exception, *, reader: str
) -> EventPage:
    """The page of a backlog (``params``: its ``after``, ``until`` and ``limit``) that
    failed with ``failure``, read again: the questions it can read, and the ids of those
    it steps past, each said (as ``reader``)."""
    logger.info(
        "a waiting question cannot be read; reading the backlog again to step past it",
        extra={"action": "event_read_again", "reader": reader, "error": str(failure)[:300]},
    )
    with leniently(), store._read() as conn:
        # PostgreSQL stores no data that is not JSON: only SQLite needs the guard.
        found = backlog(guarded=store.is_sqlite).execute(conn, params).all()
    events: list[Event] = []
    skipped: list[int] = []
    for row in found:
        values, reasons = lenient.read(row, rows.EVENT)
        if reasons:
            say_skipped(values, reasons, reader)
            skipped.append(int(values["id"]))
            continue
        events.append(
            Event(
                id=int(values["id"]),
                run_id=values["run_id"],
                kind=EventKind(values["kind"]),
                at=rows.utc(values["at"]),
                data=dict(values["data"] or {}),
            )
        )
    position = int(found[-1].id) if found else params["after"]
    return EventPage(events, position, len(found) == params["limit"], tuple(skipped))


__all__ = ["backlog", "read_past", "waiting_questions"]
