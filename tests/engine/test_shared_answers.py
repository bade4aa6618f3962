"""Answers given in one process at the same moment share a transaction
(``engine/store/sharing.py``), and one that fails takes none of the others with it."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from signoff.engine import (
    Engine,
    EngineSettings,
    PauseStatus,
    RunState,
    StoreError,
    flow,
    pause_flow_run,
    resume_flow_run,
    set_engine,
)
from signoff.engine.input import RunInput
from tests.conftest import FAST, new_pg_database
from tests.support.postgres import PostgresCluster
from tests.support.waiting import wait_for


class Approval(RunInput):
    approved: bool
    reason: str


@flow(name="shared-answer")
def wait_for_approval(tag: str) -> str:
    answer = pause_flow_run(wait_for_input=Approval, timeout=None)
    return f"{tag}:{answer.reason}"


def _paused(engine: Engine, tags: list[str]) -> tuple[list[threading.Thread], dict[str, str]]:
    """A flow waiting in this process for each tag; the run id of each tag."""

    def run(tag: str) -> None:
        # A flow whose run another process takes over ends here with an error of its own.
        with contextlib.suppress(Exception):
            wait_for_approval(tag)

    threads = [threading.Thread(target=run, args=(tag,), daemon=True) for tag in tags]
    for thread in threads:
        thread.start()
    runs = wait_for(
        lambda: (
            (found := engine.list_runs([RunState.PAUSED])) and len(found) == len(tags) and found
        ),
        what="every flow to pause",
    )
    return threads, {run.parameters["tag"]: run.id for run in runs}


def _queued_together(
    engine: Engine, answer: Callable[[str], None], people: list[str]
) -> list[threading.Thread]:
    """Each person's answer started in a thread of its own, all of them queued for the
    engine's shared transaction (in that order) before any goes ahead."""
    turns = engine.store._sharing._turns
    turns.acquire()  # hold the shared transaction's turn while they queue
    answering = []
    for position, who in enumerate(people, start=1):
        answering.append(threading.Thread(target=answer, args=(who,), daemon=True))
        answering[-1].start()
        wait_for(lambda n=position: len(turns._queue) == n, what=f"{who}'s answer to queue")
    turns.release()
    return answering


def test_many_answers_at_once_each_reach_their_flow_with_one_audit_record_each(
    make_engine: Callable[..., Engine],
) -> None:
    """24 flows waiting in one process, answered by 8 threads at once: every flow gets its
    own answer, each answer is recorded once with who gave it, and the chain verifies."""
    engine = make_engine()
    previous = set_engine(engine)
    try:
        tags = [f"t{i}" for i in range(24)]
        threads, run_ids = _paused(engine, tags)
        todo = list(tags)
        lock = threading.Lock()

        def answer() -> None:
            while True:
                with lock:
                    if not todo:
                        return
                    tag = todo.pop()
                resume_flow_run(run_ids[tag], {"approved": True, "reason": f"r-{tag}"}, f"u-{tag}")

        resumers = [threading.Thread(target=answer) for _ in range(8)]
        for thread in resumers:
            thread.start()
        for thread in resumers + threads:
            thread.join(30)
        for tag, run_id in run_ids.items():
            run = engine.get_run(run_id)
            assert run.state is RunState.COMPLETED
            assert run.result == repr(f"{tag}:r-{tag}")
            received = [r for r in engine.audit_trail(run_id) if r.action == "answer.received"]
            assert [r.actor_id for r in received] == [f"u-{tag}"]
        assert engine.verify_audit().ok
    finally:
        set_engine(previous)


