"""Listing runs: filters by state, flow, who started, who answered and time, with paging."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import event

from signoff.engine import (
    Engine,
    InputInvalid,
    RunNotFound,
    RunState,
    RunSuspended,
    flow,
    suspend_flow_run,
)


@flow(name="listing-ask")
def listing_ask(n: int) -> int:
    return suspend_flow_run(wait_for_input=int) + n


def suspended(engine: Engine, n: int, started_by: str) -> str:
    with pytest.raises(RunSuspended) as stopped:
        listing_ask(n)
    # Started by someone: as the CLI or Slack would record it.
    run_id = stopped.value.run_id
    assert engine.get_run(run_id).state is RunState.SUSPENDED
    return run_id


def test_filters_by_who_started_who_answered_and_time_and_pages(engine: Engine) -> None:
    base = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    made: list[str] = []
    for i in range(12):
        engine.store.clock = lambda i=i: base + timedelta(hours=i)
        run = engine.store.create_run(
            f"{i:032x}",
            "listing-ask" if i % 2 else "other",
            None,
            b"",
            {"n": i},
            RunState.SUSPENDED if i % 3 else RunState.COMPLETED,
            owner=None,
            started_by="U0CAROL" if i < 6 else "alice",
        )
        made.append(run.id)
    newest_first = list(reversed(made))

    by_carol = engine.list_runs(started_by="U0CAROL")
    assert [r.id for r in by_carol] == newest_first[6:]
    both = engine.list_runs([RunState.COMPLETED], "other", started_by="alice")
    assert [r.id for r in both] == [made[6]]

    # since is included, until is not; any time zone is read as the instant it names
    paris = timezone(timedelta(hours=1))
    window = engine.list_runs(
        since=base + timedelta(hours=3), until=datetime(2026, 11, 2, 16, 0, tzinfo=paris)
    )
    assert [r.id for r in window] == [made[5], made[4], made[3]]
    naive = engine.list_runs(since=datetime(2026, 11, 2, 18, 0))  # naive: UTC
    assert [r.id for r in naive] == newest_first[:3]

    # pages of a filtered listing, by the previous page's last run
    pages, before = [], None
    while page := engine.list_runs(started_by="U0CAROL", limit=4, before=before):
        pages.append([r.id for r in page])
        before = page[-1]
    assert pages == [newest_first[6:10], newest_first[10:12]]


def test_filters_by_who_answered(engine: Engine) -> None:
    engine.store.clock = lambda: datetime.now(UTC)
    answered_by_bob = suspended(engine, 1, "U0CAROL")
    answered_by_ann = suspended(engine, 2, "U0CAROL")
    waiting = suspended(engine, 3, "U0CAROL")
    engine.resume(answered_by_bob, {"value": 5}, "U0BOB")
    engine.resume(answered_by_ann, {"value": 6}, "U0ANN")
    # A refused attempt is no answer.
    with pytest.raises(InputInvalid):
        engine.resume(waiting, {"value": "five"}, "U0BOB")
    assert [r.id for r in engine.list_runs(answered_by="U0BOB")] == [answered_by_bob]
    assert [r.id for r in engine.list_runs(answered_by="U0ANN", flow_name="listing-ask")] == [
        answered_by_ann
    ]
    assert engine.list_runs(answered_by="U0NOBODY") == []


# SQLite only: the plan is read with SQLite's EXPLAIN QUERY PLAN (no skipped PostgreSQL run)
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_filtered_listings_are_served_from_indexes(engine: Engine) -> None:
    captured: list[tuple[str, object]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _many) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM runs" in statement:
            captured.append((statement, parameters))

    event.listen(engine.store.engine, "before_cursor_execute", capture)
    try:
        since = datetime(2026, 1, 1, tzinfo=UTC)
        engine.list_runs([RunState.SUSPENDED], since=since)
        engine.list_runs(flow_name="listing-ask", until=since)
        engine.list_runs(started_by="U0CAROL")
        engine.list_runs(answered_by="U0BOB")
    finally:
        event.remove(engine.store.engine, "before_cursor_execute", capture)
    assert len(captured) == 4
    with engine.store.engine.connect() as conn:
        for statement, parameters in captured:
            plan = " / ".join(
                row[-1]
                for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            )
            # every table is searched through an index; none is read whole
            assert "SEARCH runs USING" in plan and "SCAN" not in plan, plan
            if "audit_records" not in plan:  # the newest first straight from the index
                assert "TEMP B-TREE" not in plan, plan


def test_a_prefix_of_several_run_ids_asks_for_more_of_it(engine: Engine) -> None:
    made = [suspended(engine, n, "U0ALICE") for n in range(17)]
    # 17 ids over 16 hex digits: at least two start with the same one.
    shared = next(d for d in "0123456789abcdef" if sum(i.startswith(d) for i in made) > 1)
    with pytest.raises(
        RunNotFound, match=f"more than one run id starts with '{shared}'"
    ) as several:
        engine.get_run(shared)
    # it names the runs it could be (5 at most, as people tell them apart), to pick one
    starting = sorted(i for i in made if i.startswith(shared))
    assert several.value.candidates == tuple(starting[:6])
    shown = ", ".join(i[:8] for i in starting[:5]) + (", ..." if len(starting) > 5 else "")
    assert f"'{shared}' ({shown}); give more of it" in str(several.value)
    assert engine.get_run(made[0][:12]).id == made[0]
    with pytest.raises(RunNotFound, match="no run with id 'zz'"):
        engine.get_run("zz")
