"""``Engine.prune_finished`` and ``signoff db prune``: runs that finished long ago go, with
everything stored for them but their audit records."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from signoff.engine import Engine, RunNotFound, RunState, flow, get_run_logger, pause_flow_run, task
from signoff.engine.input import RunInput
from tests.cli.in_process import run_cli
from tests.support.waiting import wait_for

#: the tables that hold rows of a run, besides the runs table and the audit trail
RUN_TABLES = ("pauses", "task_runs", "logs", "run_metadata", "events")


class Ok(RunInput):
    ok: bool


@task
def prune_step(n: int) -> int:
    return n + 1


@flow(name="prune-approve")
def prune_approve(n: int = 1) -> int:
    get_run_logger().info("step")
    value = prune_step(n)
    pause_flow_run(wait_for_input=Ok, timeout=60)
    return value


def finished_run(engine: Engine, *, days_ago: float) -> str:
    """A run that asked for input, was answered and completed ``days_ago`` days ago."""
    box: dict[str, int] = {}
    thread = threading.Thread(target=lambda: box.setdefault("result", prune_approve()))
    thread.start()
    run_id = wait_for(
        lambda: next(iter(engine.list_runs([RunState.PAUSED], flow_name="prune-approve")), None)
    ).id
    engine.set_metadata(run_id, "slack", {"ts": "1.2"})
    engine.resume(run_id, {"ok": True}, "U0BOB")
    thread.join(10)
    assert engine.get_run(run_id).state is RunState.COMPLETED
    age(engine, run_id, days_ago)
    return run_id


def age(engine: Engine, run_id: str, days: float) -> None:
    with engine.store.engine.begin() as conn:
        conn.execute(
            text("UPDATE runs SET updated_at = :at WHERE id = :id"),
            {"at": datetime.now(UTC) - timedelta(days=days), "id": run_id},
        )


def rows_of(engine: Engine, run_id: str) -> dict[str, int]:
    with engine.store.engine.connect() as conn:
        return {
            table: conn.execute(
                text(f"SELECT count(*) FROM {table} WHERE run_id = :id"), {"id": run_id}
            ).scalar_one()
            for table in (*RUN_TABLES, "audit_records")
        }


@pytest.fixture
def ninety_days_ago() -> Iterator[datetime]:
    yield datetime.now(UTC) - timedelta(days=90)


def test_runs_finished_before_the_cutoff_go_with_their_rows_and_their_trail_stays(
    engine: Engine, ninety_days_ago: datetime
) -> None:
    old = finished_run(engine, days_ago=120)
    recent = finished_run(engine, days_ago=10)
    waiting = engine.submit("prune-approve", {}, started_by="U0CAROL")  # never run: queued
    age(engine, waiting.id, 400)
    kept_rows = rows_of(engine, old)
    assert all(kept_rows[t] > 0 for t in RUN_TABLES), kept_rows
    trail = engine.audit_trail(old)

    assert engine.prune_finished(ninety_days_ago, dry_run=True) == 1
    assert engine.get_run(old).state is RunState.COMPLETED  # a dry run deletes nothing

    assert engine.prune_finished(ninety_days_ago) == 1
    with pytest.raises(RunNotFound):
        engine.get_run(old)
    assert rows_of(engine, old) == {**dict.fromkeys(RUN_TABLES, 0), "audit_records": len(trail)}
    assert engine.audit_trail(old) == trail  # who decided what, still
    assert engine.verify_audit().ok
    assert engine.get_run(recent).state is RunState.COMPLETED
    assert engine.get_run(waiting.id).state is RunState.SCHEDULED  # not finished: kept
    assert engine.prune_finished(ninety_days_ago) == 0


def test_a_nested_run_stays_while_its_caller_runs_and_unread_events_keep_a_run(
    engine: Engine, ninety_days_ago: datetime
) -> None:
    """A nested flow's run is read again when its caller re-runs; events not yet read by
    the Slack bot would lose their posts."""
    caller = engine.submit("prune-approve", {}, started_by="U0CAROL")
    child = finished_run(engine, days_ago=200)
    with engine.store.engine.begin() as conn:
        conn.execute(
            text("UPDATE runs SET parent_run_id = :parent WHERE id = :id"),
            {"parent": caller.id, "id": child},
        )
    assert engine.prune_finished(ninety_days_ago) == 0
    engine.cancel(caller.id, by="U0CAROL")
    age(engine, caller.id, 200)

    # A consumer that has not read the runs' events yet (made before them: at 0 here).
    engine.store.lease_cursor("slack", "test", 60)
    with engine.store.engine.begin() as conn:
        conn.execute(text("UPDATE event_cursors SET position = 0"))
    assert engine.prune_finished(ninety_days_ago) == 0
    with engine.store.engine.begin() as conn:
        conn.execute(
            text("UPDATE event_cursors SET position = :p"), {"p": engine.store.last_event_id()}
        )
    assert engine.prune_finished(ninety_days_ago) == 2


def test_db_prune_says_what_it_deleted_and_refuses_a_time_in_the_future(
    engine: Engine, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    old = finished_run(engine, days_ago=100)
    monkeypatch.setenv("SIGNOFF_DATABASE_URL", engine.settings.database_url)
    status, out, err = run_cli(capsys, "db", "prune", "--finished-before", "90d", "--dry-run")
    assert (status, err) == (0, "")
    assert out.startswith("1 run(s) finished before ") and out.endswith("(none deleted)\n")
    status, out, _ = run_cli(capsys, "db", "prune", "--finished-before", "90d")
    assert status == 0 and out.startswith("deleted 1 run(s) finished before ")
    with pytest.raises(RunNotFound):
        engine.get_run(old)
    status, _, err = run_cli(capsys, "db", "prune", "--finished-before", "2999-01-01")
    assert status == 2 and "is in the future" in err
    status, _, err = run_cli(capsys, "db", "prune", "--finished-before", "soon")
    assert status == 2 and "'soon' is not a time" in err


def test_a_retired_bots_consumer_keeps_runs_until_forgotten_and_prune_says_so(
    engine: Engine, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, a Slack bot that was retired left its cursor behind, and `db prune` kept
    every run after it for good, saying only "0 run(s)"; nothing could drop the cursor."""
    old = finished_run(engine, days_ago=100)
    engine.store.lease_cursor("slack", "bot-1", 60)  # the bot: it never read the run's events
    with engine.store.engine.begin() as conn:
        conn.execute(text("UPDATE event_cursors SET position = 0"))
    monkeypatch.setenv("SIGNOFF_DATABASE_URL", engine.settings.database_url)

    status, out, err = run_cli(capsys, "db", "prune", "--finished-before", "90d", "--dry-run")
    assert (status, err) == (0, "")
    would, kept = out.splitlines()
    assert would.startswith("0 run(s) finished before ")
    assert kept.startswith("1 more run(s) finished before ")
    assert kept.endswith(
        "are kept until durable consumer 'slack' reads their events (it posts them to Slack); "
        "if nothing will run it again (a retired bot), 'signoff db forget-consumer slack' "
        "lets them go"
    )

    status, _, err = run_cli(capsys, "db", "forget-consumer", "slack")  # the bot still runs
    assert (status, err.splitlines()[-1]) == (
        1,
        "error: durable consumer 'slack' is in use: process bot-1 holds it; stop that process "
        "first (a consumer is forgotten only once nothing runs it)",
    )
    engine.store.release_cursor("slack", "bot-1")  # the bot stopped
    status, _, err = run_cli(capsys, "db", "forget-consumer", "slak")
    assert (status, err.splitlines()[-1]) == (
        1,
        "error: no durable consumer is named 'slak' (there are: 'slack')",
    )
    status, out, err = run_cli(capsys, "db", "forget-consumer", "slack")
    assert (status, out) == (
        0,
        "forgot durable consumer 'slack'; 'db prune' no longer keeps runs for it\n",
    )

    status, out, _ = run_cli(capsys, "db", "prune", "--finished-before", "90d")
    assert status == 0 and out.startswith("deleted 1 run(s) finished before ")
    assert "more run(s)" not in out
    with pytest.raises(RunNotFound):
        engine.get_run(old)


def test_runs_show_of_a_pruned_run_shows_its_audit_trail(
    engine: Engine, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, `runs show` of a pruned run said only "no run with id", though its trail (who
    decided what) is kept for exactly that question."""
    old = finished_run(engine, days_ago=100)
    assert engine.prune_finished(datetime.now(UTC) - timedelta(days=90)) == 1
    monkeypatch.setenv("SIGNOFF_DATABASE_URL", engine.settings.database_url)

    status, out, err = run_cli(capsys, "runs", "show", old)
    assert (status, err) == (0, "")
    head, _, trail = out.partition("\n\nAudit trail\n")
    assert head == (
        f"Run {old} was deleted by 'signoff db prune' (it had finished); only its audit trail "
        "is kept"
    )
    assert "U0BOB" in trail and "answer" in trail
    status, out, _ = run_cli(capsys, "runs", "show", old, "--json")
    shown = json.loads(out)
    assert (status, shown["id"], shown["pruned"]) == (0, old, True)
    assert [record["action"] for record in shown["audit"]] == [
        record.action for record in engine.audit_trail(old)
    ]
    status, _, err = run_cli(capsys, "runs", "show", old[:8])  # a prefix: no run has it now
    assert status == 1 and "no run" in err
