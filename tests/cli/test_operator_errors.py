"""What an operator sees when the environment is broken: one line naming the variable.

``signoff serve`` is run as a real subprocess (forked from ``cli_forks``, which has imported
what it needs: a fresh interpreter spent most of these tests' time importing); Slack is the
sandbox (or nothing at all).
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import make_url

from signoff.bot.sandbox import SlackSandbox
from signoff.bot.testing import running_bot
from tests.engine.test_reconnect import pg_url  # noqa: F401 - a fixture
from tests.support.cli_forks import CliForks
from tests.support.ipv6 import skip_without_ipv6_loopback
from tests.support.postgres import PostgresCluster
from tests.support.waiting import wait_for


def serve_env(tmp_path: Path, **env: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SIGNOFF_", "SLACK_"))}
    base.update(
        SLACK_BOT_TOKEN="xoxb-operator",
        SLACK_SIGNING_SECRET="secret",
        SIGNOFF_CHANNEL="C0GENERAL",
        SIGNOFF_DATABASE_URL=f"sqlite:///{tmp_path / 'signoff.db'}",
        HOME=str(tmp_path / "home"),
    )
    base.update(env)
    return base


def serve(forks: CliForks, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return signoff(forks, tmp_path, "serve", "--port", "0", env=env)


def signoff(
    forks: CliForks, tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``signoff ARGS`` in ``tmp_path`` with ``serve_env`` and ``env``."""
    return forks.run(args, env=serve_env(tmp_path, **(env or {})), cwd=tmp_path, timeout=60)


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_slack_is_one_line_naming_slack_api_url(
    tmp_path: Path, cli_forks: CliForks
) -> None:
    url = f"http://127.0.0.1:{closed_port()}/api/"
    done = serve(cli_forks, tmp_path, SLACK_API_URL=url)
    assert done.returncode == 1
    assert lines(done.stderr) == [
        f"error: Slack could not be reached at SLACK_API_URL={url}: [Errno 111] Connection refused"
    ]


def test_a_refused_token_names_its_variable_and_slacks_answer(
    tmp_path: Path, cli_forks: CliForks
) -> None:
    with SlackSandbox(bot_token="xoxb-the-right-one") as slack:
        done = serve(
            cli_forks, tmp_path, SLACK_API_URL=slack.api_url, SLACK_BOT_TOKEN="xoxb-a-wrong-one"
        )
    assert done.returncode == 1
    assert lines(done.stderr) == ["error: Slack refused the token in SLACK_BOT_TOKEN: invalid_auth"]
    assert "xoxb-a-wrong-one" not in done.stderr


def test_with_json_logs_the_error_a_command_stops_on_is_a_json_line_too(
    tmp_path: Path, cli_forks: CliForks
) -> None:
    """It was the one plain line among JSON ones, which a log pipeline drops: the reason
    a container restarts in a loop."""
    with SlackSandbox(bot_token="xoxb-the-right-one") as slack:
        done = serve(
            cli_forks,
            tmp_path,
            SLACK_API_URL=slack.api_url,
            SLACK_BOT_TOKEN="xoxb-a-wrong-one",
            SIGNOFF_LOG_FORMAT="json",
        )
    assert done.returncode == 1
    records = [json.loads(line) for line in lines(done.stderr)]
    assert [(r["level"], r["action"], r["message"]) for r in records][-1] == (
        "ERROR",
        "command_failed",
        "Slack refused the token in SLACK_BOT_TOKEN: invalid_auth",
    )
    assert all(r["action"] for r in records)


def test_slack_down_at_start_is_not_taken_for_a_refused_token(
    tmp_path: Path, cli_forks: CliForks
) -> None:
    """A 5xx says nothing of the token: it was reported as ``Slack refused the token``,
    which sends the operator to rotate a token that is fine."""
    with SlackSandbox(bot_token="xoxb-operator") as slack:
        slack.fail_next("auth.test", 10, status=503)
        url = slack.api_url
        done = serve(cli_forks, tmp_path, SLACK_API_URL=url)
    assert done.returncode == 1
    assert lines(done.stderr) == [
        f"error: Slack could not be reached at SLACK_API_URL={url}: "
        "HTTP 503 (service_unavailable), not an answer about the token"
    ]


