"""Statements run on the driver's cursor store and read exactly what Core would."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

import pydantic
import pytest
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from signoff.engine import (
    Engine,
    RunState,
    flow,
    pause_flow_run,
    resume_flow_run,
    set_engine,
    task,
)
from signoff.engine.input import RunInput
from signoff.engine.store.base import RUNS
from signoff.engine.store.pauses import PAUSES
from signoff.engine.store.prepared import Prepared
from signoff.engine.store.tables import TaskRunRow
from tests.support.waiting import wait_for

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


def test_readying_the_write_connection_changes_nothing_stored(engine: Engine) -> None:
    """A process readies its write connection for the statements of a run's life (so the
    first answer does not wait while SQLite parses them): that must write nothing."""
    db = engine.store.engine
    insert_run = Prepared(insert(RUNS))
    set_state = Prepared(update(RUNS).where(RUNS.c.id == bindparam("target_run")))
    with db.begin() as conn:
        insert_run.execute(conn, run_values("r1"))
        set_state.execute(conn, {"target_run": "r1", "state": "PAUSED", "updated_at": AT})
    with db.connect() as conn:
        before = [tuple(row) for row in conn.execute(select(RUNS)).all()]
        Prepared.ready_writes(conn)
        after = [tuple(row) for row in conn.execute(select(RUNS)).all()]
        states = conn.execute(select(RUNS.c.state)).scalars().all()
    assert after == before
    assert states == ["PAUSED"]


def test_a_statement_rendered_per_execution_is_refused(engine: Engine) -> None:
    expanding = Prepared(
        select(PAUSES).where(PAUSES.c.run_id.in_(bindparam("ids", expanding=True)))
    )
    with engine.store.engine.connect() as conn, pytest.raises(ValueError, match="rendering"):
        expanding.execute(conn, {"ids": ["a", "b"]})


class Refund(RunInput):
    amount: int
    reason: str

    @pydantic.field_validator("amount")
    @classmethod
    def within_limit(cls, amount: int) -> int:
        if amount > 100:
            raise ValueError("at most 100")
        return amount


@task
def look_up(order: str) -> str:
    return order.upper()


@flow(name="refund")
def refund(order: str) -> str:
    while True:  # as the interactive-workflows guide does: ask again until the input is valid
        try:
            answer = pause_flow_run(wait_for_input=Refund, timeout=None)
        except pydantic.ValidationError:
            continue
        return f"{look_up(order)}:{answer.amount}"


@flow(name="refund-that-fails")
def refund_that_fails() -> None:
    pause_flow_run(wait_for_input=Refund, timeout=None)
    raise RuntimeError("the payment provider is down")


def test_a_runs_life_runs_on_statements_compiled_as_the_engine_started(
    make_engine: Callable[..., Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Compiling a statement takes milliseconds: the first answer a process takes (and the
    first run it starts, pauses, completes or fails) must not wait for it."""
    for prepared in list(Prepared._made):
        prepared._compiled.clear()
    engine = make_engine()
    previous = set_engine(engine)
    late: list[str] = []
    compile_now = Prepared._compile_now

    # Threads an earlier test left running (a worker claiming its runs) may compile
    # statements of their own meanwhile: only this test's (and this one) count.
    others = {t.ident for t in threading.enumerate()} - {threading.get_ident()}

    def compiling(self: Prepared, *args: object) -> object:
        if threading.get_ident() not in others:
            late.append(" ".join(str(self.statement).split())[:160])
        return compile_now(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Prepared, "_compile_now", compiling)
    try:
        results: dict[str, object] = {}

        def start(name: str, call: Callable[[], object]) -> threading.Thread:
            def run() -> None:
                try:
                    results[name] = call()
                except Exception as exc:
                    results[name] = exc

            thread = threading.Thread(target=run)
            thread.start()
            return thread

        threads = [start("refund", lambda: refund("a-1")), start("fails", refund_that_fails)]
        for name, answers in (
            ("refund", [{"amount": 500, "reason": "broken"}, {"amount": 50, "reason": "late"}]),
            ("refund-that-fails", [{"amount": 5, "reason": "late"}]),
        ):
            for answer in answers:
                run = wait_for(
                    lambda name=name: next(
                        (r for r in engine.list_runs(flow_name=name) if r.state is RunState.PAUSED),
                        None,
                    ),
                    what=f"{name} to wait for input",
                )
                # Stored with the run moved on (RUNNING): the next wait is the next pause.
                resume_flow_run(run.id, answer, "U1")
        for thread in threads:
            thread.join(10)
    finally:
        set_engine(previous)
    assert results["refund"] == "A-1:50"
    assert isinstance(results["fails"], RuntimeError)
    assert late == []
