"""Replicas started with different heartbeat and owner-timeout settings share one database:
each process is judged by the owner timeout it declared when it registered, not by the
observer's own setting. A replica with a short timeout used to take a live replica that
beats slowly for dead, and its runs over."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from alembic import command

from signoff.engine import Engine, EngineSettings, RunState, Worker, flow
from signoff.engine.store.database import write_connection
from signoff.engine.store.revisions import _alembic_config
from tests.conftest import FAST
from tests.support.waiting import wait_for
from tests.support.worker_process import flows_file, kill_9, worker_process

FLOWS = textwrap.dedent(
    """
    from pathlib import Path
    from signoff.engine import flow, pause_flow_run

    LEDGER = Path(__file__).with_name("ledger.txt")

    @flow(name="liveness-waits")
    def liveness_waits(tag: str) -> int:
        # Outside any task: a run taken over and run again writes this line again.
        with LEDGER.open("a") as f:
            f.write(f"start {tag}\\n")
        return pause_flow_run(int, timeout=600)
    """
)

#: the slow replica: a heartbeat every 2 s, so it goes longer than FAST's 1 s owner timeout
#: without one every time
SLOW = {"heartbeat_seconds": 2.0, "owner_timeout_seconds": 5.0}


@flow(name="liveness-noop")
def liveness_noop() -> None:
    return None


def last_heartbeat(engine: Engine, process_id: str) -> datetime:
    [beat] = [b for b in engine.store.processes() if b.id == process_id]
    return beat.heartbeat_at


def test_a_replica_that_beats_slowly_keeps_its_runs_while_alive_and_loses_them_once_it_stops(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    flows = flows_file(tmp_path, FLOWS)
    with worker_process(flows, database_url, **SLOW) as slow:
        answered = engine.submit("liveness-waits", {"tag": "answered"})
        left = engine.submit("liveness-waits", {"tag": "left"})
        for run in (answered, left):
            wait_for(
                lambda run=run: engine.get_run(run.id).state is RunState.PAUSED,
                what="the slow replica's pauses",
            )
        owner = engine.get_run(left.id).owner
        assert owner is not None and engine.get_run(answered.id).owner == owner
        # This replica (FAST: 1 s owner timeout) looks for dead processes every 0.5 s.
        worker = Worker(engine)
        worker.start()
        try:
            # By this replica's own timeout the slow one is gone now; by the one it
            # declared, it is alive.
            wait_for(
                lambda: (
                    engine.store.clock() - last_heartbeat(engine, owner)
                    > timedelta(seconds=FAST["owner_timeout_seconds"] + 0.2)
                ),
                what="the slow replica's heartbeat to be older than this one's owner timeout",
            )
            assert engine.recover_orphans() == []
            # An answer taken here is left for the flow waiting in the slow replica.
            engine.resume(answered.id, {"value": 7}, responder="alice")
            done = wait_for(lambda: (r := engine.get_run(answered.id)).state.is_final and r)
            assert (done.state, done.result) == (RunState.COMPLETED, "7")
            kept = engine.get_run(left.id)
            assert (kept.state, kept.owner) == (RunState.PAUSED, owner)

            # Killed, it sends no heartbeat again and leaves its row: its waiting run is
            # taken over once it has been silent for the timeout it declared.
            kill_9(slow)
            silent_since = last_heartbeat(engine, owner)
            taken = wait_for(
                lambda: (r := engine.get_run(left.id)).state is RunState.SUSPENDED and r,
                timeout=20,
                what="the dead replica's run to be taken over",
            )
        finally:
            worker.stop()
    assert taken.owner is None
    assert taken.updated_at - silent_since >= timedelta(seconds=SLOW["owner_timeout_seconds"])
    # Neither flow ran again from its start.
    assert sorted((tmp_path / "ledger.txt").read_text().splitlines()) == [
        "start answered",
        "start left",
    ]


def test_each_process_is_judged_by_the_owner_timeout_it_declared(database_url: str) -> None:
    now = [datetime.now(UTC)]
    # The observer's own owner timeout (10 s) lies between the two others declared.
    settings = EngineSettings.load(
        database_url=database_url, heartbeat_seconds=2.0, owner_timeout_seconds=10.0
    )
    observer = Engine(settings, clock=lambda: now[0])
    # Up for longer than any timeout here, as the store's clock says (a process that has
    # only just reached the database takes nobody for dead: test_fresh_after_outage.py).
    observer._reaching_since = float("-inf")
    try:
        store = observer.store
        store.register_process("slow", "host", 1, owner_timeout=60.0)
        store.register_process("quick", "host", 2, owner_timeout=1.0)
        for _ in range(2):
            observer.submit("liveness-noop", {})
        [slow_run] = [s.run.id for s in store.claim_scheduled("slow", 1)]
        [quick_run] = [s.run.id for s in store.claim_scheduled("quick", 1)]

        now[0] += timedelta(seconds=5)
        assert store.live_processes(10.0) == {"slow"}
        assert (store.is_alive("slow", 10.0), store.is_alive("quick", 10.0)) == (True, False)
        target = store.resume_target(slow_run, 10.0)
        assert (target.owner_alive, target.owner_timeout) == (True, 60.0)
        # The quick one is gone after its own second, though this observer would wait 10.
        assert observer.recover_orphans() == [quick_run]
        # Its row goes too, after three of its own timeouts; the slow one's stays.
        assert {beat.id for beat in store.processes()} == {"slow"}

        now[0] += timedelta(seconds=10)  # 15 s: gone by the observer's timeout, not by its own
        assert observer.recover_orphans() == []
        assert store.get_run(slow_run).owner == "slow"

        now[0] += timedelta(seconds=46)  # 61 s
        assert observer.recover_orphans() == [slow_run]
        assert store.get_run(slow_run).state is RunState.SCHEDULED
    finally:
        observer.close()


def test_process_rows_stored_before_the_upgrade_are_judged_by_the_observers_timeout(
    engine: Engine,
) -> None:
    store = engine.store
    for _ in range(2):
        engine.submit("liveness-noop", {})
    # The database goes back to the previous revision, where the previous version stored
    # its processes without a declared owner timeout, and owned runs.
    with write_connection(store.engine) as conn:
        command.downgrade(_alembic_config(conn), "0010")
        conn.commit()
    for process_id, silent in (("old-gone", 5.0), ("old-alive", 0.0)):
        beat = store.clock() - timedelta(seconds=silent)
        with store.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO processes (id, hostname, pid, started_at, heartbeat_at) "
                    "VALUES (:id, 'host', 1, :at, :at)"
                ).bindparams(sa.bindparam("at", type_=sa.DateTime(timezone=True))),
                {"id": process_id, "at": beat},
            )
    [gone_run] = [s.run.id for s in store.claim_scheduled("old-gone", 1)]
    [alive_run] = [s.run.id for s in store.claim_scheduled("old-alive", 1)]

    with write_connection(store.engine) as conn:
        command.upgrade(_alembic_config(conn), "head")
        conn.commit()
    # The old live process beats on through the upgrade, which can take longer than FAST's
    # 1 s on a busy machine (it failed so in a full run).
    with store.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE processes SET heartbeat_at = :at WHERE id = 'old-alive'").bindparams(
                sa.bindparam("at", type_=sa.DateTime(timezone=True))
            ),
            {"at": store.clock()},
        )
    assert {(b.id, b.owner_timeout_seconds) for b in store.processes()} == {
        ("old-gone", None),
        ("old-alive", None),
    }
    # Judged by the observer's own timeout (FAST: 1 s), as before the upgrade.
    assert store.live_processes(FAST["owner_timeout_seconds"]) == {"old-alive"}
    assert store.live_processes(10.0) == {"old-gone", "old-alive"}
    engine._reaching_since = float("-inf")  # up long enough to judge others (see above)
    assert engine.recover_orphans() == [gone_run]
    assert engine.get_run(alive_run).owner == "old-alive"

    # A process of this version declares its timeout; going back drops only that.
    engine.claim_ownership()
    assert {b.id: b.owner_timeout_seconds for b in store.processes()}[engine.process_id] == 1.0
    with write_connection(store.engine) as conn:
        command.downgrade(_alembic_config(conn), "0010")
        conn.commit()
        columns = {c["name"] for c in sa.inspect(conn).get_columns("processes")}
        assert "owner_timeout_seconds" not in columns
        ids = set(conn.execute(sa.text("SELECT id FROM processes")).scalars())
        assert {"old-alive", engine.process_id} <= ids
        command.upgrade(_alembic_config(conn), "head")
        conn.commit()