def test_slack_silent_at_start_is_given_up_after_slack_api_timeout(
    tmp_path: Path, cli_forks: CliForks
) -> None:
    """The start-up check of the token waited slack_sdk's own 30 s, whatever
    SLACK_API_TIMEOUT said, before saying that Slack could not be reached."""
    with SlackSandbox(bot_token="xoxb-operator") as slack:
        slack.answer_late("auth.test", 40, times=10)
        url = slack.api_url
        began = time.monotonic()
        done = serve(cli_forks, tmp_path, SLACK_API_URL=url, SLACK_API_TIMEOUT="1")
        took = time.monotonic() - began
    assert done.returncode == 1
    assert lines(done.stderr) == [
        f"error: Slack could not be reached at SLACK_API_URL={url}: timed out"
    ]
    assert took < 20, took


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        ("missing/../../proc/no-such-dir/signoff.db", "No such file or directory"),
        ("not-a-database.db", "file is not a database"),
    ],
)
def test_an_unusable_sqlite_path_names_the_variable_and_the_path(
    tmp_path: Path,
    where: str,
    reason: str,
    cli_forks: CliForks,
) -> None:
    path = tmp_path / where
    if where == "not-a-database.db":
        path.write_text("this is text, not SQLite\n" * 100)
    else:
        path = Path("/proc/no-such-dir/signoff.db")
    done = serve(
        cli_forks,
        tmp_path,
        SIGNOFF_DATABASE_URL=f"sqlite:///{path}",
        SLACK_API_URL="http://127.0.0.1:9/api/",
    )
    assert done.returncode == 1
    (line,) = lines(done.stderr)
    assert line.startswith(f"error: SIGNOFF_DATABASE_URL names the SQLite file {path}")
    assert reason in line and "unexpected" not in line


@pytest.mark.parametrize(
    ("url", "command", "says"),
    [
        (
            "postgresql://signoff@127.0.0.1:{port}/db",
            "runs list",
            "cannot open the database given with --database-url: ",
        ),
        (
            "sqlite:////proc/no-such-dir/signoff.db",
            "db upgrade",
            "--database-url names the SQLite file /proc/no-such-dir/signoff.db",
        ),
        ("sqlite:///{tmp}/none.db", "runs list", "there is no database at "),
        ("/tmp/signoff.db", "runs list", "invalid setting: --database-url: is a file path"),
    ],
)
def test_a_database_given_with_the_flag_is_named_by_the_flag(
    tmp_path: Path,
    url: str,
    command: str,
    says: str,
    cli_forks: CliForks,
) -> None:
    """The URL came from --database-url (SIGNOFF_DATABASE_URL names a good database), yet
    the error sent the operator to SIGNOFF_DATABASE_URL."""
    url = url.format(port=closed_port(), tmp=tmp_path)
    done = signoff(cli_forks, tmp_path, "--database-url", url, *command.split())
    assert done.returncode == 1
    (line,) = lines(done.stderr)
    assert line.startswith(f"error: {says}"), line
    assert "SIGNOFF_DATABASE_URL" not in line
    assert "--database-url" in line


def test_a_database_from_the_variable_is_still_named_by_the_variable(
    tmp_path: Path, cli_forks: CliForks
) -> None:
    env_url = f"postgresql://signoff@127.0.0.1:{closed_port()}/db"
    done = signoff(cli_forks, tmp_path, "runs", "list", env={"SIGNOFF_DATABASE_URL": env_url})
    assert done.returncode == 1
    (line,) = lines(done.stderr)
    assert line.startswith("error: cannot open the database at SIGNOFF_DATABASE_URL: "), line


