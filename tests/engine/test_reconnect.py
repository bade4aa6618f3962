"""A PostgreSQL server that drops its connections (a restart, a failover, an idle timeout on
the network) costs the store no read, and no write but one whose COMMIT, or whose statement
run alone, met the drop; nothing for a connection that sat idle: such a connection is
pinged before use and replaced."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import event
from sqlalchemy.engine import make_url

from signoff.engine import (
    AuditAction,
    Engine,
    EngineSettings,
    Event,
    EventKind,
    Pause,
    RunNotFound,
    RunState,
    StoreError,
    Worker,
    flow,
    pause_flow_run,
)
from signoff.engine.audit import AuditEntry
from signoff.engine.store import SqlStore
from signoff.engine.store.answers import AnswerOutcome
from signoff.engine.store.database import create_db_engine
from tests.conftest import FAST, new_pg_database
from tests.support.postgres import PostgresCluster
from tests.support.waiting import wait_for


@pytest.fixture
def pg_url(pg_cluster: PostgresCluster | None) -> str:
    if pg_cluster is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) are not installed")
    return new_pg_database(pg_cluster)


def open_store(url: str, ping_after_idle: float) -> SqlStore:
    return SqlStore(create_db_engine(url, ping_after_idle=ping_after_idle))


@pytest.fixture
def stores() -> Iterator[list[SqlStore]]:
    made: list[SqlStore] = []
    yield made
    for store in made:
        store.close()


def drop_connections(url: str) -> None:
    """Terminate every server process serving ``url``'s database and wait until they are gone."""
    parsed = make_url(url)
    store_db = parsed.database
    with psycopg.connect(
        f"host=127.0.0.1 port={parsed.port} user=postgres", autocommit=True
    ) as admin:
        others = "datname = %s AND pid <> pg_backend_pid()"
        admin.execute(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE {others}", [store_db]
        )
        deadline = time.monotonic() + 10
        while admin.execute(
            f"SELECT count(*) FROM pg_stat_activity WHERE {others}", [store_db]
        ).fetchone() != (0,):
            assert time.monotonic() < deadline, "the server processes did not exit"


def store_run(store: SqlStore, run_id: str) -> None:
    store.create_run(run_id, "deploy", None, b"", {}, RunState.SCHEDULED, None, "alice")


def waiting_run(store: SqlStore, owner: str | None) -> Pause:
    """Store run r1 (owned by ``owner``) waiting for input 'approve', paused in process p1."""
    store.create_run("r1", "deploy", None, b"", {}, RunState.RUNNING, owner, "alice")
    asked = Pause.waiting(
        "r1",
        "approve",
        store.clock(),
        None,
        suspend=False,
        schema={"type": "object"},
        title=None,
        description=None,
        initial={},
        approvers=(),
        forbid_starter=False,
    )
    assert store.open_pause(asked, owner="p1")
    return asked


def test_an_idle_connection_the_server_dropped_is_replaced_before_use(pg_url, stores) -> None:
    store = open_store(pg_url, ping_after_idle=0.0)
    stores.append(store)
    store_run(store, "r1")
    drop_connections(pg_url)

    assert store.get_run("r1").started_by == "alice"
    store_run(store, "r2")
    assert store.get_run("r2").state is RunState.SCHEDULED


def test_a_read_that_meets_a_dropped_connection_is_read_again_on_a_new_one(
    pg_url, stores, caplog: pytest.LogCaptureFixture
) -> None:
    # Used moments ago, so not pinged: the read meets the dead connection, and answers from
    # a new one, as a person pressing a button after a database restart would want.
    store = open_store(pg_url, ping_after_idle=3600.0)
    stores.append(store)
    store_run(store, "r1")
    drop_connections(pg_url)

    caplog.set_level("WARNING", logger="signoff.engine.store")
    assert store.get_run("r1").started_by == "alice"
    (retried,) = _actions(caplog, "read_retried")
    assert retried.read == "get_run"  # type: ignore[attr-defined]
    # The others pooled before the drop are checked before use: none fails a call.
    held = [store.engine.connect() for _ in range(3)]
    for conn in held:
        conn.close()
    drop_connections(pg_url)
    assert [store.get_run("r1").state for _ in range(3)] == [RunState.SCHEDULED] * 3


