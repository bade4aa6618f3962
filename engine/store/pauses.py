"""Queries for requests for input: opening, answering, settling and expiring pauses."""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Connection, bindparam, exists, func, select, update

from signoff.engine.actors import SYSTEM, Actor
from signoff.engine.audit import AuditAction, AuditEntry
from signoff.engine.runs import JSON, EventKind, GivenAnswer, Pause, PauseStatus, RunState
from signoff.engine.store import rows, state_changes
from signoff.engine.store.audit import AuditQueries
from signoff.engine.store.base import AUDIT_LOCK, AUDIT_LOCKED, RUNS
from signoff.engine.store.prepared import Prepared
from signoff.engine.store.riders import Rider
from signoff.engine.store.tables import PauseRow

PAUSES = PauseRow.__table__  # type: ignore[attr-defined]


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


# Built once, with bound parameters: on the resume path, building a statement costs about
# as much as SQLite takes to run it.
_PAUSE = Prepared(
    select(PAUSES).where(PAUSES.c.run_id == bindparam("run_id"), PAUSES.c.key == bindparam("key"))
)
#: the pause a run waits on now (the newest, should there ever be two)
WAITING_PAUSE = Prepared(
    select(PAUSES)
    .where(PAUSES.c.run_id == bindparam("run_id"), PAUSES.c.status == PauseStatus.WAITING.value)
    .order_by(PAUSES.c.id.desc())
    .limit(1)
)

