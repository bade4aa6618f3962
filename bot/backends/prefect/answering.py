"""Answering a Prefect run's requests for input, handing them over, and who may act on one.

Answering first checks the answer against the stored schema as Signoff's own engine does
(every field at once, formats too, as strict as the model's types), then resumes the run
through Prefect's resume endpoint, whose own schema check decides last, and whose refusal
comes back naming the field (``refusals``). The first
submission claims the request (an answer record on the run), so a second one finds it
answered. Every refusal by the rules is kept in the run's audit trail, with the rule.
Also here: whom requests wait on (``waiting_on``), what a person answered
(``decisions_by``, found by the ``ANSWERED_BY`` tag), and the claim that makes one bot
process send a request's reminder (``claim_reminder``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from signoff.bot.backends.model import (
    JSON,
    SYSTEM,
    Accepted,
    Action,
    Actor,
    Answer,
    AuditRecord,
    Delegation,
    Denied,
    Pause,
    PauseStatus,
    Refusal,
    Refused,
    Run,
    Stale,
    is_group_id,
)
from signoff.bot.backends.prefect import runs as prefect_runs
from signoff.bot.backends.prefect.claims import AnswerClaims, Outcome
from signoff.bot.backends.prefect.reading import RunReading
from signoff.bot.backends.prefect.refusals import field_errors
from signoff.bot.backends.prefect.requests import delegation_record
from signoff.bot.backends.prefect.watcher import Watcher
from signoff.bot.errors import (
    BackendError,
    BackendUnavailable,
    NotAPerson,
    NotPermitted,
    RunNotFound,
)
from signoff.engine import hide_secrets, schema_errors

logger = logging.getLogger(__name__)

#: tag naming who answered a run (App Home's "your recent decisions")
ANSWERED_BY = "signoff.answered_by"


#: where a request stands once someone answered it
_ANSWERED = frozenset({PauseStatus.ANSWERED, PauseStatus.ACCEPTED, PauseStatus.REJECTED})


def _answered_first(run_id: str, key: str, responder: str | None) -> Stale:
    """A second answer's refusal, naming the first answerer in the embedded engine's words
    (the claim on the request holds them; a request answered in Prefect itself has none)."""
    who = responder or "someone outside Signoff (in Prefect's UI or API)"
    return Stale(f"input {key!r} of run {run_id} was already answered by {who}")


def _closed(run_id: str, key: str, deadline: datetime) -> str:
    return f"input {key!r} of run {run_id} closed at {deadline:%H:%M} UTC"


def _not_waiting(run_id: str, key: str, state: str | None) -> str:
    now = f"is {state} and " if state else ""
    return f"run {run_id} {now}does not wait for input {key!r}"


class Answering(RunReading):
    """Refusing, answering and reassigning requests for input; who is asked, who answered."""

    #: the backend's watchers, told of a hand-over (no Prefect event follows one)
    _watchers: list[Watcher]

    @cached_property
    def claims(self) -> AnswerClaims:
        """Answers' claims on requests, held ``SIGNOFF_PREFECT_ANSWER_CLAIM_SECONDS``."""
        lease = timedelta(seconds=self.settings.answer_claim_seconds)
        return AnswerClaims(self.api, self.records, lease)

    def refusal(
        self, action: Action, actor: Actor, run_id: str, key: str | None = None
    ) -> Refusal | None:
        doc = self._doc(run_id)
        run = self._run(doc)
        found: Refusal | None
        if action is Action.VIEW:
            found = self._may_view(actor, run, doc)
            if found is not None:
                self._audit_refusal(run.id, actor, None, action, found)
            return found
        pause = self.get_pause(run.id, key) if key else self._waiting(doc)
        if action is Action.CANCEL:
            found = self.rules.cancel(actor, run, self._permission(doc), pause)
        elif pause is None:
            return Refusal(f"run {run.id} is not waiting for input")
        elif action is Action.REASSIGN:
            found = self.rules.reassign(actor, run, pause)
        else:
            found = self.rules.answer(actor, run, pause)
        if found is not None:
            self._audit_refusal(run.id, actor, pause.key if pause else None, action, found)
        return found

    def answer(
        self, run_id: str, key: str, values: Mapping[str, JSON], *, responder: Actor
    ) -> Answer:
        doc = self._doc(run_id)
        run = self._run(doc)
        pause = self.get_pause(run.id, key)
        if pause is not None and pause.status in _ANSWERED:
            return _answered_first(run.id, key, pause.responder)
        if pause is None or pause.status is not PauseStatus.WAITING:
            return Stale(_not_waiting(run.id, key, run.state_name))
        if pause.deadline is not None and pause.deadline <= datetime.now(UTC):
            return Stale(_closed(run.id, key, pause.deadline))
        if pause.unanswerable is not None:
            return Stale(f"input {key!r} of run {run.id} cannot be answered: {pause.unanswerable}")
        refused = self.rules.answer(responder, run, pause)
        if refused is not None:
            self._audit_refusal(run.id, responder, key, Action.ANSWER, refused)
            return Denied(refused)
        payload = dict(values)
        if pause.wants_input and pause.schema is not None:
            # Prefect's check names only its first error and checks no format, so an answer
            # its model refuses ("not-an-ip" for an IPv4Address) would resume the run and
            # fail the flow; this one names every field the model would refuse.
            errors = schema_errors(pause.schema, payload)
            if errors:
                return Refused(errors, "; ".join(f"{k or 'input'}: {v}" for k, v in errors.items()))
        claimed_at = datetime.now(UTC)
        # Recorded for ever: a secret field's value is not (Prefect gets it as given).
        shown = hide_secrets(pause.schema, payload) if pause.wants_input else None
        claim = self.claims.make(responder, shown, claimed_at)
        # The first to claim the request answers it; a second submission finds the claim.
        if not self.claims.take(run.id, key, claim):
            return _answered_first(run.id, key, self.claims.holder(run.id, key))
        sent = payload if pause.wants_input else None
        try:
            result = self.api.resume(run.id, sent)
        except RunNotFound:
            raise  # deleted, with the claim
        except BackendError as exc:
            return self._unconfirmed(pause, claim, sent, responder, exc)
        except BaseException:
            self.claims.release(run.id, key, claim)
            raise
        status = result.get("status")
        if status == "ACCEPT":
            return self._accepted(pause, claim, responder)
        self.claims.release(run.id, key, claim)
        reason = str((result.get("details") or {}).get("reason") or status)
        # A schema's refusal leaves the request waiting; Prefect refuses too (REJECT) a
        # resume past the deadline, and aborts one of a run no longer paused (ABORT).
        stopped = self._stopped_waiting(run.id, key)
        if stopped is not None:
            logger.info(
                "Prefect run stopped waiting as it was answered: %s",
                reason,
                extra={"action": "prefect_answer_too_late", "run_id": run.id, "key": key},
            )
            return stopped
        if status == "REJECT":
            return Refused(field_errors(reason), reason.removeprefix("Reason: "))
        return Stale(f"input {key!r} of run {run.id} was not answered: {reason}")

    def _unconfirmed(
        self,
        pause: Pause,
        claim: dict[str, Any],
        sent: Mapping[str, JSON] | None,
        responder: Actor,
        failure: BackendError,
    ) -> Answer:
        """The resume's outcome is not known (the connection failed under it): read the run
        back. A resume that took effect keeps its claim (who answered); one that did not
        releases it. If Prefect cannot tell either, the claim stays: it lapses unless the
        run went on (``claims``)."""
        run_id, key = pause.run_id, pause.key
        try:
            outcome = self.claims.outcome(run_id, key, sent)
        except BackendError as exc:
            logger.warning(
                "answer's resume not confirmed: %s",
                exc,
                extra={"action": "prefect_answer_unconfirmed", "run_id": run_id, "key": key},
            )
            raise BackendUnavailable(
                "prefect",
                f"whether the answer to input {key!r} of run {run_id} was taken is not known "
                f"({failure}); if the run still waits, answer again",
            ) from failure
        logger.info(
            "answer's resume read back: %s",
            outcome.value,
            extra={"action": "prefect_answer_read_back", "run_id": run_id, "key": key},
        )
        if outcome is Outcome.TAKEN:
            return self._accepted(pause, claim, responder)
        self.claims.release(run_id, key, claim)
        if outcome is Outcome.WAITING:
            raise failure
        return self._stopped_waiting(run_id, key) or Stale(_not_waiting(run_id, key, None))

    def _stopped_waiting(self, run_id: str, key: str) -> Stale | None:
        """Why request ``key`` of the run can no longer be answered, in the words ``answer``
        refuses it with beforehand (None: it still waits)."""
        pause = self.get_pause(run_id, key)
        if pause is not None and pause.status in _ANSWERED:
            return _answered_first(run_id, key, pause.responder)
        if (
            pause is not None
            and pause.deadline is not None
            and (pause.status is PauseStatus.TIMED_OUT or pause.deadline <= datetime.now(UTC))
        ):
            return Stale(_closed(run_id, key, pause.deadline))
        if pause is not None and pause.status is PauseStatus.WAITING:
            return None
        return Stale(_not_waiting(run_id, key, self.get_run(run_id).state_name))

    def _accepted(self, pause: Pause, claim: dict[str, Any], responder: Actor) -> Accepted:
        run_id, key = pause.run_id, pause.key
        claimed_at = prefect_runs.parse_time(str(claim["at"])) or datetime.now(UTC)
        self.records.audit(
            run_id,
            "answer.received",
            responder,
            key=key,
            data={"input": claim["input"]},
            at=claimed_at,
        )
        self.api.add_tags(run_id, [f"{ANSWERED_BY}:{responder.id}"])
        logger.info(
            "Prefect run resumed",
            extra={"action": "prefect_run_resumed", "run_id": run_id, "key": key},
        )
        return Accepted(
            replace(
                pause,
                status=PauseStatus.ANSWERED,
                response=claim["input"],
                responder=responder.id,
                answered_at=datetime.now(UTC),
            )
        )

    def reassign(self, run_id: str, to: str, by: Actor, *, key: str) -> Pause:
        if is_group_id(to):
            raise NotAPerson(to, f"run {run_id}: the id to reassign to")
        doc = self._doc(run_id)
        run = self._run(doc)
        pause = self.get_pause(run.id, key)
        if pause is None or pause.status is not PauseStatus.WAITING:
            raise BackendError(f"input {key!r} of run {run.id} does not wait any more")
        refused = self.rules.reassign(by, run, pause) or self.rules.hand_to(run, pause, by, to)
        why = refused or self.rules.barred(run, pause, to)
        if why is not None:
            self._audit_refusal(run.id, by, key, Action.REASSIGN, why)
            raise NotPermitted(
                "reassign",
                by.id,
                why.reason,
                allowed=why.allowed,
                run_id=run.id,
                # barred: the person it was to go to may not have it, not whoever hands it on
                message=None if refused else f"{to} may not be handed run {run.id}: {why.reason}",
            )
        handed = [*({"by": d.by, "to": d.to, "at": d.at.isoformat()} for d in pause.delegations)]
        handed.append({"by": by.id, "to": to, "at": datetime.now(UTC).isoformat()})
        self.records.set(run.id, delegation_record(key), handed)
        self.records.audit(
            run.id,
            "pause.reassigned",
            by,
            key=key,
            data={"to": to},
        )
        for watcher in self._watchers:
            watcher.poke(run.id)  # no Prefect event follows a hand-over: tell the Slack side
        found = self.get_pause(run.id, key)
        return found or replace(
            pause, delegations=(*pause.delegations, Delegation(by.id, to, datetime.now(UTC)))
        )

    def waiting_on(self, actor: Actor, limit: int = 20) -> list[tuple[Run, Pause]]:
        found: list[tuple[Run, Pause]] = []
        for doc in self.api.flow_runs(state_types=["PAUSED"], limit=100):
            run = self._run(doc)
            if not prefect_runs.plays(run, self.demo):
                continue  # a demo's run (or, for the demo, the served bot's): not ours
            pause = self._waiting(doc)
            if pause is not None and self.rules.answer(actor, run, pause) is None:
                found.append((run, pause))
            if len(found) >= limit:
                break
        return found

    def decisions_by(self, actor_id: str, limit: int = 20) -> list[AuditRecord]:
        found: list[AuditRecord] = []
        for doc in self.api.flow_runs(tags=[f"{ANSWERED_BY}:{actor_id}"], limit=limit):
            found += [
                r
                for r in self.records.trail(str(doc["id"]))
                if r.actor_id == actor_id and r.action == "answer.received"
            ]
        return sorted(found, key=lambda r: r.at, reverse=True)[:limit]

    def claim_reminder(
        self, run_id: str, key: str, claim: str, *, deadline: datetime | None
    ) -> bool:
        if not self.records.add(run_id, claim, None):
            return False
        self.records.audit(
            run_id,
            "reminder.sent",
            SYSTEM,
            key=key,
            data={"deadline": deadline.isoformat() if deadline else None},
        )
        return True


__all__ = ["ANSWERED_BY", "Answering"]
