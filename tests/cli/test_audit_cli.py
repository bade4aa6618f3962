"""``signoff audit verify|export`` and the trail in ``signoff runs show``, as an operator sees them."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from signoff.bot.cli.main import cli
from signoff.engine import Engine, NotAllowed, RunState, flow, pause_flow_run
from signoff.engine.input import RunInput
from tests.engine.test_approvals import run_in_thread, waiting_run
from tests.support.stores import on_each_store


class Go(RunInput):
    approved: bool


@flow(name="audit-cli", approvers=["alice", "bob"])
def audit_cli() -> bool:
    return pause_flow_run(Go, timeout=30).approved


@flow(name="audit-cli-quorum", approvers=["alice", "bob", "carol"])
def audit_cli_quorum() -> int:
    return len(pause_flow_run(Go, timeout=30, quorum=2))


class Payment(RunInput):
    amount: Decimal
    tip: Decimal | None = None
    ratio: float = 0.0


@flow(name="audit-cli-payment")
def audit_cli_payment() -> Payment:
    return pause_flow_run(Payment, timeout=30)


@flow(name="audit-cli-other")
def audit_cli_other() -> None:
    return None


def invoke(database_url: str, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--database-url", database_url, *args])
    return result.exit_code, result.stdout, result.stderr


def test_cli_acts_as_a_named_operator_and_shows_the_trail(
    engine: Engine, database_url: str
) -> None:
    box = run_in_thread(audit_cli)
    run_id = waiting_run(engine, "audit-cli")
    code, _, err = invoke(database_url, "runs", "cancel", run_id, "--as", "mallory")
    assert code == 1 and "mallory may not cancel" in err
    code, out, _ = invoke(
        database_url, "runs", "resume", run_id, "--input", '{"approved": true}', "--as", "alice"
    )
    assert code == 0, out
    box["thread"].join(10)
    assert box["result"] is True
    code, out, _ = invoke(database_url, "runs", "show", run_id[:8])
    assert code == 0
    trail = out.split("Audit trail", 1)[1]
    assert "mallory via cli: refused" in trail
    assert (
        "rule only whoever started it, its approvers (alice, bob) or an admin may cancel this run"
        in trail
    )
    assert 'alice via cli: answer.received [1] — input {"approved": true}' in trail
    code, out, _ = invoke(database_url, "runs", "show", run_id[:8], "--json")
    actions = [r["action"] for r in json.loads(out)["audit"]]
    assert actions[-3:] == ["refused", "answer.received", "answer.accepted"]


def test_a_decimal_answered_as_a_json_number_keeps_every_digit(
    engine: Engine, database_url: str
) -> None:
    # It reached the flow as 12345678901234568, and the audit record as 1.2345678901234568e16.
    box = run_in_thread(audit_cli_payment)
    run_id = waiting_run(engine, "audit-cli-payment")
    answer = '{"amount": 12345678901234567.89, "tip": 0.1000000000000000000001, "ratio": 0.25}'
    code, out, err = invoke(database_url, "runs", "resume", run_id, "--input", answer)
    assert code == 0, err
    box["thread"].join(10)
    assert box["result"] == Payment(
        amount=Decimal("12345678901234567.89"), tip=Decimal("0.1000000000000000000001"), ratio=0.25
    )
    code, out, _ = invoke(database_url, "runs", "show", run_id, "--json")
    received = next(r for r in json.loads(out)["audit"] if r["action"] == "answer.received")
    assert '"12345678901234567.89"' in json.dumps(received)
    assert '"0.1000000000000000000001"' in json.dumps(received)


def test_runs_show_gives_each_answer_of_a_quorum_with_who_gave_it(
    engine: Engine, database_url: str
) -> None:
    box = run_in_thread(audit_cli_quorum)
    run_id = waiting_run(engine, "audit-cli-quorum")
    for who, approved in (("bob", "true"), ("carol", "false")):
        code, out, err = invoke(
            database_url,
            "runs",
            "resume",
            run_id,
            "--input",
            f'{{"approved": {approved}}}',
            "--as",
            who,
        )
        assert code == 0, err
    box["thread"].join(10)
    assert box["result"] == 2
    code, out, _ = invoke(database_url, "runs", "show", run_id[:8])
    assert code == 0
    pauses = out.split("Pauses", 1)[1].split("Logs", 1)[0]
    fields = {
        name: value.strip()
        for name, value in (line.strip().split("  ", 1) for line in pauses.splitlines()[2:] if line)
    }
    # Not "answered by carol" with both inputs as her response: each person's own answer.
    assert "answered" not in fields and "response" not in fields
    assert fields["answers"] == "2 of 2"
    assert fields["answer 1"].startswith("by bob via cli at ")
    assert fields["answer 1"].endswith(': {"approved": true}')
    assert fields["answer 2"].startswith("by carol via cli at ")
    assert fields["answer 2"].endswith(': {"approved": false}')
    # The flow's verdict, the system's act, says whose answers it judged.
    [verdict] = [line for line in out.splitlines() if "answer.accepted" in line]
    assert verdict.endswith("answer.accepted [1] — answers of bob, carol")


def test_verify_says_where_the_chain_breaks(engine: Engine, database_url: str) -> None:
    for _ in range(3):
        audit_cli_other()
    code, out, _ = invoke(database_url, "audit", "verify")
    assert code == 0 and out.startswith("audit trail intact: 3 records")
    with engine.store.engine.begin() as conn:
        conn.execute(text("UPDATE audit_records SET data = NULL WHERE seq = 2"))
    code, _, err = invoke(database_url, "audit", "verify")
    assert code == 1
    assert "BROKEN at record 2" in err and "1 record before it is intact" in err


def test_export_filters_by_flow_and_time_in_both_formats(engine: Engine, database_url: str) -> None:
    audit_cli_other()
    try:
        engine.cancel(engine.submit("audit-cli").id, by="nobody")
    except NotAllowed:
        pass
    code, out, _ = invoke(database_url, "audit", "export", "--flow", "audit-cli-other")
    assert code == 0
    [record] = [json.loads(line) for line in out.splitlines()]
    assert record["action"] == "run.started" and record["flow"] == "audit-cli-other"
    code, out, _ = invoke(database_url, "audit", "export", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["action"] for r in rows] == ["run.started", "run.started", "refused"]
    assert json.loads(rows[2]["data"])["action"] == "cancel"
    code, out, err = invoke(database_url, "audit", "export", "--since", "2999-01-01")
    assert code == 0 and out == ""
    assert err == "no audit records match; nothing exported\n"  # on stderr: out stays empty
    code, out, err = invoke(database_url, "audit", "export", "--flow", "audit-cli-typo")
    assert code == 0 and out == "" and "no audit records match" in err
    code, out, _ = invoke(database_url, "audit", "export", "--since", "1h")  # an age, as in runs
    assert code == 0 and len(out.splitlines()) == 3
    code, _, err = invoke(database_url, "audit", "export", "--since", "yesterday")
    assert code == 2 and "'yesterday' is not a time" in err and "an age (45m" in err
    # the same words as runs list's, from the one check
    code, _, err = invoke(database_url, "audit", "export", "--since", "2h", "--until", "3h")
    assert code == 2 and "must be before --until" in err
    code, _, err = invoke(database_url, "audit", "export", "--since", "100000000d")
    assert code == 2 and "'100000000d' reaches back before the year 1" in err
    code, _, err = invoke(database_url, "audit", "export", "--flow", "")
    assert code == 2 and "'--flow': is empty" in err  # as runs list says it
    assert engine.list_runs([RunState.SCHEDULED], flow_name="audit-cli")


#: edits a person with the database's shell could make to record 2, and what verify says
UNREADABLE = [
    ("data = '[1,2]'", "its data is not a JSON object: '[1,2]'"),
    ("data = '{not json'", "its data is not JSON: Expecting property name"),
    ("at = 'yesterday'", "its time 'yesterday' is not a time"),
    # the same instant, written otherwise: export refuses it, and so does verify
    (
        "at = '2026-01-01T09:30:00+00:00'",
        "its time '2026-01-01T09:30:00+00:00' is not written as Signoff writes times",
    ),
    # SQLite keeps bytes in a text column (sqlite3's X'..'); they are not a name or a hash
    ("actor_name = X'4D'", "its actor_name is not text: b'M'"),
    ("hash = X'00'", "its hash is not text: b'\\x00'"),
    # bytes that are not UTF-8 in a text column: the driver cannot decode them
    ("actor_name = CAST(X'C3' AS TEXT)", "its actor_name is not UTF-8 text: b'\\xc3'"),
    ("data = CAST(X'7B22613A22FF7D' AS TEXT)", "its data is not UTF-8 text: b'{\"a:\"\\xff}'"),
    ("data = X'FFFE'", "its data is not UTF-8 text: b'\\xff\\xfe'"),
]


@pytest.mark.parametrize(
    ("database_url", "edit", "problem"),
    # PostgreSQL's column types refuse all but the first edit: those run on SQLite only.
    [("sqlite", e, p) for e, p in UNREADABLE] + [("postgres", *UNREADABLE[0])],
    indirect=["database_url"],
)
def test_a_record_that_cannot_be_read_is_named_by_verify_show_and_export(
    engine: Engine, database_url: str, edit: str, problem: str
) -> None:
    for _ in range(3):
        audit_cli_other()
    with engine.store.engine.begin() as conn:
        run_id = conn.execute(text("SELECT run_id FROM audit_records WHERE seq = 2")).scalar()
        conn.execute(text(f"UPDATE audit_records SET {edit} WHERE seq = 2"))

    code, out, err = invoke(database_url, "audit", "verify")
    assert (code, out) == (1, "")
    assert err.startswith(f"audit trail BROKEN at record 2: record 2 cannot be read ({problem}")
    assert err.endswith("(1 record before it is intact)\n")

    code, out, _ = invoke(database_url, "runs", "show", run_id)
    assert code == 0 and run_id in out and "audit-cli-other" in out  # the run is still shown
    assert out.split("Audit trail\n", 1)[1].startswith(f"  record 2 cannot be read ({problem}")
    code, out, _ = invoke(database_url, "runs", "show", run_id, "--json")
    assert code == 0 and json.loads(out)["audit"][0]["problem"].startswith(problem)

    for fmt in ("jsonl", "csv"):
        code, out, err = invoke(database_url, "audit", "export", "--format", fmt)
        assert code == 1
        assert err.startswith("Error: audit record 2 cannot be read (its ")  # click's own words
        assert "the export stops before it" in err
        written = out.splitlines()
        if fmt == "jsonl":
            assert [json.loads(line)["seq"] for line in written] == [1]  # every line JSON
        else:
            assert [row["seq"] for row in csv.DictReader(io.StringIO(out))] == ["1"]


def _first_key_twice(stored: str) -> str:
    """The first key given twice, first with a decoy: Python (and verify) reads the last
    value, SQLite's json_extract and other readers the first."""
    first = next(iter(json.loads(stored)))
    return f'{{"{first}": "decoy", {stored[1:]}'


