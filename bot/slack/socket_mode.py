"""Signoff's Socket Mode connection: Bolt's handler over slack_sdk's builtin client, with
what that client leaves out.

slack_sdk parses each frame on its message thread and
- drops text that is not JSON without a word, or (text starting with ``{``) logs its own
  traceback with no ``action`` key;
- hands an envelope without ``type`` or ``payload`` to no listener, so it is never acked
  and Slack delivers it again (and shows the user an error after 3 s);
- when Slack refuses the app-level token (revoked), asks ``apps.connections.open`` again
  every ping interval for ever, logging only "Failed to retrieve WSS URL".

Here the frame is parsed once, in place of slack_sdk's parsing: an envelope that cannot be
used is logged as ``socket_envelope_malformed`` (never its content) and, when it has an
``envelope_id``, acked empty. A payload is checked against the models HTTP requests are
read into (``bot.slack.payloads``) before Bolt sees it: one that does not fit was a
listener's traceback (or Bolt's), and, never acked, was delivered again. It is logged as
``socket_payload_malformed`` and acked (a slash command with a line saying what was wrong,
as the HTTP edge's 400 says). A refused app-level token stops reconnecting and is handed
to ``on_app_token_refused``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from queue import Empty
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.socket_mode.base_handler import BaseSocketModeHandler
from slack_bolt.adapter.socket_mode.internals import run_bolt_app, send_response
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.builtin import SocketModeClient as BuiltinClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from signoff.bot.errors import PayloadError
from signoff.bot.slack.payloads import check_socket_payload

__all__ = ["TOKEN_REFUSED", "SocketModeHandler", "check_envelope"]

logger = logging.getLogger(__name__)

#: what Slack answers for an app-level token it will not take, which waiting does not mend
TOKEN_REFUSED = frozenset(
    {"invalid_auth", "not_authed", "token_revoked", "account_inactive", "not_allowed_token_type"}
)
#: the envelope types Bolt dispatches
_ENVELOPE_TYPES = frozenset({"events_api", "interactive", "slash_commands"})
#: messages Slack sends on the socket that are not envelopes (no ``envelope_id``, no ack)
_CONTROL_TYPES = frozenset({"hello", "disconnect"})
#: longest id or type echoed in a log line (they come from the wire)
_FIELD_CHARS = 100


def check_envelope(raw: str) -> tuple[dict[str, Any] | None, str | None]:
    """The message in ``raw`` and None if Signoff can use it, else what it could parse
    (None when not a JSON object) and why not (``not_json``, ``not_an_object``,
    ``no_envelope_id``, ``unknown_type``, ``no_payload``)."""
    try:
        message = json.loads(raw)
    except ValueError:
        return None, "not_json"
    if not isinstance(message, dict):
        return None, "not_an_object"
    kind, envelope_id = message.get("type"), message.get("envelope_id")
    if envelope_id is None:
        return message, None if kind in _CONTROL_TYPES else "no_envelope_id"
    if not isinstance(envelope_id, str) or not envelope_id:
        return message, "no_envelope_id"
    if kind not in _ENVELOPE_TYPES:
        return message, "unknown_type"
    if not isinstance(message.get("payload"), dict):
        return message, "no_payload"
    return message, None


class _Client(BuiltinClient):
    """slack_sdk's builtin client, parsing frames and opening connections as the module's
    docstring says."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        #: called once, with Slack's error, when Slack refuses the app-level token
        self.on_app_token_refused: Callable[[str], None] | None = None
        self._refused: SlackApiError | None = None
        self._refusal_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def issue_new_wss_url(self) -> str:
        # Slack closing the socket and the client's monitor both reconnect, each on a
        # thread of its own: once one is refused, the other is not sent to Slack.
        with self._refusal_lock:
            if self._refused is not None:
                raise self._refused
        try:
            return super().issue_new_wss_url()
        except SlackApiError as exc:
            error = str(exc.response.get("error"))
            if error not in TOKEN_REFUSED:
                raise
            with self._refusal_lock:
                first, self._refused = self._refused is None, self._refused or exc
            # A revoked token stays revoked: asking again every ping only hammers Slack.
            self.auto_reconnect_enabled = self.default_auto_reconnect_enabled = False
            if first and self.on_app_token_refused is not None:
                self.on_app_token_refused(error)
            raise

    def close(self) -> None:
        # slack_sdk's close waits for the thread that reads the message queue, which waits
        # up to a second for a message: every stop took that second. Told to close, then
        # given None (which it skips), it ends at once.
        self.closed = True
        self.message_queue.put(None)
        super().close()

    def process_message(self) -> None:
        # In place of slack_sdk's, which parses the frame as described above.
        try:
            raw = self.message_queue.get(timeout=1)
        except Empty:
            return
        if raw is None:
            return
        message, problem = check_envelope(raw)
        if problem is not None:
            self._unusable(raw, message, problem)
            return
        assert message is not None
        if message.get("type") == "disconnect":
            self.connect_to_new_endpoint(force=True)
            return
        self.message_workers.submit(self.run_message_listeners, message, raw)

    def _unusable(self, raw: str, message: dict[str, Any] | None, problem: str) -> None:
        message = message or {}
        envelope_id = message.get("envelope_id")
        ackable = isinstance(envelope_id, str) and bool(envelope_id)
        logger.warning(
            "Socket Mode envelope Signoff cannot use (%s, %d chars)%s",
            problem,
            len(raw),
            "; acknowledged so that Slack does not deliver it again" if ackable else "",
            extra={
                "action": "socket_envelope_malformed",
                "reason": problem,
                "length": len(raw),
                "envelope_id": str(envelope_id)[:_FIELD_CHARS] if ackable else None,
                "envelope_type": str(message.get("type"))[:_FIELD_CHARS],
            },
        )
        if not ackable:
            return
        try:
            self.send_socket_mode_response({"envelope_id": envelope_id})
        except Exception as exc:  # the connection went meanwhile: Slack delivers it again
            logger.warning(
                "cannot acknowledge a Socket Mode envelope: %s",
                type(exc).__name__,
                extra={"action": "socket_envelope_ack_failed"},
            )


