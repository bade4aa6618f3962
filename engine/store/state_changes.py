"""The statements that change a run's state, each guarded by what the run must be now.

A change can require the run to be in one of some states (``expect``) and owned by a
process (``expect_owner``); a change whose run is no longer so changes nothing, and the
caller learns it from the row count. ``set_state`` is the UPDATE alone, for a write
transaction that stores more; ``set_state_alone`` is PostgreSQL's whole state change in
one autocommit statement (the UPDATE, the events' lock with its NOTIFY, the event).
Both are built once per shape and kept (``functools.cache``). ``StateChangeQueries`` runs
them and records each change as an event.

Example::

    statement = set_state(1, False)
    statement.execute(conn, {**guard_values(run_id, [RunState.RUNNING], None), ...})
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Connection, bindparam, func, insert, select, true, update

from signoff.engine.runs import EventKind, RunState
from signoff.engine.store.base import EVENT_LOCK, NOTIFY_CHANNEL, StoreBase
from signoff.engine.store.dropped import write_again_if_dropped
from signoff.engine.store.prepared import Prepared
from signoff.engine.store.tables import EventRow, RunRow

RUNS = RunRow.__table__  # type: ignore[attr-defined]
EVENTS = EventRow.__table__  # type: ignore[attr-defined]


def checked(column: Any) -> Any:
    """``column`` as a condition checked on a row found by its key, never a way to find
    rows. PostgreSQL, with statistics that had not seen the value (the id of a process
    started since, a state no run was in when they were taken), otherwise found the run
    through that column's index, reading every run with the value: 567 pages for one run
    among 40,000 paused. An expression on the column matches no index; a NOT NULL column,
    or a value that is never empty, makes ``coalesce`` change nothing else."""
    return func.coalesce(column, "")


def guarded(expected: int, owned: bool) -> list[Any]:
    """The run ``target_run``, only in one of ``expected`` states (bound as ``expect_0``...)
    and, if ``owned``, only while ``expect_owner`` owns it."""
    conditions = [RUNS.c.id == bindparam("target_run")]
    if expected:
        states: list[Any] = [bindparam(f"expect_{i}") for i in range(expected)]
        conditions.append(checked(RUNS.c.state).in_(states))
    if owned:
        conditions.append(checked(RUNS.c.owner) == bindparam("expect_owner"))
    return conditions


def guard_values(
    run_id: str, expect: Sequence[RunState] | None, expect_owner: str | None
) -> dict[str, Any]:
    """The values ``guarded`` binds."""
    values: dict[str, Any] = {"target_run": run_id}
    values.update({f"expect_{i}": each.value for i, each in enumerate(expect or ())})
    if expect_owner is not None:
        values["expect_owner"] = expect_owner
    return values


#: The changes of a run's life, as (how many states they expect, whether the process
#: running it must still own it, the columns they set besides the state): compiled as an
#: engine starts (``Prepared.compile_all``), rather than on the first run's clock.
_LIFE: tuple[tuple[int, bool, frozenset[str]], ...] = (
    (0, False, frozenset()),  # answered: the flow goes on here
    (0, False, frozenset({"owner"})),  # ... or in a worker
    (1, True, frozenset({"owner"})),  # paused again
    (1, True, frozenset({"owner", "result"})),  # completed
    (2, True, frozenset({"owner"})),  # failed
    (2, False, frozenset({"owner"})),  # timed out
)
_STATE = ("state", "state_name", "state_message", "updated_at")


def _guard_names(expected: int, owned: bool) -> tuple[str, ...]:
    """The names ``guard_values`` binds for this shape."""
    owner = ("expect_owner",) if owned else ()
    return ("target_run", *(f"expect_{i}" for i in range(expected)), *owner)


@functools.cache
def set_state(expected: int, owned: bool) -> Prepared:
    """A run's new state, where ``guarded`` finds it; the new values are bound by their
    columns' names."""
    guard = _guard_names(expected, owned)
    usual = [(*guard, *_STATE, *cols) for n, o, cols in _LIFE if (n, o) == (expected, owned)]
    return Prepared(update(RUNS).where(*guarded(expected, owned)), columns=usual)


