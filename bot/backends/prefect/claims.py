"""The claim an answer makes on a Prefect request before it resumes the run.

A claim is the record ``answer.<key>`` on the run: who answers, what, when, and until when
the claim holds (``until``: the claim's lease). Exactly one process creates it (Prefect
stores an input once), and only that process resumes the run, so a second answer finds it
and is told who answered first. Once the run went on from the request the claim is the
record of who answered, for good.

A claim on a request the run still waits on, past its lease, belongs to an answer that
never took effect: its process lost Prefect between claiming and resuming, and could not
delete it. It counts for nothing (``lapsed``): the request reads as waiting, and the next
answer takes the claim over (``take``), one answer only however many take it at once.

When the resume's outcome is not known (the connection failed under it) the run is read
back (``outcome``) rather than the claim deleted: a resume that took effect keeps its
responder, one that did not leaves the request waiting.
"""

from __future__ import annotations

import enum
import logging
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from signoff.bot.backends.model import JSON, Actor
from signoff.bot.backends.prefect import runs as prefect_runs
from signoff.bot.backends.prefect.api import PrefectApi
from signoff.bot.backends.prefect.records import Records
from signoff.bot.backends.prefect.requests import answer_record, lapsed, resumed_after

logger = logging.getLogger(__name__)


class Outcome(enum.Enum):
    """What a resume whose answer was lost came to, read back from the run."""

    #: the run still waits on the request: the resume did not take effect
    WAITING = "waiting"
    #: the run went on from the request with this answer
    TAKEN = "taken"
    #: the run went on from the request otherwise (cancelled, timed out, answered in Prefect)
    MOVED_ON = "moved_on"


class AnswerClaims:
    """Claims on a server's requests, each holding ``lease`` once made."""

    def __init__(self, api: PrefectApi, records: Records, lease: timedelta) -> None:
        self.api, self.records, self.lease = api, records, lease

    def make(self, responder: Actor, shown: JSON, at: datetime) -> dict[str, Any]:
        """The claim ``responder`` makes at ``at`` (``shown``: the answer as recorded)."""
        return {
            "responder": responder.id,
            "name": responder.name,
            "at": at.isoformat(),
            "until": (at + self.lease).isoformat(),
            "claim": secrets.token_hex(8),
            "input": shown,
        }

    def take(self, run_id: str, key: str, claim: dict[str, Any]) -> bool:
        """Claim request ``key``; False when another answer holds it. A lapsed claim (the
        caller read the request as waiting) is taken over: of several answers doing so at
        once, the one that records taking over that claim first."""
        record = answer_record(key)
        if self.records.add(run_id, record, claim):
            return True
        held = self.records.get(run_id, record)
        if not lapsed(held):
            return False
        mark = str(held.get("claim") or held.get("at"))
        if not self.records.add(run_id, f"{record}.retaken.{mark}", {"by": claim["responder"]}):
            return False
        logger.info(
            "lapsed answer claim taken over",
            extra={
                "action": "prefect_claim_retaken",
                "run_id": run_id,
                "key": key,
                "lapsed_responder": held.get("responder"),
            },
        )
        self.records.drop(run_id, record)
        return self.records.add(run_id, record, claim)

    def holder(self, run_id: str, key: str) -> str | None:
        """Who holds the claim on request ``key`` (None: nobody, or someone unnamed)."""
        held = self.records.get(run_id, answer_record(key))
        found = held.get("responder") if isinstance(held, dict) else None
        return str(found) if found else None

    def release(self, run_id: str, key: str, claim: Mapping[str, Any]) -> None:
        """Delete ``claim``, if it is still the one held (another answer may have taken it
        over once it lapsed)."""
        held = self.records.get(run_id, answer_record(key))
        if isinstance(held, dict) and held.get("claim") == claim["claim"]:
            self.records.drop(run_id, answer_record(key))

    def outcome(self, run_id: str, key: str, sent: Mapping[str, JSON] | None) -> Outcome:
        """Whether the resume that sent ``sent`` for request ``key`` took effect, read from
        the run: it went on from the request, with that response stored (for a request of
        input) or running again (for one without).

        Raises:
            BackendError: Prefect cannot tell (unreachable still).
        """
        doc = self.api.flow_run(run_id)
        states = self.api.states(run_id)
        found = prefect_runs.pauses(states)
        current = prefect_runs.waiting_in(doc, found)
        if current is not None and current.key == key:
            return Outcome.WAITING
        pause = next((p for p in found if p.key == key), None)
        if pause is None:
            return Outcome.MOVED_ON
        if pause.keyset:
            response = self.api.read_input(run_id, pause.keyset["response"])
            return Outcome.TAKEN if response == dict(sent or {}) else Outcome.MOVED_ON
        return Outcome.TAKEN if resumed_after(states, pause) else Outcome.MOVED_ON


__all__ = ["AnswerClaims", "Outcome"]
