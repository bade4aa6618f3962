"""Fixtures for the sandbox tests: the shipped ``slack_sandbox`` fixture and a tiny stdlib app.

``pytest_plugins`` may only be set in the root conftest, so the fixture is imported here
instead; user projects put ``pytest_plugins = ["signoff.bot.testing.pytest_plugin"]`` in theirs.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest
from slack_sdk.signature import SignatureVerifier

from signoff.bot.testing.pytest_plugin import slack_sandbox  # noqa: F401 - the fixture under test

SECRET = "test-signing-secret"

Answer = tuple[int, dict[str, Any] | str | None]


@dataclass
class Received:
    """One request the tiny app got."""

    headers: dict[str, str]
    raw: bytes
    valid_signature: bool
    form: dict[str, str]
    payload: dict[str, Any] | None

    @property
    def kind(self) -> str:
        if self.payload is not None:
            return str(self.payload.get("type"))
        return "slash_command" if "command" in self.form else "unknown"


@dataclass
class TinyApp:
    """A stdlib HTTP app that checks Slack signatures with slack_sdk and records requests.

    ``handler`` decides the answer; by default an empty 200 (like Bolt's ``ack()``).
    Requests with a bad or stale signature get 401 ``{"error": "invalid request"}``, like Bolt.
    """

    url: str = ""
    received: list[Received] = field(default_factory=list)
    handler: Callable[[Received], Answer] = lambda r: (200, None)

    @property
    def last(self) -> Received:
        return self.received[-1]


def _serve(app: TinyApp) -> ThreadingHTTPServer:
    verifier = SignatureVerifier(SECRET)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            valid = verifier.is_valid(
                raw, headers.get("x-slack-request-timestamp"), headers.get("x-slack-signature")
            )
            form: dict[str, str] = {}
            payload = None
            if headers.get("content-type", "").startswith("application/json"):
                payload = json.loads(raw)
            else:
                form = {k: v[-1] for k, v in parse_qs(raw.decode()).items()}
                if "payload" in form:
                    payload = json.loads(form["payload"])
            request = Received(headers, raw, valid, form, payload)
            app.received.append(request)
            status, body = (
                (401, {"error": "invalid request"}) if not valid else app.handler(request)
            )
            data = (
                b""
                if body is None
                else (body if isinstance(body, str) else json.dumps(body)).encode()
            )
            self.send_response(status)
            kind = "application/json" if isinstance(body, dict) else "text/plain"
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


@pytest.fixture
def tiny_app() -> Iterator[TinyApp]:
    app = TinyApp()
    server = _serve(app)
    app.url = f"http://127.0.0.1:{server.server_address[1]}/slack/events"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    try:
        yield app
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class FakeClock:
    """Monotonic seconds that only move when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def driver(slack_sandbox: Any, tiny_app: TinyApp) -> Any:  # noqa: F811 - requests the fixture above
    """The sandbox's driver, sending signed requests to the tiny app."""
    return slack_sandbox.driver(tiny_app.url, SECRET)
