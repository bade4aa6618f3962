"""Turning a Prefect run as it is now into the changes a consumer has not been handed yet.

Prefect's events say *that* a run changed; ``Delivery.sync`` reads the run and compares it
with what this consumer was handed already, which is kept on the run as a record
(``<consumer>.delivered``), so a restart (or another replica) neither loses nor repeats a
change. Each change has a stable id (``<run>:<key>:<what>``), so an observer handed one
twice after a crash can tell. What is handed:

- a request that waits -> ``WAITING_FOR_INPUT``;
- a request answered and accepted -> ``INPUT_ACCEPTED``; refused by the flow's own
  validation -> ``INPUT_REJECTED`` (who sent what, and the flow's message); an answer
  given in Prefect rather than through Signoff is audited as such (``ANSWERED_OUTSIDE``);
- a request nobody answered in time -> ``PAUSE_TIMED_OUT``;
- a request prompted for and then cancelled before the run ended -> ``PAUSE_CANCELLED``
  (a run Prefect leaves Cancelling, such as one without a runner, keeps no open prompt);
- a hand-over (Reassign) -> ``PAUSE_REASSIGNED``;
- a finished run -> ``STATE_CHANGED``;
- a run deleted in Prefect (``gone``) -> ``RUN_DELETED``, with the consumer's records kept
  apart from the run (``Records.keep``), since the run's own went with it.

A run the consumer does not play (``plays``: a ``signoff demo`` session's run, to a bot
serving the same server) is handed nothing and its timers are left to its own bot; that it
was left alone is logged once (``prefect_demo_run_skipped``).

The flow's verdicts also go into the run's audit trail, once however many replicas or
consumers hand them on (``Records.audit_once``).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from signoff.bot.backends.interface import ChangeObserver
from signoff.bot.backends.model import JSON, SYSTEM, Event, EventKind, Pause, PauseStatus, Run
from signoff.bot.backends.prefect.api import Doc
from signoff.bot.backends.prefect.records import Records
from signoff.bot.backends.prefect.requests import refusal_pending
from signoff.bot.backends.prefect.runs import DEMO_TAG, fingerprint, pause_of

logger = logging.getLogger(__name__)

#: how many skipped runs' ids are remembered, so that each is logged once
SKIPPED_REMEMBERED = 10_000

#: reads a run now: the run, Prefect's document of it, its requests for input
ReadRun = Callable[[str], tuple[Run, Doc, list[Pause]]]


#: what the trail says of an answer given in Prefect (its UI, its API), not through Signoff
ANSWERED_OUTSIDE = "outside Signoff, in Prefect's UI or API: who answered is unknown"


def _answered_by(pause: Pause) -> dict[str, JSON]:
    """Whose answer the flow judged: Signoff's responder, or that it came from outside
    (without a responder line, the verdict read as an answer given through Signoff)."""
    if pause.answered_outside:
        return {"responder": None, "answered": ANSWERED_OUTSIDE}
    return {"responder": pause.responder}


class Delivery:
    """Hands ``observer`` what is new about a run, for the consumer ``consumer``.

    ``read`` reads a run as it is now; ``restore`` schedules the timers stored on it.
    """

    def __init__(
        self,
        read: ReadRun,
        records: Records,
        restore: Callable[[str], None],
        consumer: str,
        observer: ChangeObserver,
        *,
        plays: Callable[[Run], bool] = lambda run: True,
    ) -> None:
        self.read = read
        self.records = records
        self.restore = restore
        self.consumer = consumer
        self.observer = observer
        self.plays = plays
        self._skipped: OrderedDict[str, None] = OrderedDict()

    def sync(self, run_id: str) -> str | None:
        """Deliver what is new about ``run_id``; the run's fingerprint (``runs.fingerprint``),
        or None when it cannot be judged yet (it paused, but the flow has not stored the
        schema of its input yet, or the flow's reason for refusing the last answer may still
        be on its way: ``requests.refusal_pending``)."""
        run, doc, pauses = self.read(run_id)
        if not self.plays(run):
            self._skip(run)
            return fingerprint(doc)
        current = pause_of(doc.get("state") or {})
        if current is not None and not any(
            p.created_at >= current.created_at or p.status is PauseStatus.WAITING for p in pauses
        ):
            # The flow stores the schema just after pausing (by its time: a retried flow
            # asks again under the key of a request it listed before, ``runs.pauses``).
            return None
        if refusal_pending(pauses):
            return None  # its refusal of the last answer may still be in its logs' batch
        self.restore(run.id)
        record = f"{self.consumer}.delivered"
        delivered: dict[str, Any] = self.records.get(run.id, record) or {}
        prompted: list[str] = list(delivered.get("prompted") or [])
        settled: dict[str, str] = dict(delivered.get("settled") or {})
        handed: list[str] = list(delivered.get("handed") or [])
        final = delivered.get("final")

        def deliver(kind: EventKind, data: dict[str, JSON], change_id: str) -> None:
            self.observer.on_event(Event(change_id, run.id, kind, datetime.now(UTC), data))
            self.records.set(
                run.id,
                record,
                {"prompted": prompted, "settled": settled, "handed": handed, "final": final},
            )

        for pause in pauses:
            key = pause.key
            if pause.status is PauseStatus.REJECTED and settled.get(key) != "rejected":
                settled[key] = "rejected"
                # The flow's verdict, as the engine records it: its act about that answer.
                self.records.audit_once(
                    run.id,
                    f"{key}.rejected",
                    "answer.rejected",
                    SYSTEM,
                    key=key,
                    data={**_answered_by(pause), "errors": dict(pause.errors or {})},
                )
                deliver(
                    EventKind.INPUT_REJECTED,
                    {
                        "key": key,
                        "responder": pause.responder,
                        "response": pause.response,
                        "errors": pause.errors,
                    },
                    f"{run.id}:{key}:rejected",
                )
            elif pause.status is PauseStatus.ACCEPTED and key not in settled:
                settled[key] = "accepted"
                self.records.audit_once(
                    run.id,
                    f"{key}.accepted",
                    "answer.accepted",
                    SYSTEM,
                    key=key,
                    data=_answered_by(pause),
                )
                deliver(EventKind.INPUT_ACCEPTED, {"key": key}, f"{run.id}:{key}:accepted")
            elif pause.status is PauseStatus.TIMED_OUT and key not in settled:
                settled[key] = "timed_out"
                deliver(EventKind.PAUSE_TIMED_OUT, {"key": key}, f"{run.id}:{key}:timed_out")
            elif (
                pause.status is PauseStatus.CANCELLED
                and key in prompted
                and key not in settled
                and not run.state.is_final  # an ended run's prompt closes with the run
            ):
                settled[key] = "cancelled"
                deliver(EventKind.PAUSE_CANCELLED, {"key": key}, f"{run.id}:{key}:cancelled")
        for pause in pauses:
            if pause.status is PauseStatus.WAITING and pause.key not in prompted:
                prompted.append(pause.key)
                deliver(
                    EventKind.WAITING_FOR_INPUT, {"key": pause.key}, f"{run.id}:{pause.key}:waiting"
                )
            for index, delegation in enumerate(pause.delegations):
                change = f"{run.id}:{pause.key}:handed:{index}"
                if pause.status is PauseStatus.WAITING and change not in handed:
                    handed.append(change)
                    deliver(
                        EventKind.PAUSE_REASSIGNED,
                        {"key": pause.key, "by": delegation.by, "to": delegation.to},
                        change,
                    )
        if run.state.is_final and final != run.state.value:
            final = run.state.value
            deliver(
                EventKind.STATE_CHANGED,
                {"state": run.state.value, "name": run.state_name},
                f"{run.id}:final:{run.state.value}",
            )
        if run.state.is_final:
            # Its prompts are closed: a later deletion leaves nothing open to close.
            self.records.forget_kept(self.consumer, run.id)
        return fingerprint(doc)

    def _skip(self, run: Run) -> None:
        if run.id in self._skipped:
            return
        self._skipped[run.id] = None
        if len(self._skipped) > SKIPPED_REMEMBERED:
            self._skipped.popitem(last=False)
        logger.info(
            "Prefect run belongs to another bot (a signoff demo's, or the served bot's); "
            "left alone",
            extra={
                "action": "prefect_demo_run_skipped",
                "run_id": run.id,
                "demo": run.tags.get(DEMO_TAG),
            },
        )

    def gone(self, run_id: str) -> None:
        """Deliver that ``run_id`` was deleted, if the consumer kept records about it (it
        posted about the run, and neither the run's end nor its deletion was delivered)."""
        kept = self.records.kept(self.consumer, run_id)
        if kept is None:
            return
        self.observer.on_event(
            Event(
                f"{run_id}:deleted",
                run_id,
                EventKind.RUN_DELETED,
                datetime.now(UTC),
                {"records": kept},
            )
        )
        self.records.forget_kept(self.consumer, run_id)


__all__ = ["Delivery"]