#: edits that leave a record's values as they were (so its hash still matches them) but
#: not its stored text, which export copies and other readers read otherwise
SAME_VALUES = {
    "a key given twice": _first_key_twice,
    "a line break": lambda stored: stored.replace("{", "{\n", 1),
    "spaces taken out": lambda stored: stored.replace(": ", ":"),
}


@pytest.mark.parametrize("edit", SAME_VALUES)
def test_data_edited_into_other_text_with_the_same_values_breaks_the_trail(
    engine: Engine, database_url: str, edit: str
) -> None:
    """verify hashed the values read from the text, not the text: these edits were
    "intact", and export copied the line break out as a line that is not JSON."""
    for _ in range(3):
        audit_cli_other()
    with engine.store.engine.begin() as conn:
        stored = conn.execute(text("SELECT data FROM audit_records WHERE seq = 2")).scalar()
        if not isinstance(stored, str):  # PostgreSQL's driver decodes json
            stored = conn.execute(
                text("SELECT CAST(data AS TEXT) FROM audit_records WHERE seq = 2")
            ).scalar()
        value = (
            "CAST(:data AS json)" if engine.store.engine.dialect.name == "postgresql" else ":data"
        )
        edited = SAME_VALUES[edit](stored)
        conn.execute(
            text(f"UPDATE audit_records SET data = {value} WHERE seq = 2"), {"data": edited}
        )
    assert json.loads(edited) == json.loads(stored) and edited != stored

    code, out, err = invoke(database_url, "audit", "verify")
    assert (code, out) == (1, "")
    assert err.startswith(
        "audit trail BROKEN at record 2: record 2 cannot be read "
        "(its data is not written as Signoff writes it)"
    )
    code, out, err = invoke(database_url, "audit", "export")
    if "\n" in edited:
        assert code == 1 and [json.loads(line)["seq"] for line in out.splitlines()] == [1]
        assert err.startswith(
            "Error: audit record 2 cannot be read (its data is not written as Signoff writes it)"
        )
    else:  # copied as stored, and verify is what says it was edited
        assert code == 0 and [json.loads(line)["seq"] for line in out.splitlines()][:3] == [1, 2, 3]


