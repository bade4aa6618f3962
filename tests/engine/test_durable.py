"""Runs survive their process: kill -9 while paused, wake-ups across processes, timers."""

from __future__ import annotations

import logging
import textwrap
import time
from pathlib import Path

import pytest

from signoff.engine import Engine, EventKind, PauseStatus, RunState, resume_flow_run
from tests.support.waiting import wait_for
from tests.support.worker_process import flows_file, kill_9, worker_process

FLOWS = textwrap.dedent(
    """
    from pathlib import Path
    from signoff.engine import PauseTimeout, flow, pause_flow_run, task, get_run_logger
    from signoff.engine.input import RunInput

    LEDGER = Path(__file__).with_name("ledger.txt")

    class Go(RunInput):
        approved: bool

    @task
    def prepare(name: str) -> str:
        with LEDGER.open("a") as f:
            f.write("prepare\\n")
        return f"prepared {name}"

    @task
    def finish(note: str) -> str:
        with LEDGER.open("a") as f:
            f.write("finish\\n")
        return note.upper()

    @flow
    def durable(name: str) -> str:
        note = prepare(name)
        answer = pause_flow_run(wait_for_input=Go, timeout=600)
        get_run_logger().info("woke")
        return finish(note) if answer.approved else "no"

    @flow(name="durable-child")
    def durable_child() -> bool:
        return pause_flow_run(wait_for_input=Go, timeout=600).approved

    @flow(name="durable-deadline")
    def durable_deadline(name: str, catch: bool) -> str:
        note = prepare(name)
        try:
            pause_flow_run(wait_for_input=Go, timeout=4)
        except PauseTimeout:
            if not catch:
                raise
            return finish(f"{note}: nobody answered")
        return "answered"

    @flow(name="durable-parent")
    def durable_parent(name: str) -> str:
        note = prepare(name)
        return finish(note) if durable_child() else "no"
    """
)


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    return flows_file(tmp_path, FLOWS)


def test_paused_run_survives_kill_9_and_completes_without_repeating_tasks(
    engine: Engine, database_url: str, tmp_path: Path, flows: Path
) -> None:
    with worker_process(flows, database_url) as first:
        run = engine.submit("durable", {"name": "db"})
        wait_for(lambda: engine.get_run(run.id).state is RunState.PAUSED, what="the pause")
        owner = engine.get_run(run.id).owner
        kill_9(first)
    assert engine.get_run(run.id).state is RunState.PAUSED  # nobody has noticed yet

    with worker_process(flows, database_url):
        suspended = wait_for(
            lambda: (r := engine.get_run(run.id)).state is RunState.SUSPENDED and r,
            what="the new worker to notice the dead owner",
        )
        assert suspended.owner is None and owner is not None
        assert "the process that was waiting is gone" in suspended.state_message
        resume_flow_run(run.id, {"approved": True}, responder="alice")
        done = wait_for(lambda: (r := engine.get_run(run.id)).state.is_final and r, timeout=20)
    assert (done.state, done.result) == (RunState.COMPLETED, "'PREPARED DB'")
    assert (tmp_path / "ledger.txt").read_text().splitlines() == ["prepare", "finish"]
    pause = engine.get_pause(run.id, "1")
    assert (pause.status, pause.responder) == (PauseStatus.ACCEPTED, "alice")