def test_a_worker_waiting_for_a_database_given_with_the_flag_names_the_flag(
    tmp_path: Path,
    cli_forks: CliForks,
) -> None:
    """The worker waits for a PostgreSQL that refuses connections, as at a restart; its
    warning sent the operator to SIGNOFF_DATABASE_URL, which was not the URL it tried."""
    url = f"postgresql://signoff@127.0.0.1:{closed_port()}/db"
    log = tmp_path / "worker.log"
    with log.open("w") as stderr:
        with open(os.devnull, "rb+") as nothing:
            worker = cli_forks.start(
                ["--database-url", url, "worker"],
                env=serve_env(tmp_path),
                cwd=tmp_path,
                stdin=nothing.fileno(),
                stdout=nothing.fileno(),
                stderr=stderr.fileno(),
            )
    try:
        line = wait_for(
            lambda: next(
                (ln for ln in log.read_text().splitlines() if "cannot reach the database" in ln),
                None,
            ),
            timeout=60,
            what="the worker to say it waits for the database",
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
    assert "database_unreachable_at_start" in line
    assert "cannot open the database given with --database-url: " in line, line
    assert "SIGNOFF_DATABASE_URL" not in line


def test_a_database_that_refuses_writes_is_one_line_not_a_traceback(
    tmp_path: Path,
    pg_url: str,  # noqa: F811,
    cli_forks: CliForks,
) -> None:
    # As a read replica (or a database set read-only) in SIGNOFF_DATABASE_URL refuses them:
    # the schema reads fine, and the first write, taking Slack's posting lease, fails.
    url = make_url(pg_url)
    with psycopg.connect(
        host=url.host, port=url.port, user=url.username, dbname="postgres", autocommit=True
    ) as conn:
        conn.execute(f"ALTER DATABASE {url.database} SET default_transaction_read_only = on")
    with SlackSandbox() as slack:
        done = serve(cli_forks, tmp_path, SIGNOFF_DATABASE_URL=pg_url, SLACK_API_URL=slack.api_url)
    assert done.returncode == 1
    assert lines(done.stderr) == [
        "error: database write failed: cannot execute UPDATE in a read-only transaction"
    ]


def test_a_command_that_only_looks_adds_no_table_to_a_postgres_database(
    tmp_path: Path,
    pg_cluster: PostgresCluster | None,
    cli_forks: CliForks,
) -> None:
    """``runs list`` pointed at a database Signoff never used (another application's, by a
    typo in the URL) gave it Signoff's tables."""
    if pg_cluster is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) are not installed")
    name = f"app_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_cluster.admin_conninfo, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    app_url = pg_cluster.url(name)
    url = make_url(app_url)
    with psycopg.connect(
        host=url.host, port=url.port, user=url.username, dbname=url.database, autocommit=True
    ) as conn:
        conn.execute("CREATE TABLE invoices (id int)")
    for command in ("runs list", "audit verify"):
        done = signoff(cli_forks, tmp_path, "--database-url", app_url, *command.split())
        assert done.returncode == 1
        (line,) = lines(done.stderr)
        assert line.startswith(f"error: the database at {app_url} has no Signoff schema"), line
        assert "'signoff db upgrade' makes the database" in line
    with psycopg.connect(
        host=url.host, port=url.port, user=url.username, dbname=url.database
    ) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
    assert tables == [("invoices",)]


def test_serve_on_prefect_refuses_a_quorum_in_its_permissions_naming_the_engine(
    tmp_path: Path,
    cli_forks: CliForks,
) -> None:
    # Before, "deploy.quorum: Extra inputs are not permitted", as for a typo.
    rules = tmp_path / "rules.json"
    rules.write_text('{"deploy": {"approvers": ["U0BOB", "U0ALICE"], "quorum": 2}}')
    env = {
        "PREFECT_API_URL": f"http://127.0.0.1:{closed_port()}/api",
        "SIGNOFF_PREFECT_PERMISSIONS": str(rules),
    }
    done = signoff(cli_forks, tmp_path, "serve", "--port", "0", "--backend", "prefect", env=env)
    assert done.returncode == 1
    [line] = lines(done.stderr)
    assert line.startswith(f"error: SIGNOFF_PREFECT_PERMISSIONS: {rules}: deploy.quorum: ")
    assert "only with the embedded engine backend (--backend embedded)" in line


def test_serve_on_an_ipv6_address_prints_a_url_that_opens(tmp_path: Path) -> None:
    """'--host ::1' printed http://::1:PORT/slack/events, which no client can parse."""
    skip_without_ipv6_loopback()
    with SlackSandbox() as slack:
        serving = subprocess.Popen(
            [sys.executable, "-m", "signoff.bot.cli", "serve", "--host", "::1", "--port", "0"],
            env=serve_env(tmp_path, SLACK_API_URL=slack.api_url),
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert serving.stderr is not None
            line = "started"
            while line and "is listening on" not in line:
                line = serving.stderr.readline()  # '' once it has ended
            url = line.strip().rsplit(" ", 1)[-1]
            assert re.fullmatch(r"http://\[::1\]:\d+/slack/events", url), line
            health = url.removesuffix("/slack/events") + "/healthz"
            with urllib.request.urlopen(health, timeout=10) as reply:
                assert reply.status == 200
        finally:
            serving.send_signal(signal.SIGTERM)
            serving.communicate(timeout=30)


def test_serving_logs_no_bolt_token_warnings(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING), running_bot():
        pass
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
