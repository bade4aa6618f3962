"""Queries for requests for input: opening, answering, settling and expiring pauses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update

from engine.runs import JSON, EventKind, Pause, PauseStatus, RunState
from engine.store import rows
from engine.store.base import RUNS, StoreBase
from engine.store.tables import PauseRow

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
    }


# Built once, with bound parameters: on the resume path, building a statement costs about
# as much as SQLite takes to run it.
_PAUSE = select(PAUSES).where(
    PAUSES.c.run_id == bindparam("run_id"), PAUSES.c.key == bindparam("key")
)
#: the pause a run waits on now (the newest, should there ever be two)
WAITING_PAUSE = (
    select(PAUSES)
    .where(PAUSES.c.run_id == bindparam("run_id"), PAUSES.c.status == PauseStatus.WAITING.value)
    .order_by(PAUSES.c.id.desc())
    .limit(1)
)


class PauseQueries(StoreBase):
    def get_pause(self, run_id: str, key: str) -> Pause | None:
        with self._read() as conn:
            row = conn.execute(_PAUSE, {"run_id": run_id, "key": key}).first()
        return None if row is None else rows.to_pause(row)

    def waiting_pause(self, run_id: str) -> Pause | None:
        """The pause a run is waiting on now, if any."""
        with self._read() as conn:
            row = conn.execute(WAITING_PAUSE, {"run_id": run_id}).first()
        return None if row is None else rows.to_pause(row)

    def last_rejected(self, run_id: str, title: str | None) -> Pause | None:
        """The newest rejected answer in this run to a model of the same title."""
        with self._read() as conn:
            row = conn.execute(
                select(PAUSES)
                .where(
                    PAUSES.c.run_id == run_id,
                    PAUSES.c.status == PauseStatus.REJECTED.value,
                    PAUSES.c.title == title,
                )
                .order_by(PAUSES.c.id.desc())
                .limit(1)
            ).first()
        return None if row is None else rows.to_pause(row)

    def open_pause(self, pause: Pause, owner: str | None) -> None:
        """Store the pause and move the run to PAUSED (or SUSPENDED) in one transaction.

        The schema, description and state change land together, so a resume can never see
        a waiting run without its schema.
        """
        state = RunState.SUSPENDED if pause.suspend or owner is None else RunState.PAUSED
        name = "Suspended" if state is RunState.SUSPENDED else "Paused"
        with self._write() as conn:
            existing = conn.execute(
                select(PAUSES.c.id).where(
                    PAUSES.c.run_id == pause.run_id, PAUSES.c.key == pause.key
                )
            ).first()
            if existing is None:
                conn.execute(insert(PAUSES).values(**_pause_values(pause)))
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
                {"key": pause.key, "suspend": state is RunState.SUSPENDED},
                pause.created_at,
            )

    def answer_pause(
        self,
        run_id: str,
        key: str,
        response: JSON,
        responder: str | None,
        next_state: RunState,
        verdict: tuple[bool, dict[str, str]] | None = None,
    ) -> bool:
        """Store the answer if the pause still waits; False if someone else answered first.

        The run moves on in the same transaction: to RUNNING when its process waits for the
        answer, or to SCHEDULED so that a worker runs the flow again. With ``verdict``
        (accepted, errors), the flow's model already judged the answer in this process, and
        that is recorded in the same transaction too.
        """
        now = self.clock()
        status = PauseStatus.ANSWERED
        if verdict is not None:
            status = PauseStatus.ACCEPTED if verdict[0] else PauseStatus.REJECTED
        with self._write() as conn:
            done = conn.execute(
                update(PAUSES)
                .where(
                    PAUSES.c.run_id == run_id,
                    PAUSES.c.key == key,
                    PAUSES.c.status == PauseStatus.WAITING.value,
                )
                .values(
                    status=status.value,
                    errors=verdict[1] or None if verdict else None,
                    response=response,
                    responder=responder,
                    answered_at=now,
                )
            )
            if done.rowcount != 1:
                return False
            extra: dict[str, Any] = {}
            if next_state is RunState.SCHEDULED:
                extra["owner"] = None
            self._emit(
                conn, run_id, EventKind.INPUT_RECEIVED, {"key": key, "responder": responder}, now
            )
            name = "Resuming" if next_state is RunState.SCHEDULED else "Running"
            self._change_state(
                conn,
                run_id,
                next_state,
                name,
                f"input {key!r} from {responder or 'anonymous'}",
                now,
                **extra,
            )
            if verdict is not None:
                data: dict[str, JSON] = {"key": key, "responder": responder}
                if not verdict[0]:
                    data.update(errors=verdict[1], response=response)
                kind = EventKind.INPUT_ACCEPTED if verdict[0] else EventKind.INPUT_REJECTED
                self._emit(conn, run_id, kind, data, now)
            return True

    def settle_pause(
        self, pause: Pause, accepted: bool, errors: dict[str, str] | None = None
    ) -> bool:
        """Record the flow's verdict on an answered pause; False if it was already recorded."""
        run_id, key = pause.run_id, pause.key
        now = self.clock()
        status = PauseStatus.ACCEPTED if accepted else PauseStatus.REJECTED
        with self._write() as conn:
            done = conn.execute(
                update(PAUSES)
                .where(
                    PAUSES.c.run_id == run_id,
                    PAUSES.c.key == key,
                    PAUSES.c.status == PauseStatus.ANSWERED.value,
                )
                .values(status=status.value, errors=errors or None)
            )
            if done.rowcount != 1:
                return False
            data: dict[str, JSON] = {"key": key, "responder": pause.responder}
            if not accepted:
                data["errors"] = errors or {}
                data["response"] = pause.response
            kind = EventKind.INPUT_ACCEPTED if accepted else EventKind.INPUT_REJECTED
            self._emit(conn, run_id, kind, data, now)
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

    def cancel(self, run_id: str, message: str) -> bool:
        """Cancel a run that has not finished, and every pause it waits on."""
        now = self.clock()
        with self._write() as conn:
            row = conn.execute(select(RUNS.c.state).where(RUNS.c.id == run_id)).first()
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
            return True
