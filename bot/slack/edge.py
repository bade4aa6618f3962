"""The first thing every HTTP request from Slack meets: signature, replay, then shape.

In this order, before Bolt or any listener sees a byte:

1. the signature is checked on the raw bytes (``v0:<timestamp>:<body>``, HMAC-SHA256 with
   the signing secret, timestamp within five minutes); anything that fails gets 401,
   whatever the body holds, and is logged as a wrong secret (``bad_signature``) or, when
   signed with the secret, as a timestamp out of the window (``stale_timestamp``: a clock
   off, or an old request replayed);
2. the body is parsed into ``bot.slack.payloads``' typed models; a malformed one gets 400 with
   a message naming what was wrong;
3. the request is claimed once in the database (``Backend.claim_once``), keyed by its
   signature (``replay_key``), for as long as the signature is valid; every replica shares
   the claim, so a replayed request is answered 200 and does nothing. Events API retries
   carry a new signature, so an event is also claimed by its ``event_id`` (and a command,
   click or form Slack delivers again by its ``trigger_id``: ``bot.slack.redelivery``,
   which serves Socket Mode too). While the
   database cannot be reached, nothing is acted on: a slash command is answered with a
   line saying so (``DATABASE_DOWN``), anything else 503. The claim waits at most
   ``CLAIM_WITHIN_SECONDS`` for its turn to write while another writer holds the database
   (another process writing a SQLite file, a PostgreSQL lock): past that, Slack would show
   its own timeout, so nothing is acted on and a slash command is told the database is busy
   (``DATABASE_BUSY``), anything else gets 503.

   The one exception is an input form's submission (``claimed_after_ack``): everything it
   changes happens after its acknowledgement, on ``bot.slack.answering``'s pool, which
   claims it there before the answer. A replay is then acknowledged like the original (the
   answer goes to whoever replayed it, not to Slack) and changes nothing; the write is
   kept off the path that has to answer Slack quickly.

An input form's submission is also the one request that many people send at once (a
release waiting on a dozen approvers): given ``forms``, the edge acknowledges it itself.
Bolt would hand it to a listener thread and look every 10 ms whether the listener
acknowledged yet, which on its own costs each submission 10 ms. ``answer_at_once`` gives
the answers that need no I/O (refusals, and a form's acknowledgement when its schema is in
memory) on the HTTP listener's event loop, without a hand-off to a thread
(``bot.slack.listener``).
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
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from signoff.bot.backends import Backend
from signoff.bot.errors import BackendBusy, BackendUnavailable, PayloadError
from signoff.bot.slack import ids
from signoff.bot.slack.listener import StartResponse, WsgiApp
from signoff.bot.slack.metrics import SLACK_REQUESTS_REFUSED
from signoff.bot.slack.payloads import (
    MAX_BODY_BYTES,
    AppRateLimited,
    EventCallback,
    SlashCommand,
    ViewSubmission,
    read_request,
)

__all__ = [
    "CLAIM_WITHIN_SECONDS",
    "DATABASE_BUSY",
    "DATABASE_DOWN",
    "REPLAY_CLAIM_SECONDS",
    "REPLAY_WINDOW_SECONDS",
    "SlackEdge",
    "claimed_after_ack",
    "replay_key",
    "signature_is_valid",
]

logger = logging.getLogger(__name__)

#: Slack's window: a request signed longer ago than this is refused (and so is one signed
#: as far ahead of our clock, which runs behind Slack's or was chosen by whoever signed).
REPLAY_WINDOW_SECONDS = 300
#: how long a request's claim is kept: as long as its signature can pass. One stamped a
#: whole window ahead of our clock, and claimed at once, passes for two windows.
REPLAY_CLAIM_SECONDS = 2 * REPLAY_WINDOW_SECONDS
#: A timestamp is whole seconds; twelve digits reach far past any clock.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


def signature_is_valid(
    secret: str, body: bytes, timestamp: str | None, signature: str | None, now: float
) -> bool:
    """Whether ``signature`` is Slack's signature of ``body`` at ``timestamp`` (raw bytes)."""
    return _refusal(secret, body, timestamp, signature, now) is None


def _refusal(
    secret: str, body: bytes, timestamp: str | None, signature: str | None, now: float
) -> str | None:
    """Why the request is refused: ``bad_signature``, or ``stale_timestamp`` when it is
    signed with the secret but outside the window (a clock off, or a replay); else None.

    The signature is checked first, so that a wrong secret is never reported as a clock.
    """
    if not timestamp or not signature or not _TIMESTAMP.fullmatch(timestamp):
        return "bad_signature"
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = b"v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest().encode()
    # WSGI hands headers over as latin-1 text, so this encoding cannot fail.
    if not hmac.compare_digest(expected, signature.encode("latin-1", "replace")):
        return "bad_signature"
    if abs(now - int(timestamp)) > REPLAY_WINDOW_SECONDS:
        return "stale_timestamp"
    return None


def replay_key(signature: str) -> str:
    """The ``claim_once`` key of the request signed with ``signature``."""
    return f"slack:signature:{signature}"


