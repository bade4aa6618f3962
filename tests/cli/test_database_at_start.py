"""``signoff worker`` started while PostgreSQL is down (a restart, a failover, a compose
file that starts both at once) waits for it, as a worker already running rides out an
outage; settings that are wrong still fail at once."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from signoff.bot.sandbox import SlackSandbox
from signoff.engine import DatabaseUnavailable, Engine, EngineSettings, StoreError
from signoff.engine.store import SqlStore
from tests.cli.test_cli import Cli
from tests.conftest import new_pg_database
from tests.e2e.serve_process import start_serve, wait_until_ready
from tests.support.cli_forks import CliForks
from tests.support.forwarding import forwarding, free_port
from tests.support.postgres import PostgresCluster
from tests.support.waiting import wait_for

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def pg_url(pg_cluster: PostgresCluster | None) -> str:
    if pg_cluster is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) are not installed")
    url = new_pg_database(pg_cluster)
    Engine(EngineSettings.load(database_url=url)).close()  # the schema, as a first start
    return url


def test_a_server_that_refuses_connections_is_unavailable_and_wrong_settings_are_not(
    pg_url: str, pg_cluster: PostgresCluster
) -> None:
    down = pg_url.replace(f":{pg_cluster.port}/", f":{free_port()}/")
    with pytest.raises(DatabaseUnavailable, match="Connection refused"):
        SqlStore.open(down)
    for wrong in (
        pg_url.rsplit("/", 1)[0] + "/no_such_database",
        pg_url.replace("127.0.0.1", "no-such-host.invalid"),
    ):
        with pytest.raises(StoreError) as refused:
            SqlStore.open(wrong)
        assert not isinstance(refused.value, DatabaseUnavailable), refused.value


def test_a_worker_started_while_postgresql_is_down_waits_for_it(
    pg_url: str, pg_cluster: PostgresCluster, tmp_path: Path, cli_forks: CliForks
) -> None:
    port = free_port()
    cli = Cli(pg_url.replace(f":{pg_cluster.port}/", f":{port}/"), tmp_path, cli_forks)
    try:
        # Stopped while it waits: it ends as a worker does, at once and without an error.
        stopped = cli.start_worker()
        first_log = cli.workers[0][1]
        wait_for(
            lambda: "cannot reach the database yet" in first_log.read_text(),
            timeout=120,
            what="the worker to say it waits for the database",
        )
        stopped.send_signal(signal.SIGTERM)
        assert stopped.wait(30) == 0
        assert "Traceback" not in first_log.read_text()

        waiting = cli.start_worker()
        log = cli.workers[1][1]
        wait_for(
            lambda: "cannot reach the database yet" in log.read_text(),
            timeout=120,
            what="the second worker to wait for the database",
        )
        assert waiting.poll() is None
        with forwarding(port, ("127.0.0.1", pg_cluster.port)):
            # Said as it starts, just after the worker's own first line.
            wait_for(
                lambda: (
                    "worker started" in (text := log.read_text())
                    and "reached the database after" in text
                ),
                timeout=60,
                what="the worker to start once the database answers",
            )
            run_id = cli.submit("cli-quick", "--param", "n=4")
            assert cli.wait_for_state(run_id, "completed")["run"]["result"] == "8"
            assert cli.stop_workers() == [0, 0]
    finally:
        cli.stop_workers()


def test_serve_started_while_postgresql_is_down_waits_for_it(
    pg_url: str, pg_cluster: PostgresCluster, tmp_path: Path
) -> None:
    port, http_port = free_port(), free_port()
    with SlackSandbox() as slack:
        serving = start_serve(
            slack,
            pg_url.replace(f":{pg_cluster.port}/", f":{port}/"),
            tmp_path,
            "C0GENERAL",
            port=http_port,
        )
        try:
            [log] = tmp_path.glob("serve-*.log")
            wait_for(
                lambda: "cannot reach the database yet" in log.read_text(),
                timeout=120,
                what="serve to say it waits for the database",
            )
            assert serving.poll() is None
            with forwarding(port, ("127.0.0.1", pg_cluster.port)):
                wait_until_ready(http_port, timeout=120)
                serving.send_signal(signal.SIGTERM)
                assert serving.wait(30) == 0
        finally:
            if serving.poll() is None:
                serving.kill()
                serving.wait()