@pytest.mark.parametrize("catch", [True, False])
def test_a_pause_whose_process_died_still_raises_its_timeout_in_the_flow(
    engine: Engine, database_url: str, tmp_path: Path, flows: Path, catch: bool
) -> None:
    with worker_process(flows, database_url) as first:
        run = engine.submit("durable-deadline", {"name": "db", "catch": catch})
        # Its deadline's timer is stored just after the pause (else the sweep, every 30 s,
        # would find it).
        wait_for(
            lambda: f"expire:{run.id}:1" in [job for job, _ in engine.timers.pending()],
            what="the pause's timer",
        )
        kill_9(first)

    # Nobody answers; a new worker takes the run over, and the deadline passes.
    with worker_process(flows, database_url):
        done = wait_for(lambda: (r := engine.get_run(run.id)).state.is_final and r, timeout=30)
    if catch:
        # The flow's own `except PauseTimeout` ran, as it would have in the first process.
        assert (done.state, done.result) == (RunState.COMPLETED, "'PREPARED DB: NOBODY ANSWERED'")
        assert (tmp_path / "ledger.txt").read_text().splitlines() == ["prepare", "finish"]
    else:
        assert (done.state, done.state_name) == (RunState.FAILED, "TimedOut")
        assert (tmp_path / "ledger.txt").read_text().splitlines() == ["prepare"]
    assert engine.get_pause(run.id, "1").status is PauseStatus.TIMED_OUT


def test_a_nested_flow_paused_when_its_process_died_is_taken_up_by_the_outer_rerun(
    engine: Engine, database_url: str, tmp_path: Path, flows: Path
) -> None:
    """The outer run is run again by another worker; it takes the nested run up where it
    waits, so the one question is asked once and its answer reaches the outer flow."""
    with worker_process(flows, database_url) as first:
        parent = engine.submit("durable-parent", {"name": "db"})
        child = wait_for(
            lambda: engine.list_runs([RunState.PAUSED], flow_name="durable-child"),
            what="the nested flow's pause",
        )[0]
        kill_9(first)
    with worker_process(flows, database_url):
        # One read: state and owner from two reads could be of two moments of the re-run.
        wait_for(
            lambda: (
                (taken := engine.get_run(child.id)).state is RunState.PAUSED
                and taken.owner not in (None, child.owner)
            ),
            what="the outer run's re-run to take the nested run up",
        )
        resume_flow_run(child.id, {"approved": True}, responder="alice")
        done = wait_for(lambda: (r := engine.get_run(parent.id)).state.is_final and r, timeout=20)
    assert (done.state, done.result) == (RunState.COMPLETED, "'PREPARED DB'")
    assert [r.id for r in engine.list_runs(flow_name="durable-child")] == [child.id]
    assert engine.get_run(child.id).state is RunState.COMPLETED
    assert (tmp_path / "ledger.txt").read_text().splitlines() == ["prepare", "finish"]


def test_flow_in_another_process_wakes_within_a_second(
    engine: Engine, database_url: str, flows: Path
) -> None:
    with worker_process(flows, database_url):
        run = engine.submit("durable", {"name": "x"})
        wait_for(lambda: engine.get_run(run.id).state is RunState.PAUSED)
        resumed_at = time.time()
        resume_flow_run(run.id, {"approved": False})
        done = wait_for(lambda: (r := engine.get_run(run.id)).state.is_final and r)
    woke = next(log for log in engine.detail(run.id).logs if log.message == "woke")
    assert done.result == "'no'"
    assert woke.at.timestamp() - resumed_at < 1.0


def test_suspend_timeout_fires_from_the_stored_job_after_a_restart(
    make_engine, database_url: str, tmp_path: Path
) -> None:
    from signoff.engine import Worker, flow, set_engine, suspend_flow_run

    @flow
    def expiring() -> None:
        suspend_flow_run(wait_for_input=bool, timeout=0.5)

    first = make_engine()
    set_engine(first)
    try:
        with pytest.raises(Exception, match="suspended"):
            expiring()
        run = first.list_runs()[0]
        jobs = [job_id for job_id, _ in first.timers.pending()]
        assert f"expire:{run.id}:1" in jobs
    finally:
        set_engine(None)
        first.close()

    # A fresh process (engine) with a worker picks the stored job up and fires it.
    second = make_engine()
    worker = Worker(second)
    worker.start()
    try:
        failed = wait_for(lambda: (r := second.get_run(run.id)).state.is_final and r, timeout=15)
    finally:
        worker.stop()
    assert failed.state is RunState.FAILED and failed.state_name == "TimedOut"
    assert "waited for input '1' until" in failed.state_message
    assert "nobody answered in time" in failed.state_message
    kinds = [e.kind for e in second.store.events_after(0) if e.run_id == run.id]
    assert EventKind.PAUSE_TIMED_OUT in kinds


