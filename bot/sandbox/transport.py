"""Talking to the app over HTTP the way Slack does: signed POSTs, and the app's answers.

:class:`AppConnection` sends requests (signed, or deliberately not); :class:`HttpDriver` is the
:class:`~bot.sandbox.driver.Driver` that delivers users' actions through it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from signoff.bot.sandbox.driver import Delivery, Driver
from signoff.bot.sandbox.records import AppResponse
from signoff.bot.sandbox.workspace import Workspace

__all__ = ["FORM", "JSON", "AppConnection", "AppResponse", "HttpDriver"]

logger = logging.getLogger(__name__)

#: Content type of slash commands and interactivity payloads.
FORM = "application/x-www-form-urlencoded"
#: Content type of Events API deliveries.
JSON = "application/json"


class AppConnection:
    """Signed HTTP requests to one app endpoint.

    Args:
        app_url: Where the app receives Slack requests, e.g. ``http://127.0.0.1:3000/slack/events``.
        signing_secret: The app's signing secret.
        timeout: Seconds to wait for the app's answer.
    """

    def __init__(self, app_url: str, signing_secret: str, *, timeout: float = 10.0) -> None:
        self.app_url = app_url
        self.timeout = timeout
        self._secret = signing_secret.encode()

    def signed_headers(
        self, body: bytes | str, *, timestamp: int | None = None, content_type: str = FORM
    ) -> dict[str, str]:
        """Headers Slack would send with ``body``: content type, timestamp and signature.

        Args:
            body: The exact raw body.
            timestamp: UNIX seconds to sign with (default now); an old one makes a stale request.
            content_type: ``FORM`` for commands and interactivity, ``JSON`` for events.
        """
        ts = str(int(time.time()) if timestamp is None else timestamp)
        # Slack signs the raw bytes, whatever they are (slack_sdk's helper decodes them first).
        raw = body.encode() if isinstance(body, str) else body
        digest = hmac.new(self._secret, b"v0:" + ts.encode() + b":" + raw, hashlib.sha256)
        signature = "v0=" + digest.hexdigest()
        return {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature,
        }

    def raw(self, body: bytes | str, headers: Mapping[str, str] | None = None) -> AppResponse:
        """POST ``body`` with exactly these headers (unsigned, wrongly signed, stale, ...)."""
        data = body.encode() if isinstance(body, str) else body
        request = urllib.request.Request(
            self.app_url, data=data, headers=dict(headers or {}), method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                return AppResponse.parse(answer.status, answer.read(), dict(answer.headers))
        except urllib.error.HTTPError as error:
            with error:
                return AppResponse.parse(error.code, error.read(), dict(error.headers))

    def send(self, body: str, content_type: str = FORM) -> AppResponse:
        """POST a correctly signed ``body``."""
        return self.raw(body, self.signed_headers(body, content_type=content_type))

    def send_payload(self, payload: Mapping[str, Any]) -> AppResponse:
        """POST an interactivity payload as Slack does: form-encoded ``payload=<json>``."""
        logger.debug("sending %s", payload.get("type"), extra={"action": "sandbox_send_payload"})
        return self.send(urlencode({"payload": json.dumps(payload)}))


class HttpDriver(Driver, AppConnection):
    """A :class:`~bot.sandbox.driver.Driver` for an app served over HTTP.

    Every action is a signed POST, form-encoded for slash commands and interactivity, JSON for
    events; the HTTP answer is the :class:`AppResponse`. Get one from
    :meth:`bot.sandbox.SlackSandbox.driver`.

    Args:
        workspace: The sandbox workspace (issues trigger_ids and response_urls, holds views).
        sandbox_url: Base URL of the sandbox server, for response_urls.
        app_url: Where the app receives Slack requests, e.g. ``http://127.0.0.1:3000/slack/events``.
        signing_secret: The app's signing secret.
        timeout: Seconds to wait for the app's HTTP answer.
    """

    def __init__(
        self,
        workspace: Workspace,
        sandbox_url: str,
        app_url: str,
        signing_secret: str,
        *,
        timeout: float = 10.0,
    ) -> None:
        Driver.__init__(self, workspace, sandbox_url)
        AppConnection.__init__(self, app_url, signing_secret, timeout=timeout)

    def _send(
        self, kind: Delivery, payload: Mapping[str, Any], retry: tuple[int, str] | None
    ) -> AppResponse:
        """POST ``payload`` as Slack does for ``kind`` (see :meth:`Driver.deliver`)."""
        if kind == "slash_commands":
            body, content_type = urlencode(payload), FORM
        elif kind == "events_api":
            body, content_type = json.dumps(payload), JSON
        else:
            logger.debug(
                "sending %s", payload.get("type"), extra={"action": "sandbox_send_payload"}
            )
            body, content_type = urlencode({"payload": json.dumps(payload)}), FORM
        if retry is None:
            return self.send(body, content_type)
        attempt, reason = retry
        # Signed again, later than the first delivery was: a signature of its own.
        later = int(time.time()) + attempt
        headers = self.signed_headers(body, timestamp=later, content_type=content_type)
        headers |= {"X-Slack-Retry-Num": str(attempt), "X-Slack-Retry-Reason": reason}
        return self.raw(body, headers)