#: What someone who typed a command is told while the database cannot be reached.
DATABASE_DOWN = (
    "Signoff cannot reach its database just now, so nothing was done. Try again in a minute."
)
#: How long the replay claims of a request may wait for their turn to write: Slack shows
#: its own error for a request not answered within 3 s, and Bolt's part takes time too.
CLAIM_WITHIN_SECONDS = 2.0
#: What someone who typed a command is told when the claim did not get its turn in time.
DATABASE_BUSY = (
    "Signoff's database is busy just now (another process is writing to it), so nothing "
    "was done. Try again in a moment."
)


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


class _Reply(NamedTuple):
    """An answer the edge gives itself: a refusal, or an input form's acknowledgement."""

    status: str
    text: str
    content_type: str = "text/plain"

    def send(self, start_response: StartResponse) -> list[bytes]:
        return _answer(start_response, self.status, self.text, content_type=self.content_type)


#: at most one WARNING per this many seconds for requests refused for their signature
#: (and as many for those refused for their timestamp)
BAD_SIGNATURE_WARNING_SECONDS = 60.0


class _Checked(NamedTuple):
    """A request whose signature and shape passed."""

    body: bytes
    signature: str | None
    payload: object
    payload_json: str | None


#: where ``answer_at_once`` leaves what it checked, for ``__call__``
_CHECKED = "signoff.edge.checked"

#: ``InputForms.acknowledge``: (payload, signature, at once) to the JSON to answer with, or
#: None when it cannot answer at once
FormAcknowledger = Callable[[dict[str, Any], str | None, bool], dict[str, Any] | None]