@pytest.mark.parametrize("lost", ["runs", "task_runs"])
def test_a_worker_run_whose_database_fails_under_it_logs_one_line_and_runs_again(
    engine: Engine, caplog: pytest.LogCaptureFixture, lost: str
) -> None:
    """The database fails the run's last write (``runs``) or its task's record
    (``task_runs``, as a full disk fails a large write but not a small one): the run is not
    failed as if its flow had failed, nor left running under a live worker; once the
    database answers again, the worker queues it again and it completes."""
    import threading

    from sqlalchemy import text

    from signoff.engine import Worker, flow, task

    started, release = threading.Event(), threading.Event()

    @task
    def step() -> str:
        return "stepped"

    @flow(name=f"outlived-store-{lost}")
    def outlived_store() -> str:
        started.set()
        release.wait(30)
        return f"done, {step()}"

    def rename(old: str, new: str) -> None:
        with engine.store.engine.begin() as conn:
            conn.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))

    worker = Worker(engine)
    worker.start()
    try:
        run = engine.submit(f"outlived-store-{lost}", {})
        wait_for(started.is_set, timeout=15, what="the flow to start")
        rename(lost, f"{lost}_away")  # the run's next write will fail
        with caplog.at_level("INFO", logger="signoff.engine.workers"):
            release.set()
            failed = wait_for(
                lambda: [
                    r for r in caplog.records if getattr(r, "action", "") == "run_store_failed"
                ],
                timeout=15,
                what="the worker to report the lost write",
            )
            rename(f"{lost}_away", lost)
            done = wait_for(
                lambda: (r := engine.get_run(run.id)).state.is_final and r,
                timeout=15,
                what="the run to be run again",
            )
    finally:
        release.set()
        worker.stop()
    assert failed[0].run_id == run.id and "database write failed" in failed[0].getMessage()
    assert (done.state, done.result) == (RunState.COMPLETED, "'done, stepped'")
    states = [
        (e.data.get("state"), e.data.get("name"))
        for e in engine.store.events_after(0)
        if e.run_id == run.id and "state" in e.data
    ]
    # Never failed: queued again, run again.
    assert states == [
        ("scheduled", "Scheduled"),
        ("running", "Running"),
        ("scheduled", "Recovering"),
        ("running", "Running"),
        ("completed", "Completed"),
    ]


def test_a_worker_that_cannot_queue_a_run_again_in_an_outage_tries_once_a_second(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """A run's write failed, and then the database stayed down: the worker's loop, whose
    queuing of that run again kept failing, tried again at once rather than a second later,
    tens of thousands of times in a few seconds (a core at full load), each a new try to
    reach the database. It now tries about once a second, and the run still runs again and
    completes once the database is back."""
    import threading

    from sqlalchemy import text

    from signoff.engine import Worker, flow

    started, release = threading.Event(), threading.Event()

    @flow(name="outlived-outage")
    def outlived_outage() -> str:
        started.set()
        release.wait(30)
        return "done"

    def rename(old: str, new: str) -> None:
        with engine.store.engine.begin() as conn:
            conn.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))

    def logged(action: str) -> list[logging.LogRecord]:
        return [r for r in caplog.records if getattr(r, "action", "") == action]

    worker = Worker(engine)
    worker.start()
    try:
        run = engine.submit("outlived-outage", {})
        wait_for(started.is_set, timeout=15, what="the flow to start")
        with caplog.at_level("INFO", logger="signoff.engine.workers"):
            # Every read and write of runs fails from now on: the run's last write, the
            # worker's looks for work, and its queuing of the run again.
            rename("runs", "runs_away")
            began = time.monotonic()
            release.set()
            wait_for(lambda: logged("run_store_failed"), timeout=15, what="the lost write")
            # The outage's length, not a wait for anything: the run is due to be queued
            # again after 1 s of it, and the loop fails at that every time it tries.
            time.sleep(1.5)
            rename("runs_away", "runs")
            outage = time.monotonic() - began
            (recovered,) = wait_for(
                lambda: logged("worker_recovered"), timeout=15, what="the loop to work again"
            )
            done = wait_for(
                lambda: (r := engine.get_run(run.id)).state.is_final and r,
                timeout=15,
                what="the run to be run again",
            )
    finally:
        release.set()
        worker.stop()
    # A try a second at most (every half second with these test settings' short upkeep).
    every = min(worker.safety_seconds, 1.0)
    failures: int = recovered.failures  # type: ignore[attr-defined]
    assert 1 <= failures <= outage / every + 2, f"{failures} failed attempts in {outage:.1f} s"
    assert len(logged("worker_error")) == 1
    assert [r.run_id for r in logged("run_requeued")] == [run.id]  # type: ignore[attr-defined]
    assert (done.state, done.result) == (RunState.COMPLETED, "'done'")


