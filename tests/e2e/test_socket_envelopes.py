"""Socket Mode envelopes Signoff cannot use, and an app-level token revoked while serving,
over a real WebSocket to the sandbox (``SlackSandbox.socket_mode.push_raw`` sends a frame as
it is and waits for its ack; ``revoke_app_token`` does what an admin's revocation does)."""

from __future__ import annotations

import json
import logging
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from hypothesis import HealthCheck, assume, given, settings

from signoff.bot.errors import TokenRefused
from signoff.bot.sandbox import SlackSandbox
from signoff.bot.sandbox.errors import NotAcknowledged
from signoff.bot.slack.sealing import Sealer
from signoff.bot.slack.server import Server
from signoff.engine import Engine, RunState
from tests.e2e.serve_process import start_serve
from tests.e2e.test_fuzz import fuzz_strategies
from tests.e2e.test_socket_mode import APP_TOKEN, start_server
from tests.support.waiting import wait_for

MALFORMED = "socket_envelope_malformed"


@pytest.fixture
def sandbox() -> Iterator[SlackSandbox]:
    with SlackSandbox(app_token=APP_TOKEN) as slack:
        yield slack


@pytest.fixture
def server(engine: Engine, sandbox: SlackSandbox) -> Iterator[Server]:
    server = start_server(engine, sandbox)
    try:
        sandbox.socket_mode.wait_for_connections(1)
        yield server
    finally:
        server.stop()


def _said(caplog: pytest.LogCaptureFixture, action: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "action", None) == action]


def _still_answers(sandbox: SlackSandbox) -> None:
    """The connection survived: a command is acked and answered."""
    assert sandbox.socket_driver().slash_command("alice", "/runs", "help").status == 200
    answer = sandbox.wait_for(lambda ws: ws.ephemeral("U0ALICE")[-1], timeout=10)
    assert "/runs help" in answer.text


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("this is not JSON, secret-looking xoxb-0000", "not_json"),
        ("{bad", "not_json"),
        ('["an", "array"]', "not_an_object"),
    ],
)
def test_a_frame_that_is_not_a_json_envelope_is_logged_as_malformed(
    sandbox: SlackSandbox,
    server: Server,
    caplog: pytest.LogCaptureFixture,
    frame: str,
    reason: str,
) -> None:
    """Text that is no envelope was dropped without a word, or (``{bad``) with slack_sdk's
    own traceback and no action key to alert on."""
    caplog.set_level(logging.INFO)
    sandbox.socket_mode.push_raw(frame)
    [said] = wait_for(lambda: _said(caplog, MALFORMED), what="the malformed frame logged")
    assert said.levelno == logging.WARNING
    assert getattr(said, "reason", None) == reason
    assert getattr(said, "length", None) == len(frame)
    # Neither the frame itself nor slack_sdk's traceback.
    assert all(frame not in r.getMessage() and frame not in str(r.__dict__) for r in caplog.records)
    assert not [r for r in caplog.records if r.exc_info], "no traceback for Slack's mistake"
    _still_answers(sandbox)


@pytest.mark.parametrize(
    "envelope",
    [
        {"envelope_id": "e-no-payload", "type": "interactive"},
        {"envelope_id": "e-no-payload", "type": "events_api", "payload": ["not", "an", "object"]},
        {"envelope_id": "e-no-payload", "payload": {"type": "block_actions"}},
        {"envelope_id": "e-no-payload", "type": "surprise", "payload": {}},
    ],
)
def test_an_envelope_signoff_cannot_use_is_acknowledged_all_the_same(
    sandbox: SlackSandbox,
    server: Server,
    caplog: pytest.LogCaptureFixture,
    envelope: dict[str, object],
) -> None:
    """Without a usable payload an envelope was never acked, so Slack delivered it again
    and again (and showed the user an error after 3 s)."""
    caplog.set_level(logging.INFO)
    ack = sandbox.socket_mode.push_raw(json.dumps(envelope), envelope_id="e-no-payload", timeout=5)
    assert ack is None  # an empty ack: nothing to say to Slack
    [said] = wait_for(lambda: _said(caplog, MALFORMED), what="the envelope logged")
    assert said.levelno == logging.WARNING
    assert getattr(said, "envelope_id", None) == "e-no-payload"
    assert "block_actions" not in str(said.__dict__)  # not the payload
    _still_answers(sandbox)


