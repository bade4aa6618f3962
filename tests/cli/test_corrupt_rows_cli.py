"""A run whose pause, task, log or state history row was edited out of shape outside
Signoff: ``signoff runs show`` and the engine's reads name the run, the row and the field,
and reading changes nothing stored."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from signoff.engine import (
    Engine,
    RunState,
    RunSuspended,
    flow,
    get_run_logger,
    suspend_flow_run,
    task,
)
from signoff.engine.errors import RunUnreadable
from signoff.engine.input import RunInput
from tests.cli.test_audit_cli import invoke
from tests.support.stores import on_each_store


class Approve(RunInput):
    approved: bool


@task(name="corrupt-rows-step")
def corrupt_rows_step() -> int:
    get_run_logger().info("stepped")
    return 1


@flow(name="corrupt-rows", approvers=["alice"])
def corrupt_rows() -> bool:
    corrupt_rows_step()
    return suspend_flow_run(Approve, key="go", timeout=300).approved


#: the row of each kind of a run's that a case edits, and how a message names it
ROWS = {
    "pauses": ("SELECT id FROM pauses WHERE run_id = :id AND key = 'go'", "pause 'go'"),
    "task_runs": ("SELECT id FROM task_runs WHERE run_id = :id", "task {key!r}"),
    "logs": ("SELECT min(id) FROM logs WHERE run_id = :id", "log record {row}"),
    "events": (
        "SELECT min(id) FROM events WHERE run_id = :id AND kind = 'state_changed'",
        "state history entry {row}",
    ),
}

NOT_UTF8 = "CAST(X'C3' AS TEXT)"
NOT_A_SHAPE = "is not as Signoff stores it"

#: (table, column, the value it is set to, the reason as given after the field's name, and
#: whether PostgreSQL can hold it too)
CORRUPT_ROW_EDITS = [
    ("pauses", "status", "'exploded'", "'exploded' {of} is not a status a pause can be in", True),
    ("pauses", "input_schema", "'{not json'", "{of} is not JSON", False),
    ("pauses", "approvers", "'{not json'", "{of} is not JSON", False),
    ("pauses", "approvers", "'7'", f"{{of}} {NOT_A_SHAPE}", True),
    ("pauses", "answers", '\'[{"responder": "bob"}]\'', f"{{of}} {NOT_A_SHAPE}", True),
    ("pauses", "created_at", "'yesterday'", "{of} is not a time", False),
    ("pauses", "deadline", "'soon'", "{of} is not a time", False),
    ("pauses", "title", NOT_UTF8, "{of} is not UTF-8 text", False),
    ("task_runs", "state", "'exploded'", "'exploded' {of} is not a state a task can be in", True),
    ("task_runs", "started_at", "'yesterday'", "{of} is not a time", False),
    ("task_runs", "inner_calls", "'{not json'", "{of} is not JSON", False),
    ("task_runs", "error", NOT_UTF8, "{of} is not UTF-8 text", False),
    ("logs", "at", "'yesterday'", "{of} is not a time", False),
    ("logs", "message", NOT_UTF8, "{of} is not UTF-8 text", False),
    ("events", "data", "'{not json'", "{of} is not JSON", False),
    ("events", "data", '\'{"name": "Running"}\'', f"{{of}} {NOT_A_SHAPE}", True),
    ("events", "at", "'yesterday'", "{of} is not a time", False),
]


def _storable(*edit: object) -> bool:
    return bool(edit[-1])  # PostgreSQL can hold it


IDS = [f"{table}.{column}={value[:12]}" for table, column, value, *_ in CORRUPT_ROW_EDITS]


def stored_value(engine: Engine, table: str, column: str, row: int) -> object:
    """The stored value as its bytes (SQLite) or text (PostgreSQL): never decoded."""
    as_ = "BLOB" if engine.store.is_sqlite else "TEXT"
    with engine.store.engine.begin() as conn:
        return conn.execute(
            text(f"SELECT CAST({column} AS {as_}) FROM {table} WHERE id = :row"), {"row": row}
        ).scalar()


def error_line(err: str) -> str:
    """The command's error: this process's engine, reading events beside it, may log too."""
    return next((line for line in err.splitlines() if line.startswith("Error: ")), err)


def corrupt_one(
    engine: Engine, database_url: str, table: str, column: str, value: str, on_postgres: bool
) -> tuple[list[str], str, int, str]:
    """Three suspended runs of ``corrupt-rows``, the middle one's ``table`` row edited: the
    ids, the edited run's id, the edited row's id and how a message names that row."""
    for _ in range(3):
        with pytest.raises(RunSuspended):
            corrupt_rows()
    with engine.store.engine.begin() as conn:
        ids = list(
            conn.execute(
                text("SELECT id FROM runs WHERE flow_name = 'corrupt-rows' ORDER BY created_at")
            ).scalars()
        )
        bad = ids[-2]
        select_row, name = ROWS[table]
        row = conn.execute(text(select_row), {"id": bad}).scalar_one()
        key = conn.execute(
            text("SELECT key FROM task_runs WHERE run_id = :id"), {"id": bad}
        ).scalar_one()
        conn.execute(text(f"UPDATE {table} SET {column} = {value} WHERE id = :row"), {"row": row})
    return ids, bad, row, name.format(key=key, row=row)


@pytest.mark.parametrize(
    ("database_url", "table", "column", "value", "reason", "on_postgres"),
    on_each_store(CORRUPT_ROW_EDITS, on_postgres=_storable, ids=IDS),
    indirect=["database_url"],
)
def test_runs_show_names_the_run_row_and_field_that_cannot_be_read(
    engine: Engine,
    database_url: str,
    table: str,
    column: str,
    value: str,
    reason: str,
    on_postgres: bool,
) -> None:
    ids, bad, row, name = corrupt_one(engine, database_url, table, column, value, on_postgres)
    before = stored_value(engine, table, column, row)
    why = f"the {column} {reason.format(of=f'of its {name}')}"
    for args in (
        ("runs", "show", bad),
        ("runs", "show", bad[:10]),
        ("runs", "show", bad, "--json"),
    ):
        code, out, err = invoke(database_url, *args)
        assert (code, out) == (1, ""), (args, err)
        said = error_line(err)
        assert said.startswith(f"Error: run {bad} cannot be read ("), (args, err)
        assert why in said and said.endswith("it was changed outside Signoff"), err
    # the other runs still list and show
    code, out, err = invoke(database_url, "runs", "list", "--flow", "corrupt-rows", "--json")
    assert (code, err) == (0, "")
    listed = {run["id"]: run for run in json.loads(out)}
    assert sorted(listed) == sorted(ids) and not any("unreadable" in r for r in listed.values())
    for other in (i for i in ids if i != bad):
        code, out, _ = invoke(database_url, "runs", "show", other)
        assert code == 0 and other in out and "corrupt-rows-step" in out
    assert stored_value(engine, table, column, row) == before  # reading changed nothing


PAUSE_EDITS = [e for e in CORRUPT_ROW_EDITS if e[0] == "pauses"]


@pytest.mark.parametrize(
    ("database_url", "table", "column", "value", "reason", "on_postgres"),
    on_each_store(
        PAUSE_EDITS,
        on_postgres=_storable,
        ids=[i for i, e in zip(IDS, CORRUPT_ROW_EDITS, strict=True) if e[0] == "pauses"],
    ),
    indirect=["database_url"],
)
def test_answering_a_run_whose_pause_cannot_be_read_names_it_and_stores_nothing(
    engine: Engine,
    database_url: str,
    table: str,
    column: str,
    value: str,
    reason: str,
    on_postgres: bool,
) -> None:
    _, bad, row, name = corrupt_one(engine, database_url, table, column, value, on_postgres)
    before = stored_value(engine, table, column, row)
    with engine.store.engine.begin() as conn:
        audited = conn.execute(text("SELECT count(*) FROM audit_records")).scalar()
        events = conn.execute(text("SELECT count(*) FROM events")).scalar()
    why = f"the {column} {reason.format(of=f'of its {name}')}"
    with pytest.raises(RunUnreadable, match=f"^run {bad} cannot be read") as refused:
        engine.get_pause(bad, "go")
    assert refused.value.run_id == bad and why in str(refused.value)
    with pytest.raises(RunUnreadable) as refused:
        engine.resume(bad, {"approved": True}, "alice")
    assert refused.value.run_id == bad and why in str(refused.value)
    code, out, err = invoke(
        database_url, "runs", "resume", bad, "--as", "alice", "--input", '{"approved": true}'
    )
    assert (code, out) == (1, "") and why in error_line(err), err
    assert engine.get_run(bad).state is RunState.SUSPENDED
    with engine.store.engine.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_records")).scalar() == audited
        assert conn.execute(text("SELECT count(*) FROM events")).scalar() == events
    assert stored_value(engine, table, column, row) == before