@functools.cache
def set_state_alone(expected: int, owned: bool, columns: frozenset[str]) -> Prepared:
    """PostgreSQL: ``set_state``, the events' lock with its NOTIFY, and the STATE_CHANGED
    event in one statement, which runs in autocommit as a transaction of its own: one round
    trip where BEGIN, UPDATE, lock, INSERT and COMMIT took five. The event is inserted
    only if the run changed, and its id is drawn after the lock is taken (a row of the
    join needs both sides). New values are bound as ``new_state``..., the rest as in
    ``set_state``."""
    conditions = guarded(expected, owned)
    names = ("state", "state_name", "state_message", "updated_at", *sorted(columns))
    changed = (
        update(RUNS)
        .where(*conditions)
        .values({n: bindparam(f"new_{n}", type_=RUNS.c[n].type) for n in names})
        .returning(RUNS.c.id)
        .cte("changed")
    )
    locked = select(
        func.pg_advisory_xact_lock(bindparam("lock_key", type_=BigInteger)),
        func.pg_notify(bindparam("channel"), bindparam("notice")),
    ).subquery("locked")
    event = select(
        changed.c.id,
        bindparam("kind", type_=EVENTS.c.kind.type),
        bindparam("data", type_=EVENTS.c.data.type),
        bindparam("at", type_=EVENTS.c.at.type),
    ).select_from(changed.join(locked, true()))
    bound = (
        *(f"new_{n}" for n in names),
        *_guard_names(expected, owned),
        *("lock_key", "channel", "notice", "kind", "data", "at"),
    )
    return Prepared(
        insert(EVENTS).from_select(["run_id", "kind", "data", "at"], event).returning(EVENTS.c.id),
        columns=[bound],
    )


for _expected, _owned, _columns in _LIFE:
    set_state(_expected, _owned)
    set_state_alone(_expected, _owned, _columns)


class StateChangeQueries(StoreBase):
    """Changing a run's state with the statements above, and recording the change."""

    def _change_state(
        self,
        conn: Connection,
        run_id: str,
        state: RunState,
        name: str,
        message: str | None,
        at: datetime,
        *,
        expect: Sequence[RunState] | None = None,
        expect_owner: str | None = None,
        **columns: Any,
    ) -> bool:
        """Update the run (only from a state in ``expect``, only while ``expect_owner``
        owns it) and record the change; True if done."""
        if expect is not None and not expect:
            return False
        values: dict[str, Any] = {
            "state": state.value,
            "state_name": name,
            "state_message": message,
            "updated_at": at,
            **columns,
            **guard_values(run_id, expect, expect_owner),
        }
        statement = set_state(len(expect or ()), expect_owner is not None)
        done = statement.execute(conn, values)
        if done.rowcount != 1:
            return False
        self._state_changed(conn, run_id, state, name, message, at)
        return True

    def _state_changed(
        self,
        conn: Connection,
        run_id: str,
        state: RunState,
        name: str,
        message: str | None,
        at: datetime,
    ) -> None:
        """Record that the run changed state, in the caller's transaction."""
        self._emit(
            conn,
            run_id,
            EventKind.STATE_CHANGED,
            {"state": state.value, "name": name, "message": message},
            at,
        )

    @write_again_if_dropped
    def suspend_paused(
        self, owner: str, message: str, runs: Sequence[str] | None = None
    ) -> list[str]:
        """Suspend every run paused in process ``owner`` (its flows wait there for an
        answer), or only those of ``runs``, in one transaction; the ids of those suspended."""
        now = self.clock()
        only = () if runs is None else (RUNS.c.id.in_(list(runs)),)
        with self._write() as conn:
            found = conn.execute(
                update(RUNS)
                .where(RUNS.c.owner == owner, RUNS.c.state == RunState.PAUSED.value, *only)
                .values(
                    state=RunState.SUSPENDED.value,
                    state_name="Suspended",
                    state_message=message,
                    updated_at=now,
                    owner=None,
                )
                .returning(RUNS.c.id)
            )
            suspended = sorted(row.id for row in found)
            for run_id in suspended:
                self._state_changed(conn, run_id, RunState.SUSPENDED, "Suspended", message, now)
        return suspended

    def _change_state_alone(
        self,
        run_id: str,
        state: RunState,
        name: str,
        message: str | None,
        at: datetime,
        *,
        expect: Sequence[RunState] | None = None,
        expect_owner: str | None = None,
        **columns: Any,
    ) -> bool:
        """PostgreSQL: ``_change_state`` as a transaction of its own, in one round trip
        (see ``set_state_alone``); True if done."""
        if expect is not None and not expect:
            return False
        event = {
            "kind": EventKind.STATE_CHANGED.value,
            "data": {"state": state.value, "name": name, "message": message},
        }
        values: dict[str, Any] = {
            "new_state": state.value,
            "new_state_name": name,
            "new_state_message": message,
            "new_updated_at": at,
            **{f"new_{column}": value for column, value in columns.items()},
            **guard_values(run_id, expect, expect_owner),
            "lock_key": EVENT_LOCK,
            "channel": NOTIFY_CHANNEL,
            "notice": self._notice([event]),
            "at": at,
            **event,
        }
        statement = set_state_alone(len(expect or ()), expect_owner is not None, frozenset(columns))
        with self._write_one() as conn:
            return statement.execute(conn, values).first() is not None


__all__ = ["StateChangeQueries", "guard_values", "guarded", "set_state", "set_state_alone"]
