"""The timers' sweeps over waiting pauses step past one edited outside Signoff: the other
pauses still time out and escalate, and the one that cannot be read is said once."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import pytest
from sqlalchemy import text

from signoff.engine import Engine, PauseTimeout, RunSuspended, flow, set_engine, suspend_flow_run
from signoff.engine.input import RunInput
from tests.support.stores import on_each_store
from tests.support.waiting import wait_for


class Approve(RunInput):
    approved: bool


@flow(name="corrupt-sweep-suspended", approvers=["alice"])
def corrupt_sweep_suspended() -> bool:
    return suspend_flow_run(
        Approve, key="go", timeout=60, escalate_after=30, escalate_to=["boss"]
    ).approved


@flow(name="corrupt-sweep-waiting")
def corrupt_sweep_waiting() -> str:
    from signoff.engine import pause_flow_run

    try:
        return "yes" if pause_flow_run(Approve, timeout=60).approved else "no"
    except PauseTimeout:
        return "timed out"


#: (column, value as SQL, whether PostgreSQL can store it)
PAUSE_EDITS = {
    "approvers-not-json": ("approvers", "'{not json'", False),
    "approvers-a-number": ("approvers", "'7'", True),
    "answers-of-no-shape": ("answers", '\'[{"responder": "bob"}]\'', True),
    "deadline-not-a-time": ("deadline", "'0 days'", False),
    "title-not-utf8": ("title", "CAST(X'C3' AS TEXT)", False),
}


def corrupt_pause(engine: Engine, database_url: str, edit: str) -> str:
    """A suspended run of ``corrupt-sweep-suspended`` whose pause is edited: its id."""
    column, value, on_postgres = PAUSE_EDITS[edit]
    with pytest.raises(RunSuspended) as suspended:
        corrupt_sweep_suspended()
    bad = suspended.value.run_id
    if column in ("approvers", "answers") and not database_url.startswith("sqlite"):
        value = f"CAST({value} AS json)"
    with engine.store.engine.begin() as conn:
        conn.execute(text(f"UPDATE pauses SET {column} = {value} WHERE run_id = :id"), {"id": bad})
    return bad


def said(caplog: pytest.LogCaptureFixture, run_id: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if getattr(r, "action", "") == "pause_unreadable" and getattr(r, "run_id", "") == run_id
    ]


@pytest.mark.parametrize(
    ("database_url", "edit"),
    on_each_store(PAUSE_EDITS, on_postgres=lambda edit: PAUSE_EDITS[edit][2]),
    indirect=["database_url"],
)
def test_a_good_overdue_pause_times_out_past_a_corrupt_one(
    engine: Engine, database_url: str, edit: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    bad = corrupt_pause(engine, database_url, edit)
    box: dict = {}

    def run() -> None:
        set_engine(engine)
        box["r"] = corrupt_sweep_waiting()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    good = wait_for(
        lambda: next(
            (
                p
                for r in engine.list_runs(limit=5)
                if r.flow_name == "corrupt-sweep-waiting"
                and (p := engine.waiting_pause(r.id)) is not None
            ),
            None,
        ),
        what="the good pause",
    )
    later = engine.store.clock() + timedelta(minutes=5)
    settled = engine.expire_due_pauses(now=later)
    assert bad not in settled
    thread.join(10)
    assert box.get("r") == "timed out"
    assert engine.get_run(good.run_id).state.value == "completed"
    (once,) = said(caplog, bad)
    assert once.levelno >= logging.WARNING and once.key == "go"
    assert bad in once.getMessage() and "'go'" in once.getMessage()
    # A second sweep says it no more.
    engine.expire_due_pauses(now=later)
    assert len(said(caplog, bad)) == 1


@pytest.mark.parametrize(
    ("database_url", "edit"),
    on_each_store(
        ["approvers-a-number", "approvers-not-json"],
        on_postgres=lambda edit: PAUSE_EDITS[edit][2],
    ),
    indirect=["database_url"],
)
def test_a_due_escalation_goes_ahead_past_a_corrupt_pause(
    engine: Engine, database_url: str, edit: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with pytest.raises(RunSuspended) as suspended:
        corrupt_sweep_suspended()
    good = suspended.value.run_id
    bad = corrupt_pause(engine, database_url, edit)
    later = engine.store.clock() + timedelta(seconds=45)
    assert engine.escalate_due_pauses(now=later) == [good]
    assert "boss" in engine.get_pause(good, "go").approvers
    assert len(said(caplog, bad)) == 1