def test_a_runs_detail_is_read_on_one_connection_and_read_again_at_most_once(
    pg_url, stores, caplog: pytest.LogCaptureFixture
) -> None:
    # The bot reads a run's detail to redraw its message after each button press. It read
    # the run through get_run, a read tried again of its own, on a second connection: two
    # checkouts, and up to four tries of the run when a connection dropped.
    store = open_store(pg_url, ping_after_idle=3600.0)
    stores.append(store)
    store_run(store, "r1")
    checkouts: list[object] = []
    event.listen(store.engine, "checkout", lambda *args: checkouts.append(args[0]))
    before = store.detail("r1")
    assert len(checkouts) == 1
    drop_connections(pg_url)

    caplog.set_level("WARNING", logger="signoff.engine.store")
    assert store.detail("r1") == before
    (retried,) = _actions(caplog, "read_retried")
    assert retried.read == "detail"  # type: ignore[attr-defined]
    with pytest.raises(RunNotFound):
        store.detail("r2")
    # The engine's, by a full id too (by a prefix, the id is found first).
    engine = Engine(EngineSettings.load(database_url=pg_url))
    try:
        event.listen(engine.store.engine, "checkout", lambda *args: checkouts.append(args[0]))
        checkouts.clear()
        assert engine.detail("r1").run.started_by == "alice"
        assert len(checkouts) == 1
        assert engine.detail("r").run.id == "r1"
    finally:
        engine.close()


#: reads a process makes on its own, each with what it returns as a list
LOOP_READS = {
    # the dispatcher's, which hands a waiting flow its answer
    "read_events": lambda store: [e.kind for e in store.read_events(0).events],
    "read_events_of": lambda store: [
        e.kind for e in store.read_events_of(0, frozenset(EventKind), frozenset(RunState)).events
    ],
}


@pytest.mark.parametrize("read", sorted(LOOP_READS))
def test_the_reads_of_background_loops_are_read_again_on_a_new_connection(
    pg_url, stores, caplog: pytest.LogCaptureFixture, read: str
) -> None:
    # They failed once, and a flow waiting here heard its answer a second late, after a
    # logged "could not read events".
    store = open_store(pg_url, ping_after_idle=3600.0)
    stores.append(store)
    store_run(store, "r1")
    before = LOOP_READS[read](store)
    assert before
    drop_connections(pg_url)

    caplog.set_level("WARNING", logger="signoff.engine.store")
    assert LOOP_READS[read](store) == before
    (retried,) = _actions(caplog, "read_retried")
    assert retried.read == read  # type: ignore[attr-defined]


#: reads made a page at a time (generators), each page with its own connection
PAGED_READS = {
    # the Home tab's "Waiting on you", which the bot publishes as runs change
    "_waiting_inputs_page": lambda store: [w.run_id for w in store.waiting_inputs()],
    # 'signoff audit export' and 'verify'
    "_audit_page": lambda store: [r.action for r in store.audit_records()],
}


@pytest.mark.parametrize("read", sorted(PAGED_READS))
def test_a_read_made_a_page_at_a_time_reads_the_page_again_on_a_new_connection(
    pg_url, stores, caplog: pytest.LogCaptureFixture, read: str
) -> None:
    # A decorator on a generator's method covers none of its reads: the Home tab the bot
    # published just after a database restart said "Signoff cannot read runs just now".
    store = open_store(pg_url, ping_after_idle=3600.0)
    stores.append(store)
    waiting_run(store, owner=None)
    store.record_audit(AuditEntry(AuditAction.RUN_STARTED, "r1", "deploy", None))
    before = PAGED_READS[read](store)
    assert before
    drop_connections(pg_url)

    caplog.set_level("WARNING", logger="signoff.engine.store")
    assert PAGED_READS[read](store) == before
    (retried,) = _actions(caplog, "read_retried")
    assert retried.read == read  # type: ignore[attr-defined]


