"""Acting on a run against the rules: cancelling it, handing its decision to someone else,
and refusing (with a record in the audit trail) whoever may not.

``Engine`` inherits these methods; ``Engine.submit`` and ``Engine.resume`` use the refusals.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping

from signoff.engine import serialization
from signoff.engine.actors import (
    Actor,
    as_actor,
    check_id_case,
    check_not_group,
    check_one_line,
)
from signoff.engine.audit import AuditAction, AuditEntry
from signoff.engine.errors import (
    AlreadyAnswered,
    EngineError,
    InvalidTransition,
    NotAllowed,
    PauseExpired,
    ResponderNotAllowed,
    RunNotWaiting,
)
from signoff.engine.heard import Heard
from signoff.engine.oversight import Oversight
from signoff.engine.permissions import Action, Refusal
from signoff.engine.redaction import hide_secrets
from signoff.engine.runs import JSON, Pause, PauseStatus, Run, RunState, handed_on
from signoff.engine.waiters import Waiters

logger = logging.getLogger(__name__)


class Interventions(Oversight):
    """Cancel and reassign, and the refusals every action shares."""

    waiters: Waiters
    heard: Heard

    def notify(self) -> None:
        raise NotImplementedError

    def _refuse(
        self,
        action: Action,
        actor: Actor | None,
        refusal: Refusal,
        *,
        run: Run | None = None,
        flow: str | None = None,
        key: str | None = None,
        data: Mapping[str, JSON] | None = None,
        message: str | None = None,
    ) -> NotAllowed:
        """Record a refusal in the audit trail; the error to raise (nothing else changed),
        saying ``message`` if given, else that ``actor`` may not act."""
        flow_name = run.flow_name if run is not None else flow
        self.store.record_audit(
            AuditEntry(
                AuditAction.REFUSED,
                run.id if run is not None else None,
                flow_name,
                actor,
                key,
                {"action": action.value, "rule": refusal.reason, **dict(data or {})},
            )
        )
        logger.info(
            "action refused",
            extra={
                "action": "action_refused",
                "run_id": run.id if run is not None else None,
                "flow": flow_name,
                "refused": action.value,
            },
        )
        return NotAllowed(
            action.value,
            actor.id if actor else None,
            refusal.reason,
            run_id=run.id if run is not None else None,
            flow=flow_name,
            allowed=refusal.allowed,
            message=message,
        )

    def _refuse_answer(
        self, actor: Actor | None, run: Run, pause: Pause, refusal: Refusal, payload: JSON
    ) -> ResponderNotAllowed:
        given = recorded_input(pause, payload)
        self._refuse(Action.ANSWER, actor, refusal, run=run, key=pause.key, data={"input": given})
        return ResponderNotAllowed(
            run.id, pause.key, actor.id if actor else None, refusal.reason, refusal.allowed
        )

    def _not_waiting_for(self, run: Run, key: str) -> EngineError:
        """Why pause ``key`` of ``run`` cannot be answered (any more)."""
        pause = self.store.get_pause(run.id, key)
        if pause is None:
            return RunNotWaiting(run.id, f"{run.state.value}, with no input {key!r}")
        if pause.status is PauseStatus.TIMED_OUT:
            if pause.deadline is not None and pause.deadline <= self.store.clock():
                return PauseExpired(run.id, key, pause.deadline.isoformat())
            return PauseExpired(run.id, key, None)  # ended before any deadline
        if pause.status is PauseStatus.CANCELLED:
            if run.state is RunState.CANCELLED or not run.state.is_final:
                return RunNotWaiting(run.id, RunState.CANCELLED.value)
            # Closed as the run ended otherwise (failed beside it, say).
            return RunNotWaiting(
                run.id, f"{run.state.value}, and its input {key!r} was closed unanswered"
            )
        if pause.status is PauseStatus.WAITING:
            return RunNotWaiting(run.id, run.state.value)
        return AlreadyAnswered(run.id, key, pause.responder, pause.answered_by)

    def cancel(
        self, run_id: str | uuid.UUID, by: str | Actor | None = None, *, reason: str | None = None
    ) -> Run:
        """Cancel a run that has not finished; a waiting flow stops where it waits.

        ``by`` is checked against the rule for cancelling (see ``engine.permissions``); the
        cancel is recorded in the audit trail with ``reason``.

        Raises:
            RunNotFound: no such run.
            NotAllowed: ``by`` may not cancel it (the refusal is recorded).
            InvalidTransition: the run has finished already.
        """
        actor = as_actor(by)
        run = self._run(run_id)
        refusal = self.permissions.cancel(
            actor, run, run.cancellers, self._deciding(run, self.store.waiting_pause(run.id))
        )
        if refusal is not None:
            raise self._refuse(Action.CANCEL, actor, refusal, run=run)
        message = serialization.storable_text(
            reason or (f"cancelled by {actor.label}" if actor else "cancelled")
        )
        # A flow of the run here must not start its next task between the cancel's commit
        # and this process hearing of it.
        with self.heard.cancelling(run.id):
            if not self.store.cancel(run.id, message, actor):
                current = self.store.get_run(run.id).state
                raise InvalidTransition(run.id, current.value, RunState.CANCELLED.value)
            self.heard.cancelled(run.id)
        self._stopped(run.id)
        self._cancel_children(run.id, actor)
        self.notify()
        return self.store.get_run(run.id)

    def _stopped(self, run_id: str) -> None:
        self.heard.cancelled(run_id)
        self.waiters.wake(run_id)
        logger.info("run cancelled", extra={"action": "run_cancelled", "run_id": run_id})

    def _cancel_children(self, run_id: str, actor: Actor | None) -> None:
        """Cancel the runs of the flows ``run_id``'s flow called (and theirs), as part of
        cancelling it: the person who cancelled it is recorded, with why."""
        for child in self.store.unfinished_children(run_id):
            if self.store.cancel(child, f"its parent run {run_id} was cancelled", actor):
                self._stopped(child)
            self._cancel_children(child, actor)

    def reassign(
        self, run_id: str | uuid.UUID, to: str, by: str | Actor, *, key: str | None = None
    ) -> Pause:
        """Hand the decision a run waits on from ``by`` to ``to`` (another person's id).

        ``to`` becomes an approver of the pause and ``by`` stops being one if the pause
        named them; a pause anyone could answer becomes ``to``'s. Recorded in the audit
        trail; applications tell ``to`` through the ``PAUSE_REASSIGNED`` event.

        Raises:
            RunNotWaiting, PauseExpired: there is nothing to hand over.
            NotAllowed: ``by`` may not reassign it, or ``to`` could never answer it.
            NotAPerson: ``to`` or ``by`` is a user group's id (nothing is recorded).
        """
        actor = as_actor(by)
        assert actor is not None
        check_one_line(to, "the id to reassign to")
        # As approvers are checked: "u0bob" is nobody's id, and the decision would be no one's.
        check_id_case(to, "the id to reassign to")
        # One person is handed it: a group would be nobody in particular to wait for.
        check_not_group(to, "the id to reassign to")
        run = self._run(run_id)
        while True:
            pause = self.store.get_pause(run.id, key) if key else self.store.waiting_pause(run.id)
            if pause is None or pause.status is not PauseStatus.WAITING:
                raise (
                    self._not_waiting_for(run, key)
                    if key
                    else RunNotWaiting(run.id, run.state.value)
                )
            self._check_reassign(run, pause, actor, to)
            changed = self.store.reassign_pause(run.id, pause.key, actor, to, known=pause)
            # Changed since it was judged (the same person handing it on twice at once, an
            # answer, an escalation): judged again, as it is now. Each time, another write
            # committed, so this ends.
            if changed != "changed":
                break
        if changed is None:
            raise self._not_waiting_for(self.store.get_run(run.id), pause.key)
        self.notify()
        logger.info(
            "pause reassigned",
            extra={"action": "pause_reassigned", "run_id": run.id, "key": pause.key},
        )
        return changed

    def _check_reassign(self, run: Run, pause: Pause, actor: Actor, to: str) -> None:
        """Raise (and record) the refusal if ``actor`` may not hand ``pause`` to ``to``."""
        refusal = self.permissions.reassign(actor, run, pause)
        if refusal is None and not to.strip():
            refusal = Refusal("say who to hand it to")
        if refusal is None and to != to.strip():
            refusal = Refusal(f"{to!r} has spaces around it: it would be nobody's to answer")
        if refusal is None and to == actor.id and self._answers(actor, pause):
            refusal = Refusal("it is already yours; hand it to someone else")
        if refusal is not None:
            raise self._refuse(
                Action.REASSIGN, actor, refusal, run=run, key=pause.key, data={"to": to}
            )
        # These bar the person it was to go to, not whoever hands it on: the message
        # names them, not the sender (who may well hand it to someone else).
        barred = None
        if pause.forbid_starter and to == run.started_by:
            barred = Refusal(f"{to} started it, and the person who started a run may not answer it")
        elif to in pause.answered_by:
            barred = Refusal(f"{to} has already answered this input")
        if barred is not None:
            raise self._refuse(
                Action.REASSIGN,
                actor,
                barred,
                run=run,
                key=pause.key,
                data={"to": to},
                message=f"{to} may not be handed run {run.id}: {barred.reason}",
            )
        shrinks = self._quorum_shrinks(pause, to) if pause.quorum > 1 else None
        if shrinks is not None:
            raise self._refuse(
                Action.REASSIGN, actor, shrinks, run=run, key=pause.key, data={"to": to}
            )

    def _answers(self, actor: Actor, pause: Pause) -> bool:
        """Whether ``actor`` is among who may answer ``pause`` already (an admin who is not
        may take a decision on by handing it to themselves)."""
        return not pause.approvers or self.permissions.matches(actor, pause.approvers)

    def _quorum_shrinks(self, pause: Pause, to: str) -> Refusal | None:
        """Why handing ``pause``, which needs several people, to ``to`` would leave fewer
        people who may answer it, or None. (The list loses whoever hands it on.)"""
        if not pause.approvers:
            return Refusal(
                f"anyone may answer it, and it needs {pause.quorum} different people: "
                f"{to} alone is not enough; ask them to answer it instead"
            )
        # Someone who handed it on may not answer it, even through a group: handing it back
        # to them adds one.
        handed = dict(handed_on((d.by, d.to) for d in pause.delegations))
        if to not in handed and self.permissions.matches(Actor(to), pause.approvers):
            return Refusal(
                f"{to} may already answer it, and it needs {pause.quorum} different people; "
                "hand it to someone who may not yet"
            )
        return None


def recorded_input(pause: Pause, payload: JSON) -> JSON:
    """What the trail keeps of an answer it refused: as given, unchecked, as JSON can hold
    it (an infinite float by its name), secrets hidden; one too large for an answer is
    described, not kept (kept, it would be as large)."""
    from signoff.engine.validation import oversized  # loads jsonschema: refusals only

    size = oversized(payload)
    if size is not None:
        return f"(an answer of {size:,} characters as JSON, not kept)"
    return hide_secrets(pause.schema, serialization.jsonable(payload))


__all__ = ["Interventions", "recorded_input"]
