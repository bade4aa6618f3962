"""Storing an answer to a pause: one more of a quorum, or the one that moves the run on.

A pause that needs one answer is not read first: its UPDATE finds whether it still waits.
On PostgreSQL one statement marks it answered, moves the run on and takes the audit
chain's lock (``_answered_and_moved``); on SQLite, whose write transaction excludes every
other writer, they are two. A quorum's pause is read first (under its row lock on
PostgreSQL), so that its answers append in turn.

An answer judged from what a waiter in this process saw (``still_paused_by``) is stored
only if the run is still paused by that process and the pause's approvers unchanged.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable
from typing import Any, ParamSpec

from sqlalchemy import BigInteger, bindparam, exists, func, select, update

from signoff.engine.actors import Actor
from signoff.engine.audit import AuditAction, AuditEntry
from signoff.engine.runs import JSON, EventKind, GivenAnswer, Pause, PauseStatus, RunState
from signoff.engine.store import rows, state_changes
from signoff.engine.store.base import AUDIT_LOCK, AUDIT_LOCKED, RUNS
from signoff.engine.store.dropped import write_again_if_dropped
from signoff.engine.store.pauses import PAUSES, PauseQueries
from signoff.engine.store.prepared import Prepared
from signoff.engine.store.sharing import SharedWriteFailed

P = ParamSpec("P")

#: the pause ``target_key`` of run ``target_run``
_TARGET = (PAUSES.c.run_id == bindparam("target_run"), PAUSES.c.key == bindparam("target_key"))
#: ... while it waits
_WAITING_TARGET = (*_TARGET, PAUSES.c.status == PauseStatus.WAITING.value)
#: Every change to a waiting pause's approvers sets one of these: a pause with neither is
#: as it was stored, as far as who may answer it goes.
_AS_STORED = (PAUSES.c.escalated_at.is_(None), PAUSES.c.delegations.is_(None))
#: the run of the answer, paused by process ``paused_by``
_PAUSED_BY = (
    RUNS.c.id == bindparam("target_run"),
    RUNS.c.state == RunState.PAUSED.value,
    RUNS.c.owner == bindparam("paused_by"),
)
#: what storing an answer to a quorum checks first (locked on PostgreSQL: its answers
#: append in turn; on SQLite the write transaction already excludes every other writer)
_ANSWERING = select(PAUSES.c.status, PAUSES.c.quorum, PAUSES.c.veto, PAUSES.c.answers).where(
    *_TARGET
)
_ANSWERING_SQLITE = Prepared(_ANSWERING)
_ANSWERING_LOCKED = Prepared(_ANSWERING.with_for_update())


@functools.cache
def _answered_and_moved(owner_cleared: bool, still_paused: bool) -> Prepared:
    """PostgreSQL: the pause as answered if it still waits, then the run moved on, and the
    audit chain's lock, in one statement where three took a round trip each. Reads
    ``answered`` (whether the pause still waited) and ``moved`` (whether the run changed).

    ``still_paused``: only if the pause is as stored and its run paused by ``paused_by``."""
    guards: tuple[Any, ...] = ()
    if still_paused:
        guards = (*_AS_STORED, exists(select(RUNS.c.id).where(*_PAUSED_BY)))
    answered = (
        update(PAUSES)
        .where(*_WAITING_TARGET, *guards)
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
        .where(
            *(_PAUSED_BY if still_paused else (RUNS.c.id == bindparam("target_run"),)),
            exists(select(answered.c.id)),
        )
        .values(values)
        .returning(RUNS.c.id)
        .cte("moved")
    )
    return Prepared(
        select(
            select(func.count()).select_from(answered).scalar_subquery().label("answered"),
            select(func.count()).select_from(moved).scalar_subquery().label("moved"),
            func.pg_advisory_xact_lock(bindparam("audit_lock", type_=BigInteger)).label("lock"),
        ),
        dialect="postgresql",
    )


for _cleared in (False, True):  # made now, so that an engine compiles them as it starts
    _answered_and_moved(_cleared, False)
    _answered_and_moved(_cleared, True)

#: the pause as answered (or, short of its quorum, with one more answer): the columns to
#: set come with the parameters
_ANSWERED_COLUMNS = (
    *("target_run", "target_key", "status", "errors", "response", "responder"),
    *("answered_at", "answers"),
)
_ANSWER = Prepared(
    update(PAUSES).where(*_WAITING_TARGET),
    columns=[("target_run", "target_key", "answers"), _ANSWERED_COLUMNS],
)
#: SQLite: the pause as answered, if it is as stored and its run paused by ``paused_by``
_ANSWER_AS_SEEN = Prepared(
    update(PAUSES).where(
        *_WAITING_TARGET, *_AS_STORED, exists(select(RUNS.c.id).where(*_PAUSED_BY))
    ),
    columns=[(*_ANSWERED_COLUMNS, "paused_by")],
)


class _Changed(Exception):
    """The run changed under an answer that expected it unchanged: roll back."""


def _lost_if_changed(method: Callable[P, AnswerOutcome]) -> Callable[P, AnswerOutcome]:
    """``method``, with a rolled-back answer (``_Changed``) reported as LOST."""

    @functools.wraps(method)
    def answering(*args: P.args, **kwargs: P.kwargs) -> AnswerOutcome:
        try:
            return method(*args, **kwargs)
        except _Changed:
            return AnswerOutcome.LOST

    return answering


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


class AnswerQueries(PauseQueries):
    @write_again_if_dropped
    @_lost_if_changed
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
        still_paused_by: str | None = None,
        waits_in: str | None = None,
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

        ``still_paused_by``: the caller judged the answer from ``known`` and what a waiter in
        process ``still_paused_by`` saw, without reading the run. It is stored only if the
        run is still PAUSED by that process and the pause was neither escalated nor
        reassigned since; otherwise nothing is written, and the outcome is LOST. Only for a
        pause that needs one answer (``known.quorum`` 1).

        ``waits_in``: the process whose flow waits for the answer (the run's owner), when
        ``next_state`` is RUNNING; the answer's event names it, so that only that process
        hands the answer to its flow (``still_paused_by`` names it too).

        Answers given with ``still_paused_by`` at the same moment share a transaction
        (``sharing``); one that another's failure rolled back is stored again, alone.
        """
        if still_paused_by is not None and (known is None or known.quorum != 1):
            raise ValueError("still_paused_by is for a known pause that needs one answer")
        given = (run_id, key, response, actor, next_state, verdict, flow_name, known)
        waits_in = still_paused_by or waits_in
        if still_paused_by is not None:
            try:
                return self._answer(*given, still_paused_by, waits_in, shared=True)
            except SharedWriteFailed:
                pass
        return self._answer(*given, still_paused_by, waits_in, shared=False)

    def _answer(
        self,
        run_id: str,
        key: str,
        response: JSON,
        actor: Actor | None,
        next_state: RunState,
        verdict: tuple[bool, dict[str, str]] | None,
        flow_name: str | None,
        known: Pause | None,
        still_paused_by: str | None,
        waits_in: str | None,
        *,
        shared: bool,
    ) -> AnswerOutcome:
        """``answer_pause``, in a shared transaction or one of its own."""
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
        with self._write(urgent=True, shared=shared) as conn:
            target = {"target_run": run_id, "target_key": key}
            if known is not None and known.quorum <= 1:
                # Nobody answered before (a first answer completes it): nothing to read;
                # the UPDATE finds whether the pause still waits.
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
                if still_paused_by is None:
                    done = _ANSWER.execute(conn, {**target, **answered})
                else:
                    seen = {**target, **answered, "paused_by": still_paused_by}
                    done = _ANSWER_AS_SEEN.execute(conn, seen)
                if not done.rowcount:
                    # Answered, ended or gone since the caller read it: nothing was written.
                    return AnswerOutcome.LOST
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
                    _answered_and_moved(owner_cleared, still_paused_by is not None)
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
                            "paused_by": still_paused_by,
                        },
                    )
                    .first()
                )
                conn.info[AUDIT_LOCKED] = True
                if not done.answered:
                    # Answered, ended or gone since the caller read it: nothing was written.
                    return AnswerOutcome.LOST
                if still_paused_by is not None and not done.moved:
                    # The run changed after the statement's snapshot: undo the pause's answer.
                    raise _Changed(run_id)
                moved = done.moved
            arrived: dict[str, JSON] = {"key": key, "responder": responder}
            if quorum == 1:
                # The flow waiting in another process takes the answer from the event, which
                # commits with it, rather than reading the pause back.
                arrived["response"] = response
                if next_state is RunState.RUNNING and waits_in is not None:
                    # Only that process's flow: one taken for dead may wait there too.
                    arrived["owner"] = waits_in
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


__all__ = ["AnswerOutcome", "AnswerQueries"]
