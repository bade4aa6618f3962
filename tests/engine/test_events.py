"""The events outbox: observers in process, durable consumers across restarts."""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from typing import Any

import psycopg
import pytest
import sqlalchemy
from sqlalchemy import text
from sqlalchemy.engine import make_url

from signoff.engine import (
    DurableConsumer,
    Engine,
    Event,
    EventKind,
    PauseStatus,
    RunObserver,
    RunState,
    dispatch,
    flow,
    pause_flow_run,
    resume_flow_run,
)
from signoff.engine.input import RunInput
from signoff.engine.store import SqlStore
from signoff.engine.store.base import NOTIFY_CHANNEL
from signoff.engine.store.database import create_db_engine
from signoff.engine.store.event_rows import EventPage
from signoff.engine.store.urgency import PROMPT_NOTICE
from signoff.engine.store.wakeups import PROMPT_SIGNAL, LocalWakeups
from tests.conftest import new_pg_database
from tests.support.postgres import PostgresCluster
from tests.support.running import start
from tests.support.waiting import wait_for


class Recorder:
    def __init__(self, fail_first: int = 0) -> None:
        self.seen: list[Event] = []
        self.fail_first = fail_first
        self.lock = threading.Lock()

    def on_event(self, event: Event) -> None:
        with self.lock:
            if self.fail_first > 0:
                self.fail_first -= 1
                raise ConnectionError("Slack is down")
            self.seen.append(event)


def run_pause_and_answer(engine: Engine, answerer: Engine | None = None) -> str:
    """A run of a flow in ``engine``'s process that waits for input, answered by
    ``answerer`` (by default, that same process)."""

    @flow
    def ask() -> bool:
        return pause_flow_run(wait_for_input=bool)

    box: dict = {}
    thread = threading.Thread(target=lambda: box.setdefault("r", ask()), daemon=True)
    thread.start()
    pause = wait_for(lambda: (r := engine.list_runs(limit=1)) and engine.waiting_pause(r[0].id))
    if answerer is None:
        resume_flow_run(pause.run_id, {"value": True}, responder="dana")
    else:
        answerer.resume(pause.run_id, {"value": True}, "dana")
    thread.join(10)
    assert box.get("r") is True
    return pause.run_id


def test_observer_sees_every_change_in_order(engine: Engine) -> None:
    recorder: RunObserver = Recorder()
    engine.add_observer(recorder)
    run_id = run_pause_and_answer(engine)
    wait_for(lambda: any(e.data.get("state") == "completed" for e in recorder.seen))
    kinds = [(e.kind, e.data.get("state")) for e in recorder.seen if e.run_id == run_id]
    assert kinds == [
        (EventKind.STATE_CHANGED, "running"),
        (EventKind.STATE_CHANGED, "paused"),
        (EventKind.WAITING_FOR_INPUT, None),
        (EventKind.INPUT_RECEIVED, None),
        (EventKind.STATE_CHANGED, "running"),
        (EventKind.INPUT_ACCEPTED, None),
        (EventKind.STATE_CHANGED, "completed"),
    ]
    received = next(e for e in recorder.seen if e.kind is EventKind.INPUT_RECEIVED)
    # The answer rides along, for a flow waiting in another process: the one named.
    assert received.data == {
        "key": "1",
        "responder": "dana",
        "response": {"value": True},
        "owner": engine.process_id,
    }
    ids = [e.id for e in recorder.seen]
    assert ids == sorted(ids)
    # The answer's two audit records were stored in the same statement as its events (on
    # PostgreSQL): chained in order, each to the one before.
    records = [r for r in engine.audit_records() if r.run_id == run_id]
    assert [r.action for r in records] == ["run.started", "answer.received", "answer.accepted"]
    assert [r.seq for r in records] == [1, 2, 3]
    assert records[2].prev_hash == records[1].hash and records[1].prev_hash == records[0].hash
    assert engine.verify_audit().ok