def test_a_write_that_meets_a_dropped_connection_before_its_commit_is_written_again(
    pg_url, stores, caplog: pytest.LogCaptureFixture
) -> None:
    # The server ends a transaction whose session it drops: nothing of it is stored, so it
    # is written once more on a new connection. It failed, and the first person to press
    # a button after a database restart saw an error.
    store = open_store(pg_url, ping_after_idle=3600.0)
    stores.append(store)
    store_run(store, "r1")
    drop_connections(pg_url)

    caplog.set_level("WARNING", logger="signoff.engine.store")
    store_run(store, "r2")
    assert [run.id for run in store.list_runs()] == ["r2", "r1"]
    (retried,) = _actions(caplog, "write_retried")
    assert retried.write == "create_run"  # type: ignore[attr-defined]
    # The Slack app's replay claim, the first write of every button press, likewise.
    drop_connections(pg_url)
    assert store.claim_once("request:abc", 60) is True
    assert store.claim_once("request:abc", 60) is False
    assert [r.write for r in _actions(caplog, "write_retried")] == ["create_run", "claim_once"]  # type: ignore[attr-defined]


def test_an_answer_to_a_flow_waiting_here_that_meets_a_dropped_connection_is_stored_once(
    pg_url, stores, caplog: pytest.LogCaptureFixture
) -> None:
    # Answers to flows waiting in this process share a transaction (``sharing``): one that
    # met the drop before the COMMIT is written again like any other write.
    store = open_store(pg_url, ping_after_idle=3600.0)
    stores.append(store)
    asked = waiting_run(store, owner="p1")
    drop_connections(pg_url)

    caplog.set_level("WARNING", logger="signoff.engine.store")
    outcome = store.answer_pause(
        "r1", "approve", {"ok": True}, None, RunState.RUNNING, known=asked, still_paused_by="p1"
    )
    assert outcome is AnswerOutcome.COMPLETE
    (retried,) = _actions(caplog, "write_retried")
    assert retried.write == "answer_pause"  # type: ignore[attr-defined]
    answered = store.get_run("r1")
    assert answered.state is RunState.RUNNING
    received = [r for r in store.audit_records() if r.action == AuditAction.ANSWER_RECEIVED]
    assert len(received) == 1


def test_a_write_whose_commit_meets_a_dropped_connection_fails_and_is_not_written_twice(
    pg_url, stores, caplog: pytest.LogCaptureFixture
) -> None:
    # A COMMIT sent on a connection that then drops may or may not have been applied:
    # writing it again could store it twice, so the caller hears of the failure.
    store = open_store(pg_url, ping_after_idle=3600.0)
    stores.append(store)
    store_run(store, "r1")
    dropping = [True]

    @event.listens_for(store.engine, "commit")
    def _drop_before_commit(_conn: object) -> None:
        if dropping:
            dropping.clear()
            drop_connections(pg_url)

    caplog.set_level("WARNING", logger="signoff.engine.store")
    with pytest.raises(StoreError, match="database write failed"):
        store_run(store, "r2")
    assert not _actions(caplog, "write_retried")
    with pytest.raises(RunNotFound):
        store.get_run("r2")
    store_run(store, "r2")
    assert store.get_run("r2").state is RunState.SCHEDULED


def test_a_statement_written_on_its_own_that_meets_a_dropped_connection_fails_once(
    pg_url, stores
) -> None:
    # Without a transaction (autocommit), the server may have run the statement before the
    # connection went: it is not sent again.
    store = open_store(pg_url, ping_after_idle=3600.0)
    stores.append(store)
    store_run(store, "r1")
    drop_connections(pg_url)

    with pytest.raises(StoreError, match="database write failed"):
        store.transition("r1", RunState.RUNNING, "Running")
    assert store.get_run("r1").state is RunState.SCHEDULED
    assert store.transition("r1", RunState.RUNNING, "Running")


def test_after_a_write_met_a_dropped_connection_the_next_writes_do_not(pg_url, stores) -> None:
    # Its statement run on the driver's cursor (Prepared), a failed write took only its own
    # connection out of the pool, where Core takes out every one made before: each other
    # connection used moments before the restart then failed a write of its own, as soon
    # as writes came in at once (people answering together).
    store = open_store(pg_url, ping_after_idle=3600.0)
    stores.append(store)
    held = [store.engine.connect() for _ in range(3)]
    for conn in held:
        conn.close()
    drop_connections(pg_url)

    store_run(store, "r1")  # meets the drop, and is written again
    with store.engine.connect(), store.engine.connect():  # two writes under way elsewhere
        store_run(store, "r2")
    assert [run.id for run in store.list_runs()] == ["r2", "r1"]