#: the newest rejected answer in a run to a model of one title (asking again prefills it)
_LAST_REJECTED = Prepared(
    select(PAUSES)
    .where(
        PAUSES.c.run_id == bindparam("run_id"),
        PAUSES.c.status == PauseStatus.REJECTED.value,
        PAUSES.c.title.is_not_distinct_from(bindparam("title")),
    )
    .order_by(PAUSES.c.id.desc())
    .limit(1)
)
#: the flow's verdict on an answered pause
_SETTLE = Prepared(
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
#: what storing an answer checks first (locked on PostgreSQL: answers to a quorum append
#: in turn; on SQLite the write transaction already excludes every other writer)
_ANSWERING = select(PAUSES.c.status, PAUSES.c.quorum, PAUSES.c.veto, PAUSES.c.answers).where(
    PAUSES.c.run_id == bindparam("target_run"), PAUSES.c.key == bindparam("target_key")
)
_ANSWERING_SQLITE = Prepared(_ANSWERING)
_ANSWERING_LOCKED = Prepared(_ANSWERING.with_for_update())


@functools.cache
def _answered_and_moved(owner_cleared: bool) -> Prepared:
    """PostgreSQL: the pause as answered if it still waits, then the run moved on, and the
    audit chain's lock, in one statement where three took a round trip each. Reads
    ``answered`` (whether the pause still waited) and ``moved`` (whether the run changed)."""
    answered = (
        update(PAUSES)
        .where(
            PAUSES.c.run_id == bindparam("target_run"),
            PAUSES.c.key == bindparam("target_key"),
            PAUSES.c.status == PauseStatus.WAITING.value,
        )
        .values(
            {
                name: bindparam(f"new_{name}", type_=PAUSES.c[name].type)
                for name in ("status", "response", "responder", "answered_at", "errors", "answers")
            }
        )
        .returning(PAUSES.c.id)
        .cte("answered")
    )
    names = ("state", "state_name", "state_message", "updated_at")
    values: dict[str, Any] = {n: bindparam(f"new_{n}", type_=RUNS.c[n].type) for n in names}
    if owner_cleared:
        values["owner"] = None
    # Reading ``answered`` makes the pause's row change (and lock) first, as everywhere.
    moved = (
        update(RUNS)
        .where(RUNS.c.id == bindparam("target_run"), exists(select(answered.c.id)))
        .values(values)
        .returning(RUNS.c.id)
        .cte("moved")
    )
    return Prepared(
        select(
            select(func.count()).select_from(answered).scalar_subquery().label("answered"),
            select(func.count()).select_from(moved).scalar_subquery().label("moved"),
            func.pg_advisory_xact_lock(bindparam("audit_lock", type_=BigInteger)).label("lock"),
        )
    )


#: the pause as answered (or, short of its quorum, with one more answer): the columns to
#: set come with the parameters
_ANSWER = Prepared(
    update(PAUSES).where(
        PAUSES.c.run_id == bindparam("target_run"),
        PAUSES.c.key == bindparam("target_key"),
        PAUSES.c.status == PauseStatus.WAITING.value,
    ),
    columns=[
        ("target_run", "target_key", "answers"),
        (
            *("target_run", "target_key", "status", "errors", "response", "responder"),
            *("answered_at", "answers"),
        ),
    ],
)
_FLOW_OF = Prepared(select(RUNS.c.flow_name).where(RUNS.c.id == bindparam("run_id")))


class AnswerOutcome(enum.Enum):
    """What storing one answer did."""

    #: the pause has its answer (or its quorum); the run moves on
    COMPLETE = "complete"
    #: one more answer of a quorum; the pause still waits
    COUNTED = "counted"
    #: this person already answered this pause
    DUPLICATE = "duplicate"
    #: the pause no longer waits (someone else finished it, it timed out, ...)
    LOST = "lost"


class PauseQueries(AuditQueries):
    @functools.cached_property
    def _insert_pause(self) -> Prepared:
        """An INSERT of a pause that leaves one already stored under its key alone (built
        once per store: its dialect decides how ON CONFLICT is spelled)."""
        return Prepared(
            self._dialect_insert(PAUSES).on_conflict_do_nothing(index_elements=["run_id", "key"])
        )

    def _flow_of(self, conn: Connection, run_id: str) -> str | None:
        row = _FLOW_OF.execute(conn, {"run_id": run_id}).first()
        return None if row is None else str(row[0])

    def get_pause(self, run_id: str, key: str) -> Pause | None:
        with self._read() as conn:
            row = _PAUSE.execute(conn, {"run_id": run_id, "key": key}).first()
        return None if row is None else rows.to_pause(row)

    def waiting_pause(self, run_id: str) -> Pause | None:
        """The pause a run is waiting on now, if any."""
        with self._read() as conn:
            row = WAITING_PAUSE.execute(conn, {"run_id": run_id}).first()
        return None if row is None else rows.to_pause(row)

    def last_rejected(self, run_id: str, title: str | None) -> Pause | None:
        """The newest rejected answer in this run to a model of the same title."""
        with self._read() as conn:
            row = _LAST_REJECTED.execute(conn, {"run_id": run_id, "title": title}).first()
        return None if row is None else rows.to_pause(row)

    def open_pause(
        self,
        pause: Pause,
        owner: str | None,
        logs: Sequence[tuple[datetime, str, str, str | None]] = (),
    ) -> None:
        """Store the pause and move the run to PAUSED (or SUSPENDED) in one transaction,
        with the flow's log lines since its last write.

        The schema, description and state change land together, so a resume can never see
        a waiting run without its schema.
        """
        state = RunState.SUSPENDED if pause.suspend or owner is None else RunState.PAUSED
        name = "Suspended" if state is RunState.SUSPENDED else "Paused"
        with self._write() as conn:
            self._insert_logs(conn, pause.run_id, logs)
            # A re-run takes up the pause it stored before: keep that one.
            self._insert_pause.execute(conn, _pause_values(pause))
            self._change_state(
                conn,
                pause.run_id,
                state,
                name,
                f"waiting for input {pause.key!r}",
                pause.created_at,
                owner=owner,
            )
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

    def answer_pause(
        self,
        run_id: str,
        key: str,
        response: JSON,
        actor: Actor | None,
        next_state: RunState,
        verdict: tuple[bool, dict[str, str]] | None = None,
        *,
        flow_name: str | None = None,
        known: Pause | None = None,
    ) -> AnswerOutcome:
        """Store one answer if the pause still waits, with its audit record.

        A pause that needs one answer (or whose quorum this answer completes, or whose veto
        field this answer sets to false) is answered: the run moves on in the same
        transaction, to RUNNING when its process waits for the answer, or to SCHEDULED so
        that a worker runs the flow again. With ``verdict`` (accepted, errors), the flow's
        model already judged the answer in this process, and that is recorded too. Short of
        its quorum, the answer is added to the pause, which keeps waiting.

        ``known``: the pause as the caller read it. Its quorum and veto field never change;
        on PostgreSQL a pause that needs one answer is then answered without reading it
        first (the UPDATE finds whether it still waits, under its row's lock).
        """
        now = self.clock()
        responder = actor.id if actor else None
        given = GivenAnswer(
            responder=responder,
            name=(actor.name or actor.id) if actor else None,
            via=actor.via.value if actor else None,
            input=response,
            at=now,
        )
        # Someone waits on an answer (the flow, and the person who gave it): it goes ahead
        # of this process's queued bookkeeping writes.
        with self._write(urgent=True) as conn:
            target = {"target_run": run_id, "target_key": key}
            if not self.is_sqlite and known is not None and known.quorum <= 1:
                # Nobody answered before (a first answer completes it): nothing to read.
                stored: list[dict[str, Any]] = []
                quorum, veto = 1, known.veto
            else:
                query = _ANSWERING_SQLITE if self.is_sqlite else _ANSWERING_LOCKED
                row = query.execute(conn, target).first()
                if row is None or row.status != PauseStatus.WAITING.value:
                    return AnswerOutcome.LOST
                stored = list(row.answers or [])
                if responder is not None and any(a.get("responder") == responder for a in stored):
                    return AnswerOutcome.DUPLICATE
                quorum, veto = int(row.quorum or 1), row.veto
            stored.append(rows.given_answer_json(given))
            vetoed = bool(veto and isinstance(response, dict) and response.get(veto) is False)
            flow_name = flow_name or self._flow_of(conn, run_id)
            received = AuditEntry(
                AuditAction.ANSWER_RECEIVED,
                run_id,
                flow_name,
                actor,
                key,
                {"input": response, "count": len(stored), "quorum": quorum, "veto": vetoed},
            )
            if len(stored) < quorum and not vetoed:
                _ANSWER.execute(conn, {**target, "answers": stored})
                self._emit(
                    conn,
                    run_id,
                    EventKind.ANSWER_COUNTED,
                    {"key": key, "responder": responder, "count": len(stored), "quorum": quorum},
                    now,
                )
                self._audit(conn, [received], now)
                return AnswerOutcome.COUNTED
            status = PauseStatus.ANSWERED
            if verdict is not None:
                status = PauseStatus.ACCEPTED if verdict[0] else PauseStatus.REJECTED
            answered = {
                "status": status.value,
                "errors": verdict[1] or None if verdict else None,
                "response": response if quorum == 1 else [a["input"] for a in stored],
                "responder": responder,
                "answered_at": now,
                "answers": stored,
            }
            name = "Resuming" if next_state is RunState.SCHEDULED else "Running"
            message = f"input {key!r} from {responder or 'anonymous'}"
            owner_cleared = next_state is RunState.SCHEDULED
            if self.is_sqlite:
                _ANSWER.execute(conn, {**target, **answered})
                moved = (
                    state_changes.set_state(0, False)
                    .execute(
                        conn,
                        {
                            **state_changes.guard_values(run_id, None, None),
                            "state": next_state.value,
                            "state_name": name,
                            "state_message": message,
                            "updated_at": now,
                            **({"owner": None} if owner_cleared else {}),
                        },
                    )
                    .rowcount
                )
            else:
                done = (
                    _answered_and_moved(owner_cleared)
                    .execute(
                        conn,
                        {
                            **target,
                            **{f"new_{column}": value for column, value in answered.items()},
                            "new_state": next_state.value,
                            "new_state_name": name,
                            "new_state_message": message,
                            "new_updated_at": now,
                            "audit_lock": AUDIT_LOCK,
                        },
                    )
                    .first()
                )
                conn.info[AUDIT_LOCKED] = True
                if not done.answered:
                    # Answered, ended or gone since the caller read it: nothing was written.
                    return AnswerOutcome.LOST
                moved = done.moved
            arrived: dict[str, JSON] = {"key": key, "responder": responder}
            if quorum == 1:
                # The flow waiting in another process takes the answer from the event, which
                # commits with it, rather than reading the pause back.
                arrived["response"] = response
            # With a verdict, the flow waits here and is handed the answer by this process.
            self._emit(
                conn,
                run_id,
                EventKind.INPUT_RECEIVED,
                arrived,
                now,
                handed_over=verdict is not None,
            )
            if moved:
                self._state_changed(conn, run_id, next_state, name, message, now)
            entries = [received]
            if verdict is not None:
                data: dict[str, JSON] = {"key": key, "responder": responder}
                if not verdict[0]:
                    data.update(errors=verdict[1], response=response)
                kind = EventKind.INPUT_ACCEPTED if verdict[0] else EventKind.INPUT_REJECTED
                self._emit(conn, run_id, kind, data, now)
                entries.append(self._verdict_entry(run_id, flow_name, key, responder, verdict))
            self._audit(conn, entries, now)
            return AnswerOutcome.COMPLETE

    @staticmethod
    def _verdict_entry(
        run_id: str,
        flow_name: str | None,
        key: str,
        responder: str | None,
        verdict: tuple[bool, dict[str, str]],
    ) -> AuditEntry:
        """The flow's verdict, recorded as the engine's act about ``responder``'s answer."""
        if verdict[0]:
            return AuditEntry(
                AuditAction.ANSWER_ACCEPTED,
                run_id,
                flow_name,
                SYSTEM,
                key,
                {"responder": responder},
            )
        return AuditEntry(
            AuditAction.ANSWER_REJECTED,
            run_id,
            flow_name,
            SYSTEM,
            key,
            {"responder": responder, "errors": verdict[1]},
        )

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
        done = _SETTLE.execute(
            conn,
            {
                "target_run": run_id,
                "target_key": key,
                "new_status": status.value,
                "new_errors": errors or None,
            },
        )
        if done.rowcount != 1:
            return False
        data: dict[str, JSON] = {"key": key, "responder": pause.responder}
        if not accepted:
            data["errors"] = errors or {}
            data["response"] = pause.response
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
                )
            ],
            now,
        )
        return True

    def expire_pause(self, run_id: str, key: str) -> bool:
        """Mark a waiting pause as timed out; False if it no longer waits."""
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
            self._audit(
                conn,
                [
                    AuditEntry(
                        AuditAction.TIMED_OUT, run_id, self._flow_of(conn, run_id), SYSTEM, key
                    )
                ],
                now,
            )
            return True

    def due_pauses(self, now: datetime) -> list[Pause]:
        """Waiting pauses whose deadline has passed."""
        with self._read() as conn:
            found = conn.execute(
                select(PAUSES).where(
                    PAUSES.c.status == PauseStatus.WAITING.value,
                    PAUSES.c.deadline.is_not(None),
                    PAUSES.c.deadline <= now,
                )
            ).all()
        return [rows.to_pause(r) for r in found]

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