def test_an_answer_that_fails_in_a_shared_transaction_takes_none_of_the_others_with_it(
    pg_cluster: PostgresCluster | None,
) -> None:
    """PostgreSQL: Bob's answer shares a transaction with Alice's, and fails in it (another
    process took Bob's run over while his answer waited on the run's row). The transaction
    rolls back, Alice's answer is stored again alone, and Carol's, queued behind them, goes
    ahead: both flows finish with their answers, Bob's run goes to a worker with his
    answer, each answer is recorded once, and the audit chain verifies."""
    if pg_cluster is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) are not installed")
    url = new_pg_database(pg_cluster)
    made = Engine(EngineSettings.load(database_url=url, **FAST))
    previous = set_engine(made)
    plain = url.replace("postgresql+psycopg", "postgresql")
    other = psycopg.connect(plain)
    watcher = psycopg.connect(plain, autocommit=True)
    try:
        threads, run_ids = _paused(made, ["alice", "bob", "carol"])
        other.execute("SELECT 1 FROM runs WHERE id = %s FOR UPDATE", (run_ids["bob"],))
        answered: dict[str, object] = {}

        def answer(who: str) -> None:
            reply = {"approved": True, "reason": f"from {who}"}
            answered[who] = resume_flow_run(run_ids[who], reply, who)

        answering = _queued_together(made, answer, ["alice", "bob", "carol"])
        wait_for(
            lambda: watcher.execute(
                "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE 'WITH answered AS%'"
            ).fetchone(),
            what="Bob's answer waiting on his run's row, in Alice's transaction",
        )
        # Alice's answer is stored but not committed: it waits for Bob's, in one transaction.
        seen = watcher.execute("SELECT state FROM runs WHERE id = %s", (run_ids["alice"],))
        assert seen.fetchone() == ("paused",)
        other.execute(
            "UPDATE runs SET state = 'suspended', owner = NULL WHERE id = %s", (run_ids["bob"],)
        )
        other.commit()
        for thread in answering:
            thread.join(10)
        assert set(answered) == {"alice", "bob", "carol"}
        assert answered["bob"].status is PauseStatus.ANSWERED  # type: ignore[attr-defined]
        assert made.get_run(run_ids["bob"]).state is RunState.SCHEDULED
        for who in ("alice", "carol"):
            run = wait_for(
                lambda run_id=run_ids[who]: (
                    (found := made.get_run(run_id)).state is RunState.COMPLETED and found
                ),
                what=f"{who}'s flow to finish",
            )
            assert run.result == repr(f"{who}:from {who}")
        for who, run_id in run_ids.items():
            trail = [r.action for r in made.audit_trail(run_id)]
            assert trail.count("answer.received") == 1, who
        assert made.verify_audit().ok
        for thread in threads:
            thread.join(10)
    finally:
        other.close()
        watcher.close()
        set_engine(previous)
        made.close()


def test_on_sqlite_an_answer_the_database_refuses_takes_none_of_the_others_with_it(
    tmp_path: Path,
) -> None:
    """SQLite: Alice's, Bob's and Carol's answers arrive together; a trigger (as a
    database administrator might add) refuses Bob's inside the transaction Alice's opened.
    Bob is told the database refused his answer, and his flow still waits for one. Alice's
    answer is stored again alone, Carol's goes ahead, and both flows finish with them.
    The next answer, Bob's again once the trigger is gone, is stored as usual."""
    database = tmp_path / "signoff.db"
    made = Engine(EngineSettings.load(database_url=f"sqlite:///{database}", **FAST))
    previous = set_engine(made)
    try:
        threads, run_ids = _paused(made, ["alice", "bob", "carol"])
        with sqlite3.connect(database) as admin:
            admin.execute(
                "CREATE TRIGGER refuse_bob BEFORE UPDATE OF responder ON pauses "
                "WHEN NEW.responder = 'bob' BEGIN SELECT RAISE(ABORT, 'bob may not answer'); END"
            )
        answered: dict[str, object] = {}

        def answer(who: str) -> None:
            try:
                answered[who] = resume_flow_run(
                    run_ids[who], {"approved": True, "reason": who}, who
                )
            except StoreError as exc:
                answered[who] = exc

        answering = _queued_together(made, answer, ["alice", "bob", "carol"])
        for thread in answering:
            thread.join(10)
        assert isinstance(answered["bob"], StoreError)
        assert "bob may not answer" in str(answered["bob"])
        assert made.get_run(run_ids["bob"]).state is RunState.PAUSED
        for who in ("alice", "carol"):
            assert answered[who].status is PauseStatus.ACCEPTED  # type: ignore[attr-defined]
            run = wait_for(
                lambda run_id=run_ids[who]: (
                    (found := made.get_run(run_id)).state is RunState.COMPLETED and found
                ),
                what=f"{who}'s flow to finish",
            )
            assert run.result == repr(f"{who}:{who}")
        with sqlite3.connect(database) as admin:
            admin.execute("DROP TRIGGER refuse_bob")
        resume_flow_run(run_ids["bob"], {"approved": True, "reason": "bob"}, "bob")
        for thread in threads:
            thread.join(10)
        assert made.get_run(run_ids["bob"]).result == repr("bob:bob")
        for who, run_id in run_ids.items():
            trail = [r.action for r in made.audit_trail(run_id)]
            assert trail.count("answer.received") == 1, who
        assert made.verify_audit().ok
    finally:
        set_engine(previous)
        made.close()