#: hashes edited to hold what JSON must escape: column, SQL value, the text it holds
HASH_EDITS = {
    "a field added": ("hash", """'abc","actor_id":"forged'""", 'abc","actor_id":"forged'),
    "a line break": ("prev_hash", "'ab' || char(10) || 'cd'", "ab\ncd"),
}


@pytest.mark.parametrize("edit", HASH_EDITS)
def test_a_hash_edited_to_hold_a_quote_is_exported_as_text_not_as_a_field(
    engine: Engine, database_url: str, edit: str
) -> None:
    """A hash edited to 'abc","actor_id":"forged' was exported unescaped: a JSON reader took
    the line for a record of "forged" (the last of a key given twice wins). A line break in
    one made two lines that are not JSON. Export copies it as text; verify names the edit."""
    for _ in range(3):
        audit_cli_other()
    column, value, held = HASH_EDITS[edit]
    if engine.store.engine.dialect.name == "postgresql":
        value = value.replace("char(10)", "chr(10)")
    with engine.store.engine.begin() as conn:
        conn.execute(text(f"UPDATE audit_records SET {column} = {value} WHERE seq = 2"))

    code, out, _ = invoke(database_url, "audit", "export")
    assert code == 0
    exported = [json.loads(line) for line in out.splitlines()]  # every line JSON
    assert [record["seq"] for record in exported] == [1, 2, 3]
    assert exported[1][column] == held
    assert exported[1]["actor_id"] == exported[0]["actor_id"] != "forged"
    code, _, err = invoke(database_url, "audit", "verify")
    assert code == 1 and "BROKEN at record" in err


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # PostgreSQL refuses it
def test_a_record_number_edited_into_text_is_named(engine: Engine, database_url: str) -> None:
    for _ in range(3):
        audit_cli_other()
    with engine.store.engine.begin() as conn:
        conn.execute(text("UPDATE audit_records SET seq = 'abc' WHERE seq = 3"))
    code, _, err = invoke(database_url, "audit", "verify")
    assert code == 1
    assert err.startswith(
        "audit trail BROKEN at record 3: record 3 cannot be read "
        "(its number 'abc' is not a whole number)"
    )
    code, out, err = invoke(database_url, "audit", "export")
    assert code == 1 and [json.loads(line)["seq"] for line in out.splitlines()] == [1, 2]
    assert err.startswith("Error: audit record 'abc' cannot be read (its number is not a whole")


