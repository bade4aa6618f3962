"""Health, readiness and Prometheus metrics of ``signoff serve``, in HTTP and Socket Mode."""

from __future__ import annotations

import http.client
import json
import logging
import re
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest

from signoff.bot import stopping
from signoff.bot.backends.embedded import EmbeddedBackend
from signoff.bot.config import BotSettings
from signoff.bot.sandbox import SlackSandbox
from signoff.bot.sandbox.transport import AppConnection
from signoff.bot.slack.server import Server
from signoff.bot.testing import SIGNING_SECRET, running_bot
from signoff.engine import Engine, flow, pause_flow_run
from signoff.engine.input import RunInput
from tests.support.waiting import wait_for


class Ok(RunInput):
    ok: bool


@flow(name="obs-approve")
def obs_approve() -> bool:
    return pause_flow_run(wait_for_input=Ok, timeout=600).ok


def get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus' text format (0 when it is absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = (
        rf"^{re.escape(name)}(?:\{{{re.escape(wanted)}\}})? (\S+)$"
        if wanted
        else rf"^{re.escape(name)} (\S+)$"
    )
    found = re.search(pattern, text, re.M)
    return float(found.group(1)) if found else 0.0


def test_metrics_count_runs_waiting_inputs_answers_and_slack_calls(engine: Engine) -> None:
    with running_bot(engine=engine) as bot:
        status, content_type, before = get(f"{bot.server.url}/metrics")
        assert status == 200 and content_type.startswith("text/plain")
        answered_before = sample(before, "signoff_time_to_answer_seconds_count")

        run = engine.submit("obs-approve", {}, started_by="U0CAROL")
        prompt = bot.root_message(run.id)
        _, _, waiting = get(f"{bot.server.url}/metrics")
        assert sample(waiting, "signoff_waiting_inputs") >= 1
        assert sample(waiting, "signoff_runs", state="paused") >= 1
        assert sample(waiting, "signoff_slack_api_calls_total", method="chat.postMessage") >= 1
        assert 'signoff_outbox_lag_events{consumer="slack"}' in waiting

        bot.driver.click("alice", prompt, action_id="provide_input")
        bot.slack.wait_for(lambda ws: ws.open_view("alice"), timeout=10)
        bot.driver.submit("alice", {"ok": True})
        wait_for(lambda: engine.get_run(run.id).state.is_final, timeout=15)
        # Counted once the answer is stored, which the flow may finish before.
        wait_for(
            lambda: (
                sample(get(f"{bot.server.url}/metrics")[2], "signoff_time_to_answer_seconds_count")
                == answered_before + 1
            ),
            timeout=10,
            what="the answer to be counted",
        )
        _, _, after = get(f"{bot.server.url}/metrics")
        assert sample(after, "signoff_time_to_answer_seconds_count") == answered_before + 1
        assert sample(after, "signoff_runs", state="completed") >= 1
        assert "signoff_timer_lag_seconds_bucket" in after
        # The calls Bolt's listeners make count too: the click opened the form.
        assert sample(after, "signoff_slack_api_calls_total", method="views.open") >= 1


