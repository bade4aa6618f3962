"""Many runs at once: async flows keep their loop free, processes wake each other, and
runs are listed a page at a time."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from signoff.engine import (
    Engine,
    EngineSettings,
    EventKind,
    PauseStatus,
    RunState,
    RunTakenOver,
    flow,
    pause_flow_run,
    resume_flow_run,
    set_engine,
    task,
)
from signoff.engine.input import RunInput
from signoff.engine.runtime import SLOW_CLOSE_SECONDS
from signoff.engine.store.checkpoints import Checkpointer
from tests.conftest import FAST, new_pg_database
from tests.support.closing import StopAfterTheLook
from tests.support.postgres import PostgresCluster
from tests.support.running import start
from tests.support.waiting import wait_for


class Approval(RunInput):
    approved: bool
    reason: str


@task
async def fetch(i: int) -> int:
    return i * 2


@flow(name="async-approval")
async def async_approval(tag: str) -> str:
    doubled = await fetch(21)
    answer = await pause_flow_run(wait_for_input=Approval, timeout=None)
    return f"{tag}:{answer.reason}:{doubled}"


@pytest.fixture
def sqlite_engines(tmp_path: Path) -> Iterator[Callable[..., Engine]]:
    """Engines on one SQLite file, as separate processes would have (SQLite-only behaviour:
    its writers queue on one lock, and its processes wake each other by local signals)."""
    made: list[Engine] = []

    def make(**overrides: object) -> Engine:
        url = f"sqlite:///{tmp_path / 'shared.db'}"
        made.append(Engine(EngineSettings.load(database_url=url, **{**FAST, **overrides})))
        return made[-1]

    yield make
    for engine in reversed(made):
        engine.close()


def test_async_flows_do_not_block_their_loop_while_the_store_is_busy(
    sqlite_engines: Callable[..., Engine],
) -> None:
    """While another writer holds the database, the loop still serves other coroutines."""
    engine = sqlite_engines()
    previous = set_engine(engine)
    assert engine.store.writer is not None
    loop_ran = threading.Event()
    release = threading.Event()
    holding = threading.Event()

    def hold_the_write_turn() -> None:
        with engine.store.writer.turn():
            holding.set()
            release.wait(30)

    holder = threading.Thread(target=hold_the_write_turn)
    holder.start()
    holding.wait(10)

    async def main() -> str:
        run = asyncio.ensure_future(async_approval("a"))
        await asyncio.sleep(0)  # the flow takes its first step: it waits on the store
        loop_ran.set()  # this line runs only if that wait left the loop free
        return await run

    result: dict[str, object] = {}

    def drive() -> None:
        result["value"] = asyncio.run(main())

    driver = threading.Thread(target=drive)
    driver.start()
    try:
        wait_for(loop_ran.is_set, what="the loop to run another coroutine")
    finally:
        release.set()
        holder.join()
    waiting = wait_for(lambda: engine.list_runs([RunState.PAUSED]), what="the flow to pause")
    resume_flow_run(waiting[0].id, {"approved": True, "reason": "ok"})
    driver.join(30)
    set_engine(previous)
    assert result["value"] == "a:ok:42"
    assert engine.get_run(waiting[0].id).state is RunState.COMPLETED


def test_many_async_runs_on_one_loop_wake_independently(engine: Engine) -> None:
    count = 200

    async def main() -> list[str]:
        runs = [asyncio.ensure_future(async_approval(f"r{i}")) for i in range(count)]
        waiting = await asyncio.to_thread(
            wait_for,
            lambda: len(engine.list_runs([RunState.PAUSED], limit=count)) == count,
            60,
            "every run to pause",
        )
        assert waiting
        paused = engine.list_runs([RunState.PAUSED], limit=count)

        def answer_all() -> None:
            threads = [
                threading.Thread(
                    target=resume_flow_run, args=(run.id, {"approved": True, "reason": "ok"})
                )
                for run in paused
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

        await asyncio.to_thread(answer_all)
        return await asyncio.gather(*runs)

    results = asyncio.run(main())
    assert sorted(results) == sorted(f"r{i}:ok:42" for i in range(count))
    assert not engine.list_runs([RunState.PAUSED, RunState.RUNNING])


def test_another_process_commit_reaches_this_one_without_polling(
    sqlite_engines: Callable[..., Engine],
) -> None:
    """Two engines on one SQLite file stand for two processes; the waiting one polls only
    once a minute, so only the wake-up signal can deliver the event in time."""
    waiting_side = sqlite_engines(poll_seconds=60)
    answering_side = sqlite_engines(poll_seconds=60)
    assert waiting_side.dispatcher.poll_seconds == 60
    seen: list[str] = []

    class Observer:
        def on_event(self, event) -> None:
            seen.append(event.kind.value)

    waiting_side.add_observer(Observer())
    run_id = answering_side.store.create_run(
        "0" * 32, "elsewhere", None, b"", {}, RunState.RUNNING, owner=None, started_by=None
    ).id
    wait_for(lambda: "state_changed" in seen, 10, "the other process's event")
    assert waiting_side.get_run(run_id).state is RunState.RUNNING


def test_runs_are_listed_newest_first_a_page_at_a_time(engine: Engine) -> None:
    base = engine.store.clock()
    made = []
    for i in range(23):
        engine.store.clock = lambda i=i: base + timedelta(seconds=i // 2)  # ties on purpose
        state = RunState.SUSPENDED if i % 3 else RunState.SCHEDULED
        made.append(
            engine.store.create_run(
                f"{i:032x}", "listed", None, b"", {}, state, owner=None, started_by=None
            )
        )
    suspended = [r for r in made if r.state is RunState.SUSPENDED]
    newest_first = sorted(suspended, key=lambda r: (r.created_at, r.id), reverse=True)

    pages, before = [], None
    while True:
        page = engine.list_runs([RunState.SUSPENDED], limit=5, before=before)
        if not page:
            break
        pages.append([r.id for r in page])
        before = page[-1]
    assert [rid for page in pages for rid in page] == [r.id for r in newest_first]
    assert all(len(page) == 5 for page in pages[:-1])

    both = engine.list_runs([RunState.SUSPENDED, RunState.SCHEDULED], limit=50)
    assert [r.id for r in both] == [
        r.id for r in sorted(made, key=lambda r: (r.created_at, r.id), reverse=True)
    ]
    second = engine.list_runs(flow_name="listed", limit=10, before=both[9])
    assert [r.id for r in second] == [r.id for r in both[10:20]]


def test_a_wake_up_socket_left_by_a_killed_process_is_cleared(tmp_path: Path) -> None:
    import socket

    from signoff.engine.store.wakeups import LocalWakeups

    database = str(tmp_path / "runs.db")
    survivor, sender = LocalWakeups(database), LocalWakeups(database)
    inbox = survivor.listen()
    assert inbox is not None
    # A process killed with -9 leaves its socket file behind, with nobody reading it.
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dead_path = survivor.folder / "999999-deadbeef"
    dead.bind(str(dead_path))
    dead.close()
    try:
        sender.send()
        assert inbox.recv(16)  # the live process is woken
        assert not dead_path.exists()  # and the dead one's socket is gone
    finally:
        survivor.close()
        sender.close()


def test_the_last_process_to_leave_a_database_removes_its_wake_up_folder(
    tmp_path: Path,
) -> None:
    """Each SQLite file gets a folder of wake-up sockets in the temporary directory: it
    stays while a process listens, and goes with the last one (or each test database,
    each throwaway file, would leave one behind for good)."""
    from signoff.engine.store.wakeups import LocalWakeups

    database = str(tmp_path / "runs.db")
    first, second, sender = (LocalWakeups(database) for _ in range(3))
    assert first.listen() is not None
    inbox = second.listen()
    assert inbox is not None
    first.close()
    assert second.folder.is_dir()  # the other process still listens there
    sender.send()
    assert inbox.recv(16)
    second.close()
    assert not second.folder.exists()
    # A process that comes later (or raced the removal) makes the folder again.
    again = LocalWakeups(database)
    try:
        assert again.listen() is not None and again.folder.is_dir()
    finally:
        again.close()
        sender.close()
    assert not again.folder.exists()


def test_the_last_live_process_removes_the_folder_past_a_killed_ones_socket(
    tmp_path: Path,
) -> None:
    import socket

    from signoff.engine.store.wakeups import LocalWakeups

    database = str(tmp_path / "runs.db")
    survivor = LocalWakeups(database)
    assert survivor.listen() is not None
    # Killed with -9 while the survivor ran, before anyone sent a wake-up that found it.
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as dead:
        dead.bind(str(survivor.folder / "999999-deadbeef"))
    survivor.close()
    assert not survivor.folder.exists()


def test_an_answer_goes_ahead_of_the_writes_queued_before_it(
    sqlite_engines: Callable[..., Engine],
) -> None:
    """On SQLite a process's writers queue for the write turn in arrival order, except an
    answer, which a waiting flow and the person who gave it wait on: it goes first."""
    engine = sqlite_engines()
    previous = set_engine(engine)
    writer = engine.store.writer
    assert writer is not None

    @flow(name="waits-for-approval")
    def waits() -> str:
        return pause_flow_run(wait_for_input=Approval, timeout=None).reason

    result: dict[str, str] = {}
    flow_thread = threading.Thread(target=lambda: result.setdefault("reason", waits()))
    flow_thread.start()
    paused = wait_for(lambda: engine.list_runs([RunState.PAUSED]), what="the flow to pause")
    release, holding = threading.Event(), threading.Event()

    def hold_the_write_turn() -> None:
        with writer.turn():
            holding.set()
            release.wait(30)

    threads = [threading.Thread(target=hold_the_write_turn)]
    threads[0].start()
    holding.wait(10)
    try:
        for i in range(3):  # bookkeeping writes, queued before the answer
            threads.append(
                threading.Thread(target=engine.submit, args=("async-approval", {"tag": str(i)}))
            )
            threads[-1].start()
        wait_for(lambda: len(writer._threads._queue) == 3, what="three queued writes")
        answer = threading.Thread(
            target=resume_flow_run, args=(paused[0].id, {"approved": True, "reason": "now"})
        )
        threads.append(answer)
        answer.start()
        wait_for(lambda: len(writer._threads._urgent) == 1, what="the answer to queue")
    finally:
        release.set()
        for thread in threads:
            thread.join(30)
    flow_thread.join(30)
    set_engine(previous)
    assert result["reason"] == "now"
    events = engine.store.events_after(0, 1000)
    received = next(e.id for e in events if e.kind is EventKind.INPUT_RECEIVED)
    submitted = [
        e.id for e in events if e.data.get("state") == "scheduled" and e.run_id != paused[0].id
    ]
    assert len(submitted) == 3 and received < min(submitted)


def test_a_write_that_meets_a_dead_writer_connection_is_written_on_a_new_one(
    sqlite_engines: Callable[..., Engine], caplog: pytest.LogCaptureFixture
) -> None:
    """On SQLite every write uses one connection held between writes. If that connection
    dies before a write's COMMIT, nothing of the write was stored: it is written again on
    a new connection, and so are the writes after it."""
    engine = sqlite_engines()
    first = engine.submit("async-approval", {"tag": "before"})
    held = engine.store._writing.current
    assert held is not None
    held.connection.driver_connection.close()  # type: ignore[union-attr]
    caplog.set_level("WARNING", logger="signoff.engine.store")
    met = engine.submit("async-approval", {"tag": "met the dead connection"})
    second = engine.submit("async-approval", {"tag": "after"})
    stored = [r.id for r in engine.list_runs([RunState.SCHEDULED])]
    assert stored == [second.id, met.id, first.id]
    assert [getattr(r, "write", None) for r in caplog.records] == ["create_run"]


def test_writes_reach_the_database_file_soon_after_they_commit(
    sqlite_engines: Callable[..., Engine], tmp_path: Path
) -> None:
    """On SQLite a commit goes to the write-ahead log; a background checkpoint copies it
    into the database file shortly after (a commit never waits for one), so the file on
    its own, as a plain copy of it would be, holds the run."""
    import sqlite3

    engine = sqlite_engines()
    run = engine.submit("async-approval", {"tag": "copied"})

    def in_the_file() -> bool:
        # immutable=1: read the file as it is, ignoring the log beside it
        file = sqlite3.connect(f"file:{tmp_path / 'shared.db'}?immutable=1", uri=True)
        try:
            return bool(file.execute("SELECT 1 FROM runs WHERE id = ?", (run.id,)).fetchall())
        except sqlite3.DatabaseError:
            # "no such table": the tables are still only in the log; "malformed": an
            # immutable reader takes no lock, so it can catch the file halfway through a
            # checkpoint copying pages in. Either way, look again.
            return False
        finally:
            file.close()

    wait_for(in_the_file, what="the run to reach the database file")
    with engine.store.engine.connect() as conn:
        backstop = conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
    assert backstop == 10_000  # commits checkpoint only past the backstop


def test_closing_as_the_checkpoint_thread_finds_no_stop_yet_is_prompt(
    sqlite_engines: Callable[..., Engine], caplog: pytest.LogCaptureFixture
) -> None:
    """A close just after the checkpoint thread looked for the stop lost its wake-up: the
    thread slept on, and close waited 10 s for it, then warned ("closing the engine: the
    database took 10.0 s"), as ``serve`` once did when stopped."""
    engine = sqlite_engines()
    assert engine.store.checkpointer is not None
    # A checkpointer of its own, whose thread has not started yet, with the events held.
    engine.store.checkpointer.close()
    checkpointer = engine.store.checkpointer = Checkpointer(engine.store.checkpointer.database)
    held = StopAfterTheLook("signoff-checkpoint")
    checkpointer._closed, checkpointer._due = held.events()
    engine.submit("async-approval", {"tag": "committed"})
    assert held.looked.wait(10), "the checkpoint thread never looked for the stop"

    caplog.set_level(logging.WARNING, logger="signoff.engine.runtime")
    began = time.monotonic()
    engine.close()
    took = time.monotonic() - began
    assert took < SLOW_CLOSE_SECONDS, f"close took {took:.1f} s"
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_events_are_read_again_after_the_events_connection_dies(
    sqlite_engines: Callable[..., Engine], tmp_path: Path
) -> None:
    """On SQLite a process reads events on a connection it holds. If that connection dies,
    the read is made again on a new connection: no read fails."""
    from signoff.engine.store import SqlStore

    run = sqlite_engines().submit("async-approval", {"tag": "read"})
    # A store of its own, without a dispatcher that could meet the dead connection first.
    store = SqlStore.open(f"sqlite:///{tmp_path / 'shared.db'}")
    try:
        assert [e.run_id for e in store.events_after(0)] == [run.id]
        held = store._events_reading.current
        assert held is not None
        held.connection.driver_connection.close()  # type: ignore[union-attr]
        assert [e.run_id for e in store.events_after(0)] == [run.id]
        assert store._events_reading.current is not held
    finally:
        store.close()


@flow(name="taken-over-mid-answer")
def taken_over_mid_answer() -> bool:
    return pause_flow_run(wait_for_input=Approval, timeout=None).approved


@flow(name="taken-over-mid-reassigned-answer")
def taken_over_mid_reassigned_answer() -> bool:
    return pause_flow_run(wait_for_input=Approval, timeout=None, approvers=["bob"]).approved


@pytest.mark.parametrize(
    "reassigned",
    [
        # The answer finds the run paused here without reading it (the waiter's view).
        False,
        # A reassigned pause: the answer reads the run, then stores the answer.
        True,
    ],
)
def test_a_run_taken_over_while_its_answer_is_stored_is_answered_as_from_elsewhere(
    pg_cluster: PostgresCluster | None, reassigned: bool
) -> None:
    """PostgreSQL: an answer given in the process where the flow waits finds the run
    paused there, then waits on the run's row while another process takes the run over.
    Nothing of that answer stays, and the run is not moved on under the new owner: the
    answer is stored again as from any other process (the run goes to a worker), once,
    and the audit chain still verifies."""
    if pg_cluster is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) are not installed")
    url = new_pg_database(pg_cluster)
    made = Engine(EngineSettings.load(database_url=url, **FAST))
    previous = set_engine(made)
    other = psycopg.connect(url.replace("postgresql+psycopg", "postgresql"))
    watcher = psycopg.connect(url.replace("postgresql+psycopg", "postgresql"), autocommit=True)
    try:
        flow_thread, flow_done = start(
            taken_over_mid_reassigned_answer if reassigned else taken_over_mid_answer
        )
        run_id = wait_for(
            lambda: next(iter(made.list_runs([RunState.PAUSED])), None), what="the paused run"
        ).id
        if reassigned:
            made.reassign(run_id, "alice", "bob")
        other.execute("SELECT 1 FROM runs WHERE id = %s FOR UPDATE", (run_id,))
        answered: dict[str, object] = {}
        answering = threading.Thread(
            target=lambda: answered.setdefault(
                "pause", resume_flow_run(run_id, {"approved": True, "reason": "ok"}, "alice")
            ),
            daemon=True,
        )
        answering.start()
        wait_for(
            lambda: watcher.execute(
                "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE 'WITH answered AS%'"
            ).fetchone(),
            what="the answer waiting on the run's row",
        )
        other.execute("UPDATE runs SET state = 'suspended', owner = NULL WHERE id = %s", (run_id,))
        other.commit()
        answering.join(10)
        assert answered["pause"].status is PauseStatus.ANSWERED  # type: ignore[attr-defined]
        run = made.get_run(run_id)
        assert (run.state, run.owner) == (RunState.SCHEDULED, None)
        trail = [r.action for r in made.audit_trail(run_id)]
        assert trail.count("answer.received") == 1
        assert made.verify_audit().ok
        flow_thread.join(10)
        # The flow waiting here does not go on as well: the worker runs it again.
        assert isinstance(flow_done.get("error"), RunTakenOver)
    finally:
        other.close()
        watcher.close()
        set_engine(previous)
        made.close()