#: edits to record 2 that export refuses, and what it says (the whole reason)
UNEXPORTABLE = [
    ("actor_name = CAST(X'C3' AS TEXT)", "its actor_name is not UTF-8 text"),
    ("data = X'FFFE'", "its data is not text"),
    # bytes of a JSON object: not a JSON object as text either
    ("data = CAST('{\"a\": 1}' AS BLOB)", "its data is not text"),
    # a time, though not as Signoff writes it (export slices the stored text)
    ("at = '2026-01-01T09:30:00+00:00'", "its time is not written as Signoff writes times"),
    ("at = 'yesterday'", "its time is not a time"),
]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # PostgreSQL refuses them
@pytest.mark.parametrize(("edit", "reason"), UNEXPORTABLE)
def test_export_says_why_it_stops_at_a_record(
    engine: Engine, database_url: str, edit: str, reason: str
) -> None:
    for _ in range(3):
        audit_cli_other()
    with engine.store.engine.begin() as conn:
        conn.execute(text(f"UPDATE audit_records SET {edit} WHERE seq = 2"))
    code, out, err = invoke(database_url, "audit", "export")
    assert code == 1 and [json.loads(line)["seq"] for line in out.splitlines()] == [1]
    assert err.startswith(f"Error: audit record 2 cannot be read ({reason}): ")


