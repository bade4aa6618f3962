"""Every command logs alike: a malformed ``SIGNOFF_LOG_LEVEL`` or ``SIGNOFF_LOG_FORMAT``
stops it with one line naming the variable, and its warnings reach stderr in the
configured format (not only ``worker``'s and ``serve``'s, nor only with ``-v``)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

import psycopg
import pytest
from slack_sdk.webhook import WebhookClient
from sqlalchemy.engine import make_url

from signoff.bot.cli.logs import configure_logging
from signoff.bot.config import LogSettings
from signoff.bot.sandbox import SlackSandbox
from signoff.bot.testing import running_bot
from signoff.engine import Engine, EngineSettings, RunState
from tests.cli.in_process import run_cli
from tests.engine.test_reconnect import (  # noqa: F401 - pg_url is a fixture
    drop_connections,
    pg_url,
    refuse_connections,
)
from tests.support.forwarding import free_port
from tests.support.waiting import wait_for

COMMANDS = [
    ("runs", "list"),
    ("runs", "show", "abc"),
    ("audit", "verify"),
    ("audit", "export"),
    ("db", "current"),
    ("flows", "list", "--flows", "flows.py"),
]


@pytest.mark.parametrize("command_line", COMMANDS)
@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("SIGNOFF_LOG_LEVEL", "verbose", "Input should be 'DEBUG', 'INFO', 'WARNING' or 'ERROR'"),
        ("SIGNOFF_LOG_FORMAT", "xml", "Input should be 'text' or 'json'"),
    ],
)
def test_a_malformed_log_setting_stops_every_command_by_name(
    project: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    command_line: tuple[str, ...],
    variable: str,
    value: str,
    says: str,
) -> None:
    monkeypatch.setenv(variable, value)
    status, out, err = run_cli(capsys, *command_line)
    assert (status, out, err) == (1, "", f"error: {variable}: {says}\n")
    # Help is still there to read, and config show lists the setting as a problem.
    status, out, _ = run_cli(capsys, *command_line[:2], "--help")
    assert status == 0 and out.startswith("Usage: signoff ")
    status, out, _ = run_cli(capsys, "config", "show")
    assert status == 1 and f"problem: {variable}: {says}" in out


def test_runs_wait_logs_a_lost_listen_connection_as_configured(pg_url: str) -> None:  # noqa: F811
    """During a PostgreSQL outage 'runs wait' printed bare 'LISTEN connection lost' lines."""
    engine = Engine(EngineSettings.load(database_url=pg_url))
    try:
        run = engine.store.create_run(
            "a" * 32, "deploy", None, b"", {}, RunState.SCHEDULED, None, "ada"
        )
    finally:
        engine.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNOFF_")}
    env.update(SIGNOFF_DATABASE_URL=pg_url, SIGNOFF_LOG_FORMAT="json")
    waiting = subprocess.Popen(
        [sys.executable, "-m", "signoff.bot.cli", "runs", "wait", run.id, "--timeout", "60"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: listening(pg_url), timeout=30, what="runs wait to read the run")
        drop_connections(pg_url)
        assert waiting.stderr is not None
        lost = None
        for line in waiting.stderr:
            record = json.loads(line)  # every line a JSON object, as SIGNOFF_LOG_FORMAT says
            if record["action"] == "listen_reconnect":
                lost = record
                break
        assert lost is not None
        assert (lost["level"], lost["message"]) == ("WARNING", "LISTEN connection lost")
    finally:
        waiting.terminate()
        waiting.wait(30)


def listening(url: str) -> bool:
    """Whether 'runs wait' has started waiting: it LISTENs, and has read the run (it is
    past opening the database, whose failure would end it at once, as it should)."""
    parsed = make_url(url)
    with psycopg.connect(f"host=127.0.0.1 port={parsed.port} user=postgres") as admin:
        found = admin.execute(
            "SELECT bool_or(query LIKE 'LISTEN%%'), bool_or(query LIKE 'SELECT runs.id%%') "
            "FROM pg_stat_activity WHERE datname = %s",
            [parsed.database],
        ).fetchone()
    return found is not None and bool(found[0]) and bool(found[1])


#: each outage's first line (by its action), and the line that says it is over
RECOVERIES = {
    "wait_read_failed": "wait_read_recovered",
    "listen_reconnect": "listen_reconnected",
    "event_read_failed": "event_read_recovered",
    "heartbeat_failed": "heartbeat_recovered",
    "worker_error": "worker_recovered",
    "timers_failed": "timers_recovered",
    "lease_renew_failed": "lease_renew_recovered",
    "consumer_store_failed": "consumer_recovered",
}


def read_json_lines(stream: IO[str], into: list[dict[str, str]]) -> None:
    """Append each JSON line of ``stream`` to ``into`` until it ends (a line of anything
    else, a traceback say, is kept as its text)."""
    for line in stream:
        try:
            into.append(json.loads(line))
        except ValueError:
            into.append({"action": "", "text": line})


def test_runs_wait_outlasts_a_database_outage_and_says_when_it_is_over(
    pg_url: str,  # noqa: F811
) -> None:
    """A deploy pipeline's 'runs wait' failed on the first read that met the outage. Then
    it showed the outage's warnings but not their ends, logged at INFO, below its level."""
    engine = Engine(EngineSettings.load(database_url=pg_url))
    try:
        run = engine.store.create_run(
            "b" * 32, "deploy", None, b"", {}, RunState.SCHEDULED, None, "ada"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNOFF_")}
        env.update(SIGNOFF_DATABASE_URL=pg_url, SIGNOFF_LOG_FORMAT="json")
        waiting = subprocess.Popen(
            [sys.executable, "-m", "signoff.bot.cli", "runs", "wait", run.id, "--timeout", "60"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        logged: list[dict[str, str]] = []
        assert waiting.stderr is not None
        reader = threading.Thread(target=read_json_lines, args=(waiting.stderr, logged))
        reader.start()

        def actions() -> set[str]:
            return {record["action"] for record in list(logged)}

        try:
            wait_for(lambda: listening(pg_url), timeout=30, what="runs wait to read the run")
            refuse_connections(pg_url, True)
            wait_for(lambda: "wait_read_failed" in actions(), timeout=30, what="the outage")
            refuse_connections(pg_url, False)
            wait_for(
                lambda: {RECOVERIES[a] for a in actions() if a in RECOVERIES} <= actions(),
                timeout=30,
                what=f"each outage line's end, in {logged}",
            )
            assert engine.store.transition(
                run.id, RunState.COMPLETED, "Completed", expect=(RunState.SCHEDULED,)
            )
            engine.notify()
            out = waiting.stdout.read()  # type: ignore[union-attr]
            waiting.wait(30)
        finally:
            refuse_connections(pg_url, False)
            if waiting.poll() is None:
                waiting.terminate()
                waiting.wait(30)
            reader.join(30)
    finally:
        engine.close()
    assert waiting.returncode == 0
    assert out.startswith(f"{run.id} completed")
    ends = [r for r in logged if r["action"] in RECOVERIES.values()]
    assert {r["level"] for r in ends} == {"WARNING"}, ends
    assert {r["action"] for r in ends} >= {"wait_read_recovered"}


def test_text_lines_carry_what_each_record_was_given(
    engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    """Text lines showed only run ids: 'request refused' without its reason, 'serving'
    without its URL, where the JSON format had them."""
    configure_logging(logging.INFO, LogSettings(log_format="text"))
    with running_bot(engine=engine) as bot:
        forged = urllib.request.Request(
            f"{bot.server.url}/slack/events", data=b"command=%2Fruns", method="POST"
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(forged, timeout=10)
        assert refused.value.code == 401
        url = bot.server.url
    lines = capsys.readouterr().err.splitlines()
    assert any(line.endswith(f"serving url={url}") for line in lines), lines
    refusals = [line for line in lines if " request_refused " in line]
    assert refusals and refusals[0].endswith("SLACK_SIGNING_SECRET reason=bad_signature"), refusals


def test_debug_logs_hold_no_response_url_nor_what_was_posted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """SIGNOFF_LOG_LEVEL=DEBUG logged slack_sdk's lines: each call's whole body, and the
    response_url of each /runs command, with which anyone may post in the channel."""
    configure_logging(logging.INFO, LogSettings(log_level="DEBUG"))
    with SlackSandbox() as slack:
        url = slack.new_response_url("alice", "C0GENERAL")
        assert WebhookClient(url).send(text="the launch codes").status_code == 200
        slack.client().chat_postMessage(channel="C0GENERAL", text="the launch codes")
    logging.getLogger("signoff.bot.cli").debug("still at DEBUG", extra={"action": "check"})
    err = capsys.readouterr().err
    assert "still at DEBUG" in err
    assert url not in err and "the launch codes" not in err, err


def test_a_response_url_post_that_is_retried_is_not_logged_with_its_url(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """At serve's INFO, slack_sdk's retry of a response_url post that could not connect
    logged "Going to retry the same request: POST <the whole response_url>"."""
    configure_logging(logging.INFO, LogSettings())
    url = f"http://127.0.0.1:{free_port()}/actions/T0SANDBOX/1/S3cretHookPath"
    with pytest.raises(urllib.error.URLError):
        WebhookClient(url).send(text="done")  # Bolt's respond, with its default retries
    err = capsys.readouterr().err
    assert "Failed to send a request to Slack API server" in err  # its ERROR line stays
    assert "S3cretHookPath" not in err, err


def test_a_librarys_message_of_several_lines_is_one_text_line(
    engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    """slack_sdk's "Failed to retrieve WSS URL: ...\nThe server responded with: ..." took
    two lines in the text format, the second with no time, level or action to grep for."""
    from signoff.bot.backends.embedded import EmbeddedBackend
    from signoff.bot.config import BotSettings
    from signoff.bot.errors import TokenRefused
    from signoff.bot.slack.server import Server

    configure_logging(logging.INFO, LogSettings(log_format="text"))
    with SlackSandbox(app_token="xapp-1-logs") as slack:
        slack.fail_next("apps.connections.open", status=200, error="invalid_auth")
        settings = BotSettings.load(
            bot_token=slack.token,
            app_token="xapp-1-logs",
            api_url=slack.api_url,
            channel="C0GENERAL",
        )
        server = Server(EmbeddedBackend(engine), settings, port=0)
        with pytest.raises(TokenRefused):
            server.start()
        server.stop()
    lines = capsys.readouterr().err.splitlines()
    [failed] = [line for line in lines if "Failed to retrieve WSS URL" in line]
    assert failed.startswith("20") and "The server responded with" in failed, lines
    assert all(line.startswith("20") for line in lines), lines