def test_durable_consumer_retries_and_survives_restart_without_duplicates(
    make_engine, caplog: pytest.LogCaptureFixture
) -> None:
    from signoff.engine import set_engine

    first = make_engine()
    flaky = Recorder(fail_first=2)
    consumer = first.subscribe("slack", flaky)
    wait_for(lambda: consumer.position is not None)
    set_engine(first)
    try:
        run_id = run_pause_and_answer(first)
    finally:
        set_engine(None)
    wait_for(lambda: any(e.data.get("state") == "completed" for e in flaky.seen), timeout=15)
    delivered = [e.id for e in flaky.seen]
    assert delivered == sorted(delivered) and len(delivered) == len(set(delivered))
    assert {e.run_id for e in flaky.seen} == {run_id}
    # Each failure names what failed and for which run (it said only "event delivery
    # failed", with the reason at the end of a traceback).
    failed = [r for r in caplog.records if getattr(r, "action", "") == "event_delivery_failed"]
    assert len(failed) == 2 and {r.run_id for r in failed} == {run_id}
    assert failed[0].getMessage() == (
        "event delivery failed; will retry: ConnectionError: Slack is down "
        f"(run {run_id}, {flaky.seen[0].kind.value})"
    )
    first.close()

    # A new process subscribing under the same name starts where the last one stopped.
    second = make_engine()
    later = Recorder()
    second.subscribe("slack", later)
    set_engine(second)
    try:
        next_run = run_pause_and_answer(second)
    finally:
        set_engine(None)
    wait_for(lambda: any(e.data.get("state") == "completed" for e in later.seen), timeout=15)
    assert {e.run_id for e in later.seen} == {next_run}
    assert min(e.id for e in later.seen) > max(delivered)


def test_only_one_process_holds_a_consumer(make_engine) -> None:
    a, b = make_engine(), make_engine()
    first, second = Recorder(), Recorder()
    held = a.subscribe("slack", first)
    wait_for(lambda: held.position is not None)
    waiting = b.subscribe("slack", second)
    from signoff.engine import set_engine

    set_engine(a)
    try:
        run_pause_and_answer(a)
    finally:
        set_engine(None)
    wait_for(lambda: any(e.data.get("state") == "completed" for e in first.seen))
    assert second.seen == [] and waiting.position is None


def test_closing_an_engine_stops_its_listener_at_once(make_engine, monkeypatch) -> None:
    # The listener blocks until a notification (PostgreSQL) or a datagram (SQLite), or
    # this timeout: closing must wake it, not wait the timeout out.
    monkeypatch.setattr(dispatch, "_LISTEN_TIMEOUT", 60.0)
    engine = make_engine()
    listener = engine.dispatcher._listener
    assert listener is not None and listener.is_alive()
    if not engine.store.is_sqlite:
        wait_for(lambda: listening(engine), what="the LISTEN connection")
    engine.close()
    assert not listener.is_alive()


@flow(name="ev-stuck")
def stuck_flow() -> int:
    return 1


class Stuck:
    """An observer whose delivery hangs, as a post to a Slack that does not answer."""

    def __init__(self) -> None:
        self.delivering = threading.Event()
        self.release = threading.Event()

    def on_event(self, event: Event) -> None:
        self.delivering.set()
        self.release.wait(60)


def test_closing_with_a_delivery_in_flight_waits_once_and_keeps_its_lease(
    make_engine, monkeypatch
) -> None:
    """``signoff serve`` stopped while a post to Slack hung waited out the consumer's stop
    twice (the Slack app's, then the engine's): 10 s, past compose's grace before SIGKILL;
    and it then released the lease, so that another replica could post the same prompt
    while this post was still on its way."""
    monkeypatch.setattr(DurableConsumer, "STOP_SECONDS", 2.0)
    a, b = make_engine(), make_engine()
    stuck = Stuck()
    consumer = a.subscribe("slack", stuck)
    wait_for(lambda: consumer.position is not None)
    a.submit(stuck_flow.name)  # queued: its event is the delivery that hangs
    wait_for(stuck.delivering.is_set, what="a delivery in flight")
    began = time.monotonic()
    consumer.stop()
    a.close()
    assert 2.0 <= time.monotonic() - began < 3.5
    try:
        # Another process waits for the lease to run out rather than take it at once.
        later = Recorder()
        taken = b.subscribe("slack", later)
        assert taken.owner is None
        wait_for(lambda: taken.owner is not None, timeout=DurableConsumer.LEASE_SECONDS + 3)
    finally:
        stuck.release.set()


