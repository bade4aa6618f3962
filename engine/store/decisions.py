"""Queries that change who decides a waiting pause (escalation, reassignment), and claims
that record an act once (a reminder posted by one of several workers)."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from signoff.engine.actors import SYSTEM, Actor
from signoff.engine.audit import AuditAction, AuditEntry
from signoff.engine.errors import RunNotFound
from signoff.engine.runs import EventKind, Pause, PauseStatus, handed_on
from signoff.engine.store import rows
from signoff.engine.store.base import RUNS
from signoff.engine.store.dropped import read_again_if_dropped, write_again_if_dropped
from signoff.engine.store.pauses import PAUSES, PauseQueries
from signoff.engine.store.tables import MetadataRow

METADATA = MetadataRow.__table__  # type: ignore[attr-defined]


class DecisionQueries(PauseQueries):
    @read_again_if_dropped
    def due_escalations(self, now: datetime) -> list[Pause]:
        """Waiting pauses whose escalation time has passed and that have not escalated,
        nor passed their deadline (no process fired the escalation in time: timing the
        pause out is what is left to do)."""
        return self._waiting_pauses(
            PAUSES.c.escalate_at.is_not(None),
            PAUSES.c.escalate_at <= now,
            PAUSES.c.escalated_at.is_(None),
            or_(PAUSES.c.deadline.is_(None), PAUSES.c.deadline > now),
        )

    @write_again_if_dropped
    def escalate_pause(self, run_id: str, key: str) -> Pause | None:
        """Add the pause's ``escalate_to`` to its approvers, once; the escalated pause, or None
        if it no longer waits or escalated already (several workers may fire the timer)."""
        now = self.clock()
        with self._write() as conn:
            query = select(PAUSES).where(PAUSES.c.run_id == run_id, PAUSES.c.key == key)
            if not self.is_sqlite:
                # Locked as a hand-over locks it: the approvers written back are those read,
                # and a hand-over committed in between would be undone.
                query = query.with_for_update()
            row = conn.execute(query).first()
            if row is None:
                return None
            pause = rows.to_pause(row)
            if pause.status is not PauseStatus.WAITING or pause.escalated_at is not None:
                return None
            if pause.deadline is not None and pause.deadline <= now:
                return None  # too late to ask anyone else: it times out instead
            # Not whoever could never answer it: the starter a pause forbids, and those who
            # handed it on (the escalation would otherwise tell them they may answer now).
            barred = {by for by, _ in handed_on((d.by, d.to) for d in pause.delegations)}
            if pause.forbid_starter:
                starter = conn.execute(
                    select(RUNS.c.started_by).where(RUNS.c.id == run_id)
                ).scalar()
                if starter is not None:
                    barred.add(str(starter))
            told = [a for a in pause.escalate_to if a not in pause.approvers and a not in barred]
            # One anyone may answer keeps its empty list (naming them would shut out the
            # rest): its escalation only tells them, and adds nobody.
            added = told if pause.approvers else []
            approvers = [*pause.approvers, *added]
            # The guard on escalated_at makes this the one transaction that escalates.
            done = conn.execute(
                update(PAUSES)
                .where(
                    PAUSES.c.run_id == run_id,
                    PAUSES.c.key == key,
                    PAUSES.c.status == PauseStatus.WAITING.value,
                    PAUSES.c.escalated_at.is_(None),
                )
                .values(escalated_at=now, approvers=approvers)
            )
            if done.rowcount != 1:
                return None
            data: dict[str, Any] = {
                "key": key,
                "added": added,
                "notified": told,
                "to": list(pause.escalate_to),
            }
            self._emit(conn, run_id, EventKind.PAUSE_ESCALATED, data, now)
            self._audit(
                conn,
                [
                    AuditEntry(
                        AuditAction.ESCALATED,
                        run_id,
                        self._flow_of(conn, run_id),
                        SYSTEM,
                        key,
                        {"added": added, "notified": told, "to": list(pause.escalate_to)},
                    )
                ],
                now,
            )
        return dataclasses.replace(pause, escalated_at=now, approvers=tuple(approvers))

    @write_again_if_dropped
    def reassign_pause(
        self, run_id: str, key: str, actor: Actor, to: str, known: Pause | None = None
    ) -> Pause | Literal["changed"] | None:
        """Hand a waiting pause from ``actor`` to ``to``; the changed pause, or None if it no
        longer waits.

        ``to`` becomes an approver; ``actor`` stops being one if the list named them. A pause
        anyone could answer becomes ``to``'s alone.

        ``known``: the pause as the caller read it to judge the hand-over. If who may answer
        it changed since (its approvers, answers or hand-overs), nothing is written and the
        result is ``"changed"``: the caller judges it again as it is now.
        """
        now = self.clock()
        with self._write() as conn:
            query = select(PAUSES).where(PAUSES.c.run_id == run_id, PAUSES.c.key == key)
            if not self.is_sqlite:
                query = query.with_for_update()
            row = conn.execute(query).first()
            if row is None:
                return None
            pause = rows.to_pause(row)
            if pause.status is not PauseStatus.WAITING:
                return None
            if known is not None and _deciders(pause) != _deciders(known):
                return "changed"
            approvers = [a for a in pause.approvers if a != actor.id]
            if to not in approvers:
                approvers.append(to)
            delegations = [
                {"by": d.by, "to": d.to, "at": d.at.isoformat()} for d in pause.delegations
            ]
            delegations.append({"by": actor.id, "to": to, "at": now.isoformat()})
            conn.execute(
                update(PAUSES)
                .where(PAUSES.c.run_id == run_id, PAUSES.c.key == key)
                .values(approvers=approvers, delegations=delegations)
            )
            self._emit(
                conn,
                run_id,
                EventKind.PAUSE_REASSIGNED,
                {"key": key, "by": actor.id, "to": to},
                now,
            )
            self._audit(
                conn,
                [
                    AuditEntry(
                        AuditAction.REASSIGNED,
                        run_id,
                        self._flow_of(conn, run_id),
                        actor,
                        key,
                        {"to": to, "approvers_before": list(pause.approvers)},
                    )
                ],
                now,
            )
            found = conn.execute(
                select(PAUSES).where(PAUSES.c.run_id == run_id, PAUSES.c.key == key)
            ).one()
        return rows.to_pause(found)

    @write_again_if_dropped
    def claim_and_record(self, run_id: str, claim: str, entry: AuditEntry) -> bool:
        """Store metadata ``claim`` and append ``entry`` together, unless ``claim`` exists.

        True if this call claimed it: of several processes, one records the act, once.
        """
        now = self.clock()
        statement = (
            self._dialect_insert(METADATA)
            .values(run_id=run_id, key=claim, value=None)
            .on_conflict_do_nothing()
            .execution_options(preserve_rowcount=True)
        )
        with self._write() as conn:
            try:
                claimed = conn.execute(statement).rowcount == 1
            except IntegrityError as exc:  # the run's foreign key: no such run
                raise RunNotFound(run_id) from exc
            if claimed:
                self._audit(conn, [entry], now)
            return bool(claimed)


def _deciders(pause: Pause) -> tuple[object, ...]:
    """What decides who may answer ``pause`` and who may hand it on."""
    return (
        pause.approvers,
        pause.answered_by,
        tuple((d.by, d.to) for d in pause.delegations),
    )


__all__ = ["DecisionQueries"]
