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
from signoff.engine.redaction import hide_secrets
from signoff.engine.runs import JSON, EventKind, GivenAnswer, Pause, PauseStatus, RunState
from signoff.engine.store import rows, state_changes
from signoff.engine.store.base import AUDIT_LOCK, AUDIT_LOCKED, RUNS
from signoff.engine.store.dropped import write_again_if_dropped
from signoff.engine.store.pauses import PAUSES, PauseQueries
from signoff.engine.store.prepared import Prepared
from signoff.engine.store.sharing import SharedWriteFailed
from signoff.engine.store.state_changes import checked

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
    checked(RUNS.c.state) == RunState.PAUSED.value,
    checked(RUNS.c.owner) == bindparam("paused_by"),
)
#: what storing an answer to a quorum checks first (locked on PostgreSQL: its answers
#: append in turn; on SQLite the write transaction already excludes every other writer)
_ANSWERING = select(
    *(PAUSES.c.status, PAUSES.c.quorum, PAUSES.c.veto, PAUSES.c.answers),
    *(PAUSES.c.approvers, PAUSES.c.delegations),
).where(*_TARGET)
_ANSWERING_SQLITE = Prepared(_ANSWERING)
_ANSWERING_LOCKED = Prepared(_ANSWERING.with_for_update())
#: SQLite: who may answer the pause now (its write transaction keeps it so until it ends)
_DECIDERS = Prepared(select(PAUSES.c.approvers, PAUSES.c.delegations).where(*_TARGET))


def _deciders_unchanged(row: Any, known: Pause) -> bool:
    """Whether who may answer the pause (``row``'s approvers and hand-overs) is still as
    ``known`` says: an answer judged on ``known`` is stored only then."""
    return tuple(row.approvers or ()) == known.approvers and [
        (d["by"], d["to"]) for d in row.delegations or ()
    ] == [(d.by, d.to) for d in known.delegations]


#: the run of the answer, still in the state and with the owner the caller read
_AS_READ = (
    RUNS.c.id == bindparam("target_run"),
    checked(RUNS.c.state) == bindparam("expect_state"),
    RUNS.c.owner.is_not_distinct_from(bindparam("expect_owner")),
)


class _Guard(enum.Enum):
    """What the run must still be for an answer to move it on."""

    #: nothing (no caller read the run)
    NONE = "none"
    #: paused by the process ``paused_by``, and the pause as stored (``still_paused_by``)
    PAUSED_BY = "paused_by"
    #: in the state and with the owner the caller read (``expect_run``)
    AS_READ = "as_read"


@functools.cache
def _answered_and_moved(owner_cleared: bool, guard: _Guard) -> Prepared:
    """PostgreSQL: the pause as answered if it still waits, then the run moved on, and the
    audit chain's lock, in one statement where three took a round trip each. Reads
    ``answered`` (whether the pause still waited) and ``moved`` (whether the run changed).

    ``guard``: what the run must still be. The run's UPDATE checks it again after waiting
    for the row (another process taking the run over holds it), so ``answered`` without
    ``moved`` means the run changed meanwhile."""
    guards: tuple[Any, ...] = ()
    if guard is _Guard.PAUSED_BY:
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
        .returning(PAUSES.c.id, PAUSES.c.approvers, PAUSES.c.delegations)
        .cte("answered")
    )
    names = ("state", "state_name", "state_message", "updated_at")
    values: dict[str, Any] = {n: bindparam(f"new_{n}", type_=RUNS.c[n].type) for n in names}
    if owner_cleared:
        values["owner"] = None
    run: tuple[Any, ...] = (RUNS.c.id == bindparam("target_run"),)
    if guard is not _Guard.NONE:
        run = _PAUSED_BY if guard is _Guard.PAUSED_BY else _AS_READ
    # Reading ``answered`` makes the pause's row change (and lock) first, as everywhere.
    moved = (
        update(RUNS)
        .where(*run, exists(select(answered.c.id)))
        .values(values)
        .returning(RUNS.c.id)
        .cte("moved")
    )
    return Prepared(
        select(
            select(func.count()).select_from(answered).scalar_subquery().label("answered"),
            select(func.count()).select_from(moved).scalar_subquery().label("moved"),
            # who may answer it, as the UPDATE found it (after waiting for its row)
            select(answered.c.approvers).scalar_subquery().label("approvers"),
            select(answered.c.delegations).scalar_subquery().label("delegations"),
            func.pg_advisory_xact_lock(bindparam("audit_lock", type_=BigInteger)).label("lock"),
        ),
        dialect="postgresql",
    )


for _cleared in (False, True):  # made now, so that an engine compiles them as it starts
    for _guard in _Guard:
        _answered_and_moved(_cleared, _guard)