def refuse_task_results(engine: Engine, refuse: bool) -> None:
    """Make the database refuse (or take again) every write of a task's result, as a full
    disk refuses a large write while the small ones around it still fit."""
    from sqlalchemy import text

    sqlite = engine.store.engine.dialect.name == "sqlite"
    if refuse and sqlite:
        statements = [
            f"CREATE TRIGGER refuse_{op} BEFORE {op} ON task_runs "
            "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
            for op in ("INSERT", "UPDATE")
        ]
    elif refuse:
        statements = [
            "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION "
            "'could not extend file: No space left on device'; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON task_runs "
            "FOR EACH ROW EXECUTE FUNCTION refuse()",
        ]
    elif sqlite:
        statements = ["DROP TRIGGER refuse_INSERT", "DROP TRIGGER refuse_UPDATE"]
    else:
        statements = ["DROP TRIGGER refuse ON task_runs", "DROP FUNCTION refuse()"]
    with engine.store.engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))


def test_a_run_whose_writes_keep_failing_runs_again_later_each_time_not_in_a_hot_loop(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """A full disk fails a run's large write but not the small one that queues it again:
    the worker ran the flow (and its task, whose result it could not store) again at once,
    hundreds of times a second, logging each. Now each rerun waits twice as long."""
    from signoff.engine import Worker, flow, task

    starts: list[float] = []

    @task
    def step() -> str:
        return "stepped"

    @flow(name="store-keeps-failing")
    def store_keeps_failing() -> str:
        starts.append(time.monotonic())
        return f"done, {step()}"

    def failures() -> list[logging.LogRecord]:
        return [r for r in caplog.records if getattr(r, "action", "") == "run_store_failed"]

    refuse_task_results(engine, True)
    worker = Worker(engine)
    try:
        with caplog.at_level("INFO", logger="signoff.engine.workers"):
            worker.start()
            run = engine.submit("store-keeps-failing", {})
            failed = wait_for(
                lambda: len(failures()) >= 3 and failures(),
                timeout=20,
                what="the run's write to fail three times",
            )
            refuse_task_results(engine, False)
            done = wait_for(
                lambda: (r := engine.get_run(run.id)).state.is_final and r,
                timeout=20,
                what="the run to complete once the database takes its writes",
            )
    finally:
        worker.stop()
    # The flow ran again a second, then two seconds, after its failures.
    assert starts[1] - starts[0] >= 1.0 and starts[2] - starts[1] >= 2.0
    assert [r.getMessage().split("; ")[1] for r in failed[:3]] == [
        f"it runs again in {wait}s, once the database answers (failed writes in a row: {n})"
        for n, wait in ((1, 1), (2, 2), (3, 4))
    ]
    assert (done.state, done.result) == (RunState.COMPLETED, "'done, stepped'")