#: edits to a run's row that SQLite keeps and its driver cannot decode, and the column named
NOT_UTF8_RUN_EDITS = [
    ("flow_name", "CAST(X'C3' AS TEXT)"),
    # a JSON column: SQLAlchemy decodes it as it reads the row
    ("parameters_json", "CAST(X'7B2261223AFF7D' AS TEXT)"),
    ("state", "CAST(X'C3' AS TEXT)"),
]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # PostgreSQL refuses it
@pytest.mark.parametrize(("column", "value"), NOT_UTF8_RUN_EDITS)
def test_a_run_whose_text_is_not_utf8_is_listed_and_named(
    engine: Engine, database_url: str, column: str, value: str
) -> None:
    for _ in range(3):
        audit_cli_other()
    with engine.store.engine.begin() as conn:
        ids = list(conn.execute(text("SELECT id FROM runs ORDER BY created_at")).scalars())
        bad = ids[1]
        conn.execute(text(f"UPDATE runs SET {column} = {value} WHERE id = :id"), {"id": bad})
        stored = conn.execute(
            text(f"SELECT CAST({column} AS BLOB) FROM runs WHERE id = :id"), {"id": bad}
        ).scalar()
    reason = f"its {column} is not UTF-8 text"
    assert_listed_marked_and_refused(database_url, ids, bad, reason)
    with engine.store.engine.begin() as conn:  # listing it changed nothing stored
        assert (
            stored
            == conn.execute(
                text(f"SELECT CAST({column} AS BLOB) FROM runs WHERE id = :id"), {"id": bad}
            ).scalar()
        )


def assert_listed_marked_and_refused(
    database_url: str, ids: list[str], bad: str, reason: str
) -> None:
    """``runs list`` shows every run, ``bad`` marked with ``reason``, and is not a failed
    command; ``runs show`` refuses ``bad`` naming it and why, and still shows the others."""
    # runs list: every run, the changed one marked with why; not a failed command
    code, out, err = invoke(database_url, "runs", "list")
    assert (code, err) == (0, "")
    lines = {line[:8]: line for line in out.splitlines()[1:]}
    assert sorted(lines) == sorted(i[:8] for i in ids)
    assert f"UNREADABLE ({reason})" in lines[bad[:8]]
    assert all("audit-cli-other" in lines[i[:8]] for i in ids if i != bad)
    code, out, err = invoke(database_url, "runs", "list", "--json")
    listed = {run["id"]: run for run in json.loads(out)}
    assert code == 0 and sorted(listed) == sorted(ids)
    assert listed[bad]["unreadable"] == reason
    assert all("unreadable" not in listed[i] for i in ids if i != bad)
    # runs show refuses it, naming the run and the column; the others still show
    named = f"Error: run {bad} cannot be read ({reason}): it was changed outside Signoff"
    for args in (("runs", "show", bad), ("runs", "show", bad[:8])):
        code, out, err = invoke(database_url, *args)
        assert (code, out) == (1, ""), args
        assert err.startswith(named), (args, err)
    code, out, _ = invoke(database_url, "runs", "show", ids[2])
    assert code == 0 and ids[2] in out and "audit-cli-other" in out


#: edits to a run's row that leave UTF-8 text which is not what the column holds, the
#: reason a listing and runs show give, and whether PostgreSQL can hold it too
CORRUPT_RUN_EDITS = [
    ("parameters_json", "'{\"a\": '", "its parameters_json is not JSON", False),
    ("tags", "'not json'", "its tags is not JSON", False),
    ("state", "'exploded'", "its state 'exploded' is not a state a run can be in", True),
    ("created_at", "'yesterday'", "its created_at is not a time", False),
]


@pytest.mark.parametrize(
    ("database_url", "column", "value", "reason", "on_postgres"),
    on_each_store(
        CORRUPT_RUN_EDITS,
        on_postgres=lambda *edit: edit[-1],
        ids=[column for column, *_ in CORRUPT_RUN_EDITS],
    ),
    indirect=["database_url"],
)
def test_a_run_whose_value_is_corrupt_is_listed_and_named(
    engine: Engine, database_url: str, column: str, value: str, reason: str, on_postgres: bool
) -> None:
    for _ in range(3):
        audit_cli_other()
    with engine.store.engine.begin() as conn:
        ids = list(conn.execute(text("SELECT id FROM runs ORDER BY created_at")).scalars())
        bad = ids[1]
        conn.execute(text(f"UPDATE runs SET {column} = {value} WHERE id = :id"), {"id": bad})
        stored = conn.execute(text("SELECT * FROM runs WHERE id = :id"), {"id": bad}).one()
    assert_listed_marked_and_refused(database_url, ids, bad, reason)
    with engine.store.engine.begin() as conn:  # reading it changed nothing stored
        assert stored == conn.execute(text("SELECT * FROM runs WHERE id = :id"), {"id": bad}).one()