class SocketModeHandler(BaseSocketModeHandler):
    """Bolt's builtin ``SocketModeHandler``, over :class:`_Client`.

    Args:
        app: The Bolt app.
        app_token: The app-level token (``xapp-...``).
        ping_interval: Seconds between the client's pings and looks at its connection.
    """

    client: _Client

    def __init__(self, app: App, app_token: str, *, ping_interval: float) -> None:
        self.app = app
        self.app_token = app_token
        self.client = _Client(
            app_token=app_token,
            logger=app.logger,
            web_client=app.client,
            proxy=app.client.proxy,
            ping_interval=ping_interval,
        )
        self.client.socket_mode_request_listeners.append(self.handle)

    def connect(self) -> None:
        """Open the connection (``apps.connections.open``, then the WebSocket).

        Raises:
            SlackApiError: Slack would not open one (``TOKEN_REFUSED``: it refused the token).
            OSError: Slack could not be reached.
        """
        self.client.connect()

    def handle(self, client: Any, req: SocketModeRequest) -> None:
        """Dispatch one envelope to the app and ack it (as Bolt's handler does)."""
        start = time.time()
        try:
            check_socket_payload(req.type, req.payload)
        except PayloadError as exc:
            problem = str(exc)
            logger.warning(
                "Socket Mode payload Signoff cannot use; acknowledged so that Slack does not "
                "deliver it again",
                extra={
                    "action": "socket_payload_malformed",
                    "envelope_type": str(req.type)[:_FIELD_CHARS],
                    "problem": problem[:200],
                },
            )
            said = {"text": f"Malformed request: {problem}"}
            client.send_socket_mode_response(
                SocketModeResponse(
                    envelope_id=req.envelope_id,
                    payload=said if req.type == "slash_commands" else None,
                )
            )
            return
        send_response(client, req, run_bolt_app(self.app, req), start)
