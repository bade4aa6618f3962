"""Queries for requests for input: opening, settling, expiring and cancelling pauses
(answering them is ``engine.store.answers``)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    bindparam,
    func,
    literal_column,
    select,
    update,
)

from signoff.engine.actors import SYSTEM, Actor
from signoff.engine.audit import AuditAction, AuditEntry
from signoff.engine.redaction import hide_secrets
from signoff.engine.runs import JSON, EventKind, Pause, PauseStatus, RunState
from signoff.engine.serialization import is_storable_text
from signoff.engine.store import rows, swept_pauses
from signoff.engine.store.audit import AuditQueries
from signoff.engine.store.base import AUDIT_LOCK, AUDIT_LOCKED, RUNS
from signoff.engine.store.dropped import read_again_if_dropped, write_again_if_dropped
from signoff.engine.store.lenient import as_text
from signoff.engine.store.prepared import Prepared
from signoff.engine.store.riders import Rider
from signoff.engine.store.state_changes import StateChangeQueries
from signoff.engine.store.tables import PauseRow
from signoff.engine.store.undecodable import read_again_if_unreadable, reading_leniently

PAUSES = PauseRow.__table__  # type: ignore[attr-defined]
#: "the pause waits", as the partial indexes on waiting pauses say it (``WAITING_ONLY``):
#: a query over every waiting pause (the timers' sweeps, listings) needs it to use them
IS_WAITING = PAUSES.c.status == literal_column(f"'{PauseStatus.WAITING.value}'")


#: the columns ``_pause_values`` gives
_PAUSE_COLUMNS = (
    *("run_id", "key", "suspend", "status", "input_schema", "title", "description"),
    *("initial", "approvers", "forbid_starter", "created_at", "deadline", "quorum", "veto"),
    *("escalate_at", "escalate_to", "notify", "confirm"),
)


def _pause_values(pause: Pause) -> dict[str, Any]:
    return {
        "run_id": pause.run_id,
        "key": pause.key,
        "suspend": pause.suspend,
        "status": pause.status.value,
        "input_schema": pause.schema,
        "title": pause.title,
        "description": pause.description,
        "initial": pause.initial,
        "approvers": list(pause.approvers),
        "forbid_starter": pause.forbid_starter,
        "created_at": pause.created_at,
        "deadline": pause.deadline,
        "quorum": pause.quorum,
        "veto": pause.veto,
        "escalate_at": pause.escalate_at,
        "escalate_to": list(pause.escalate_to) or None,
        "notify": pause.notify,
        "confirm": pause.confirm,
    }


def _pause_reads(build: Callable[[Sequence[Any]], Any]) -> tuple[Prepared, Prepared]:
    """The read ``build`` makes of the pauses table's columns, and the same read with its
    JSON columns and times as text, for a read made again for a value that could not be
    read (``rows.to_pause`` names it; see ``lenient``)."""
    return Prepared(build(tuple(PAUSES.c))), Prepared(build(as_text(PAUSES.c)))


def _as_read(reads: tuple[Prepared, Prepared]) -> Prepared:
    return reads[1] if reading_leniently() else reads[0]


# Built once, with bound parameters: on the resume path, building a statement costs about
# as much as SQLite takes to run it.
_PAUSE = _pause_reads(
    lambda columns: select(*columns).where(
        PAUSES.c.run_id == bindparam("run_id"), PAUSES.c.key == bindparam("key")
    )
)
#: the pause a run waits on now (the newest, should there ever be two)
_WAITING_PAUSE = _pause_reads(
    lambda columns: (
        select(*columns)
        .where(PAUSES.c.run_id == bindparam("run_id"), PAUSES.c.status == PauseStatus.WAITING.value)
        .order_by(PAUSES.c.id.desc())
        .limit(1)
    )
)
#: the newest pause of a run, whatever its status
_LATEST_PAUSE = _pause_reads(
    lambda columns: (
        select(*columns)
        .where(PAUSES.c.run_id == bindparam("run_id"))
        .order_by(PAUSES.c.id.desc())
        .limit(1)
    )
)

#: what a new pause may start from: the run's newest pause, whether it was refused, and for
#: which model (only these columns: the schema and the rest are not needed)
_LATEST_VERDICT = Prepared(
    select(PAUSES.c.status, PAUSES.c.title, PAUSES.c.response)
    .where(PAUSES.c.run_id == bindparam("run_id"))
    .order_by(PAUSES.c.id.desc())
    .limit(1)
)
#: the flow's verdict on an answered pause
_SETTLING = (
    update(PAUSES)
    .where(
        PAUSES.c.run_id == bindparam("target_run"),
        PAUSES.c.key == bindparam("target_key"),
        PAUSES.c.status == PauseStatus.ANSWERED.value,
    )
    .values(
        status=bindparam("new_status"),
        errors=bindparam("new_errors", type_=PAUSES.c.errors.type),
    )
)
_SETTLE = Prepared(_SETTLING, columns=[("target_run", "target_key", "new_status", "new_errors")])
#: PostgreSQL: the verdict and the audit chain's lock (recording it needs the lock) in one
#: statement where they took two round trips; reads ``settled``
_SETTLE_LOCKING = Prepared(
    select(
        select(func.count())
        .select_from(_SETTLING.returning(PAUSES.c.id).cte("settled"))
        .scalar_subquery()
        .label("settled"),
        func.pg_advisory_xact_lock(bindparam("audit_lock", type_=BigInteger)).label("lock"),
    )
)
_FLOW_OF = Prepared(select(RUNS.c.flow_name).where(RUNS.c.id == bindparam("run_id")))


class PauseQueries(AuditQueries, StateChangeQueries):
    @functools.cached_property
    def _insert_pause(self) -> Prepared:
        """An INSERT of a pause that leaves one already stored under its key alone (built
        once per store: its dialect decides how ON CONFLICT is spelled)."""
        return Prepared(
            self._dialect_insert(PAUSES).on_conflict_do_nothing(index_elements=["run_id", "key"]),
            columns=[_PAUSE_COLUMNS],
            dialect=self.engine.dialect.name,
        )

    def _flow_of(self, conn: Connection, run_id: str) -> str | None:
        row = _FLOW_OF.execute(conn, {"run_id": run_id}).first()
        return None if row is None else str(row[0])

    @read_again_if_dropped
    @read_again_if_unreadable
    def get_pause(self, run_id: str, key: str) -> Pause | None:
        if not (is_storable_text(run_id) and is_storable_text(key)):
            return None
        with self._read() as conn:
            row = _as_read(_PAUSE).execute(conn, {"run_id": run_id, "key": key}).first()
        return None if row is None else rows.to_pause(row)

    @read_again_if_dropped
    @read_again_if_unreadable
    def waiting_pause(self, run_id: str) -> Pause | None:
        """The pause a run is waiting on now, if any."""
        if not is_storable_text(run_id):
            return None
        with self._read() as conn:
            row = _as_read(_WAITING_PAUSE).execute(conn, {"run_id": run_id}).first()
        return None if row is None else rows.to_pause(row)

    @read_again_if_dropped
    @read_again_if_unreadable
    def latest_pause(self, run_id: str) -> Pause | None:
        """The newest pause of a run, whatever its status."""
        with self._read() as conn:
            row = _as_read(_LATEST_PAUSE).execute(conn, {"run_id": run_id}).first()
        return None if row is None else rows.to_pause(row)

    @read_again_if_dropped
    def refused_just_before(self, run_id: str, title: str | None) -> dict[str, Any] | None:
        """The answer to the run's newest pause if the flow refused it and that pause asked
        for a model of this title (a new pause asking again starts from it); else None.

        Only the newest pause counts: once a later question was asked, an older refusal is
        no longer what the person is fixing. (Read through the run's (run_id, key) index.)"""
        with self._read() as conn:
            row = _LATEST_VERDICT.execute(conn, {"run_id": run_id}).first()
        if (
            row is None
            or row.status != PauseStatus.REJECTED.value
            or row.title != title
            or not isinstance(row.response, dict)
        ):
            return None
        return dict(row.response)

    @write_again_if_dropped
    def open_pause(
        self,
        pause: Pause,
        owner: str | None,
        logs: Sequence[tuple[datetime, str, str, str | None]] = (),
        *,
        runner: str | None = None,
    ) -> bool:
        """Store the pause and move the run to PAUSED (or SUSPENDED) in one transaction,
        with the flow's log lines since its last write. False, with only the logs stored,
        when the run is no longer RUNNING (cancelled, or already waiting on another pause)
        or, with ``runner``, no longer run by that process (another took it over).

        The schema, description and state change land together, so a resume can never see
        a waiting run without its schema.
        """
        state = RunState.SUSPENDED if pause.suspend or owner is None else RunState.PAUSED
        name = "Suspended" if state is RunState.SUSPENDED else "Paused"
        with self._write() as conn:
            self._insert_logs(conn, pause.run_id, logs)
            moved = self._change_state(
                conn,
                pause.run_id,
                state,
                name,
                f"waiting for input {pause.key!r}",
                pause.created_at,
                expect=(RunState.RUNNING,),
                expect_owner=runner,
                owner=owner,
            )
            if not moved:
                return False
            # A re-run takes up the pause it stored before: keep that one.
            self._insert_pause.execute(conn, _pause_values(pause))
            self._emit(
                conn,
                pause.run_id,
                EventKind.WAITING_FOR_INPUT,
                {
                    "key": pause.key,
                    "suspend": state is RunState.SUSPENDED,
                    # whether it set a timer that other processes' schedulers must look at
                    "timed": pause.deadline is not None or pause.escalate_at is not None,
                },
                pause.created_at,
            )
        return True

    @staticmethod
    def _verdict_entry(
        run_id: str,
        flow_name: str | None,
        key: str,
        responder: str | None,
        verdict: tuple[bool, dict[str, str]],
        responders: Sequence[str | None] = (),
    ) -> AuditEntry:
        """The flow's verdict, recorded as the engine's act about ``responder``'s answer
        (for a refused quorum, the answer refused). ``responders``: a quorum's, oldest
        first, whose answers the verdict judged as one."""
        data: dict[str, JSON] = {"responder": responder}
        if len(responders) > 1:
            data["responders"] = list(responders)
        if verdict[0]:
            return AuditEntry(AuditAction.ANSWER_ACCEPTED, run_id, flow_name, SYSTEM, key, data)
        return AuditEntry(
            AuditAction.ANSWER_REJECTED,
            run_id,
            flow_name,
            SYSTEM,
            key,
            {**data, "errors": verdict[1]},
        )

    @write_again_if_dropped
    def settle_pause(
        self,
        pause: Pause,
        accepted: bool,
        errors: dict[str, str] | None = None,
        *,
        flow_name: str | None = None,
    ) -> bool:
        """Record the flow's verdict on an answered pause; False if it was already recorded.

        ``flow_name``: the run's, when the caller knows it (saves reading it)."""
        with self._write() as conn:
            return self._settle(conn, self.clock(), pause, accepted, errors, flow_name)

    def accept_later(
        self, pause: Pause, *, flow_name: str | None, then: Callable[[], None] | None = None
    ) -> None:
        """Record that the flow accepted an answered pause, ahead of this process's next
        write (``engine.store.riders``): the flow goes on without waiting for it. ``then``
        runs once it has committed."""
        self.riders.add(
            Rider(
                lambda conn, now: self._settle(conn, now, pause, True, None, flow_name),
                {"run_id": pause.run_id, "key": pause.key},
                then,
            )
        )

    def _settle(
        self,
        conn: Connection,
        now: datetime,
        pause: Pause,
        accepted: bool,
        errors: dict[str, str] | None,
        flow_name: str | None,
    ) -> bool:
        run_id, key = pause.run_id, pause.key
        status = PauseStatus.ACCEPTED if accepted else PauseStatus.REJECTED
        values = {
            "target_run": run_id,
            "target_key": key,
            "new_status": status.value,
            "new_errors": errors or None,
        }
        if self.is_sqlite or conn.info.get(AUDIT_LOCKED):
            settled = _SETTLE.execute(conn, values).rowcount
        else:
            settled = _SETTLE_LOCKING.execute(conn, {**values, "audit_lock": AUDIT_LOCK}).scalar()
            conn.info[AUDIT_LOCKED] = True
        if settled != 1:
            return False
        data: dict[str, JSON] = {"key": key, "responder": pause.responder}
        if not accepted:
            data["errors"] = errors or {}
            data["response"] = hide_secrets(pause.schema, pause.response)  # shown to people
        kind = EventKind.INPUT_ACCEPTED if accepted else EventKind.INPUT_REJECTED
        self._emit(conn, run_id, kind, data, now)
        # The verdict is the flow's, on the answer as a whole (every answer of a quorum).
        self._audit(
            conn,
            [
                self._verdict_entry(
                    run_id,
                    flow_name or self._flow_of(conn, run_id),
                    key,
                    pause.responder,
                    (accepted, errors or {}),
                    pause.answered_by,
                )
            ],
            now,
        )
        return True

    @write_again_if_dropped
    def expire_pause(self, run_id: str, key: str, *, resumed_by: str | None = None) -> bool:
        """Mark a waiting pause as timed out; False if it no longer waits.

        With ``resumed_by`` (the process running the flow), the run, paused and owned by it,
        is running again in the same transaction: the flow stopped awaiting the pause and
        went on, and no moment reads it as paused on a pause that no longer waits."""
        now = self.clock()
        with self._write() as conn:
            done = conn.execute(
                update(PAUSES)
                .where(
                    PAUSES.c.run_id == run_id,
                    PAUSES.c.key == key,
                    PAUSES.c.status == PauseStatus.WAITING.value,
                )
                .values(status=PauseStatus.TIMED_OUT.value)
            )
            if done.rowcount != 1:
                return False
            self._emit(conn, run_id, EventKind.PAUSE_TIMED_OUT, {"key": key}, now)
            # A quorum answered in part says how far it got.
            got = conn.execute(
                select(PAUSES.c.answers, PAUSES.c.quorum).where(
                    PAUSES.c.run_id == run_id, PAUSES.c.key == key
                )
            ).first()
            data: dict[str, JSON] = {}
            if got is not None and (got.quorum or 1) > 1:
                data = {"answers": len(got.answers or ()), "quorum": got.quorum}
            flow_name = self._flow_of(conn, run_id)
            self._audit(
                conn, [AuditEntry(AuditAction.TIMED_OUT, run_id, flow_name, SYSTEM, key, data)], now
            )
            if resumed_by is not None:
                self._change_state(
                    conn,
                    run_id,
                    RunState.RUNNING,
                    "Running",
                    f"stopped waiting for input {key!r}",
                    now,
                    expect=(RunState.PAUSED,),
                    expect_owner=resumed_by,
                    owner=resumed_by,
                )
            return True

    @write_again_if_dropped
    def close_waiting_pauses(self, run_id: str) -> int:
        """Cancel the pauses a run that ended (failed, crashed) still waits on: nobody can
        answer them now, and they must not read as waiting. How many there were."""
        with self._write() as conn:
            done = conn.execute(
                update(PAUSES)
                .where(PAUSES.c.run_id == run_id, PAUSES.c.status == PauseStatus.WAITING.value)
                .values(status=PauseStatus.CANCELLED.value)
            )
            return int(done.rowcount)

    @read_again_if_dropped
    def due_pauses(self, now: datetime) -> list[Pause]:
        """Waiting pauses whose deadline has passed."""
        return self._waiting_pauses(PAUSES.c.deadline.is_not(None), PAUSES.c.deadline <= now)

    def _waiting_pauses(self, *conditions: ColumnElement[bool]) -> list[Pause]:
        """Waiting pauses that meet every one of ``conditions`` (a timer's due ones), but
        those edited outside Signoff so that they cannot be read (see ``swept_pauses``)."""
        try:
            with self._read() as conn:
                found = conn.execute(select(PAUSES).where(IS_WAITING, *conditions)).all()
            return [rows.to_pause(r) for r in found]
        except swept_pauses.UNREADABLE as exc:
            leniently = select(*as_text(PAUSES.c)).where(IS_WAITING, *conditions)
            return swept_pauses.readable_pauses(self, leniently, exc)

    @write_again_if_dropped
    def cancel(self, run_id: str, message: str, actor: Actor | None = None) -> bool:
        """Cancel a run that has not finished, and every pause it waits on."""
        now = self.clock()
        with self._write() as conn:
            row = conn.execute(
                select(RUNS.c.state, RUNS.c.flow_name).where(RUNS.c.id == run_id)
            ).first()
            if row is None or RunState(row.state).is_final:
                return False
            conn.execute(
                update(PAUSES)
                .where(PAUSES.c.run_id == run_id, PAUSES.c.status == PauseStatus.WAITING.value)
                .values(status=PauseStatus.CANCELLED.value)
            )
            self._change_state(
                conn, run_id, RunState.CANCELLED, "Cancelled", message, now, owner=None
            )
            self._audit(
                conn,
                [
                    AuditEntry(
                        AuditAction.RUN_CANCELLED,
                        run_id,
                        row.flow_name,
                        actor,
                        None,
                        {"reason": message, "from_state": row.state},
                    )
                ],
                now,
            )
            return True
