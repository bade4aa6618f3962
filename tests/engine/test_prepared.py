"""Statements run on the driver's cursor store and read exactly what Core would."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from signoff.engine import Engine
from signoff.engine.store.base import RUNS
from signoff.engine.store.pauses import PAUSES
from signoff.engine.store.prepared import Prepared
from signoff.engine.store.tables import TaskRunRow

TASKS = TaskRunRow.__table__  # type: ignore[attr-defined]
AT = datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=UTC)


def run_values(run_id: str) -> dict[str, object]:
    return {
        "id": run_id,
        "flow_name": "deploy",
        "parameters": b"\x80\x04",
        "parameters_json": {"env": "prod", "n": [1, 2]},
        "state": "RUNNING",
        "state_name": "Running",
        "state_message": None,
        "tags": {},
        "policy": None,
        "created_at": AT,
        "updated_at": AT,
    }


def test_rows_written_either_way_read_back_the_same(engine: Engine) -> None:
    db = engine.store.engine
    with db.begin() as conn:
        conn.execute(insert(RUNS), run_values("core"))
        Prepared(insert(RUNS)).execute(conn, run_values("prepared"))
    everything = select(RUNS).where(RUNS.c.id == bindparam("run_id"))
    with db.connect() as conn:
        by_core = {
            rid: conn.execute(everything, {"run_id": rid}).one() for rid in ("core", "prepared")
        }
        by_prepared = {
            rid: Prepared(everything).execute(conn, {"run_id": rid}).first()
            for rid in ("core", "prepared")
        }
        # JSON None is stored as JSON null by both, so SQL sees the same thing.
        nulls = conn.execute(
            select(RUNS.c.id).where(RUNS.c.policy.is_(None)).order_by(RUNS.c.id)
        ).all()
    assert nulls == []
    for rid in ("core", "prepared"):
        assert tuple(by_prepared[rid]) == tuple(by_core[rid])
        assert by_prepared[rid]._asdict() == by_core[rid]._asdict()
    assert by_core["prepared"].parameters_json == {"env": "prod", "n": [1, 2]}
    assert by_core["prepared"].id == "prepared"


def test_a_column_left_out_takes_its_default(engine: Engine) -> None:
    db = engine.store.engine
    with db.begin() as conn:
        Prepared(insert(RUNS)).execute(conn, run_values("r1"))
        Prepared(insert(TASKS)).execute(
            conn,
            [
                {
                    "run_id": "r1",
                    "key": f"step-{i}",
                    "task_name": "step",
                    "state": "COMPLETED",
                    "started_at": AT,
                }
                for i in range(3)
            ],
        )
    with db.connect() as conn:
        attempts = conn.execute(select(TASKS.c.key, TASKS.c.attempts).order_by(TASKS.c.key)).all()
    assert [tuple(row) for row in attempts] == [("step-0", 1), ("step-1", 1), ("step-2", 1)]


def test_an_update_reports_the_rows_it_changed(engine: Engine) -> None:
    db = engine.store.engine
    set_state = Prepared(update(RUNS).where(RUNS.c.id == bindparam("target_run")))
    with db.begin() as conn:
        Prepared(insert(RUNS)).execute(conn, run_values("r1"))
        hit = set_state.execute(conn, {"target_run": "r1", "state": "COMPLETED", "updated_at": AT})
        miss = set_state.execute(conn, {"target_run": "nope", "state": "COMPLETED"})
    assert (hit.rowcount, miss.rowcount) == (1, 0)
    with db.connect() as conn:
        assert conn.execute(select(RUNS.c.state)).scalar() == "COMPLETED"


def test_a_driver_error_is_raised_as_sqlalchemys(engine: Engine) -> None:
    db = engine.store.engine
    with db.begin() as conn:
        Prepared(insert(RUNS)).execute(conn, run_values("r1"))
    with pytest.raises(IntegrityError) as raised, db.begin() as conn:
        Prepared(insert(RUNS)).execute(conn, run_values("r1"))
    assert "INSERT INTO runs" in str(raised.value)
    with db.connect() as conn:
        assert conn.execute(select(RUNS.c.id)).all() == [("r1",)]


def test_a_statement_rendered_per_execution_is_refused(engine: Engine) -> None:
    expanding = Prepared(
        select(PAUSES).where(PAUSES.c.run_id.in_(bindparam("ids", expanding=True)))
    )
    with engine.store.engine.connect() as conn, pytest.raises(ValueError, match="rendering"):
        expanding.execute(conn, {"ids": ["a", "b"]})
