"""A Prefect server protected by basic auth (``PREFECT_SERVER_API_AUTH_STRING``): Signoff
sends ``PREFECT_API_AUTH_STRING`` as Prefect's client does, and a refusal names the
setting to mend, at ``serve``'s start and on ``/runs``, without ever showing its value.

A local HTTP server stands in for Prefect here, over real HTTP: starting a real Prefect
server with an auth string took 27 s on 2 cores, more than these tests may cost. It acts as
Prefect's ``token_validation`` middleware does (3.9.1, ``prefect/server/api/server.py``):
``GET /api/health`` answers anyone, and every other request without the right
``Authorization: Basic base64(auth string)`` gets 401 ``{"exception_message":
"Unauthorized"}``. Behind it, the few endpoints start-up and ``/runs`` read answer empty.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from signoff.bot.backends.prefect import PrefectBackend, PrefectSettings
from signoff.bot.backends.prefect.api import PrefectApi
from signoff.bot.errors import CredentialsRefused
from signoff.bot.sandbox import SlackSandbox
from signoff.bot.testing import serving
from tests.cli.in_process import run_cli

RIGHT = "admin:right-horse-battery"
WRONG = "admin:wrong-staple"


@dataclass
class _Server:
    """What the stand-in asks for, and the ``Authorization`` headers it was sent."""

    auth_string: str
    seen: list[str | None] = field(default_factory=list)
    api_url: str = ""

    def basic(self) -> str:
        return f"Basic {base64.b64encode(self.auth_string.encode()).decode()}"


class _BasicAuthPrefect(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_state: _Server

    def _handle(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = urlsplit(self.path).path
        header = self.headers.get("Authorization")
        self.server_state.seen.append(header)
        if self.command == "GET" and path == "/api/health":
            self._send(200, True)
        elif header != self.server_state.basic():
            self._send(401, {"exception_message": "Unauthorized"})
        elif path.endswith("/filter"):
            self._send(200, [])
        elif path.endswith("/count"):
            self._send(200, 0)
        elif self.command == "GET":
            self._send(404, {"detail": "Variable not found"})
        else:
            self._send(201, {})

    def _send(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_DELETE = _handle

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def prefect() -> Iterator[_Server]:
    state = _Server(RIGHT)
    handler = type("Handler", (_BasicAuthPrefect,), {"server_state": state})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    state.api_url = f"http://127.0.0.1:{httpd.server_address[1]}/api"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


#: ``signoff serve`` on the Prefect backend, as a process of its own
SERVE = [sys.executable, "-m", "signoff.bot.cli", "serve", "--port", "0", "--backend", "prefect"]


def _env(tmp_path: Path, slack: SlackSandbox, prefect: _Server, **env: str) -> dict[str, str]:
    own = ("SIGNOFF_", "SLACK_", "PREFECT_")
    base = {k: v for k, v in os.environ.items() if not k.startswith(own)}
    base.update(
        SLACK_BOT_TOKEN=slack.token,
        SLACK_SIGNING_SECRET="secret",
        SLACK_API_URL=slack.api_url,
        SIGNOFF_CHANNEL="C0GENERAL",
        SIGNOFF_DATABASE_URL=f"sqlite:///{tmp_path / 'signoff.db'}",
        HOME=str(tmp_path / "home"),
        PREFECT_API_URL=prefect.api_url,
        **env,
    )
    return base


def test_serve_stops_at_start_naming_a_wrong_auth_string_and_serves_with_the_right_one(
    tmp_path: Path, prefect: _Server
) -> None:
    with SlackSandbox() as slack:
        # Before: serve started (the health check answers anyone), and every read of
        # Prefect failed as "Prefect refused POST /flow_runs/filter: Unauthorized".
        env = _env(tmp_path, slack, prefect, PREFECT_API_AUTH_STRING=WRONG)
        done = subprocess.run(SERVE, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 1, done.stderr
        said = done.stderr.strip().splitlines()
        assert said[-1].startswith(f"error: Prefect at {prefect.api_url} answered 401: ")
        assert "refuses PREFECT_API_AUTH_STRING" in said[-1]
        assert "PREFECT_SERVER_API_AUTH_STRING (user:password)" in said[-1]
        assert WRONG not in done.stderr and "Traceback" not in done.stderr
        # httpx's line per request to Prefect is not the bot's to show.
        assert "HTTP Request:" not in done.stderr

        prefect.seen.clear()
        env = _env(tmp_path, slack, prefect, PREFECT_API_AUTH_STRING=RIGHT)
        serving_process = subprocess.Popen(SERVE, env=env, stderr=subprocess.PIPE, text=True)
        try:
            assert serving_process.stderr is not None
            line, said = "started", []
            while line and "is listening on" not in line:
                line = serving_process.stderr.readline()  # '' once it has ended
                said.append(line)
            assert "is listening on" in line
            assert not [line for line in said if "HTTP Request:" in line]
        finally:
            serving_process.send_signal(signal.SIGTERM)
            serving_process.communicate(timeout=30)
        assert prefect.seen and set(prefect.seen) == {prefect.basic()}


def test_a_refusal_names_the_setting_that_was_sent_or_both_when_none_was(
    prefect: _Server,
) -> None:
    for kwargs, settings, words in (
        ({}, ("PREFECT_API_AUTH_STRING", "PREFECT_API_KEY"), "asks for credentials and none"),
        ({"api_key": "pnu_cloudkey"}, ("PREFECT_API_KEY",), "refuses PREFECT_API_KEY"),
        (
            {"api_key": "pnu_cloudkey", "auth_string": WRONG},
            ("PREFECT_API_AUTH_STRING",),
            "PREFECT_API_KEY is not sent while it is set",
        ),
    ):
        api = PrefectApi(prefect.api_url, **kwargs)  # type: ignore[arg-type]
        try:
            with pytest.raises(CredentialsRefused) as refused:
                api.check_access()
        finally:
            api.close()
        assert refused.value.settings == settings
        assert words in str(refused.value)
        assert "pnu_cloudkey" not in str(refused.value) and WRONG not in str(refused.value)


def test_runs_after_the_auth_string_changed_says_which_setting_in_slack_and_one_log_line(
    prefect: _Server, caplog: pytest.LogCaptureFixture
) -> None:
    backend = PrefectBackend(
        PrefectSettings.load(api_url=prefect.api_url, api_auth_string=RIGHT, reconcile_seconds=3600)
    )
    try:
        with serving(backend) as bot:
            prefect.auth_string = "admin:rotated"  # the server's changed since serve started
            caplog.set_level(logging.INFO)
            caplog.clear()
            before = len(bot.slack.ephemeral("alice"))
            assert bot.driver.slash_command("alice", "/runs", "").status == 200
            reply = bot.slack.wait_for(lambda ws: ws.ephemeral("alice")[before:], timeout=30)
            [text] = [m.text for m in reply]
            # Before: ":warning: Prefect refused POST /flow_runs/filter: {"exception_...
            assert "refuses PREFECT_API_AUTH_STRING" in text
            assert "must set `PREFECT_API_AUTH_STRING`" in text
            refused = [
                r
                for r in caplog.records
                if getattr(r, "action", None) == "backend_credentials_refused"
            ]
            assert len(refused) == 1 and refused[0].exc_info is None
            assert refused[0].levelno == logging.WARNING
            assert "PREFECT_API_AUTH_STRING" in refused[0].getMessage()
            assert not [r for r in caplog.records if r.exc_info is not None]
            assert RIGHT not in caplog.text
            # And /readyz says so, while it lasts.
            assert "PREFECT_API_AUTH_STRING" in (backend.not_ready() or "")
    finally:
        backend.close()


def test_a_runs_command_names_the_refused_setting_in_one_error_line(
    prefect: _Server, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before: "error: Prefect refused GET /flow_runs/...: {"exception_message": ...}".
    monkeypatch.setenv("PREFECT_API_URL", prefect.api_url)
    monkeypatch.setenv("PREFECT_API_AUTH_STRING", WRONG)
    monkeypatch.delenv("PREFECT_API_KEY", raising=False)
    run_id = "0b9e7c1e-5f43-4d7e-9a53-2d8c0c6f3a11"
    status, out, err = run_cli(capsys, "runs", "wait", "--backend", "prefect", run_id)
    assert (status, out) == (1, "")
    assert "trying again" not in err and WRONG not in err
    assert err.strip().splitlines()[-1].startswith(f"error: Prefect at {prefect.api_url}")
    assert "refuses PREFECT_API_AUTH_STRING" in err
