"""Talking to the app over HTTP the way Slack does: signed POSTs, and the app's answers."""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

from bot.sandbox.records import JsonDict

__all__ = ["FORM", "JSON", "AppConnection", "AppResponse"]

logger = logging.getLogger(__name__)

#: Content type of slash commands and interactivity payloads.
FORM = "application/x-www-form-urlencoded"
#: Content type of Events API deliveries.
JSON = "application/json"


@dataclass(frozen=True)
class AppResponse:
    """What the app answered to one request.

    Attributes:
        status: HTTP status.
        body: Raw body.
        headers: Response headers, names lower-cased.
        json: The body parsed as a JSON object, if it was one.
        problems: What Slack would object to in the answer (e.g. an invalid ``update`` view,
            ``errors`` keyed by something that is not an input block_id). Empty when fine.
    """

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    json: JsonDict | None = None
    problems: tuple[str, ...] = ()

    @classmethod
    def parse(cls, status: int, body: bytes, headers: Mapping[str, str]) -> AppResponse:
        """Build from a raw HTTP answer."""
        parsed: Any = None
        if body.strip().startswith(b"{"):
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
        lowered = {k.lower(): v for k, v in headers.items()}
        return cls(status, body, lowered, parsed if isinstance(parsed, dict) else None)

    @property
    def text(self) -> str:
        """The body as text."""
        return self.body.decode("utf-8", "replace")

    @property
    def response_action(self) -> str | None:
        """``response_action`` of a view_submission answer, if any."""
        action = (self.json or {}).get("response_action")
        return str(action) if action is not None else None

    @property
    def errors(self) -> dict[str, str]:
        """``errors`` of a ``response_action: errors`` answer (block_id -> message)."""
        errors = (self.json or {}).get("errors") or {}
        return {str(k): str(v) for k, v in errors.items()}


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
        self._verifier = SignatureVerifier(signing_secret)

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
        signature = self._verifier.generate_signature(timestamp=ts, body=body) or ""
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
