"""A request Slack delivers again is acted on once: claimed by its ``trigger_id``.

Slack delivers a command, a click or a form's submission again when it took the first
delivery for failed (no answer within 3 s): over HTTP signed anew (so the edge's claim on
the signature does not recognise it), over Socket Mode as a new envelope. Both carry the
interaction's ``trigger_id``, which Slack issues once per interaction. Before any listener
runs, the ``trigger_id`` is claimed in the database (``Backend.claim_once``), shared by every
replica; a redelivery finds it claimed, is acknowledged with nothing, and does nothing. The
first delivery's listener answers the person (``respond``, a message, a form's update), so
they see one outcome: one run started, one "Cancelled".

An input form's submission is claimed by ``bot.slack.answering`` instead, after its
acknowledgement, by the same key (``interaction_key``); a redelivery of it is shown the
first delivery's outcome. A request without a ``trigger_id`` (a view closed) is not claimed
here. An event is claimed by its ``event_id``: over HTTP at the edge, over Socket Mode (where
a retried event is a new envelope with ``retry_attempt``) here. While the database
cannot be reached the request goes on to its listener, which says so as it would have;
while another writer holds it past ``CLAIM_WITHIN_SECONDS`` nothing is done, and a slash
command is told the database is busy (as ``bot.slack.edge`` does over HTTP).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

from slack_bolt import App
from slack_bolt.response import BoltResponse

from signoff.bot.backends import Backend
from signoff.bot.errors import BackendBusy, BackendUnavailable
from signoff.bot.slack import ids
from signoff.bot.slack.edge import CLAIM_WITHIN_SECONDS, DATABASE_BUSY

__all__ = ["REDELIVERY_CLAIM_SECONDS", "event_key", "interaction_key", "register", "trigger_key"]

logger = logging.getLogger(__name__)

#: how long an interaction's claim is kept: past Slack's last redelivery by far
REDELIVERY_CLAIM_SECONDS = 20 * 60
#: a trigger_id longer than this is claimed by its digest (a claim's key is 200 at most)
_KEPT_AS_IS = 150


def trigger_key(body: Mapping[str, Any]) -> str | None:
    """The ``claim_once`` key of the interaction ``body``, or None if it is not claimed here
    (no ``trigger_id``, or an input form's submission)."""
    trigger = body.get("trigger_id")
    if not isinstance(trigger, str) or not trigger:
        return None
    view = body.get("view")
    if (
        body.get("type") == "view_submission"
        and isinstance(view, Mapping)
        and view.get("callback_id") == ids.INPUT_VIEW
    ):
        return None
    return interaction_key(trigger)


def interaction_key(trigger: str) -> str:
    """The ``claim_once`` key of the interaction Slack gave ``trigger`` (its ``trigger_id``)."""
    if len(trigger) > _KEPT_AS_IS:
        trigger = hashlib.sha256(trigger.encode()).hexdigest()
    return f"slack:trigger:{trigger}"


def event_key(body: Mapping[str, Any]) -> str | None:
    """The ``claim_once`` key of the Events API ``body`` (its ``event_id``), or None; the
    edge claims the same key over HTTP."""
    event_id = body.get("event_id")
    if body.get("type") != "event_callback" or not isinstance(event_id, str) or not event_id:
        return None
    return f"slack:event:{event_id[:_KEPT_AS_IS]}"


def register(app: App, backend: Backend, *, events: bool = False) -> None:
    """Acknowledge, and drop, an interaction whose ``trigger_id`` was claimed before, and
    with ``events`` (no edge in front: Socket Mode) an event whose ``event_id`` was."""

    @app.middleware
    def once_per_interaction(
        body: dict[str, Any], next: Callable[[], BoltResponse]
    ) -> BoltResponse | None:
        key = trigger_key(body) or (event_key(body) if events else None)
        if key is None:
            return next()
        try:
            fresh = backend.claim_once(key, REDELIVERY_CLAIM_SECONDS, within=CLAIM_WITHIN_SECONDS)
        except BackendBusy:
            # As the edge does over HTTP: past Slack's 3 s the person would see a timeout
            # and whatever the listener did after it, so nothing is done and they are told.
            logger.warning(
                "the database is busy: the redelivery check did not get its turn to write "
                "in time, so the request was not acted on",
                extra={"action": "redelivery_check_busy", "seconds": CLAIM_WITHIN_SECONDS},
            )
            if body.get("command"):
                return BoltResponse(status=200, body=DATABASE_BUSY)
            return BoltResponse(status=503, body="")
        except BackendUnavailable:
            logger.warning(
                "cannot check for a redelivery", extra={"action": "redelivery_check_failed"}
            )
            return next()
        if fresh:
            return next()
        logger.info(
            "request delivered again ignored",
            extra={"action": "request_redelivered", "kind": str(body.get("type") or "command")},
        )
        return BoltResponse(status=200, body="")