def refuse_connections(url: str, refuse: bool) -> None:
    """Make ``url``'s database refuse new connections (and end the open ones), or allow them
    again: an outage of that database alone, as a stopped server would be for its clients."""
    name = make_url(url).database
    with psycopg.connect(
        f"host=127.0.0.1 port={make_url(url).port} user=postgres", autocommit=True
    ) as admin:
        admin.execute(f"ALTER DATABASE {name} ALLOW_CONNECTIONS {'false' if refuse else 'true'}")
    if refuse:
        drop_connections(url)


def test_a_worker_whose_database_is_down_logs_once_retries_quietly_and_says_when_it_is_back(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    from signoff.engine import Engine, EngineSettings, Worker

    settings = EngineSettings.load(
        database_url=pg_url, heartbeat_seconds=0.5, owner_timeout_seconds=4.0
    )
    engine = Engine(settings)
    worker = Worker(engine)
    worker.start()
    try:
        caplog.set_level("INFO", logger="signoff.engine.workers")
        refuse_connections(pg_url, True)
        wait_for(lambda: _actions(caplog, "worker_error"), what="the failure's log line")
        # Two seconds of outage: the loop looks about once a second, with no traceback each
        # time (it used to retry at once, thousands of tracebacks a second).
        time.sleep(2)
        refuse_connections(pg_url, False)
        wait_for(lambda: _actions(caplog, "worker_recovered"), what="the recovery's log line")
    finally:
        refuse_connections(pg_url, False)
        worker.stop()
        engine.close()
    assert len(_actions(caplog, "worker_error")) == 1
    (recovered,) = _actions(caplog, "worker_recovered")
    assert 1 <= recovered.failures <= 6  # type: ignore[attr-defined]


def _actions(caplog: pytest.LogCaptureFixture, action: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "action", None) == action]


#: calls of ``_fired`` by the timers, in this process
FIRED: list[str] = []


def _fired(name: str) -> None:
    FIRED.append(name)


def _superuser(pg_url: str) -> psycopg.Connection:
    """A superuser's session on the test's database, to add triggers to its tables."""
    url = make_url(pg_url)
    return psycopg.connect(
        f"host=127.0.0.1 port={url.port} user=postgres dbname={url.database}", autocommit=True
    )


def test_timers_outlive_a_failed_write_of_their_jobs(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    from datetime import UTC, datetime

    from signoff.engine import Engine, EngineSettings

    engine = Engine(EngineSettings.load(database_url=pg_url))
    admin = _superuser(pg_url)
    try:
        # Reading due jobs works, removing a fired one fails: as when another process
        # holds the table's lock past the timeout, or the server goes away mid-call.
        admin.execute(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'the disk is full'; END $$"
        )
        admin.execute(
            "CREATE TRIGGER refuse BEFORE DELETE OR UPDATE ON apscheduler_jobs "
            "FOR EACH ROW EXECUTE FUNCTION refuse()"
        )
        engine.timers.start(active=True)
        path = f"{__name__}:_fired"
        engine.timers.call_at("t:first", datetime.now(UTC), path, {"name": "first"})
        wait_for(lambda: "first" in FIRED, what="the first timer")
        wait_for(
            lambda: any(getattr(r, "action", None) == "timers_failed" for r in caplog.records),
            what="the failed write's log line",
        )
        admin.execute("DROP TRIGGER refuse ON apscheduler_jobs")
        # APScheduler's thread used to end on that failure, and no timer fired again.
        engine.timers.call_at("t:second", datetime.now(UTC), path, {"name": "second"})
        wait_for(lambda: "second" in FIRED, what="a timer after the failure")
    finally:
        admin.close()
        engine.close()


def test_timers_that_cannot_read_their_jobs_say_so_once_and_when_they_work_again(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """APScheduler caught a failed read of due jobs itself: a warning of its own, with no
    action, every 10 s for as long as the database was down, and nothing when it was back;
    ``timers_failed`` was never logged."""
    from datetime import UTC, datetime

    from sqlalchemy import text

    engine = Engine(EngineSettings.load(database_url=pg_url))

    def rename(old: str, new: str) -> None:
        with engine.store.engine.begin() as conn:
            conn.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))

    try:
        caplog.set_level("INFO", logger="signoff.engine.timers")
        engine.timers.start(active=True)
        rename("apscheduler_jobs", "apscheduler_jobs_away")  # reads of due jobs fail
        engine.timers.wakeup()
        failed = wait_for(lambda: _actions(caplog, "timers_failed"), what="the timers' failed read")
        rename("apscheduler_jobs_away", "apscheduler_jobs")
        path = f"{__name__}:_fired"
        engine.timers.call_at("t:after-read", datetime.now(UTC), path, {"name": "after-read"})
        wait_for(lambda: "after-read" in FIRED, what="a timer once the jobs can be read")
        recovered = wait_for(
            lambda: _actions(caplog, "timers_recovered"), what="the timers' recovery"
        )
    finally:
        engine.close()
    assert len(failed) == 1 and "apscheduler_jobs" in str(failed[0].exc_info[1])
    assert recovered[0].getMessage().startswith("timers work again after ")
    assert not [r for r in caplog.records if r.name.startswith("apscheduler")]


