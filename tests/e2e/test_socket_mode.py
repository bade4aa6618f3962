"""``Server`` in Socket Mode, end to end: no HTTP listener, the sandbox's WebSocket instead.

The app calls ``apps.connections.open`` on the sandbox with its ``xapp-`` token, connects with
slack_bolt's ``SocketModeHandler`` (slack_sdk's builtin client) and gets every request as an
envelope; its acks come back to the driver as ``AppResponse`` objects.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pydantic
import pytest

from signoff.bot.backends.embedded import EmbeddedBackend
from signoff.bot.config import BotSettings
from signoff.bot.sandbox import SlackSandbox, SocketModeDriver
from signoff.bot.slack.server import Server
from signoff.bot.testing import form_errors, outcome
from signoff.engine import Engine, PauseStatus, RunState, flow, pause_flow_run
from signoff.engine.input import RunInput
from tests.e2e.serve_process import start_serve
from tests.support.waiting import wait_for

APP_TOKEN = "xapp-1-test"


class Budget(RunInput):
    amount: int = pydantic.Field(ge=1, le=100)


@flow(name="socket-mode-spend")
def socket_mode_spend() -> int:
    return pause_flow_run(wait_for_input=Budget).amount


@pytest.fixture
def sandbox() -> Iterator[SlackSandbox]:
    with SlackSandbox(app_token=APP_TOKEN) as slack:
        yield slack


def start_server(engine: Engine, sandbox: SlackSandbox) -> Server:
    settings = BotSettings.load(
        bot_token=sandbox.token,
        signing_secret="x",
        app_token=APP_TOKEN,
        api_url=sandbox.api_url,
        channel="C0GENERAL",
    )
    server = Server(EmbeddedBackend(engine), settings, port=0)
    server.start()
    return server


@pytest.fixture
def server(engine: Engine, sandbox: SlackSandbox) -> Iterator[Server]:
    server = start_server(engine, sandbox)
    try:
        # Events stored before the notifier leases its cursor are never delivered.
        yield server
    finally:
        server.stop()


@pytest.fixture
def driver(sandbox: SlackSandbox, server: Server) -> SocketModeDriver:
    return sandbox.socket_driver()


def test_the_app_connects_through_apps_connections_open(
    sandbox: SlackSandbox, server: Server
) -> None:
    (call,) = sandbox.calls("apps.connections.open")
    assert call.ok and call.response["url"].startswith(
        f"ws://127.0.0.1:{sandbox.socket_mode.port}/"
    )
    # The client's connect() can return before the sandbox has registered the socket.
    sandbox.socket_mode.wait_for_connections(1)
    # Over HTTP, Socket Mode serves health checks and metrics only, never Slack's requests.
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{server.url}/slack/events", data=b"{}", timeout=10)
    assert refused.value.code == 404


def test_input_round_trip_over_socket_mode(
    engine: Engine, sandbox: SlackSandbox, driver: SocketModeDriver
) -> None:
    run = engine.submit("socket-mode-spend", {})
    prompt = sandbox.wait_for(
        lambda ws: next(
            (m for m in ws.channel("C0GENERAL").messages if run.id[:8] in m.text), None
        ),
        timeout=10,
    )

    clicked = driver.click("alice", prompt, action_id="provide_input")
    assert (clicked.status, clicked.problems) == (200, ())
    view = sandbox.wait_for(lambda ws: ws.open_view("U0ALICE"))
    assert view.view["callback_id"] == "signoff_input"

    refused = driver.submit("alice", {"amount": 500}, client_checks=False)
    assert (refused.status, refused.response_action, refused.problems) == (200, "update", ())
    # The modal shows the form again, with the schema's error under the input.
    assert form_errors(outcome(sandbox, "alice")) == {"field:amount": "must be at most 100"}
    assert engine.waiting_pause(run.id) is not None

    accepted = driver.submit("alice", {"amount": 40})
    assert (accepted.status, accepted.response_action, accepted.problems) == (200, "update", ())
    assert "Answer recorded" in json.dumps(outcome(sandbox, "alice").view)
    done = wait_for(lambda: (r := engine.get_run(run.id)).state.is_final and r, timeout=15)
    assert (done.state, done.result) == (RunState.COMPLETED, "40")
    assert [(p.status, p.responder) for p in engine.detail(run.id).pauses] == [
        (PauseStatus.ACCEPTED, "U0ALICE")
    ]


def test_runs_help_over_socket_mode(sandbox: SlackSandbox, driver: SocketModeDriver) -> None:
    started = time.monotonic()
    reply = driver.slash_command("alice", "/runs", "help")
    assert reply.status == 200
    assert time.monotonic() - started < 3.0, "Slack shows a timeout after 3 s"
    answer = sandbox.wait_for(lambda ws: ws.ephemeral("U0ALICE")[-1], timeout=10)
    assert "/runs help" in answer.text


def test_stop_closes_the_connection_cleanly(engine: Engine, sandbox: SlackSandbox) -> None:
    server = start_server(engine, sandbox)
    # The client's connect() can return before the sandbox has registered the socket.
    sandbox.socket_mode.wait_for_connections(1)
    server.stop()
    sandbox.socket_mode.wait_for_connections(0)
    # A clean close is final: the client does not reconnect.
    assert len(sandbox.calls("apps.connections.open")) == 1


def test_stop_right_after_an_envelope_is_prompt(engine: Engine, sandbox: SlackSandbox) -> None:
    """slack_sdk's client reads its message queue a second at a time, and its close waited
    for that read: a bot stopped just after it took an envelope took a second to stop (and
    every test's Socket Mode bot about as long)."""
    server = start_server(engine, sandbox)
    sandbox.socket_mode.wait_for_connections(1)
    # Acknowledged: the client's reader has taken the envelope and waits for the next.
    assert sandbox.socket_driver().slash_command("alice", "/runs", "help").status == 200
    began = time.monotonic()
    server.stop()
    took = time.monotonic() - began
    assert took < 0.5, took


def test_slack_failing_to_open_a_connection_at_start_is_waited_out(
    engine: Engine, sandbox: SlackSandbox
) -> None:
    """A 429 or a 5xx from apps.connections.open at start stopped serve ("unexpected
    SlackApiError"), though the same failure later is ridden out: a deploy during a
    short Slack outage crash-looped."""
    # More than the client's own retries (3) twice over.
    sandbox.fail_next("apps.connections.open", 8, status=503)
    server = start_server(engine, sandbox)

    def readiness() -> int:
        try:
            return int(urllib.request.urlopen(f"{server.url}/readyz", timeout=10).status)
        except urllib.error.HTTPError as answered:
            return answered.code

    try:
        assert readiness() == 503  # not connected yet, and says so
        sandbox.socket_mode.wait_for_connections(1, timeout=30)
        wait_for(lambda: readiness() == 200, what="/readyz to say it is connected")
    finally:
        server.stop()


def test_an_app_token_slack_refuses_is_named(engine: Engine, sandbox: SlackSandbox) -> None:
    from signoff.bot.errors import TokenRefused

    sandbox.fail_next("apps.connections.open", status=200, error="invalid_auth")
    with pytest.raises(
        TokenRefused, match="^Slack refused the token in SLACK_APP_TOKEN: invalid_auth$"
    ):
        start_server(engine, sandbox)


def test_a_connection_slack_closes_is_opened_again_within_seconds(
    engine: Engine, sandbox: SlackSandbox
) -> None:
    """Slack closes connections unannounced (to move them); each close cost 10 s of
    missed commands and clicks before the client connected again."""
    server = start_server(engine, sandbox)
    try:
        sandbox.socket_mode.wait_for_connections(1)
        assert sandbox.socket_mode.close_connections() == 1
        began = time.monotonic()
        wait_for(
            lambda: (
                len(sandbox.calls("apps.connections.open")) == 2
                and sandbox.socket_mode.connections == 1
            ),
            timeout=15,
            what="the client to connect again",
        )
        assert time.monotonic() - began < 6
        # Requests reach the app again.
        assert sandbox.socket_driver().slash_command("alice", "/runs", "help").status == 200
        answer = sandbox.wait_for(lambda ws: ws.ephemeral("U0ALICE")[-1], timeout=10)
        assert "/runs help" in answer.text
    finally:
        server.stop()


def readiness(url: str) -> int:
    try:
        return int(urllib.request.urlopen(f"{url}/readyz", timeout=10).status)
    except urllib.error.HTTPError as answered:
        return answered.code


def test_a_websocket_that_does_not_open_at_start_is_not_called_connected(
    engine: Engine, sandbox: SlackSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    """Slack answers apps.connections.open, but the WebSocket to its URL does not open (a
    proxy that lets the Web API through but not WebSockets): serve logged "connected in
    Socket Mode" all the same."""
    caplog.set_level(logging.INFO, logger="signoff.bot.slack")
    sandbox.socket_mode.refuse_connections(3)
    server = start_server(engine, sandbox)
    try:
        actions = [getattr(r, "action", None) for r in caplog.records]
        assert "socket_mode_unavailable" in actions
        assert "serve_socket_mode" not in actions
        sandbox.socket_mode.wait_for_connections(1, timeout=30)  # the client tries again
        wait_for(lambda: readiness(server.url) == 200, what="/readyz to say it is connected")
    finally:
        server.stop()


def test_serve_says_it_is_not_connected_yet_while_slack_will_not_open_a_connection(
    database_url: str, sandbox: SlackSandbox, tmp_path: Path
) -> None:
    """serve printed "Signoff is connected in Socket Mode" while it was still asking Slack
    for a connection, and /readyz said 503."""
    # Slack's own error (not a 5xx, which the client retries with back-off first): the
    # first connect fails at once, and the next one, a second later, opens.
    sandbox.fail_next("apps.connections.open", 1, status=200, error="internal_error")
    serving = start_serve(sandbox, database_url, tmp_path, "C0GENERAL", app_token=APP_TOKEN)
    log = next(tmp_path.glob("serve-*.log"))
    try:
        said = wait_for(
            lambda: next(
                (line for line in log.read_text().splitlines() if line.startswith("Signoff is")),
                None,
            ),
            timeout=60,
            what="serve to say where it stands",
        )
        assert said.startswith("Signoff is not connected to Slack in Socket Mode yet")
        sandbox.socket_mode.wait_for_connections(1, timeout=30)
    finally:
        serving.terminate()
        serving.wait(timeout=30)
