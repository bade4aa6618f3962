"""A lookup of one run reads that run's rows, however many other runs wait and whatever
PostgreSQL's statistics say: they may date from before any run was paused, or before the
process that owns them started. The timers' sweeps and the count of waiting pauses are
served by indexes over waiting pauses only (migration 0012)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Connection, event, select

from signoff.engine import Engine, PauseStatus, RunState, RunSuspended, flow, suspend_flow_run
from signoff.engine.store.answers import _PAUSED_BY, _WAITING_TARGET
from signoff.engine.store.pauses import _WAITING_PAUSE, PAUSES
from signoff.engine.store.sql import _RESUME_TARGET
from signoff.engine.store.state_changes import guard_values, guarded
from signoff.engine.store.tables import RunRow

RUNS = RunRow.__table__  # type: ignore[attr-defined]
#: waiting pauses of other runs, stored after the statistics were taken
OTHERS_WAITING = 5000


@flow(name="index-ask")
def index_ask() -> int:
    answer: int = suspend_flow_run(wait_for_input=int)
    return answer


def suspended_run() -> str:
    with pytest.raises(RunSuspended) as stopped:
        index_ask()
    return stopped.value.run_id


def _copies(conn: Connection, run_id: str, count: int, status: str, prefix: str) -> None:
    """``count`` copies of run ``run_id`` and of its pause, each pause in ``status``."""
    new_id = f"substr(md5('{prefix}' || g::text), 1, 32)"
    run_columns = [c.name for c in RUNS.c]
    conn.exec_driver_sql(
        f"INSERT INTO runs ({', '.join(run_columns)}) SELECT "
        + ", ".join(new_id if c == "id" else c for c in run_columns)
        + f" FROM runs, generate_series(1, {count}) g WHERE id = %(run_id)s",
        {"run_id": run_id},
    )
    pause_columns = [c.name for c in PAUSES.c if c.name != "id"]
    chosen = {"run_id": new_id, "status": "%(status)s"}
    conn.exec_driver_sql(
        f"INSERT INTO pauses ({', '.join(pause_columns)}) SELECT "
        + ", ".join(chosen.get(c, c) for c in pause_columns)
        + f" FROM pauses, generate_series(1, {count}) g WHERE run_id = %(run_id)s",
        {"run_id": run_id, "status": status},
    )


def _pages_read(conn: Connection, statement: Any, **params: object) -> int:
    """The buffer pages PostgreSQL touched running ``statement`` (a SELECT), its planning
    left out."""
    compiled = statement.compile(dialect=conn.dialect)
    values = {**compiled.params, **params}
    explained = conn.exec_driver_sql(
        f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {compiled}", values
    ).scalar_one()
    plan = explained[0]["Plan"]
    return int(plan["Shared Hit Blocks"]) + int(plan["Shared Read Blocks"])


# PostgreSQL only: its planner is the one that prices a condition by stale statistics.
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_run_s_lookups_read_its_rows_when_statistics_say_few_pauses_wait(
    engine: Engine,
) -> None:
    db = engine.store.engine
    # Statistics taken while no pause waited (a history of answered ones) and none since:
    # the planner takes "status = 'waiting'" for a condition that selects one row.
    answered_before = suspended_run()
    engine.resume(answered_before, {"value": 1}, "U0BOB")
    with db.begin() as conn:
        _copies(conn, answered_before, 200, PauseStatus.ANSWERED.value, "answered")
    with db.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("runs", "pauses"):
            conn.exec_driver_sql(f"ANALYZE {table}")
            conn.exec_driver_sql(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
    run_id = suspended_run()
    with db.begin() as conn:
        _copies(conn, run_id, OTHERS_WAITING, PauseStatus.WAITING.value, "waiting")
    pause = engine.store.latest_pause(run_id)
    assert pause is not None

    with db.connect() as conn:
        reads = {
            "resume target": _pages_read(conn, _RESUME_TARGET.statement, run_id=run_id),
            "waiting pause": _pages_read(conn, _WAITING_PAUSE[0].statement, run_id=run_id),
            "answered pause": _pages_read(
                conn,
                select(PAUSES.c.id).where(*_WAITING_TARGET),
                target_run=run_id,
                target_key=pause.key,
            ),
        }
    # Scanning every waiting pause read over 200 pages here (before migration 0012); the
    # run's own rows take a few.
    assert all(pages <= 20 for pages in reads.values()), reads

    answered = engine.resume(run_id, {"value": 7}, "U0BOB")
    assert answered.status is PauseStatus.ANSWERED
    assert engine.get_run(run_id).state is RunState.SCHEDULED


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_run_s_state_changes_find_it_by_id_when_statistics_never_saw_its_state_or_owner(
    engine: Engine,
) -> None:
    db = engine.store.engine
    owner = "e0" * 16
    # Statistics taken while every run had finished, and none since.
    finished = suspended_run()
    engine.cancel(finished, "done")
    with db.begin() as conn:
        _copies(conn, finished, 200, PauseStatus.CANCELLED.value, "finished")
    with db.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE runs")
        conn.exec_driver_sql("ALTER TABLE runs SET (autovacuum_enabled = false)")
    # Then a process none of them had seen paused thousands of runs.
    run_id = suspended_run()
    with db.begin() as conn:
        conn.execute(
            RUNS.update()
            .where(RUNS.c.id == run_id)
            .values(state=RunState.PAUSED.value, owner=owner)
        )
        _copies(conn, run_id, OTHERS_WAITING, PauseStatus.WAITING.value, "paused")

    with db.connect() as conn:
        reads = {
            "state change": _pages_read(
                conn,
                select(RUNS.c.id).where(*guarded(1, True)),
                **guard_values(run_id, [RunState.PAUSED], owner),
            ),
            "answer's run": _pages_read(
                conn, select(RUNS.c.id).where(*_PAUSED_BY), target_run=run_id, paused_by=owner
            ),
        }
    # Through the state or owner index: 62 pages at 5,000 paused; by the run's id: a few.
    assert all(pages <= 10 for pages in reads.values()), reads


def test_the_sweeps_and_the_waiting_count_are_served_by_the_waiting_pause_indexes(
    engine: Engine,
) -> None:
    captured: list[tuple[str, Any]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _many) -> None:  # type: ignore[no-untyped-def]
        if "FROM pauses" in statement:
            captured.append((statement, parameters))

    now = datetime.now(UTC)
    db = engine.store.engine
    event.listen(db, "before_cursor_execute", capture)
    try:
        engine.store.due_pauses(now)
        engine.store.due_escalations(now)
        engine.stats()
    finally:
        event.remove(db, "before_cursor_execute", capture)
    assert len(captured) == 3
    sqlite = db.dialect.name == "sqlite"
    with db.connect() as conn:
        if not sqlite:
            conn.exec_driver_sql("SET enable_seqscan = off")  # else an empty table is read whole
        for statement, parameters in captured:
            explain = "EXPLAIN QUERY PLAN" if sqlite else "EXPLAIN"
            plan = " / ".join(
                str(row[-1]) for row in conn.exec_driver_sql(f"{explain} {statement}", parameters)
            )
            # SQLite proves an index's condition from literals only: the queries say
            # "waiting" as the indexes do.
            assert "ix_pauses_waiting_" in plan, (statement, plan)
