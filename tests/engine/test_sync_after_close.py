"""A sync flow that goes on after its engine was closed under it stops at its next store
call, as an async flow does (``test_after_close``), and opens no database connection:
before, each call opened connections again that nothing closed."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from signoff.engine import Engine, RunState, RunTakenOver, flow, get_run_logger, task
from tests.support.running import start
from tests.support.waiting import wait_for

#: holds the flows below until their engine is closed
_after_close = threading.Event()


@task
def add_one(value: int) -> int:
    return value + 1


@flow(name="sync-called-after-close")
def sync_called_after_close() -> int:
    return 2


@flow(name="sync-task-after-close")
def sync_task_after_close() -> int:
    _after_close.wait(30)
    return add_one(1)


@flow(name="sync-logs-after-close")
def sync_logs_after_close() -> int:
    _after_close.wait(30)
    get_run_logger().info("still here")
    return 2


@flow(name="sync-nested-after-close")
def sync_nested_after_close() -> int:
    _after_close.wait(30)
    return sync_called_after_close()


@flow(name="sync-fails-after-close")
def sync_fails_after_close() -> int:
    _after_close.wait(30)
    raise ValueError("failed after close")


_COUNTING = "signoff-tests-counting-connections"


def open_connections(database_url: str) -> int:
    """Connections to the test's database open now: the SQLite file's descriptors in this
    process, or PostgreSQL's backends for the database (this check's own excepted)."""
    if database_url.startswith("sqlite"):
        path = database_url.removeprefix("sqlite:///")
        found = 0
        for fd in os.listdir("/proc/self/fd"):
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                continue  # closed meanwhile (the listing's own descriptor)
            found += target.startswith(path)  # the database, its -wal and -shm
        return found
    dsn = database_url.replace("postgresql+psycopg://", "postgresql://")
    # Named, and every such check excepted: an earlier check's backend may still be listed
    # for a moment after it disconnected.
    with psycopg.connect(dsn, autocommit=True, application_name=_COUNTING) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name <> %s",
            (_COUNTING,),
        ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize(
    "fn",
    [sync_task_after_close, sync_logs_after_close, sync_nested_after_close, sync_fails_after_close],
    ids=["task", "log-and-return", "nested-flow", "raise"],
)
def test_a_sync_flow_that_goes_on_after_its_engine_closed_stops_and_opens_no_connection(
    engine: Engine,
    make_engine: Callable[..., Engine],
    database_url: str,
    fn: Callable[[], Any],
) -> None:
    _after_close.clear()
    thread, box = start(fn)
    name = fn.name  # type: ignore[attr-defined]
    run_id = wait_for(lambda: (runs := engine.list_runs(flow_name=name)) and runs[0].id)
    engine.close()
    assert open_connections(database_url) == 0
    _after_close.set()
    thread.join(10)
    assert not thread.is_alive()
    assert isinstance(box.get("error"), RunTakenOver), box
    assert str(box["error"]) == (
        f"run {run_id} stopped here: its flow went on after this process's engine was "
        "closed, and could store nothing more; a worker runs the flow again, as for a process "
        "that stopped"
    )
    # Nothing the flow did after close left a connection open.
    assert open_connections(database_url) == 0
    other = make_engine()
    assert other.get_run(run_id).state is RunState.RUNNING
