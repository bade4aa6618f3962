"""Reading the events outbox, the cursors of durable consumers, and keys claimed once.

Every process reads new events in id order (``events_after``); a durable consumer keeps
its position in a cursor that one process at a time holds on a lease, so that it resumes
where it stopped after a restart. A key claimed once (``claim_once``) lets several
processes agree that exactly one of them handles something, for a while.
"""

from __future__ import annotations

import functools
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, literal, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from signoff.engine.errors import ConsumerInUse, ConsumerNotFound, DatabaseBusy
from signoff.engine.runs import Event, EventKind, RunState
from signoff.engine.store import backlog_rows, rows
from signoff.engine.store.base import EVENTS, StoreBase
from signoff.engine.store.dropped import read_again_if_dropped, write_again_if_dropped
from signoff.engine.store.event_rows import UNREADABLE, EventPage, Wanted, read_past
from signoff.engine.store.prepared import Prepared
from signoff.engine.store.tables import CursorRow, OnceKeyRow
from signoff.engine.store.turns import TurnNotGiven
from signoff.engine.store.undecodable import is_malformed_json

CURSORS = CursorRow.__table__  # type: ignore[attr-defined]
ONCE_KEYS = OnceKeyRow.__table__  # type: ignore[attr-defined]
#: every process reads this after each burst of commits
_EVENTS_AFTER = Prepared(
    select(EVENTS)
    .where(EVENTS.c.id > bindparam("position"))
    .order_by(EVENTS.c.id)
    .limit(bindparam("limit"))
)


@functools.cache
def _events_of(kinds: frozenset[EventKind], states: frozenset[RunState]) -> Prepared:
    """The newest event id, with the events after ``position`` up to it of ``kinds`` and
    the state changes into ``states`` (one row with only the id when there are none): one
    round trip. Kinds and states are literals: few sets are ever asked."""
    state = EVENTS.c.data["state"].as_string()
    chosen = [EVENTS.c.kind == literal(kind.value) for kind in sorted(kinds)]
    if states:
        chosen.append(
            and_(
                EVENTS.c.kind == literal(EventKind.STATE_CHANGED.value),
                or_(*(state == literal(s.value) for s in sorted(states))),
            )
        )
    newest = select(func.coalesce(func.max(EVENTS.c.id), 0).label("newest")).subquery("newest")
    wanted = and_(EVENTS.c.id > bindparam("position"), EVENTS.c.id <= newest.c.newest, or_(*chosen))
    return Prepared(
        select(newest.c.newest, *EVENTS.c)
        .select_from(newest.outerjoin(EVENTS, wanted))
        .order_by(EVENTS.c.id)
        .limit(bindparam("limit"))
    )


def _of(kinds: frozenset[EventKind], states: frozenset[RunState]) -> Wanted:
    """Whether an event read again is one ``_events_of(kinds, states)`` reads (its data
    None: it cannot be read, so a state change may be one)."""
    wanted_kinds = {k.value for k in kinds}
    wanted_states = {s.value for s in states}

    def wanted(kind: str, data: dict[str, Any] | None) -> bool:
        if kind in wanted_kinds:
            return True
        if kind != EventKind.STATE_CHANGED.value or not wanted_states:
            return False
        return data is None or (isinstance(data, dict) and data.get("state") in wanted_states)

    return wanted