def test_a_job_another_worker_fired_and_removed_first_is_not_a_failure(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Two workers firing the same due job (every replica fires the bot's reminders) both
    remove it afterwards; the second found it gone, logged ``timers_failed`` at ERROR with
    a traceback, and left its other timers for 5 s."""
    from datetime import UTC, datetime

    engine = Engine(EngineSettings.load(database_url=pg_url))
    admin = _superuser(pg_url)
    try:
        # Every other removal removes nothing, as when another worker removed the row a
        # moment before (the row stays here, so the job fires again and goes then). A
        # sequence counts them: it is not rolled back with the failed removal.
        admin.execute("CREATE SEQUENCE removals")
        admin.execute(
            "CREATE FUNCTION removed_first() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF nextval('removals') % 2 = 1 THEN RETURN NULL; END IF; RETURN OLD; END $$"
        )
        admin.execute(
            "CREATE TRIGGER removed_first BEFORE DELETE ON apscheduler_jobs "
            "FOR EACH ROW EXECUTE FUNCTION removed_first()"
        )
        caplog.set_level("INFO", logger="signoff.engine.timers")
        engine.timers.start(active=True)
        path = f"{__name__}:_fired"
        engine.timers.call_at("t:raced", datetime.now(UTC), path, {"name": "raced"})
        wait_for(lambda: "raced" in FIRED, what="the raced timer")
        engine.timers.call_at("t:raced-next", datetime.now(UTC), path, {"name": "raced-next"})
        wait_for(lambda: "raced-next" in FIRED, what="the next timer", timeout=3)
        wait_for(lambda: len(engine.timers.pending()) == 1, what="both jobs removed at last")
    finally:
        admin.close()
        engine.close()
    assert not _actions(caplog, "timers_failed")


#: starts of ``reconnect_waits``: code outside any task, run again only with the flow
STARTS: list[str] = []


@flow(name="reconnect-waits")
def reconnect_waits(tag: str) -> int:
    STARTS.append(tag)
    return pause_flow_run(int, timeout=60)


def outage_past_owner_timeout(pg_url: str, engine: Engine) -> None:
    """Refuse connections until twice ``engine``'s owner timeout has passed and one of
    its heartbeats has failed; they stay refused."""
    refuse_connections(pg_url, True)
    began, lapses = time.monotonic(), engine.heartbeat_lapses()
    wait_for(
        lambda: (
            time.monotonic() - began > 2 * engine.settings.owner_timeout_seconds
            and engine.heartbeat_lapses() > lapses
        ),
        what="an outage longer than the owner timeout",
    )


def test_an_outage_every_process_had_makes_none_of_them_look_dead_afterwards(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Two live processes lose the database together for longer than the owner timeout, so
    # every heartbeat stored is stale when it comes back. The first to look for orphans
    # used to take the other's waiting run over, and answering it ran the flow again.
    caplog.set_level("INFO", logger="signoff.engine.upkeep")
    settings = EngineSettings.load(database_url=pg_url, **FAST)
    waiting, judging = Engine(settings), Engine(settings)
    worker = Worker(waiting)
    worker.start()
    judging.claim_ownership()
    try:
        run = waiting.submit("reconnect-waits", {"tag": "outage"})
        wait_for(lambda: waiting.get_run(run.id).state is RunState.PAUSED, what="the pause")
        outage_past_owner_timeout(pg_url, judging)
        refuse_connections(pg_url, False)
        assert judging.recover_orphans() == []  # before the other could beat again
        assert _actions(caplog, "orphans_deferred")
        wait_for(lambda: judging.judges_others(), what="the judge to be back long enough")
        assert judging.recover_orphans() == []  # the other beat meanwhile: alive
        assert judging.get_run(run.id).state is RunState.PAUSED
        judging.resume(run.id, {"value": 7}, responder="alice")
        done = wait_for(lambda: (r := judging.get_run(run.id)).state.is_final and r, 15)
        assert (done.state, done.result, STARTS.count("outage")) == (RunState.COMPLETED, "7", 1)

        # A process that is really gone is still taken over, once the judge can tell.
        second = waiting.submit("reconnect-waits", {"tag": "gone"})
        wait_for(lambda: waiting.get_run(second.id).state is RunState.PAUSED, what="the pause")
        worker.stop()
        waiting._closed.set()  # its heartbeat stops, as a killed process's would
        taken = wait_for(lambda: judging.recover_orphans(), timeout=10, what="the takeover")
        assert taken == [second.id]
        assert judging.get_run(second.id).state is RunState.SUSPENDED
    finally:
        refuse_connections(pg_url, False)
        worker.stop()
        waiting.close()
        judging.close()


def test_a_waiting_flow_hears_its_answer_within_seconds_of_an_outage_ending(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A failed read of events used to put the reader to sleep for ten polls (10 s on
    # PostgreSQL): a flow answered just after an outage waited that long to go on.
    caplog.set_level("INFO", logger="signoff.engine.dispatch")
    settings = EngineSettings.load(database_url=pg_url, **FAST)
    waiting, answering = Engine(settings), Engine(settings)
    worker = Worker(waiting)
    worker.start()
    try:
        run = waiting.submit("reconnect-waits", {"tag": "heard"})
        wait_for(lambda: waiting.get_run(run.id).state is RunState.PAUSED, what="the pause")
        refuse_connections(pg_url, True)
        wait_for(lambda: _actions(caplog, "event_read_failed"), what="a failed read of events")
        refuse_connections(pg_url, False)
        # Its heartbeat back, the waiting process is taken for alive: the answer is for it.
        # (The answering process's pooled connection was dropped in the outage: its first
        # read is read again on a new one, so no call fails.)
        wait_for(lambda: answering.owner_alive(waiting.process_id), what="a heartbeat")
        answering.resume(run.id, {"value": 3}, responder="alice")
        answered = time.monotonic()
        done = wait_for(lambda: (r := answering.get_run(run.id)).state.is_final and r, 15)
        heard = time.monotonic() - answered
        # Each engine's reader says it read again; the one whose read failed may be the
        # answering engine's, which reads again on its next pass, not before the answer.
        wait_for(lambda: _actions(caplog, "event_read_recovered"), what="a recovered read")
    finally:
        refuse_connections(pg_url, False)
        worker.stop()
        waiting.close()
        answering.close()
    assert (done.state, done.result, STARTS.count("heard")) == (RunState.COMPLETED, "3", 1)
    # Ten polls were 10 s; the bound leaves room for a loaded machine's reconnects.
    assert heard < 8, f"the flow heard its answer {heard:.1f} s after it was given"


def test_an_answer_given_just_after_an_outage_goes_to_the_flow_waiting_for_it(
    pg_url: str,
) -> None:
    # Answered before the waiting process has beaten again, the run used to be queued to run
    # again, as if that process had died: its flow ran a second time from the start.
    settings = EngineSettings.load(database_url=pg_url, **FAST)
    waiting, answering = Engine(settings), Engine(settings)
    worker = Worker(waiting)
    worker.start()
    answering.claim_ownership()  # a bot replica: it runs flows too
    try:
        run = waiting.submit("reconnect-waits", {"tag": "answered"})
        wait_for(lambda: waiting.get_run(run.id).state is RunState.PAUSED, what="the pause")
        outage_past_owner_timeout(pg_url, answering)
        refuse_connections(pg_url, False)
        answering.resume(run.id, {"value": 5}, responder="alice")
        done = wait_for(lambda: (r := answering.get_run(run.id)).state.is_final and r, 15)
    finally:
        refuse_connections(pg_url, False)
        worker.stop()
        waiting.close()
        answering.close()
    assert (done.state, done.result, STARTS.count("answered")) == (RunState.COMPLETED, "5", 1)


def test_a_durable_consumer_delivers_within_seconds_of_an_outage_ending(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The consumer (Slack's, in the bot) backed off from a failing database as from a
    # failing observer, doubling up to 30 s: Slack stayed silent that long after an outage.
    caplog.set_level("INFO", logger="signoff.engine.events")
    engine = Engine(EngineSettings.load(database_url=pg_url, **FAST))
    seen: list[Event] = []

    class Observer:
        def on_event(self, event: Event) -> None:
            seen.append(event)

    durable = engine.subscribe("outage-test", Observer())
    try:
        first = engine.submit("reconnect-waits", {"tag": "consumed"})
        wait_for(lambda: any(e.run_id == first.id for e in seen), what="the first event")
        refuse_connections(pg_url, True)
        durable.poke()  # it looks at once, and fails
        wait_for(
            lambda: (
                _actions(caplog, "consumer_store_failed")
                or _actions(caplog, "event_delivery_failed")
            ),
            what="a failed delivery",
        )
        began = time.monotonic()
        wait_for(lambda: time.monotonic() - began > 4, what="four seconds of outage")
        refuse_connections(pg_url, False)
        back = time.monotonic()
        second = engine.submit("reconnect-waits", {"tag": "consumed"})
        wait_for(lambda: any(e.run_id == second.id for e in seen), 15, what="the next event")
        silent = time.monotonic() - back
    finally:
        refuse_connections(pg_url, False)
        engine.close()
    assert silent < 2.5, f"events were delivered {silent:.1f} s after the database came back"
    assert len(_actions(caplog, "consumer_store_failed")) == 1
    assert _actions(caplog, "consumer_recovered")
    assert not _actions(caplog, "event_delivery_failed")  # no traceback per try


def test_an_outage_is_logged_once_per_kind_and_its_end_too(
    pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A process's heartbeat, its lease on a durable consumer and its LISTEN connection each
    # logged a warning per try, every second or faster: a ten-minute outage wrote
    # thousands of lines per process, and nothing said when it was over.
    caplog.set_level("INFO", logger="signoff.engine")
    engine = Engine(EngineSettings.load(database_url=pg_url, **FAST))
    worker = Worker(engine)
    worker.start()

    class Observer:
        def on_event(self, event: Event) -> None:
            pass

    engine.subscribe("outage-logs", Observer())
    try:
        refuse_connections(pg_url, True)
        began = time.monotonic()
        wait_for(lambda: time.monotonic() - began > 3, what="three seconds of outage")
        refuse_connections(pg_url, False)
        recoveries = ("heartbeat_recovered", "lease_renew_recovered", "listen_reconnected")
        wait_for(
            lambda: all(_actions(caplog, action) for action in recoveries),
            what="each to say it works again",
        )
    finally:
        refuse_connections(pg_url, False)
        worker.stop()
        engine.close()
    counts = {
        action: len(_actions(caplog, action))
        for action in ("heartbeat_failed", "lease_renew_failed", "listen_reconnect", *recoveries)
    }
    assert counts == dict.fromkeys(counts, 1)


def test_connections_notice_a_peer_that_vanished_within_a_minute_not_two_hours(
    pg_url, stores
) -> None:
    # A failover or a firewall that drops the flow sends nothing: with the system's
    # keepalive defaults a query or a LISTEN on such a connection hung for two hours.
    store = open_store(pg_url, ping_after_idle=0.5)
    stores.append(store)
    with store.engine.connect() as conn:
        given = conn.connection.driver_connection.info.get_parameters()  # type: ignore[union-attr]
    assert {k: given.get(k) for k in ("keepalives_idle", "keepalives_count")} == {
        "keepalives_idle": "30",
        "keepalives_count": "3",
    }
    assert given.get("tcp_user_timeout") == "30000"
    # What the URL says wins.
    mine = open_store(f"{pg_url}?keepalives_idle=5", ping_after_idle=0.5)
    stores.append(mine)
    with mine.engine.connect() as conn:
        given = conn.connection.driver_connection.info.get_parameters()  # type: ignore[union-attr]
    assert given.get("keepalives_idle") == "5"
