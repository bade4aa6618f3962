"""A process that has only just reached the database (``signoff runs resume`` typed as an
outage ends, a replica or worker started during it, a script's engine) cannot tell a
process that died from one whose database connection is not back yet: every heartbeat it
reads is stale. It leaves their runs alone for the owner timeout, as a process that rode the
outage out does; it used to suspend their waiting runs at once, or queue an answered one to
run again, so that the flow ran a second time from its start."""

from __future__ import annotations

import pytest

from signoff.engine import DatabaseUnavailable, Engine, EngineSettings, RunState, Worker
from tests.conftest import FAST, new_pg_database
from tests.engine.test_reconnect import STARTS, reconnect_waits  # noqa: F401  (the flow)
from tests.support.forwarding import forwarding, free_port
from tests.support.postgres import PostgresCluster
from tests.support.waiting import wait_for

#: the waiting process's settings: an owner timeout the fresh process's first steps, on a
#: loaded machine too, fit well within
BEATING = {"heartbeat_seconds": 0.5, "owner_timeout_seconds": 3.0}


@pytest.fixture
def pg_url(pg_cluster: PostgresCluster | None) -> str:
    if pg_cluster is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) are not installed")
    return new_pg_database(pg_cluster)


@pytest.fixture
def through(pg_url: str, pg_cluster: PostgresCluster) -> tuple[str, int]:
    """A URL of the database through a port of its own, and that port: the test opens and
    closes it (``forwarding``) for an outage of the processes on it alone."""
    port = free_port()
    return pg_url.replace(f":{pg_cluster.port}/", f":{port}/"), port


def test_a_process_that_just_reached_the_database_leaves_a_waiting_run_to_its_process(
    pg_url: str, pg_cluster: PostgresCluster, through: tuple[str, int]
) -> None:
    via, port = through
    server = ("127.0.0.1", pg_cluster.port)
    with forwarding(port, server):
        waiting = Engine(EngineSettings.load(database_url=via, **BEATING))
    worker = Worker(waiting)
    try:
        with forwarding(port, server):
            worker.start()
            run = waiting.submit("reconnect-waits", {"tag": "fresh"})
            wait_for(lambda: waiting.get_run(run.id).state is RunState.PAUSED, what="the pause")
        # Its heartbeats fail now, until they are older than its owner timeout.
        lapses = waiting.heartbeat_lapses()
        wait_for(
            lambda: waiting.heartbeat_lapses() > lapses + 8, timeout=15, what="missed heartbeats"
        )
        fresh = Engine(EngineSettings.load(database_url=pg_url, **FAST))
        try:
            assert not fresh.owner_alive(waiting.process_id)  # stale, as after any outage
            assert fresh.recover_orphans() == []  # a new replica's first sweep
            fresh.resume(run.id, {"value": 4}, responder="carol")  # `signoff runs resume`
            assert fresh.get_run(run.id).state is RunState.RUNNING
            with forwarding(port, server):  # the waiting process's database is back
                done = wait_for(lambda: (r := fresh.get_run(run.id)).state.is_final and r, 15)
        finally:
            fresh.close()
    finally:
        with forwarding(port, server):
            worker.stop()
            waiting.close()
    # Answered where it waited: the flow did not start again.
    assert (done.state, done.result, STARTS.count("fresh")) == (RunState.COMPLETED, "4", 1)


def test_a_script_that_met_the_outage_leaves_a_waiting_run_to_its_process(
    pg_cluster: PostgresCluster, pg_url: str, through: tuple[str, int]
) -> None:
    """A long-running script of one's own that only answers runs (no worker, so no
    heartbeat of its own) catches ``DatabaseUnavailable`` and tries again, as the README
    says it may: its answer after the outage used to queue the run to run again."""
    via, port = through
    server = ("127.0.0.1", pg_cluster.port)
    script_port = free_port()
    script_via = pg_url.replace(f":{pg_cluster.port}/", f":{script_port}/")
    with forwarding(port, server), forwarding(script_port, server):
        waiting = Engine(EngineSettings.load(database_url=via, **BEATING))
        script = Engine(EngineSettings.load(database_url=script_via, **FAST))
    worker = Worker(waiting)
    try:
        with forwarding(port, server), forwarding(script_port, server):
            worker.start()
            run = waiting.submit("reconnect-waits", {"tag": "script"})
            wait_for(lambda: waiting.get_run(run.id).state is RunState.PAUSED, what="the pause")
        lapses = waiting.heartbeat_lapses()
        wait_for(
            lambda: waiting.heartbeat_lapses() > lapses + 8, timeout=15, what="missed heartbeats"
        )
        with pytest.raises(DatabaseUnavailable):
            script.resume(run.id, {"value": 6}, responder="carol")
        with forwarding(script_port, server):  # back for the script first
            script.resume(run.id, {"value": 6}, responder="carol")
            assert script.get_run(run.id).state is RunState.RUNNING
            with forwarding(port, server):
                done = wait_for(lambda: (r := script.get_run(run.id)).state.is_final and r, 15)
            script.close()
    finally:
        with forwarding(port, server):
            worker.stop()
            waiting.close()
    assert (done.state, done.result, STARTS.count("script")) == (RunState.COMPLETED, "6", 1)