def test_a_slow_step_of_closing_is_said_with_its_name(make_engine, monkeypatch, caplog) -> None:
    """``signoff demo`` once took over 20 s to stop after Ctrl-C, and its log said nothing
    of what the engine's close waited for."""
    monkeypatch.setattr(DurableConsumer, "STOP_SECONDS", 2.0)
    engine = make_engine()
    stuck = Stuck()
    consumer = engine.subscribe("slack", stuck)
    wait_for(lambda: consumer.position is not None)
    engine.submit(stuck_flow.name)
    wait_for(stuck.delivering.is_set, what="a delivery in flight")
    caplog.set_level(logging.WARNING, logger="signoff.engine.runtime")
    try:
        engine.close()
    finally:
        stuck.release.set()
    slow = [r for r in caplog.records if getattr(r, "action", "") == "engine_close_step"]
    assert [r.step for r in slow] == ["event consumers"]
    assert re.fullmatch(
        r"closing the engine: the event consumers took 2\.\d s", slow[0].getMessage()
    )


def listening(engine: Engine) -> bool:
    with engine.store.engine.connect() as conn:
        found = conn.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN signoff_stop_%'")
        ).scalar()
    return bool(found)


@pytest.mark.parametrize("answered_in", ["another process", "the flow's own process"])
def test_only_an_answer_for_a_flow_waiting_elsewhere_is_read_at_once(
    engine: Engine, make_engine, answered_in: str
) -> None:
    """A process reads other processes' events at a paced rate when busy, except those a
    waiting flow needs: the wake-up for an answer given in another process than the flow's
    says so. The flow's own process hands its answer over itself, so that answer, like the
    start, the pause and the completion, hurries no one."""
    answerer = make_engine() if answered_in == "another process" else None
    store = engine.store
    if store.is_sqlite:
        assert store.wakeups is not None
        listener = LocalWakeups(str(store.engine.url.database))
        inbox = listener.listen()
        assert inbox is not None
        inbox.settimeout(10)
        received = []

        def heard() -> list[bytes]:
            inbox.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                while True:
                    received.append(inbox.recv(16))
            return received
    else:
        url = store.engine.url.set(drivername="postgresql")
        listener_conn = psycopg.connect(url.render_as_string(hide_password=False), autocommit=True)
        listener_conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
        notes: list[bytes] = []

        def heard() -> list[bytes]:
            for note in listener_conn.notifies(timeout=0.2, stop_after=50):
                notes.append(
                    PROMPT_SIGNAL if note.payload.endswith(f" {PROMPT_NOTICE}") else b"paced"
                )
            return notes

    try:
        run_id = run_pause_and_answer(engine, answerer)
        wait_for(lambda: engine.get_run(run_id).state is RunState.COMPLETED)
        # Every commit has sent its wake-up by now: the start, the pause, the answer and
        # the completion, at least.
        wait_for(lambda: len(heard()) >= 3)
        signals = heard()
        assert signals.count(PROMPT_SIGNAL) == (1 if answerer is not None else 0)
    finally:
        if store.is_sqlite:
            listener.close()
        else:
            listener_conn.close()