def test_requests_signed_with_another_secret_are_counted_and_warned_about(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """A wrong SLACK_SIGNING_SECRET refused every click with 401 and left no trace an
    operator would see: nothing in /metrics, and one INFO line per request."""
    with running_bot(engine=engine) as bot:
        forged = bot.slack.driver(f"{bot.server.url}/slack/events", "not-the-secret")
        refused = lambda: sample(  # noqa: E731 (counted per process, so compared)
            get(f"{bot.server.url}/metrics")[2],
            "signoff_slack_requests_refused_total",
            reason="bad_signature",
        )
        before = refused()
        caplog.set_level(logging.WARNING, logger="signoff.bot.slack.edge")
        for _ in range(3):
            assert forged.slash_command("alice", "/runs", "help").status == 401
        assert refused() == before + 3
        # Once per minute at most, however many arrive.
        [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert "SLACK_SIGNING_SECRET" in warning.getMessage()
        assert bot.driver.slash_command("alice", "/runs", "help").status == 200
        assert refused() == before + 3


def test_requests_signed_outside_the_window_are_blamed_on_the_clock_not_the_secret(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """A correctly signed request stamped 10 minutes back (a server clock off) was refused
    with a WARNING that its signature does not match SLACK_SIGNING_SECRET, counted as
    bad_signature: the operator rotated a secret that was right instead of fixing the clock."""
    with running_bot(engine=engine) as bot:
        url = f"{bot.server.url}/slack/events"
        signed, forged = AppConnection(url, SIGNING_SECRET), AppConnection(url, "not-the-secret")
        refused = lambda reason: sample(  # noqa: E731 (counted per process, so compared)
            get(f"{bot.server.url}/metrics")[2],
            "signoff_slack_requests_refused_total",
            reason=reason,
        )
        stale_before, bad_before = refused("stale_timestamp"), refused("bad_signature")
        caplog.set_level(logging.INFO, logger="signoff.bot.slack.edge")
        body = urlencode(
            {"command": "/runs", "text": "help", "user_id": "U0ALICE", "channel_id": "C0GENERAL"}
        )
        for offset in (-600, 400):
            headers = signed.signed_headers(body, timestamp=int(time.time()) + offset)
            assert signed.raw(body, headers).status == 401
        # Another secret, stamped as far back: the secret is what is wrong, as before.
        headers = forged.signed_headers(body, timestamp=int(time.time()) - 600)
        assert forged.raw(body, headers).status == 401
        assert refused("stale_timestamp") == stale_before + 2
        assert refused("bad_signature") == bad_before + 1
    logged = [
        (r.levelno, getattr(r, "reason", None), r.getMessage())
        for r in caplog.records
        if getattr(r, "action", None) == "request_refused"
    ]
    assert [(level, reason) for level, reason, _ in logged] == [
        (logging.WARNING, "stale_timestamp"),  # once a minute at most, as for the secret
        (logging.INFO, "stale_timestamp"),
        (logging.WARNING, "bad_signature"),
    ], logged
    behind, ahead, wrong = (message for _, _, message in logged)
    assert re.fullmatch(
        r"request refused: its timestamp is 60[01] seconds behind this server's clock, and "
        r"Slack allows 5 minutes; if every request is refused so, check this server's clock "
        r"\(NTP\)",
        behind,
    ), behind
    assert re.search(r"its timestamp is (399|400) seconds ahead of this server's clock", ahead)
    assert "SLACK_SIGNING_SECRET" not in behind + ahead
    assert wrong == "request refused: its signature does not match SLACK_SIGNING_SECRET"


def test_a_request_too_large_for_slack_is_counted_as_body_too_large(engine: Engine) -> None:
    """The listener refuses a body past the limit before the edge sees it, so the 413 was
    answered but never counted: the metric's body_too_large stayed absent."""
    with running_bot(engine=engine) as bot:
        refused = lambda: sample(  # noqa: E731 (counted per process, so compared)
            get(f"{bot.server.url}/metrics")[2],
            "signoff_slack_requests_refused_total",
            reason="body_too_large",
        )
        before = refused()
        for path in ("/slack/events", "/slack/events", "/elsewhere"):
            connection = http.client.HTTPConnection(bot.server.host, bot.server.port, timeout=10)
            try:
                # Only the length is sent: the listener answers from it, reading nothing.
                connection.putrequest("POST", path)
                connection.putheader("Content-Length", str(3 * 1024 * 1024))
                connection.endheaders()
                assert connection.getresponse().status == 413
            finally:
                connection.close()
        # Requests to another path are not Slack's, and not counted as refused from Slack.
        assert refused() == before + 2


def test_healthz_and_readyz_in_http_mode(engine: Engine) -> None:
    with running_bot(engine=engine) as bot:
        assert get(f"{bot.server.url}/healthz")[::2] == (200, '{"ok": true}')
        assert get(f"{bot.server.url}/readyz")[::2] == (200, '{"ok": true}')
        bot.server.backend.stop()
        status, _, body = get(f"{bot.server.url}/readyz")
        assert (status, json.loads(body)["error"]) == (503, "the worker is not running")


def call(server: Server, method: str, path: str) -> tuple[int, str | None, bytes]:
    """``method path`` over a real connection: status, ``Allow`` and body."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        conn.request(method, path, body=b"{}" if method in ("POST", "PUT") else None)
        response = conn.getresponse()
        return response.status, response.getheader("Allow"), response.read()
    finally:
        conn.close()


def test_health_readiness_and_metrics_answer_get_and_head_only(engine: Engine) -> None:
    with running_bot(engine=engine) as bot:
        for path in ("/healthz", "/readyz", "/metrics"):
            status, _, body = call(bot.server, "HEAD", path)
            assert (status, body) == (200, b"")
            for method in ("POST", "PUT", "DELETE", "OPTIONS"):
                status, allow, body = call(bot.server, method, path)
                assert (status, allow) == (405, "GET, HEAD"), (method, path)
                assert f"{method} not allowed on {path}".encode() in body
        # Slack only POSTs events: a GET is the wrong method, not a bad signature.
        status, allow, body = call(bot.server, "GET", "/slack/events")
        assert (status, allow) == (405, "POST") and b"Invalid signature" not in body
        assert call(bot.server, "POST", "/slack/events")[0] == 401


@pytest.fixture
def socket_server(engine: Engine) -> Iterator[tuple[SlackSandbox, Server]]:
    with SlackSandbox(app_token="xapp-1-obs") as sandbox:
        # Socket Mode needs no signing secret.
        settings = BotSettings.load(
            bot_token=sandbox.token,
            app_token="xapp-1-obs",
            api_url=sandbox.api_url,
            channel="C0GENERAL",
        )
        server = Server(EmbeddedBackend(engine), settings, port=0)
        server.start()
        try:
            yield sandbox, server
        finally:
            server.stop()


def test_socket_mode_serves_health_readiness_and_metrics_but_not_slack(
    socket_server: tuple[SlackSandbox, Server],
) -> None:
    sandbox, server = socket_server
    assert get(f"{server.url}/healthz")[::2] == (200, '{"ok": true}')
    assert get(f"{server.url}/readyz")[::2] == (200, '{"ok": true}')
    assert "signoff_runs" in get(f"{server.url}/metrics")[2]
    # Slack's requests come over the WebSocket: the HTTP route does not exist.
    assert get(f"{server.url}/slack/events")[0] == 404
    # The client's connect() can return before the sandbox has registered the socket.
    sandbox.socket_mode.wait_for_connections(1)


def test_a_port_in_use_stops_the_start_before_slack_or_the_worker_is_touched(
    engine: Engine,
) -> None:
    """A second ``serve`` on a port in use opened a Socket Mode connection (which Slack
    then hands deliveries to) and started its worker before it found the port taken."""
    run = engine.submit("obs-approve", {}, started_by="U0CAROL")
    with SlackSandbox(app_token="xapp-1-obs") as sandbox, socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        settings = BotSettings.load(
            bot_token=sandbox.token,
            app_token="xapp-1-obs",
            api_url=sandbox.api_url,
            channel="C0GENERAL",
        )
        server = Server(EmbeddedBackend(engine), settings, port=taken.getsockname()[1])
        try:
            with pytest.raises(OSError, match="in use"):
                server.start()
        finally:
            server.stop()
        assert sandbox.calls("apps.connections.open") == []
        assert sandbox.socket_mode.connections == 0
    assert engine.get_run(run.id).state.value == "scheduled"


def test_a_slow_step_of_stopping_is_said_with_its_name(
    engine: Engine, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stop that took 20 s said nothing of what it waited for."""
    with running_bot(engine=engine):
        # Every step counts as slow here: what a stop that waits says.
        monkeypatch.setattr(stopping, "SLOW_STOP_SECONDS", 0.0)
        caplog.set_level(logging.WARNING, logger="signoff.bot.stopping")
    steps = [r for r in caplog.records if getattr(r, "action", "") == "serve_stop_step"]
    assert [r.step for r in steps] == [
        "HTTP listener",
        "Slack listeners",
        "answers acknowledged",
        "Slack poster",
        "backend",
    ]
    assert all(r.levelno == logging.WARNING for r in steps)
    assert re.fullmatch(r"stopping: the HTTP listener took \d+\.\d s", steps[0].getMessage())
