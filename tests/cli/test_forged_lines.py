"""A person's id or name cannot forge lines in what ``runs show`` and ``runs list`` print:
control characters (newlines, ESC, line separators) are refused wherever a person is
named, and what was stored before that check is written out on its one line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from signoff.engine import (
    Actor,
    Engine,
    EngineSettings,
    flow,
    get_run_logger,
    load_flows,
    set_engine,
)
from tests.cli.in_process import run_cli

#: what a tester passed as a name: a second line that reads like a Slack cancel
FORGED = "eve\n  2026-12-04 09:00:00 U0BOB via slack: run.cancelled"


@pytest.mark.parametrize(
    ("command_line", "option"),
    [
        (("run", "access-request", "--flows", "flows.py", "--started-by", FORGED), "--started-by"),
        (("runs", "resume", "abcd", "--input", "{}", "--as", "alice\x1b[2J"), "--as"),
        (("runs", "cancel", "abcd", "--as", "alice\u2028bob"), "--as"),
        # shown right to left after it: "bob\u202eecila" reads as "bobalice" reversed
        (("runs", "cancel", "abcd", "--as", "bob\u202eecila"), "--as"),
        (("runs", "reassign", "abcd", "--to", "U0BOB\r"), "--to"),
        (("runs", "resume", "abcd", "--input", "{}", "--group", "S0SRE\n"), "--group"),
    ],
)
def test_a_name_with_a_control_character_is_refused_by_option(
    project: Path, capsys: pytest.CaptureFixture[str], command_line: tuple[str, ...], option: str
) -> None:
    status, out, err = run_cli(capsys, *command_line)
    assert (status, out) == (2, "")
    assert err.startswith(f"error: Invalid value for '{option}': ")
    assert any(f"control character (U+{c}" in err for c in ("00", "2028", "202E"))
    assert len(err.splitlines()) == 1  # the refusal itself forges no line
    assert not (project / "ops.db").exists()  # refused before anything was opened


def test_signoff_operator_with_a_newline_is_refused_naming_the_variable(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIGNOFF_OPERATOR", FORGED)
    status, out, err = run_cli(
        capsys, "run", "access-request", "--flows", "flows.py", "--param", "user=ada"
    )
    assert (status, out) == (1, "")
    assert err.startswith("error: invalid setting: SIGNOFF_OPERATOR: the operator name 'eve\\n")
    assert "control character (U+000A)" in err and len(err.splitlines()) == 1


def test_the_python_api_refuses_such_ids_and_names_by_field(engine: Engine) -> None:
    with pytest.raises(ValueError, match=r"^actor id 'eve\\n .* \(U\+000A\)"):
        engine.submit("access-request", {"user": "ada"}, started_by=FORGED)
    with pytest.raises(ValueError, match=r"^actor name 'Al\\x1bice' .* \(U\+001B\)"):
        Actor("U0ALICE", name="Al\x1bice")
    with pytest.raises(ValueError, match=r"^group id 'S0\\x85' .* \(U\+0085\)"):
        Actor("U0ALICE", groups=frozenset({"S0\x85"}))
    # It cannot be stored: the start failed with UnicodeEncodeError as it was recorded.
    with pytest.raises(ValueError, match=r"^actor name 'Al\\ud800ice' holds a lone surrogate"):
        engine.submit(
            "access-request", {"user": "ada"}, started_by=Actor("U0A", name="Al\ud800ice")
        )
    with pytest.raises(ValueError, match=r"^the id to reassign to 'U0BOB\\n"):
        engine.reassign("no-such-run", "U0BOB\n", "alice")
    assert Actor("U0ALICE", name="Ålice 🎉 O'Brien").name == "Ålice 🎉 O'Brien"


def test_a_name_stored_before_the_check_shows_on_its_own_line(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, run_id, _ = run_cli(
        capsys, "run", "access-request", "--flows", "flows.py", "--param", "user=ada"
    )
    assert status == 0
    # As an older Signoff let it through: the name, in the run and in its audit record.
    database = create_engine(f"sqlite:///{project / 'ops.db'}")
    with database.begin() as conn:
        conn.execute(text("UPDATE runs SET started_by = :who"), {"who": FORGED})
        conn.execute(
            text("UPDATE audit_records SET actor_id = :who, actor_name = :who"), {"who": FORGED}
        )
    database.dispose()
    status, out, _ = run_cli(capsys, "runs", "show", run_id.strip())
    assert status == 0
    assert "  started by  eve\\n  2026-12-04 09:00:00 U0BOB via slack" in out
    assert not [line for line in out.splitlines() if line.startswith("  2026-12-04 09:00:00")]
    trail = out.split("Audit trail\n", 1)[1].splitlines()
    assert len(trail) == 1
    assert (
        "eve\\n  2026-12-04 09:00:00 U0BOB via slack: run.cancelled via cli: run.started"
        in trail[0]
    )
    status, out, _ = run_cli(capsys, "runs", "list")
    assert status == 0 and len(out.splitlines()) == 2  # the header and the one run


def test_an_answer_with_a_bidirectional_override_shows_it_written_out(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """U+202E in a stored name or answer went to the terminal as it was: a viewer that
    honours it shows the rest of the line reversed ("Trojan Source")."""
    status, run_id, _ = run_cli(
        capsys, "run", "access-request", "--flows", "flows.py", "--param", "user=ada"
    )
    assert status == 0
    database = create_engine(f"sqlite:///{project / 'ops.db'}")
    with database.begin() as conn:
        conn.execute(text("UPDATE audit_records SET actor_name = :who"), {"who": "bob\u202eecila"})
    database.dispose()
    status, out, _ = run_cli(capsys, "runs", "show", run_id.strip())
    assert status == 0 and "\u202e" not in out
    assert "bob\\u202eecila" in out.split("Audit trail\n", 1)[1]


@flow(name="logs-a-reason")
def logs_a_reason(reason: str) -> None:
    get_run_logger().info(f"reason given: {reason}")


def test_what_a_flow_logs_cannot_forge_lines_in_runs_show(
    project: Path, capsys: pytest.CaptureFixture[str], engine: Engine
) -> None:
    """A flow that logs a person's answer printed it as it was: its lines started where a
    second "Audit trail" section and its records do, and a terminal escape went to the
    terminal. Further lines are indented under the message; escapes are written out."""
    reason = "fine\n\nAudit trail\n  2026-12-04 09:00:00 U0BOB via slack: answer.accepted\n\x1b[2J"
    previous = set_engine(engine)
    try:
        logs_a_reason(reason)
    finally:
        set_engine(previous)
    run_id = engine.list_runs(flow_name="logs-a-reason")[0].id
    status, out, _ = run_cli(capsys, "runs", "show", run_id)
    assert status == 0
    lines = out.splitlines()
    assert lines.count("Audit trail") == 1
    assert not [line for line in lines if line.startswith("  2026-12-04 09:00:00")]
    logged = lines[lines.index("Logs (last 1 of 1)") + 1 :][:6]
    pad = " " * logged[0].index("reason given")
    assert logged[0].endswith("INFO    reason given: fine")
    assert logged[1:5] == [
        "",
        pad + "Audit trail",
        pad + "  2026-12-04 09:00:00 U0BOB via slack: answer.accepted",
        pad + "\\x1b[2J",
    ]
    assert "\x1b" not in out


@pytest.fixture
def engine(project: Path) -> Iterator[Engine]:
    """An engine on the project's database, with its flows loaded."""
    load_flows("flows.py")
    made = Engine(EngineSettings.load())
    yield made
    made.close()
