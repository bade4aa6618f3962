"""The first thing every HTTP request from Slack meets: signature, replay, then shape.

In this order, before Bolt or any listener sees a byte:

1. the signature is checked on the raw bytes (``v0:<timestamp>:<body>``, HMAC-SHA256 with
   the signing secret, timestamp within five minutes); anything that fails gets 401,
   whatever the body holds;
2. the body is parsed into ``bot.slack.payloads``' typed models; a malformed one gets 400 with
   a message naming what was wrong;
3. the request is claimed once in the database (``Backend.claim_once``), keyed by its
   signature (``replay_key``), for as long as the signature is valid; every replica shares
   the claim, so a replayed request is answered 200 and does nothing. Events API retries
   carry a new signature, so an event is also claimed by its ``event_id``.

   The one exception is an input form's submission (``claimed_after_ack``): everything it
   changes happens after its acknowledgement, on ``bot.slack.answering``'s pool, which
   claims it there before the answer. A replay is then acknowledged like the original (the
   answer goes to whoever replayed it, not to Slack) and changes nothing; the write is
   kept off the path that has to answer Slack quickly.

An input form's submission is also the one request that many people send at once (a
release waiting on a dozen approvers): given ``forms``, the edge acknowledges it itself,
on the HTTP thread. Bolt would hand it to a listener thread and look every 10 ms whether
the listener acknowledged yet, which on its own costs each submission 10 ms.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from signoff.bot.backends import Backend
from signoff.bot.errors import BackendUnavailable, PayloadError
from signoff.bot.slack import ids
from signoff.bot.slack.payloads import MAX_BODY_BYTES, EventCallback, ViewSubmission, read_request

__all__ = [
    "REPLAY_WINDOW_SECONDS",
    "SlackEdge",
    "claimed_after_ack",
    "replay_key",
    "signature_is_valid",
]

logger = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

#: Slack's window: a request signed longer ago than this is refused.
REPLAY_WINDOW_SECONDS = 300
#: A timestamp is whole seconds; twelve digits reach far past any clock.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


def signature_is_valid(
    secret: str, body: bytes, timestamp: str | None, signature: str | None, now: float
) -> bool:
    """Whether ``signature`` is Slack's signature of ``body`` at ``timestamp`` (raw bytes)."""
    if not timestamp or not signature or not _TIMESTAMP.fullmatch(timestamp):
        return False
    if abs(now - int(timestamp)) > REPLAY_WINDOW_SECONDS:
        return False
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = b"v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest().encode()
    # WSGI hands headers over as latin-1 text, so this encoding cannot fail.
    return hmac.compare_digest(expected, signature.encode("latin-1", "replace"))


def replay_key(signature: str) -> str:
    """The ``claim_once`` key of the request signed with ``signature``."""
    return f"slack:signature:{signature}"


def claimed_after_ack(payload: object) -> bool:
    """Whether the request is claimed by its listener after the ack, not here: an input
    form's submission (see the module's docstring)."""
    return isinstance(payload, ViewSubmission) and payload.view.callback_id == ids.INPUT_VIEW


def _answer(
    start_response: StartResponse, status: str, text: str, *, content_type: str = "text/plain"
) -> list[bytes]:
    body = text.encode()
    start_response(
        status,
        [("Content-Type", f"{content_type}; charset=utf-8"), ("Content-Length", str(len(body)))],
    )
    return [body]


class SlackEdge:
    """WSGI middleware in front of Bolt's handler for ``POST /slack/events``.

    Args:
        inner: Bolt's WSGI handler.
        backend: Where replay claims are kept (shared by every replica).
        signing_secret: The app's signing secret.
        clock: UNIX seconds now (tests may pass their own).
        forms: What acknowledges an input form's submission (payload, signature): the
            JSON to answer with (``bot.slack.answering.InputForms.acknowledge``). Without
            it, Bolt's listener does.
    """

    def __init__(
        self,
        inner: WsgiApp,
        backend: Backend,
        signing_secret: str,
        clock: Callable[[], float] = time.time,
        *,
        forms: Callable[[dict[str, Any], str | None], dict[str, Any]] | None = None,
    ) -> None:
        self.inner = inner
        self.backend = backend
        self.signing_secret = signing_secret
        self.clock = clock
        self.forms = forms

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES:
            return self._refuse(start_response, "413 Content Too Large", "body_too_large")
        body = environ["wsgi.input"].read(length) if length else b""
        timestamp = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP")
        signature = environ.get("HTTP_X_SLACK_SIGNATURE")
        if not signature_is_valid(self.signing_secret, body, timestamp, signature, self.clock()):
            return self._refuse(start_response, "401 Unauthorized", "bad_signature")
        try:
            payload, payload_json = read_request(environ.get("CONTENT_TYPE", ""), body)
        except PayloadError as exc:
            logger.info(
                "malformed request refused",
                extra={"action": "request_malformed", "problem": str(exc)[:200]},
            )
            return _answer(start_response, "400 Bad Request", f"Malformed request: {exc}")
        if payload_json is not None:
            # Bolt gets the payload as the JSON it is, instead of decoding the form again
            # (its own signature check is off behind this edge: see ``create_app``).
            environ["CONTENT_TYPE"] = "application/json"
            body = payload_json.encode()
        if claimed_after_ack(payload):
            if self.forms is not None and payload_json is not None:
                return self._acknowledge_form(start_response, payload_json, signature)
            return self._inner(environ, start_response, body)
        try:
            fresh = self.backend.claim_once(replay_key(str(signature)), REPLAY_WINDOW_SECONDS)
            if fresh and isinstance(payload, EventCallback) and payload.event_id:
                fresh = self.backend.claim_once(
                    f"slack:event:{payload.event_id}", REPLAY_WINDOW_SECONDS * 4
                )
        except BackendUnavailable:
            logger.warning("cannot check for replays", extra={"action": "replay_check_failed"})
            return _answer(
                start_response, "503 Service Unavailable", "The database is unavailable."
            )
        if not fresh:
            logger.info("replayed request ignored", extra={"action": "request_replayed"})
            return _answer(start_response, "200 OK", "")
        return self._inner(environ, start_response, body)

    def _acknowledge_form(
        self, start_response: StartResponse, payload_json: str, signature: str | None
    ) -> list[bytes]:
        assert self.forms is not None
        try:
            reply = self.forms(json.loads(payload_json), signature)
        except Exception:
            # As Bolt answers a listener that failed: the form stays open, and Slack tells
            # the person it could not be submitted.
            logger.exception("form submission failed", extra={"action": "form_ack_failed"})
            return _answer(start_response, "500 Internal Server Error", "")
        return _answer(start_response, "200 OK", json.dumps(reply), content_type="application/json")

    def _inner(
        self, environ: dict[str, Any], start_response: StartResponse, body: bytes
    ) -> Iterable[bytes]:
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return self.inner(environ, start_response)

    @staticmethod
    def _refuse(start_response: StartResponse, status: str, reason: str) -> list[bytes]:
        logger.info("request refused", extra={"action": "request_refused", "reason": reason})
        text = "Request too large." if reason == "body_too_large" else "Invalid signature."
        return _answer(start_response, status, text)