class SlackEdge:
    """WSGI middleware in front of Bolt's handler for ``POST /slack/events``.

    Args:
        inner: Bolt's WSGI handler.
        backend: Where replay claims are kept (shared by every replica).
        signing_secret: The app's signing secret.
        clock: UNIX seconds now (tests may pass their own).
        forms: What acknowledges an input form's submission (payload, signature): the
            JSON to answer with (``bot.slack.input_forms.InputForms.acknowledge``). Without
            it, Bolt's listener does.
    """

    def __init__(
        self,
        inner: WsgiApp,
        backend: Backend,
        signing_secret: str,
        clock: Callable[[], float] = time.time,
        *,
        forms: FormAcknowledger | None = None,
    ) -> None:
        self.inner = inner
        self.backend = backend
        self.signing_secret = signing_secret
        self.clock = clock
        self.forms = forms
        #: when a WARNING was last logged, by reason (``_refused``)
        self._warned_at: dict[str, float] = {}

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        checked = environ.pop(_CHECKED, None) or self._check(environ)
        if isinstance(checked, _Reply):
            return checked.send(start_response)
        return self._dispatch(checked, environ, start_response)

    def answer_at_once(
        self, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes] | None:
        """The answer to the request in ``environ``, if it needs no I/O: a refusal, or an
        input form's submission acknowledged from memory. Otherwise None, and ``environ``
        keeps what was checked, for this edge to answer it (as a WSGI application) on a
        thread that may wait."""
        checked = self._check(environ)
        if isinstance(checked, _Reply):
            return checked.send(start_response)
        if (
            self.forms is not None
            and checked.payload_json is not None
            and claimed_after_ack(checked.payload)
        ):
            reply = self._form_reply(checked, at_once=True)
            if reply is not None:
                return reply.send(start_response)
        environ[_CHECKED] = checked
        return None

    def _refused(self, status: str, reason: str, *, skew: float = 0.0) -> _Reply:
        SLACK_REQUESTS_REFUSED.labels(reason=reason).inc()
        level, message, text = logging.INFO, "request refused", "Invalid signature."
        if reason == "bad_signature":
            # When every request from Slack is refused, the secret is wrong.
            message = "request refused: its signature does not match SLACK_SIGNING_SECRET"
        elif reason == "stale_timestamp":
            # Signed with the secret, so the secret is right: when every request is refused
            # so, this server's clock is off (or, for one request, it is an old one replayed).
            side = "behind" if skew < 0 else "ahead of"
            message = (
                f"request refused: its timestamp is {abs(round(skew))} seconds {side} this "
                f"server's clock, and Slack allows {REPLAY_WINDOW_SECONDS // 60} minutes; "
                "if every request is refused so, check this server's clock (NTP)"
            )
            text = "Request timestamp outside the allowed window."
        elif reason == "body_too_large":
            text = "Request too large."
        if reason in ("bad_signature", "stale_timestamp"):
            # Either refuses every request, and Slack tells only the person who clicked: the
            # operator must see it without INFO logs. Once a minute at most, so that a flood
            # of forged requests does not flood the log.
            now = time.monotonic()
            warned = self._warned_at.get(reason)
            if warned is None or now - warned >= BAD_SIGNATURE_WARNING_SECONDS:
                self._warned_at[reason] = now
                level = logging.WARNING
        logger.log(level, message, extra={"action": "request_refused", "reason": reason})
        return _Reply(status, text)

    def _check(self, environ: dict[str, Any]) -> _Checked | _Reply:
        """Steps 1 and 2 of the module's docstring: signature, then shape."""
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES:
            return self._refused("413 Content Too Large", "body_too_large")
        body = environ["wsgi.input"].read(length) if length else b""
        timestamp = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP")
        signature = environ.get("HTTP_X_SLACK_SIGNATURE")
        now = self.clock()
        refusal = _refusal(self.signing_secret, body, timestamp, signature, now)
        if refusal is not None:
            # A stale timestamp passed ``_TIMESTAMP``, so it reads as a number.
            skew = int(timestamp or 0) - now if refusal == "stale_timestamp" else 0.0
            return self._refused("401 Unauthorized", refusal, skew=skew)
        try:
            payload, payload_json = read_request(environ.get("CONTENT_TYPE", ""), body)
        except PayloadError as exc:
            SLACK_REQUESTS_REFUSED.labels(reason="malformed").inc()
            logger.info(
                "malformed request refused",
                extra={"action": "request_malformed", "problem": str(exc)[:200]},
            )
            return _Reply("400 Bad Request", f"Malformed request: {exc}")
        if isinstance(payload, AppRateLimited):
            # Answered 400 as malformed, it counted with Slack as a delivery that failed; the
            # events dropped meanwhile are lost, which the operator must hear of.
            logger.warning(
                "Slack is dropping this app's events for a minute: past the Events API's limit",
                extra={
                    "action": "slack_events_rate_limited",
                    "team_id": payload.team_id,
                    "minute": payload.minute_rate_limited,
                },
            )
            return _Reply("200 OK", "")
        return _Checked(body, signature, payload, payload_json)

    def _dispatch(
        self, checked: _Checked, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        """Step 3: the replay claim, then Bolt (or an input form's acknowledgement)."""
        body, payload = checked.body, checked.payload
        if checked.payload_json is not None:
            # Bolt gets the payload as the JSON it is, instead of decoding the form again
            # (its own signature check is off behind this edge: see ``create_app``).
            environ["CONTENT_TYPE"] = "application/json"
            body = checked.payload_json.encode()
        elif isinstance(payload, SlashCommand):
            # As JSON too: Bolt takes a form body with the word "payload" anywhere in it (a
            # command's text, a channel's name) for an interactivity payload, and drops it.
            environ["CONTENT_TYPE"] = "application/json"
            body = json.dumps(dict(parse_qsl(body.decode(), keep_blank_values=True))).encode()
        if claimed_after_ack(payload):
            if self.forms is not None and checked.payload_json is not None:
                reply = self._form_reply(checked, at_once=False)
                assert reply is not None  # it may wait, so it always answers
                return reply.send(start_response)
            return self._inner(environ, start_response, body)
        ends = time.monotonic() + CLAIM_WITHIN_SECONDS
        try:
            fresh = self.backend.claim_once(
                replay_key(str(checked.signature)),
                REPLAY_CLAIM_SECONDS,
                within=CLAIM_WITHIN_SECONDS,
            )
            if fresh and isinstance(payload, EventCallback) and payload.event_id:
                fresh = self.backend.claim_once(
                    f"slack:event:{payload.event_id}",
                    REPLAY_WINDOW_SECONDS * 4,
                    within=max(ends - time.monotonic(), 0.0),
                )
        except BackendBusy:
            logger.warning(
                "the database is busy: the replay check did not get its turn to write in "
                "time, so the request was not acted on",
                extra={"action": "replay_check_busy", "seconds": CLAIM_WITHIN_SECONDS},
            )
            if isinstance(payload, SlashCommand):
                return _answer(start_response, "200 OK", DATABASE_BUSY)
            return _answer(start_response, "503 Service Unavailable", "The database is busy.")
        except BackendUnavailable:
            logger.warning("cannot check for replays", extra={"action": "replay_check_failed"})
            if isinstance(payload, SlashCommand):
                # Slack shows a command's plain-text answer to the person who typed it, and a
                # 503 as its own error: they are told, and nothing was acted on.
                return _answer(start_response, "200 OK", DATABASE_DOWN)
            return _answer(
                start_response, "503 Service Unavailable", "The database is unavailable."
            )
        if not fresh:
            logger.info("replayed request ignored", extra={"action": "request_replayed"})
            return _answer(start_response, "200 OK", "")
        return self._inner(environ, start_response, body)

    def _form_reply(self, checked: _Checked, *, at_once: bool) -> _Reply | None:
        """An input form's acknowledgement; None when it cannot be given ``at_once``."""
        assert self.forms is not None and checked.payload_json is not None
        try:
            reply = self.forms(json.loads(checked.payload_json), checked.signature, at_once)
        except Exception:
            # As Bolt answers a listener that failed: the form stays open, and Slack tells
            # the person it could not be submitted.
            logger.exception("form submission failed", extra={"action": "form_ack_failed"})
            return _Reply("500 Internal Server Error", "")
        if reply is None:
            return None
        return _Reply("200 OK", json.dumps(reply), content_type="application/json")

    def _inner(
        self, environ: dict[str, Any], start_response: StartResponse, body: bytes
    ) -> Iterable[bytes]:
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return self.inner(environ, start_response)
