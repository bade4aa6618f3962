"""The connection pool under load: many runs finishing, a hundred people answering, and
a thread that holds a connection, all within the pool's bound."""

from __future__ import annotations

import logging
import threading

import pytest
import sqlalchemy

from signoff.engine import (
    Engine,
    EngineSettings,
    RunState,
    RunSuspended,
    flow,
    resume_flow_run,
    set_engine,
    suspend_flow_run,
)
from signoff.engine.store import slots
from tests.conftest import FAST, new_pg_database
from tests.engine.test_concurrency import Approval
from tests.support.postgres import PostgresCluster


@flow(name="pool-bound")
def pool_bound() -> None:
    pass


def test_many_runs_finishing_at_once_open_no_connections_beyond_the_pool(
    pg_cluster: PostgresCluster | None,
) -> None:
    """On PostgreSQL, 40 threads storing a state change at once (as 40 flows finishing
    together in a worker do) share the pool's connections instead of each opening one past
    it: every connection past the pool is a new server process, closed again on return."""
    if pg_cluster is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) are not installed")
    url = new_pg_database(pg_cluster)
    made = Engine(EngineSettings.load(database_url=url, **{**FAST, "pool_size": 3}))
    try:
        run_ids = [made.submit("pool-bound", {}).id for _ in range(40)]
        opened: list[str] = []

        def connected(*_: object) -> None:
            # Only the finishing threads' own: the engine's dispatcher may open its
            # connection for reading events in the same moment, on a slow machine.
            if threading.current_thread().name.startswith("finish-"):
                opened.append(threading.current_thread().name)

        sqlalchemy.event.listen(made.store.engine.pool, "connect", connected)
        start = threading.Barrier(len(run_ids))

        def finish(run_id: str) -> None:
            start.wait()
            made.store.transition(run_id, RunState.CANCELLED, "Cancelled", "all at once")

        threads = [
            threading.Thread(target=finish, args=(r,), name=f"finish-{i}")
            for i, r in enumerate(run_ids)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert {made.get_run(r).state for r in run_ids} == {RunState.CANCELLED}
        # Up to the pool's 3 (some may be open already); without the bound, about 37.
        assert len(opened) <= 3
    finally:
        made.close()


@flow(name="pool-answered")
def pool_answered() -> bool:
    return suspend_flow_run(wait_for_input=Approval).approved


def test_a_hundred_people_answering_at_once_open_no_connections_beyond_the_pool(
    pg_cluster: PostgresCluster | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL, 100 threads answering 100 suspended runs at once (a burst of Slack
    submissions to one bot) wait for the pool's connections instead of each opening one
    past it, and every answer is stored once."""
    if pg_cluster is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) are not installed")
    # The bound alone: on a loaded machine the last threads can wait past the usual limit
    # for a connection, and then go past the pool as they should (the test after this).
    monkeypatch.setattr(slots, "WAIT_LIMIT", 60.0)
    url = new_pg_database(pg_cluster)
    made = Engine(EngineSettings.load(database_url=url, **{**FAST, "pool_size": 3}))
    previous = set_engine(made)
    try:
        run_ids = []
        for _ in range(100):
            with pytest.raises(RunSuspended) as stopped:
                pool_answered()
            run_ids.append(stopped.value.run_id)
        # Connections open at once, beyond those open before: the event reader may open one
        # past the pool, close it and open another later, which is no more at once.
        counting = threading.Lock()
        count = {"open": 0, "peak": 0}

        def opened(change: int) -> None:
            with counting:
                count["open"] += change
                count["peak"] = max(count["peak"], count["open"])

        pool = made.store.engine.pool
        sqlalchemy.event.listen(pool, "connect", lambda *_: opened(1))
        sqlalchemy.event.listen(pool, "close", lambda *_: opened(-1))
        start = threading.Barrier(len(run_ids))
        failed: list[BaseException] = []

        def answer(index: int, run_id: str) -> None:
            start.wait()
            try:
                resume_flow_run(run_id, {"approved": True, "reason": "ok"}, f"U{index:03d}")
            except BaseException as exc:
                failed.append(exc)

        threads = [threading.Thread(target=answer, args=item) for item in enumerate(run_ids)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert failed == []
        assert {made.get_run(r).state for r in run_ids} == {RunState.SCHEDULED}
        for index, run_id in enumerate(run_ids):
            received = [r for r in made.audit_trail(run_id) if r.action == "answer.received"]
            assert [r.actor_id for r in received] == [f"U{index:03d}"]
        assert made.verify_audit().ok
        # The pool's 3 (some may be open already), and the event reader's, which does not
        # wait behind the answers; each thread opening its own, about 43.
        assert count["peak"] <= 4, count
    finally:
        set_engine(previous)
        made.close()


def test_a_thread_waits_for_the_pools_connection_but_never_for_its_own(
    pg_cluster: PostgresCluster | None,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """PostgreSQL with a pool of 1, held by a transaction: a read inside that transaction
    (its own thread) goes ahead at once, and a read from another thread waits, then goes
    past the pool after the wait limit rather than hang, and says so in the log."""
    if pg_cluster is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) are not installed")
    monkeypatch.setattr(slots, "WAIT_LIMIT", 0.5)
    caplog.set_level(logging.WARNING, logger="signoff.engine.store.slots")
    url = new_pg_database(pg_cluster)
    made = Engine(EngineSettings.load(database_url=url, **{**FAST, "pool_size": 1}))

    def timed_out(record: logging.LogRecord) -> bool:
        return getattr(record, "action", None) == "connection_slot_timeout"

    try:
        run_id = made.submit("pool-bound", {}).id
        read_elsewhere: dict[str, object] = {}
        with made.store._write():
            assert made.get_run(run_id).flow_name == "pool-bound"
            assert not [r for r in caplog.records if timed_out(r)]
            other = threading.Thread(
                target=lambda: read_elsewhere.setdefault("run", made.get_run(run_id))
            )
            other.start()
            other.join(30)  # the transaction is still open: the pool's one connection is held
            assert read_elsewhere["run"].flow_name == "pool-bound"  # type: ignore[attr-defined]
        assert [r.slots for r in caplog.records if timed_out(r)] == [1]
    finally:
        made.close()
