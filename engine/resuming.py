"""Answering the pause a run waits on: ``Engine.resume``, behind ``resume_flow_run``.

An answer is checked (the run waits, the pause has not expired, the person may answer, the
input fits the pause's schema) and stored with its audit record in one transaction. When
the flow waits in this process, its model judges the answer here and the verdict is stored
with it; a flow waiting in another process learns of the answer from the event stored
with it.

When the flow waits in this process, its waiter holds the pause as stored, so the run is
not read first: the answer's UPDATE checks that the run and the pause are still as the
waiter saw them, and anything else takes the usual path (read, check, store). On that path
the answer is stored only if the run is still in the state, and with the owner, it was read
with (they chose where the flow goes on); should another process have taken the run over
in between, the answer is read and checked again.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic_core import PydanticSerializationError, to_jsonable_python

from signoff.engine.actors import Actor, as_actor
from signoff.engine.audit import AuditAction, AuditEntry
from signoff.engine.errors import (
    AlreadyAnswered,
    DatabaseUnavailable,
    EngineError,
    InputInvalid,
    PauseExpired,
    RunNotFound,
    RunNotWaiting,
)
from signoff.engine.input import load_answer
from signoff.engine.interventions import Interventions, recorded_input
from signoff.engine.permissions import Refusal
from signoff.engine.refusals import refusal_errors
from signoff.engine.runs import (
    JSON,
    GivenAnswer,
    Pause,
    PauseStatus,
    Run,
    RunState,
    WaitingInput,
    run_id_text,
)
from signoff.engine.store.answers import AnswerOutcome
from signoff.engine.waiters import Answer, Judged, Waiter

logger = logging.getLogger(__name__)

#: how many times an answer reads the run again when the run changed between its read and
#: the answer's write (another process taking the run over moves it on at most twice)
_ATTEMPTS = 3


class Resuming(Interventions):
    """``resume``: the engine's part in answering a pause."""

    process_id: str
    _registered: bool
    _reaching_since: float | None

    def judges_others(self, owner_timeout: float | None = None) -> bool:
        raise NotImplementedError

    def resume(
        self,
        run_id: str | uuid.UUID,
        run_input: Mapping[str, JSON] | None = None,
        responder: str | Actor | None = None,
        *,
        key: str | None = None,
        responder_groups: Iterable[str] = (),
    ) -> Pause:
        """Answer the pause a run waits on (or pause ``key``). See ``engine.resume_flow_run``.

        With a quorum, an answer short of it is stored and the pause keeps waiting: the
        returned pause has status WAITING and the answers so far.
        """
        run_id = run_id_text(run_id)
        # Nobody named: whoever runs this code, as for a run started from Python (an
        # answer without a name would get past forbid_starter, and record nobody).
        actor = as_actor(responder) or Actor.python()
        if run_input is not None and (
            not isinstance(run_input, Mapping) or not all(isinstance(k, str) for k in run_input)
        ):
            raise TypeError(
                f"run_input is a mapping of field names (str) to values, not {run_input!r:.60}"
            )
        groups = frozenset(responder_groups)
        if actor is not None and groups:
            actor = dataclasses.replace(actor, groups=actor.groups | groups)
        payload = _as_json(run_input or {})
        # A model's validators may have effects (a log line, say): each waiter judges the
        # answer once per call, whichever path stores it.
        judged: dict[Waiter, _Judgement] = {}
        try:
            answered = self._answer_waiting_here(run_id, key, actor, payload, judged)
            if answered is not None:
                return answered
            attempt = 1
            while (
                answered := self._answer_as_read(
                    run_id, key, actor, payload, judged, last=attempt == _ATTEMPTS
                )
            ) is None:
                attempt += 1
            return answered
        except DatabaseUnavailable:
            if not self._registered:
                # No heartbeat of its own tells this process (a script that answers runs,
                # and tries again after an outage) when one ends: it judges nobody dead
                # for the owner timeout after the failure (judges_others), since their
                # heartbeats stopped with the outage too.
                self._reaching_since = time.monotonic()
            raise

    def _answer_as_read(
        self,
        run_id: str,
        key: str | None,
        actor: Actor | None,
        payload: dict[str, JSON],
        judged: dict[Waiter, _Judgement],
        *,
        last: bool,
    ) -> Pause | None:
        """The usual path: read the run and its pause, check, and store the answer if the
        run is still as read. None when the run changed in between (another process took
        it over, say) and its pause still waits, unless this is the ``last`` attempt: the
        caller reads it again."""
        timeout = self.settings.owner_timeout_seconds
        try:
            target = self.store.resume_target(run_id, timeout)
        except RunNotFound:
            target = self.store.resume_target(self.store.find_run(run_id).id, timeout)
        run, pause = target.run, target.pause
        if key is not None and (pause is None or pause.key != key):
            raise self._not_waiting_for(run, key)
        if pause is None or not run.state.is_waiting:
            raise self._nothing_waits(run)
        now = self.store.clock()
        if pause.deadline is not None and pause.deadline <= now:
            raise PauseExpired(run.id, pause.key, pause.deadline.isoformat())
        if (
            pause.escalate_at is not None
            and pause.escalated_at is None
            and pause.escalate_at <= now
        ):
            # Due, and no worker has escalated it yet (none runs, or its timer is late):
            # escalated now, so that whoever it adds may answer, as they were promised.
            escalated = self.store.escalate_pause(run.id, pause.key)
            if escalated is not None:
                logger.info(
                    "pause escalated",
                    extra={"action": "pause_escalated", "run_id": run.id, "key": pause.key},
                )
                self.notify()
            pause = escalated or self.store.get_pause(run.id, pause.key) or pause
        refusal = self.permissions.answer(actor, run, pause, pause.answered_by)
        if refusal is not None:
            raise self._refuse_answer(actor, run, pause, refusal, payload)
        errors = _input_errors(pause, payload)
        if errors:
            self.store.record_audit(
                AuditEntry(
                    AuditAction.ANSWER_INVALID,
                    run.id,
                    run.flow_name,
                    actor,
                    pause.key,
                    # as JSON can hold it: what the check refused may be anything
                    {"input": recorded_input(pause, payload), "errors": errors},
                )
            )
            raise InputInvalid(run.id, pause.key, errors)
        in_process = run.state is RunState.PAUSED and not pause.suspend
        if run.owner == self.process_id:
            alive = self._registered
        else:
            # Just back from an outage, this process cannot tell a dead owner from one that
            # has not beaten again yet. The answer is left for the owner either way: should
            # it be dead, the run is taken over as RUNNING and runs again then.
            alive = target.owner_alive or not self.judges_others(target.owner_timeout)
        next_state = RunState.RUNNING if in_process and alive else RunState.SCHEDULED
        # When the flow waits in this process, its model judges the answer right here, so the
        # verdict is stored with the answer and handed over without another round trip. A
        # quorum's answers are judged together by the flow once they are all in.
        local = (
            self.waiters.waiting_for(run.id, pause.key)
            if next_state is RunState.RUNNING and pause.quorum == 1 and run.owner == self.process_id
            else None
        )
        answer, verdict = _judged_once(local, payload, judged)
        outcome = self.store.answer_pause(
            run.id,
            pause.key,
            payload,
            actor,
            next_state,
            verdict,
            flow_name=run.flow_name,
            known=pause,
            waits_in=run.owner if next_state is RunState.RUNNING else None,
            expect_run=(run.state, run.owner),
        )
        if outcome is AnswerOutcome.LOST:
            now_run = self.store.get_run(run.id)
            latest = self.store.get_pause(run.id, pause.key)
            if not last and latest is not None and latest.status is PauseStatus.WAITING:
                return None  # the run changed under the answer, which its pause still awaits
            raise self._not_waiting_for(now_run, pause.key)
        if outcome is AnswerOutcome.DUPLICATE:
            already = Refusal(
                f"{actor.id if actor else 'this person'} already answered; this input needs "
                f"{pause.quorum} different people",
                pause.approvers,
            )
            raise self._refuse_answer(actor, run, pause, already, payload)
        return self._answered(pause, actor, payload, outcome, local, answer, verdict)

    def _nothing_waits(self, run: Run) -> EngineError:
        """Why a run that waits on no pause cannot be answered: someone answered its last
        one (the loser of two racing answers learns who won), or it is not waiting."""
        latest = self.store.latest_pause(run.id)
        answered = (PauseStatus.ANSWERED, PauseStatus.ACCEPTED, PauseStatus.REJECTED)
        if latest is not None and latest.status in answered and run.state is not RunState.CANCELLED:
            return AlreadyAnswered(run.id, latest.key, latest.responder, latest.answered_by)
        if latest is not None and latest.status is PauseStatus.TIMED_OUT and not run.state.is_final:
            # Its last question ran out of time and the flow went on: the answer came too
            # late, whether or not it named the question (not "the run is running").
            return self._not_waiting_for(run, latest.key)
        if run.state is RunState.RUNNING:
            # Most likely meant: the question a flow it called asks, in that flow's own run.
            for child in self.store.unfinished_children(run.id):
                if self.store.waiting_pause(child) is not None:
                    return RunNotWaiting(
                        run.id, f"running; a flow it called waits for input in run {child}"
                    )
        return RunNotWaiting(run.id, run.state.value)

    def _answer_waiting_here(
        self,
        run_id: str,
        key: str | None,
        actor: Actor | None,
        payload: dict[str, JSON],
        judged: dict[Waiter, _Judgement],
    ) -> Pause | None:
        """The common case, answered without reading the run first: its flow waits in this
        process for a pause that one answer completes, and the waiter holds that pause as
        stored (``Asked``). Storing the answer checks that the run and the pause are still
        so. None when anything is otherwise, nothing stored: someone else answered, the
        pause was escalated or reassigned, this answer is refused or does not fit. The
        caller then reads the run and takes the usual path, which also reports what is
        wrong."""
        local = self.waiters.waiting_for(run_id, key) if self._registered else None
        asked = local.asked if local is not None else None
        if local is None or asked is None:
            return None
        pause = asked.pause
        if pause.quorum != 1 or pause.escalated_at is not None or pause.delegations:
            return None
        if pause.deadline is not None and pause.deadline <= self.store.clock():
            return None
        waiting = WaitingInput(
            run_id,
            pause.key,
            asked.started_by,
            pause.approvers,
            pause.forbid_starter,
            (),
            pause.quorum,
        )
        if self.permissions.answer_waiting(actor, waiting) is not None:
            return None
        if _input_errors(pause, payload):
            return None
        answer, verdict = _judged_once(local, payload, judged)
        outcome = self.store.answer_pause(
            run_id,
            pause.key,
            payload,
            actor,
            RunState.RUNNING,
            verdict,
            flow_name=asked.flow_name,
            known=pause,
            still_paused_by=self.process_id,
        )
        if outcome is not AnswerOutcome.COMPLETE:
            return None
        return self._answered(pause, actor, payload, outcome, local, answer, verdict)

    def _answered(
        self,
        pause: Pause,
        actor: Actor | None,
        payload: dict[str, JSON],
        outcome: AnswerOutcome,
        local: Waiter | None,
        answer: Answer | None,
        verdict: tuple[bool, dict[str, str]] | None,
    ) -> Pause:
        """After the answer is stored: wake whoever waits for it, and the pause as it is now."""
        run_id = pause.run_id
        if outcome is not AnswerOutcome.COUNTED:
            # The flow first: this process's observers (the dispatcher) can wait their turn.
            if local is not None:
                local.answer = answer
                local.wake()
                # Give the woken flow the interpreter now: its next line is what the person
                # answering waits for, and the rest of this call is bookkeeping. (Without
                # this, the flow waits until this thread blocks or its time slice ends.)
                time.sleep(0)
            self.waiters.wake(run_id)
        self.notify()
        given = GivenAnswer(
            responder=actor.id if actor else None,
            name=(actor.name or actor.id) if actor else None,
            via=actor.via.value if actor else None,
            input=payload,
            at=self.store.clock(),
        )
        answers = self._answers_up_to(pause, given)
        if outcome is AnswerOutcome.COUNTED:
            logger.info(
                "answer counted",
                extra={"action": "answer_counted", "run_id": run_id, "key": pause.key},
            )
            return dataclasses.replace(pause, answers=answers)
        logger.info(
            "input received",
            extra={"action": "input_received", "run_id": run_id, "key": pause.key},
        )
        status, errors = PauseStatus.ANSWERED, pause.errors
        if verdict is not None:
            status = PauseStatus.ACCEPTED if verdict[0] else PauseStatus.REJECTED
            errors = verdict[1]
        return dataclasses.replace(
            pause,
            status=status,
            errors=errors,
            response=payload,
            responder=given.responder,
            answered_at=given.at,
            answers=answers,
        )

    def _answers_up_to(self, pause: Pause, given: GivenAnswer) -> tuple[GivenAnswer, ...]:
        """The answers as they stood when ``given`` was stored: on a quorum, others may have
        answered since ``pause`` was read (and after ``given``, which they leave out)."""
        stored = None
        if pause.quorum > 1 and given.responder is not None:
            stored = self.store.get_pause(pause.run_id, pause.key)
        responders = [a.responder for a in stored.answers] if stored else []
        if stored is not None and given.responder in responders:
            return stored.answers[: responders.index(given.responder) + 1]
        return (*pause.answers, given)