def test_a_process_where_no_flow_waits_reads_its_own_answers_at_a_paced_rate(
    engine: Engine, make_engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process that only answers (a bot replica, a script) has no one to hurry for: the
    wake-ups of its own answers are read at its paced rate, at most one read per interval,
    not one per answer, and the flows waiting elsewhere still get every answer."""

    @flow
    def ask() -> bool:
        return pause_flow_run(wait_for_input=bool)

    count = 30
    started = [start(ask) for _ in range(count)]
    waiting_runs = wait_for(
        lambda: (r := engine.list_runs([RunState.PAUSED], limit=count)) and len(r) == count and r,
        what="every run waiting for input",
    )
    answerer = make_engine()
    reads: list[float] = []
    read_events = answerer.store.read_events_of

    def noted_read(*args: Any, **kwargs: Any) -> EventPage:
        reads.append(time.monotonic())
        return read_events(*args, **kwargs)

    # The dispatcher's reads of new events, counted on their way to the database.
    monkeypatch.setattr(answerer.store, "read_events_of", noted_read)
    began = time.monotonic()
    for run in waiting_runs:
        answerer.resume(run.id, {"value": True}, responder="dana")
    for thread, box in started:
        thread.join(10)
        assert box["result"] is True
    # Every answer's wake-up has come back to the answerer once it has read past them all.
    last = answerer.store.last_event_id()
    wait_for(lambda: answerer.dispatcher.position >= last, what="the answerer's reads")
    ended = time.monotonic()
    during = [at for at in reads if began <= at <= ended]
    assert during, "the answerer never read the events"
    assert len(during) <= 2 + (ended - began) / dispatch._MIN_INTERVAL


class Approval(RunInput):
    approved: bool
    reason: str = ""


def test_a_flow_waiting_in_another_process_takes_the_answer_from_its_event(
    engine: Engine, make_engine
) -> None:
    """The answer commits with the event that wakes the waiting process, and rides along in
    it: the flow goes on without reading its pause back, and still judges the answer."""
    statements: list[str] = []
    if engine.store.is_sqlite:
        # The driver's own trace of what the waiting process asks SQLite.
        sqlalchemy.event.listen(
            engine.store.engine,
            "checkout",
            lambda dbapi, _record, _proxy: dbapi.set_trace_callback(statements.append),
        )

    @flow
    def ask() -> Approval:
        return pause_flow_run(wait_for_input=Approval)

    box: dict = {}
    thread = threading.Thread(target=lambda: box.setdefault("r", ask()), daemon=True)
    thread.start()
    pause = wait_for(lambda: (r := engine.list_runs(limit=1)) and engine.waiting_pause(r[0].id))
    statements.clear()
    other = make_engine()  # another process: it stores the answer, the flow judges it
    other.resume(pause.run_id, {"approved": True, "reason": "tested"}, responder="dana")
    thread.join(10)
    assert box["r"] == Approval(approved=True, reason="tested")
    settled = other.get_pause(pause.run_id, pause.key)
    assert (settled.status, settled.responder) == (PauseStatus.ACCEPTED, "dana")
    if engine.store.is_sqlite:
        reads = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
        assert not [s for s in reads if "FROM pauses" in s], reads


def test_a_process_without_observers_reads_only_what_it_acts_on(engine: Engine) -> None:
    """The events a process acts on (answers, cancellations, new runs...) come back alone,
    with the position past every event stored; an observer added later sees every kind."""

    first = run_pause_and_answer(engine)
    events, position = engine.store.events_of_after(
        0, frozenset({EventKind.INPUT_RECEIVED}), frozenset({RunState.COMPLETED})
    )
    assert [(e.run_id, e.kind, e.data.get("state")) for e in events] == [
        (first, EventKind.INPUT_RECEIVED, None),
        (first, EventKind.STATE_CHANGED, RunState.COMPLETED.value),
    ]
    assert position == engine.store.last_event_id()
    # A page of ``limit`` events ends at the last one returned: more may follow.
    page, at = engine.store.events_of_after(
        0, frozenset({EventKind.INPUT_RECEIVED}), frozenset({RunState.COMPLETED}), limit=1
    )
    assert [e.kind for e in page] == [EventKind.INPUT_RECEIVED] and at == page[0].id
    assert engine.store.events_of_after(position, frozenset(EventKind)) == ([], position)

    recorder = Recorder()
    engine.add_observer(recorder)
    second = run_pause_and_answer(engine)
    wait_for(
        lambda: any(
            e.run_id == second and e.data.get("state") == "completed" for e in recorder.seen
        )
    )
    kinds = {e.kind for e in recorder.seen if e.run_id == second}
    assert {EventKind.WAITING_FOR_INPUT, EventKind.INPUT_ACCEPTED} <= kinds


def test_a_state_change_that_loses_its_race_records_nothing(engine: Engine) -> None:
    """A change conditioned on the run's state (a completion that a cancellation beat) is
    refused whole: no new state and no event in the run's history; one that applies
    records its one event with it (on PostgreSQL both are a single statement)."""

    run_id = run_pause_and_answer(engine)
    history = [s.state for s in engine.detail(run_id).history]
    assert history[-1] is RunState.COMPLETED
    refused = engine.store.transition(
        run_id, RunState.FAILED, "Failed", "late", expect=(RunState.RUNNING,)
    )
    assert refused is False
    assert engine.get_run(run_id).state is RunState.COMPLETED
    assert [s.state for s in engine.detail(run_id).history] == history

    applied = engine.store.transition(
        run_id, RunState.CANCELLED, "Cancelled", "by hand", expect=(RunState.COMPLETED,)
    )
    assert applied is True
    run = engine.get_run(run_id)
    assert (run.state, run.state_message) == (RunState.CANCELLED, "by hand")
    after = engine.detail(run_id).history
    assert [s.state for s in after] == [*history, RunState.CANCELLED]
    assert after[-1].message == "by hand"


def test_a_reader_racing_many_writers_misses_no_event(engine: Engine) -> None:
    """Event ids become visible in id order however many writers commit at once: a reader
    that keeps a position and reads while they commit (as every durable consumer, such as
    the Slack notifier, does) ends up with every event, none skipped."""

    @flow(name="ev-race")
    def tick(n: int) -> int:
        return n

    writers_done = threading.Event()
    read: list[int] = []

    def reader() -> None:
        position = 0
        while True:
            finished = writers_done.is_set()  # read once more after the last commit
            events = engine.store.events_after(position, 50)
            if events:
                read.extend(e.id for e in events)
                position = events[-1].id
            elif finished:
                return

    def writer() -> None:
        for n in range(25):
            tick(n)

    reading = threading.Thread(target=reader, daemon=True)
    reading.start()
    writers = [threading.Thread(target=writer, daemon=True) for _ in range(6)]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join(60)
    writers_done.set()
    reading.join(60)
    stored = [e.id for e in engine.store.events_after(0, 10_000)]
    assert len(stored) >= 6 * 25 * 2
    assert read == stored


@pytest.mark.parametrize("cursor", ["new", "released"])
def test_two_processes_taking_a_free_consumer_at_once_make_one_holder(
    pg_cluster: PostgresCluster | None, cursor: str
) -> None:
    """Replicas started together (compose starts two) both saw the consumer free and both
    took it: a cursor not made yet failed the second with a unique violation, and a released
    one was held by both, each posting to Slack until the next renewal."""
    if pg_cluster is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) are not installed")
    url = new_pg_database(pg_cluster)
    stores = [SqlStore(create_db_engine(url)) for _ in range(2)]
    if cursor == "released":
        assert stores[0].lease_cursor("slack", "earlier", 3.0) == 0
        stores[0].release_cursor("slack", "earlier")
    taken: dict[int, object] = {}

    def take(i: int) -> None:
        try:
            taken[i] = stores[i].lease_cursor("slack", f"replica-{i}", 3.0)
        except Exception as exc:
            taken[i] = exc

    database = make_url(url).database
    conninfo = f"host=127.0.0.1 port={pg_cluster.port} user=postgres dbname={database}"
    try:
        with psycopg.connect(conninfo) as holder, psycopg.connect(conninfo) as watcher:
            # Both read the cursor, then queue on the table's lock to write it.
            holder.execute("LOCK TABLE event_cursors IN EXCLUSIVE MODE")
            threads = [threading.Thread(target=take, args=(i,)) for i in range(2)]
            for thread in threads:
                thread.start()

            def queued() -> bool:
                row = watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = %s AND wait_event_type = 'Lock'",
                    [database],
                ).fetchone()
                watcher.rollback()
                return row == (2,)

            wait_for(queued, what="both replicas to wait for the cursor's table")
            holder.commit()
            for thread in threads:
                thread.join(10)
    finally:
        for store in stores:
            store.close()
    assert sorted(taken.values(), key=repr) == [0, None], taken