_RUN_MOVED = ("state", "state_name", "state_message", "updated_at")
#: SQLite: the run moved on, if still in the state and with the owner the caller read
_MOVE_AS_READ = Prepared(
    update(RUNS).where(*_AS_READ),
    columns=[
        (*("target_run", "expect_state", "expect_owner"), *_RUN_MOVED, *owner)
        for owner in ((), ("owner",))
    ],
)

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
        expect_run: tuple[RunState, str | None] | None = None,
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

        ``expect_run``: the run's state and owner as the caller read them, from which it
        chose ``next_state``. The answer is stored only if the run is still so when it
        moves it on (another process may have taken the run over since); otherwise nothing
        is written, and the outcome is LOST.

        Answers given with ``still_paused_by`` at the same moment share a transaction
        (``sharing``); one that another's failure rolled back is stored again, alone.
        """
        if still_paused_by is not None and (known is None or known.quorum != 1):
            raise ValueError("still_paused_by is for a known pause that needs one answer")
        given = (run_id, key, response, actor, next_state, verdict, flow_name, known)
        waits_in = still_paused_by or waits_in
        if still_paused_by is not None:
            expect_run = None  # still_paused_by checks more
            try:
                return self._answer(*given, still_paused_by, waits_in, None, shared=True)
            except SharedWriteFailed:
                pass
        return self._answer(*given, still_paused_by, waits_in, expect_run, shared=False)

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
        expect_run: tuple[RunState, str | None] | None,
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
                if known is not None and not _deciders_unchanged(row, known):
                    return AnswerOutcome.LOST  # judged on other approvers: judge it again
                stored = list(row.answers or [])
                if responder is not None and any(a.get("responder") == responder for a in stored):
                    return AnswerOutcome.DUPLICATE
                quorum, veto = int(row.quorum or 1), row.veto
            stored.append(rows.given_answer_json(given))
            vetoed = bool(veto and isinstance(response, dict) and response.get(veto) is False)
            flow_name = flow_name or self._flow_of(conn, run_id)
            # As recorded for ever in the chain, and shown in the run's thread: a secret
            # field's value is not (the flow gets it from the pause).
            shown = hide_secrets(known.schema if known else None, response)
            received = AuditEntry(
                AuditAction.ANSWER_RECEIVED,
                run_id,
                flow_name,
                actor,
                key,
                {
                    "input": shown,
                    "count": len(stored),
                    "quorum": quorum,
                    "veto": vetoed,
                },
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
                    if known is not None:
                        now_deciding = _DECIDERS.execute(conn, target).first()
                        if now_deciding is None or not _deciders_unchanged(now_deciding, known):
                            return AnswerOutcome.LOST  # judged on other approvers
                    done = _ANSWER.execute(conn, {**target, **answered})
                else:
                    seen = {**target, **answered, "paused_by": still_paused_by}
                    done = _ANSWER_AS_SEEN.execute(conn, seen)
                if not done.rowcount:
                    # Answered, ended or gone since the caller read it: nothing was written.
                    return AnswerOutcome.LOST
                new = {
                    "state": next_state.value,
                    "state_name": name,
                    "state_message": message,
                    "updated_at": now,
                    **({"owner": None} if owner_cleared else {}),
                }
                if expect_run is None:
                    guard = state_changes.guard_values(run_id, None, None)
                    moved = (
                        state_changes.set_state(0, False).execute(conn, {**guard, **new}).rowcount
                    )
                else:
                    as_read = {"expect_state": expect_run[0].value, "expect_owner": expect_run[1]}
                    moved = _MOVE_AS_READ.execute(
                        conn, {"target_run": run_id, **as_read, **new}
                    ).rowcount
                    if not moved:
                        # The run changed since the caller read it: undo the pause's answer.
                        raise _Changed(run_id)
            else:
                guard_kind = (
                    _Guard.PAUSED_BY
                    if still_paused_by is not None
                    else _Guard.NONE
                    if expect_run is None
                    else _Guard.AS_READ
                )
                done = (
                    _answered_and_moved(owner_cleared, guard_kind)
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
                            "expect_state": expect_run[0].value if expect_run else None,
                            "expect_owner": expect_run[1] if expect_run else None,
                        },
                    )
                    .first()
                )
                conn.info[AUDIT_LOCKED] = True
                if not done.answered:
                    # Answered, ended or gone since the caller read it: nothing was written.
                    return AnswerOutcome.LOST
                if guard_kind is not _Guard.NONE and not done.moved:
                    # The run changed after the statement's snapshot: undo the pause's answer.
                    raise _Changed(run_id)
                if known is not None and not _deciders_unchanged(done, known):
                    # Reassigned or escalated meanwhile: undo it; the caller judges it again.
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
                    data.update(errors=verdict[1], response=shown)
                kind = EventKind.INPUT_ACCEPTED if verdict[0] else EventKind.INPUT_REJECTED
                self._emit(conn, run_id, kind, data, now)
                responders = [a.get("responder") for a in stored]
                entries.append(
                    self._verdict_entry(run_id, flow_name, key, responder, verdict, responders)
                )
            self._audit(conn, entries, now)
            return AnswerOutcome.COMPLETE


__all__ = ["AnswerOutcome", "AnswerQueries"]