class ConsumerQueries(StoreBase):
    @read_again_if_dropped
    def last_event_id(self) -> int:
        with self._read() as conn:
            return int(conn.execute(select(func.coalesce(func.max(EVENTS.c.id), 0))).scalar_one())

    def events_after(self, position: int, limit: int = 500) -> list[Event]:
        """The events after ``position`` (``read_events``'s)."""
        return self.read_events(position, limit).events

    @read_again_if_dropped
    def read_events(self, position: int, limit: int = 500, *, reader: str = "") -> EventPage:
        """The next ``limit`` events after ``position``, in id order, stepping past (and
        saying, as ``reader``) any row edited outside Signoff so that it cannot be read:
        see ``event_rows``."""
        try:
            with self._read_events() as conn:
                found = _EVENTS_AFTER.execute(conn, {"position": position, "limit": limit}).all()
            events = [rows.to_event(r) for r in found]
        except UNREADABLE as exc:
            return read_past(self, position, limit, exc, reader=reader or "a reader")
        return EventPage(events, events[-1].id if events else position, len(events) == limit)

    def expect_events_of(
        self, kinds: frozenset[EventKind], states: frozenset[RunState] = frozenset()
    ) -> None:
        """Build the statement ``events_of_after`` uses for these now, at start-up, so that
        ``prepare`` compiles it too (building one on a busy thread risks cpython#106905)."""
        _events_of(frozenset(kinds), frozenset(states))

    def events_of_after(
        self,
        position: int,
        kinds: frozenset[EventKind],
        states: frozenset[RunState] = frozenset(),
        limit: int = 500,
    ) -> tuple[list[Event], int]:
        """The events after ``position`` of ``kinds``, and the state changes into
        ``states``, and the position to read on from (``read_events_of``'s).

        Example::

            cancels, position = store.events_of_after(0, frozenset(), {RunState.CANCELLED})
        """
        page = self.read_events_of(position, kinds, states, limit)
        return page.events, page.position

    @read_again_if_dropped
    def read_events_of(
        self,
        position: int,
        kinds: frozenset[EventKind],
        states: frozenset[RunState] = frozenset(),
        limit: int = 500,
        *,
        reader: str = "",
    ) -> EventPage:
        """The events after ``position`` of ``kinds``, and the state changes into
        ``states``, and the position to read on from: past the last event returned when
        ``limit`` were, else past every event stored when this read began (the others were
        of no interest). A row edited outside Signoff so that it cannot be read is stepped
        past, and said as ``reader`` if it might be of interest: see ``event_rows``."""
        kinds, states = frozenset(kinds), frozenset(states)
        try:
            with self._read_events() as conn:
                # Event ids become visible in id order (one writer on SQLite; a lock on
                # PostgreSQL), so every event up to the newest seen here is already readable.
                found = (
                    _events_of(kinds, states)
                    .execute(conn, {"position": position, "limit": limit})
                    .all()
                )
            events = [rows.to_event(r) for r in found if r.id is not None]
        except UNREADABLE as exc:
            return read_past(
                self, position, limit, exc, reader=reader or "a reader", wanted=_of(kinds, states)
            )
        upto = max(int(found[0].newest), position) if found else position
        full = len(events) == limit
        return EventPage(events, events[-1].id if full else upto, full)

    @write_again_if_dropped
    def lease_cursor(
        self, consumer: str, owner: str, seconds: float, *, backlog: int = 0
    ) -> int | None:
        """Hold ``consumer``'s cursor for ``seconds``; its position, or None if another holds it.

        A cursor made here starts at the newest event. With ``backlog``, it also notes the
        questions of the (at most ``backlog`` newest) pauses waiting then
        (``cursor_backlog``), to be delivered first.

        Taken in one conditional statement: processes that find the cursor free at the same
        moment (replicas started together) make one holder, where reading it first and
        writing it after made each believe it held the lease (or failed the second with a
        duplicate key, for a cursor not made yet).
        """
        now = self.clock()
        until = now + timedelta(seconds=seconds)
        free = or_(
            CURSORS.c.lease_owner.is_(None),
            CURSORS.c.lease_owner == owner,
            CURSORS.c.lease_until.is_(None),
            CURSORS.c.lease_until <= now,
        )
        with self._write() as conn:
            taken = conn.execute(
                update(CURSORS)
                .where(CURSORS.c.consumer == consumer, free)
                .values(lease_owner=owner, lease_until=until)
                .returning(CURSORS.c.position)
            ).first()
            if taken is not None:
                return int(taken.position)
            # Held by another, or not made yet: a new consumer starts at the present, and
            # reports what happens from now on. Of two making it at once, one does.
            position = int(
                conn.execute(select(func.coalesce(func.max(EVENTS.c.id), 0))).scalar_one()
            )
            # The oldest question of the backlog, if any pause waits.
            oldest = self._oldest_question(conn, backlog) if backlog > 0 else []
            behind = bool(oldest)
            made = conn.execute(
                self._dialect_insert(CURSORS)
                .values(
                    consumer=consumer,
                    position=position,
                    lease_owner=owner,
                    lease_until=until,
                    backlog_after=oldest[0] - 1 if behind else None,
                    backlog_until=position if behind else None,
                )
                .on_conflict_do_nothing()
                .returning(CURSORS.c.position)
            ).first()
            return None if made is None else position

    @read_again_if_dropped
    def holds_cursor(self, consumer: str, owner: str) -> bool:
        """Whether ``owner`` holds ``consumer``'s lease and it has not expired."""
        with self._read() as conn:
            row = conn.execute(
                select(CURSORS.c.lease_until).where(
                    CURSORS.c.consumer == consumer, CURSORS.c.lease_owner == owner
                )
            ).first()
        return row is not None and row[0] is not None and rows.utc(row[0]) > self.clock()

    def _oldest_question(self, conn: Any, backlog: int) -> list[int]:
        """The id of the oldest of the ``backlog`` newest waiting questions (none if no
        pause waits). SQLite refuses the statement when one's data is not JSON (an edit
        outside Signoff): it is made again looking into valid data only, the statement
        alone failing (the transaction goes on), for the backlog to step past that one."""
        try:
            found = conn.execute(backlog_rows.waiting_questions().limit(backlog)).scalars().all()
        except SQLAlchemyError as exc:
            if not is_malformed_json(exc):
                raise
            guarded = backlog_rows.waiting_questions(guarded=True).limit(backlog)
            found = conn.execute(guarded).scalars().all()
        return [int(i) for i in found[-1:]]

    def cursor_backlog(self, consumer: str, owner: str, limit: int = 200) -> list[Event] | None:
        """The events of ``read_cursor_backlog``'s page (None when it has none left)."""
        page = self.read_cursor_backlog(consumer, owner, limit)
        return None if page is None else page.events

    @read_again_if_dropped
    def read_cursor_backlog(
        self, consumer: str, owner: str, limit: int = 200, *, reader: str = ""
    ) -> EventPage | None:
        """The next ``limit`` events of ``consumer``'s backlog (see ``lease_cursor``), in id
        order; None when it has none left. Empty when ``owner`` does not hold its lease
        (``advance_backlog`` then says so). A question edited outside Signoff so that it
        cannot be read is stepped past (``skipped``) and said as ``reader``: see
        ``backlog_rows``."""
        with self._read() as conn:
            cursor = conn.execute(
                select(CURSORS.c.backlog_after, CURSORS.c.backlog_until).where(
                    CURSORS.c.consumer == consumer, CURSORS.c.lease_owner == owner
                )
            ).first()
        if cursor is None:
            return EventPage([], 0, False)
        if cursor.backlog_until is None:
            return None
        after = int(cursor.backlog_after or 0)
        values = {"after": after, "until": int(cursor.backlog_until), "limit": limit}
        try:
            with self._read() as conn:
                found = backlog_rows.backlog().execute(conn, values).all()
            events = [rows.to_event(r) for r in found]
        except UNREADABLE as exc:
            return backlog_rows.read_past(self, values, exc, reader=reader or "a consumer")
        return EventPage(events, events[-1].id if events else after, len(events) == limit)

    @write_again_if_dropped
    def advance_backlog(self, consumer: str, owner: str, after: int | None) -> bool:
        """Note ``consumer``'s backlog delivered up to event ``after`` (None: all of it);
        False if ``owner`` does not hold its lease."""
        values = (
            {"backlog_after": None, "backlog_until": None}
            if after is None
            else {"backlog_after": after}
        )
        with self._write() as conn:
            done = conn.execute(
                update(CURSORS)
                .where(CURSORS.c.consumer == consumer, CURSORS.c.lease_owner == owner)
                .values(**values)
            )
            return done.rowcount == 1

    @read_again_if_dropped
    def cursor_position(self, consumer: str, owner: str) -> int | None:
        """``consumer``'s position, if ``owner`` holds its lease; else None."""
        with self._read() as conn:
            row = conn.execute(
                select(CURSORS.c.position).where(
                    CURSORS.c.consumer == consumer, CURSORS.c.lease_owner == owner
                )
            ).first()
        return None if row is None else int(row[0])

    @write_again_if_dropped
    def advance_cursor(self, consumer: str, owner: str, position: int) -> bool:
        with self._write() as conn:
            done = conn.execute(
                update(CURSORS)
                .where(CURSORS.c.consumer == consumer, CURSORS.c.lease_owner == owner)
                .values(position=position)
            )
            return done.rowcount == 1

    @write_again_if_dropped
    def release_cursor(self, consumer: str, owner: str) -> None:
        with self._write() as conn:
            conn.execute(
                update(CURSORS)
                .where(CURSORS.c.consumer == consumer, CURSORS.c.lease_owner == owner)
                .values(lease_owner=None, lease_until=None)
            )

    @write_again_if_dropped
    def forget_cursor(self, consumer: str) -> None:
        """Delete ``consumer``'s cursor, unless a process holds its lease now.

        Raises:
            ConsumerNotFound: There is no cursor of that name.
            ConsumerInUse: A process holds it (its lease has not run out).
        """
        now = self.clock()
        with self._write() as conn:
            gone = conn.execute(
                delete(CURSORS).where(
                    CURSORS.c.consumer == consumer,
                    or_(
                        CURSORS.c.lease_owner.is_(None),
                        CURSORS.c.lease_until.is_(None),
                        CURSORS.c.lease_until <= now,
                    ),
                )
            )
            if gone.rowcount == 1:
                return
            held = conn.execute(
                select(CURSORS.c.lease_owner).where(CURSORS.c.consumer == consumer)
            ).first()
            if held is not None:
                raise ConsumerInUse(consumer, str(held.lease_owner))
            known = conn.execute(select(CURSORS.c.consumer).order_by(CURSORS.c.consumer))
            raise ConsumerNotFound(consumer, list(known.scalars()))

    @write_again_if_dropped
    def claim_once(self, key: str, seconds: float, *, within: float | None = None) -> bool:
        """Claim ``key`` for ``seconds``; False if it is claimed already and not expired.

        ``within``: seconds to wait at most for the write's turn, else ``DatabaseBusy``
        is raised (nothing was claimed)."""
        try:
            return self._claim_once(key, seconds, within)
        except TurnNotGiven as exc:
            assert within is not None
            raise DatabaseBusy(key, within) from exc

    def _claim_once(self, key: str, seconds: float, within: float | None) -> bool:
        now = self.clock()
        with self._write(within=within) as conn:
            # Expired claims go first, so a key can be claimed again and the table stays small.
            conn.execute(delete(ONCE_KEYS).where(ONCE_KEYS.c.expires_at <= now))
            done = conn.execute(
                self._dialect_insert(ONCE_KEYS)
                .values(key=key, expires_at=now + timedelta(seconds=seconds))
                .on_conflict_do_nothing()
                .execution_options(preserve_rowcount=True)
            )
            return bool(done.rowcount == 1)


__all__ = ["CURSORS", "ConsumerQueries"]
