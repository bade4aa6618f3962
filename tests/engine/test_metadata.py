"""Run metadata: small JSON values applications attach to runs, and claims across processes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from alembic import command

from engine import Engine, RunNotFound, flow
from engine.store.database import _alembic_config, write_connection


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