def test_an_app_token_revoked_while_serving_is_named_and_not_retried(
    engine: Engine, sandbox: SlackSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    """Slack closes the connection and refuses a new one: the client asked again every
    2 s for ever, saying only slack_sdk's "Failed to retrieve WSS URL"."""
    caplog.set_level(logging.INFO)
    server = start_server(engine, sandbox)
    try:
        sandbox.socket_mode.wait_for_connections(1)
        sandbox.revoke_app_token()
        failure = wait_for(lambda: server.failure, what="the server to give up on the token")
        assert isinstance(failure, TokenRefused)
        assert str(failure) == "Slack refused the token in SLACK_APP_TOKEN: token_revoked"
        # The failure is set just before it is logged: wait for the line too.
        [said] = wait_for(
            lambda: _said(caplog, "socket_mode_app_token_refused"), what="the refusal logged"
        )
        assert said.levelno == logging.ERROR
        assert "SLACK_APP_TOKEN" in said.getMessage() and "token_revoked" in said.getMessage()
    finally:
        server.stop()
    # One call at start, one after Slack closed the connection, none after the refusal.
    assert len(sandbox.calls("apps.connections.open")) == 2
    assert all(APP_TOKEN not in r.getMessage() for r in caplog.records)


def test_serve_exits_non_zero_when_its_app_token_is_revoked(
    sandbox: SlackSandbox, tmp_path: Path
) -> None:
    serving = start_serve(
        sandbox,
        f"sqlite:///{tmp_path / 'signoff.db'}",
        tmp_path,
        "C0GENERAL",
        env={"SLACK_APP_TOKEN": APP_TOKEN, "SIGNOFF_LOG_FORMAT": "json"},
    )
    try:
        sandbox.socket_mode.wait_for_connections(1, timeout=60)
        sandbox.revoke_app_token("invalid_auth")
        assert serving.wait(30) == 1
    finally:
        if serving.poll() is None:
            serving.send_signal(signal.SIGKILL)
            serving.wait()
    [log] = tmp_path.glob("serve-*.log")
    text = log.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    [refused] = [line for line in lines if line.get("action") == "socket_mode_app_token_refused"]
    assert refused["level"] == "ERROR"
    assert "Slack refused the token in SLACK_APP_TOKEN: invalid_auth" in text
    assert APP_TOKEN not in text
    assert len(sandbox.calls("apps.connections.open")) == 2


def _as_envelope(request: tuple[str, str | bytes]) -> tuple[str, dict[str, object]] | None:
    """The Socket Mode envelope type and payload carrying what the HTTP fuzz would POST
    (None: it is no JSON object, which ``check_envelope`` refuses before any payload)."""
    kind, body = request
    if isinstance(body, bytes):
        return None
    try:
        if kind == "json":
            payload, envelope_type = json.loads(body), "events_api"
        else:
            fields = {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}
            if "payload" in fields:
                payload, envelope_type = json.loads(fields["payload"]), "interactive"
            else:
                payload, envelope_type = fields, "slash_commands"
    except (ValueError, RecursionError):
        return None
    return (envelope_type, payload) if isinstance(payload, dict) else None


def test_a_slash_command_slack_sent_without_its_user_is_answered_not_a_traceback(
    sandbox: SlackSandbox, server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    """Over HTTP the edge answers this 400; over the socket it reached the listener, which
    failed with pydantic's traceback, and was never acked (so Slack delivered it again)."""
    caplog.set_level(logging.INFO)
    envelope = {
        "envelope_id": "e-no-user",
        "type": "slash_commands",
        "payload": {"command": "/runs", "text": "help", "response_url": "https://x.example/r"},
        "accepts_response_payload": True,
    }
    ack = sandbox.socket_mode.push_raw(json.dumps(envelope), envelope_id="e-no-user", timeout=3)
    assert ack is not None and ack["text"].startswith("Malformed request: ")
    assert "user_id" in ack["text"]
    [said] = _said(caplog, "socket_payload_malformed")
    assert said.levelno == logging.WARNING
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    _still_answers(sandbox)


@pytest.mark.timeout(120)
# slack_sdk's socket threads use the random module while Hypothesis draws, which it takes
# for the strategy's own use of it.
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
def test_hostile_socket_mode_payloads_are_acked_without_a_traceback(
    engine: Engine, sandbox: SlackSandbox, server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    """The HTTP fuzz's payloads (``tests.e2e.test_fuzz``), as envelopes on the socket: each
    is acked within Slack's 3 s and none gets a listener's or Bolt's traceback. A quarter
    of them were never acked, and a fifth logged an ERROR."""
    waiting = engine.submit("fuzz-wait", {})
    finished = engine.submit("fuzz-start", {"count": 1, "label": "a"})
    wait_for(lambda: engine.get_run(finished.id).state is RunState.COMPLETED, timeout=15)
    unacked: list[str] = []

    @settings(
        max_examples=80,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(request=fuzz_strategies([waiting.id, finished.id], Sealer("x"), sandbox.workspace))
    def check(request: tuple[str, str | bytes]) -> None:
        envelope = _as_envelope(request)
        assume(envelope is not None)
        assert envelope is not None
        envelope_type, payload = envelope
        envelope_id = str(uuid.uuid4())
        frame = {
            "envelope_id": envelope_id,
            "type": envelope_type,
            "payload": payload,
            "accepts_response_payload": envelope_type != "events_api",
        }
        try:
            sandbox.socket_mode.push_raw(json.dumps(frame), envelope_id=envelope_id, timeout=3)
        except NotAcknowledged:
            unacked.append(json.dumps(payload)[:200])

    with caplog.at_level(logging.INFO):
        check()
    assert unacked == []
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [(r.getMessage(), getattr(r, "action", None)) for r in errors][:3]
    _still_answers(sandbox)
