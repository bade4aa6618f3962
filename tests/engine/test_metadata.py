"""Run metadata: small JSON values applications attach to runs, and claims across processes."""

from __future__ import annotations

import pickle
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic import command

from signoff.engine import Engine, RunNotFound, flow
from signoff.engine.store.database import write_connection
from signoff.engine.store.revisions import _alembic_config
from signoff.engine.timers import stored_id


@flow(name="md-noop")
def md_noop() -> None:
    return None


def finished_run(engine: Engine) -> str:
    md_noop()
    [run] = engine.list_runs(flow_name="md-noop")
    return run.id


def test_set_replaces_and_get_reads_back(engine: Engine) -> None:
    run_id = finished_run(engine)
    assert engine.get_metadata(run_id, "slack.thread") is None
    engine.set_metadata(run_id, "slack.thread", {"channel": "C1", "ts": "1.1"})
    engine.set_metadata(run_id, "slack.thread", {"channel": "C1", "ts": "2.2"})
    assert engine.get_metadata(run_id, "slack.thread") == {"channel": "C1", "ts": "2.2"}


def test_a_claim_is_won_exactly_once_however_many_try_at_once(engine: Engine) -> None:
    run_id = finished_run(engine)
    with ThreadPoolExecutor(8) as pool:
        won = list(pool.map(lambda i: engine.add_metadata(run_id, "claimed", i), range(8)))
    assert won.count(True) == 1
    assert engine.get_metadata(run_id, "claimed") == won.index(True)
    assert engine.add_metadata(run_id, "claimed", 99) is False


def test_concurrent_sets_of_a_new_key_do_not_collide(engine: Engine) -> None:
    run_id = finished_run(engine)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: engine.set_metadata(run_id, "last", i), range(8)))
    assert engine.get_metadata(run_id, "last") in range(8)


def test_keys_as_long_as_a_pause_key_plus_a_prefix_fit(engine: Engine) -> None:
    run_id = finished_run(engine)
    key = "slack.reminder." + "k" * 200
    assert engine.add_metadata(run_id, key, "1.1") is True
    assert engine.get_metadata(run_id, key) == "1.1"


def test_metadata_for_an_unknown_run_is_refused_by_name(engine: Engine) -> None:
    with pytest.raises(RunNotFound, match="no-such-run"):
        engine.set_metadata("no-such-run", "k", 1)
    with pytest.raises(RunNotFound, match="no-such-run"):
        engine.add_metadata("no-such-run", "k", 1)


def test_schema_upgrade_keeps_stored_metadata(engine: Engine) -> None:
    run_id = finished_run(engine)
    engine.set_metadata(run_id, "slack.thread", {"channel": "C1", "ts": "1.1"})
    # A write connection (BEGIN IMMEDIATE), as the engine migrates: the engine's heartbeat
    # writes meanwhile, and a deferred transaction could not upgrade to writing.
    with write_connection(engine.store.engine) as conn:
        command.downgrade(_alembic_config(conn), "0002")
        conn.commit()
        command.upgrade(_alembic_config(conn), "head")
        conn.commit()
    assert engine.get_metadata(run_id, "slack.thread") == {"channel": "C1", "ts": "1.1"}
    assert engine.add_metadata(run_id, "slack.reminder." + "k" * 200, "1.1") is True


def _job_funcs(engine: Engine) -> dict[str, str]:
    with engine.store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, job_state FROM apscheduler_jobs")).all()
    return {job_id: pickle.loads(state)["func"] for job_id, state in rows}


def test_timer_jobs_stored_before_the_signoff_name_call_it_after_the_upgrade(
    engine: Engine,
) -> None:
    when = datetime.now(UTC) + timedelta(hours=1)
    engine.timers.call_at("expire:r1", when, "signoff.engine.timers:expire_due_pauses")
    with write_connection(engine.store.engine) as conn:
        command.downgrade(_alembic_config(conn), "0007")
        conn.commit()
    assert _job_funcs(engine)["expire:r1"] == "engine.timers:expire_due_pauses"
    # A reminder set by a Signoff older still, when reminders lived in bot.reminders.
    with engine.store.engine.begin() as conn:
        state = pickle.loads(
            conn.execute(
                sa.text("SELECT job_state FROM apscheduler_jobs WHERE id = 'expire:r1'")
            ).scalar_one()
        )
        state.update(id="remind:r1", func="bot.reminders:remind", kwargs={"run_id": "r1"})
        conn.execute(
            sa.text(
                "INSERT INTO apscheduler_jobs (id, next_run_time, job_state) VALUES (:i, :t, :s)"
            ),
            {"i": "remind:r1", "t": when.timestamp(), "s": pickle.dumps(state)},
        )
    with write_connection(engine.store.engine) as conn:
        command.upgrade(_alembic_config(conn), "head")
        conn.commit()
    funcs = _job_funcs(engine)
    assert funcs["expire:r1"] == "signoff.engine.timers:expire_due_pauses"
    assert funcs["remind:r1"] == "signoff.bot.slack.reminders:remind"
    # The scheduler loads them again (a job whose function cannot be imported is dropped).
    assert {"expire:r1", "remind:r1"} <= {job_id for job_id, _ in engine.timers.pending()}


def test_timers_with_ids_past_the_job_table_column_are_set_kept_apart_and_cancelled(
    engine: Engine,
) -> None:
    # A reminder's id holds its run and pause key (up to about 250 characters); the job
    # table's id column holds 191, which PostgreSQL enforces.
    when = datetime.now(UTC) + timedelta(hours=1)
    first, second = (f"signoff:remind:{'r' * 36}:{'k' * 199}{end}" for end in "12")
    for job_id in (first, second):
        engine.timers.call_at(job_id, when, "signoff.engine.timers:expire_due_pauses")
    assert len(engine.timers.pending()) == 2
    engine.timers.cancel(first)
    [(kept, _)] = engine.timers.pending()
    assert kept == stored_id(second) and kept.startswith("signoff:remind:")
    engine.timers.cancel(second)
    assert engine.timers.pending() == []