def _as_json(run_input: Mapping[str, Any]) -> dict[str, JSON]:
    """``run_input`` as a form or the command line would send it: a Python caller's
    ``Decimal``, ``datetime``, ``UUID``, enum member or model as its JSON text, so that it is
    checked and stored as they are (a ``Decimal`` failed as it was stored). Infinities, NaN
    and text UTF-8 cannot hold are kept, for the check to name them by field."""
    try:
        payload: dict[str, JSON] = to_jsonable_python(dict(run_input))
    except PydanticSerializationError as exc:
        raise TypeError(f"run_input holds a value no answer can hold: {exc}") from None
    return payload


def _input_errors(pause: Pause, payload: dict[str, JSON]) -> dict[str, str]:
    """What is wrong with ``payload`` as input to ``pause`` (its schema's check)."""
    if pause.schema is not None:
        # Imported on the first answer: a command that only lists or shows runs does not
        # load jsonschema and build the format checks (about 80 ms).
        from signoff.engine.validation import schema_errors

        return schema_errors(pause.schema, payload)
    return {"": "this pause takes no input"} if payload else {}


#: a waiter's reading of an answer, and the verdict (accepted, errors)
_Judgement = tuple[Answer | None, tuple[bool, dict[str, str]] | None]


def _judged_once(
    local: Waiter | None, payload: dict[str, JSON], judged: dict[Waiter, _Judgement]
) -> _Judgement:
    """``_judged``, or what ``local`` judged of ``payload`` earlier in the same call: a
    fast path that found the run changed hands the answer to the usual path, which must
    not run the model's validators again."""
    if local is None:
        return None, None
    if local not in judged:
        judged[local] = _judged(local, payload)
        answer = judged[local][0]
        if answer is not None:
            # Before the answer is stored: the flow may read it back before it is handed over.
            local.judged = Judged(payload, answer)
    return judged[local]


def _judged(local: Waiter | None, payload: dict[str, JSON]) -> _Judgement:
    """The answer as the waiting flow's model reads it, and the verdict (accepted, errors):
    both None without a waiter here to judge it.

    The model reads it as the flow would: in (a copy of) the flow's context, so that its
    validators see the run (``get_run_logger``); and whatever they raise, not only a
    ValidationError, is the flow's to raise from its pause and a refusal to record."""
    if local is None:
        return None, None
    try:
        # A copy: two answers racing each judge in a context of their own.
        value = local.context.copy().run(load_answer, local.model, payload)
    except Exception as exc:
        return Answer(error=exc), (False, refusal_errors(exc))
    return Answer(value=value), (True, {})
