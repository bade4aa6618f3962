"""Operating ``signoff``: version, flows list, did-you-mean, one-line errors, schema upgrades
on purpose, and JSON logs. (Settings and ``config show``: ``test_config``.)"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import click
import psycopg
import pytest
from alembic import command
from sqlalchemy import create_engine, text

from signoff.bot.cli.main import cli
from signoff.bot.forms.json_text import MAX_NESTING, read_json
from signoff.bot.sandbox import SlackSandbox
from signoff.engine import EngineSettings
from signoff.engine.store import database, revisions
from signoff.engine.store.revisions import HEAD_REVISION, _alembic_config
from tests.cli.in_process import run_cli
from tests.e2e.serve_process import start_serve, wait_until_ready
from tests.support.forwarding import free_port
from tests.support.postgres import PostgresCluster
from tests.support.waiting import wait_for


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_cli(capsys, "--version")
    assert status == 0
    assert out.startswith("signoff 0.")


def test_flows_list_shows_parameters_and_who_answers(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run_cli(capsys, "flows", "list", "--flows", "flows.py")
    assert status == 0
    line = next(line for line in out.splitlines() if line.startswith("access-request"))
    assert "user: str, days: int = 7" in line
    assert "U024BE7LH (not who started the run)" in line
    assert "Grant temporary access." in line
    status, out, _ = run_cli(capsys, "flows", "list", "--flows", "flows.py", "--json")
    found = {f["name"]: f for f in json.loads(out)}
    assert found["access-request"]["approvers"] == ["U024BE7LH"]
    assert found["access-request"]["parameters_schema"]["required"] == ["user"]


def test_every_commands_help_reads_as_plain_text(capsys: pytest.CaptureFixture[str]) -> None:
    # click prints docstrings as they are: reST marks (``--before``) and code names
    # (Via.CLI) showed in 'signoff runs list --help' and 'runs resume --help'.
    # Asked as click asks a group (list_commands, get_command): commands load lazily, so
    # ``group.commands`` holds only those some earlier test happened to load.
    context = click.Context(cli)

    def commands(group: click.Group, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        for name in group.list_commands(context):
            sub = group.get_command(context, name)
            yield (*path, name)
            if isinstance(sub, click.Group):
                yield from commands(sub, (*path, name))

    seen = 0
    for path in commands(cli, ()):
        status, out, _ = run_cli(capsys, *path, "--help")
        assert status == 0, path
        assert "``" not in out and "Via." not in out, (path, out)
        seen += 1
    assert seen >= 19  # every command and sub-command


def test_an_unknown_flow_name_suggests_the_close_one_and_makes_no_database(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run_cli(
        capsys, "run", "access_request", "--flows", "flows.py", "--param", "user=ada"
    )
    assert status == 1
    assert "did you mean 'access-request'?" in err
    # No --flows, and a name no flow is close to (other tests register flows here too).
    status, _, err = run_cli(capsys, "run", "qx-untitled-7")
    assert (status, err) == (
        1,
        "error: no flow named 'qx-untitled-7' is registered; load it with --flows PATH_OR_MODULE\n",
    )
    # A mistyped name (perhaps with a mistyped database path) leaves no database behind.
    assert not (project / "ops.db").exists()


def test_an_empty_database_url_is_refused_not_taken_for_the_default(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run_cli(capsys, "--database-url", "", "runs", "list")
    assert (status, out) == (2, "")
    assert err.startswith("error: Invalid value for '--database-url': is empty")
    assert not (project / "home" / ".signoff").exists()


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_database_url_in_the_environment_is_named_as_that_variable(
    project: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    value: str,
) -> None:
    """Spaces were blamed on --database-url, which nobody gave, and stopped 'config show';
    nothing at all was an 'unsupported database URL scheme'."""
    monkeypatch.setenv("SIGNOFF_DATABASE_URL", value)
    named = (
        "invalid setting: SIGNOFF_DATABASE_URL: is empty; give a database URL "
        "(sqlite:///path or postgresql://...)"
    )
    status, out, err = run_cli(capsys, "runs", "list")
    assert (status, out, err) == (1, "", f"error: {named}\n")
    status, out, err = run_cli(capsys, "config", "show")
    assert "SIGNOFF_DATABASE_URL" in out and f"problem: {named}" in out.splitlines()
    assert not (project / "home" / ".signoff").exists()


def test_an_argument_that_is_not_utf8_is_refused_by_position(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bytes that are not UTF-8 (a shell's $'\\xff') reached stores and the audit hash as
    lone surrogates: "unexpected UnicodeEncodeError" from whichever option took them."""
    unreadable = b"caf\xe9".decode("utf-8", "surrogateescape")
    for command_line in (
        ("runs", "list", "--flow", unreadable),
        ("runs", "resume", "abcd", "--as", unreadable),
        ("run", "access-request", "--flows", "flows.py", "--param", f"user={unreadable}"),
    ):
        status, out, err = run_cli(capsys, *command_line)
        assert (status, out) == (2, "")
        given = next(a for a in command_line if unreadable in a)
        shown = given.replace(unreadable, "caf\\\\xe9")
        position = command_line.index(given) + 1
        assert err == f"error: argument {position} ('{shown}') is not UTF-8 text\n"


def test_a_port_in_use_is_named_in_one_line_and_nothing_keeps_running(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        threads = threading.active_count()
        for command_line in (
            ("sandbox", "--flows", "flows.py", "--port", str(port)),
            ("demo", "--web", "--port", str(port)),
        ):
            status, _, err = run_cli(capsys, *command_line)
            assert status == 1, command_line
            assert err.startswith(
                f"error: cannot listen on 127.0.0.1:{port}: Address already in use"
            )
            assert err.count("\n") == 1  # one line
        wait_for(lambda: threading.active_count() <= threads, what="the started parts stopped")


def at_revision(url: str, revision: str) -> None:
    """A database whose schema stops at an older revision, as an older Signoff left it."""
    db = create_engine(url)
    with db.connect() as connection:
        command.upgrade(_alembic_config(connection), revision)
        connection.commit()
    db.dispose()


def test_an_outdated_database_is_refused_until_upgraded_on_purpose(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = os.environ["SIGNOFF_DATABASE_URL"]
    at_revision(url, "0001")
    status, out, _ = run_cli(capsys, "db", "current")
    assert (status, out.split()[0]) == (1, "0001")
    assert "signoff db upgrade" in out

    status, _, err = run_cli(capsys, "runs", "list")
    assert status == 1
    assert len(err.strip().splitlines()) == 1
    assert "revision 0001" in err and "signoff db upgrade" in err
    assert "(signoff worker and signoff serve also take --migrate)" in err

    status, out, _ = run_cli(capsys, "db", "upgrade")
    assert status == 0 and out.startswith("upgraded 0001 -> ")
    status, out, _ = run_cli(capsys, "db", "current")
    assert status == 0 and "(up to date)" in out
    assert run_cli(capsys, "runs", "list")[:2] == (0, "no runs\n")


@pytest.mark.parametrize(
    ("made", "reason"),
    [
        (
            ["CREATE TABLE customers (id INTEGER)"],
            "the SQLite file holds tables (customers) and no Signoff schema",
        ),
        (
            [
                "CREATE TABLE alembic_version (version_num VARCHAR(32))",
                "INSERT INTO alembic_version VALUES ('3f2a9c0e1b7d')",
            ],
            "its schema is at revision '3f2a9c0e1b7d', another tool's",
        ),
    ],
)
def test_another_applications_database_is_refused_and_left_as_it_was(
    project: Path, capsys: pytest.CaptureFixture[str], made: list[str], reason: str
) -> None:
    path = project / "theirs.db"
    with sqlite3.connect(path) as theirs:
        for statement in made:
            theirs.execute(statement)

    def tables() -> list[str]:
        with sqlite3.connect(path) as theirs:
            return [r[0] for r in theirs.execute("SELECT name FROM sqlite_master")]

    before = tables()
    # Read-only commands too: connecting turned the file to WAL (its header rewritten)
    # and the schema check left a migration lock file beside it.
    their_bytes = path.read_bytes()
    beside = sorted(p.name for p in project.iterdir())
    url = f"sqlite:///{path}"
    for command_line in (
        ("db", "current"),
        ("runs", "list"),
        ("audit", "verify"),
        ("db", "upgrade"),
        ("worker",),
    ):
        status, _, err = run_cli(capsys, "--database-url", url, *command_line)
        assert status == 1, command_line
        assert err == (
            # Named as it was given: by the flag, not the variable.
            f"error: the database is not Signoff's: {reason}; point --database-url at "
            "Signoff's own database (a new SQLite path, or a PostgreSQL database for Signoff)\n"
        )
    assert path.read_bytes() == their_bytes
    assert sorted(p.name for p in project.iterdir()) == beside
    assert tables() == before  # nothing of Signoff's was added


def test_a_database_that_lost_its_schema_revision_is_refused_not_called_anothers(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Signoff's tables with their alembic_version row gone (a restore that left it out):
    no command guesses a revision and migrates, and none says the tables are another
    application's."""
    at_revision(database_url, "head")
    db = create_engine(database_url)
    with db.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO runs (id, flow_name, state, state_name, parameters, created_at, "
                "updated_at) VALUES ('r-kept', 'kept', 'COMPLETED', 'Completed', :p, :at, :at)"
            ),
            {"p": b"{}", "at": datetime.now(UTC)},
        )
        connection.exec_driver_sql("DELETE FROM alembic_version")
    for command_line in (("db", "current"), ("runs", "list"), ("db", "upgrade"), ("worker",)):
        status, out, err = run_cli(capsys, "--database-url", database_url, *command_line)
        assert (status, out) == (1, ""), command_line
        assert err.startswith("error: the database holds Signoff's tables (")
        assert "no record of their schema revision" in err and "restore" in err
        assert "not Signoff's" not in err
    with db.connect() as connection:
        assert connection.exec_driver_sql("SELECT id FROM runs").scalars().all() == ["r-kept"]
        assert connection.exec_driver_sql("SELECT * FROM alembic_version").all() == []
    db.dispose()


def test_a_database_a_newer_signoff_upgraded_is_refused_with_what_to_run(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = os.environ["SIGNOFF_DATABASE_URL"]
    at_revision(url, "head")
    db = create_engine(url)
    with db.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = '0999'")
    db.dispose()
    status, out, _ = run_cli(capsys, "db", "current")
    assert status == 1
    assert out.startswith(
        f"0999 (newer than this version of Signoff knows, whose newest is {HEAD_REVISION}"
    )
    for command_line in (("runs", "list"), ("db", "upgrade")):
        status, _, err = run_cli(capsys, *command_line)
        assert status == 1 and len(err.strip().splitlines()) == 1
        assert err.startswith("error: the database schema is at revision 0999, which this version")
        assert "run that version or a later one" in err


def test_an_empty_database_is_not_given_the_schema_by_a_command_that_only_looks(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As for a file that is not there: a command that reads or acts on stored runs, pointed
    at the wrong database, adds no table to it; storing a run gives it the schema."""
    database = project / "ops.db"
    database.touch()  # an empty file, as a sqlite3 shell or a volume mount leaves
    for command_line in (("runs", "list"), ("audit", "verify"), ("runs", "cancel", "abcd")):
        status, out, err = run_cli(capsys, *command_line)
        assert (status, out) == (1, ""), command_line
        assert err.startswith(f"error: the database at sqlite:///{database} has no Signoff schema")
        assert "'signoff db upgrade' makes the database" in err
    with closing(sqlite3.connect(database)) as looked_at:
        assert looked_at.execute("SELECT name FROM sqlite_master").fetchall() == []
    status, _, _ = run_cli(
        capsys, "run", "access-request", "--flows", "flows.py", "--param", "user=ada"
    )
    assert status == 0
    assert "access-request" in run_cli(capsys, "runs", "list")[1]


def test_a_database_path_nothing_stored_at_is_an_error_not_an_empty_list(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    typo = project / "typo" / "ops.db"
    monkeypatch.setenv("SIGNOFF_DATABASE_URL", f"sqlite:///{typo}")
    for command_line in (("runs", "list"), ("runs", "show", "abc"), ("audit", "verify")):
        status, out, err = run_cli(capsys, *command_line)
        assert (status, out) == (1, ""), command_line
        assert err.startswith(f"error: there is no database at {typo}: ")
        assert "SIGNOFF_DATABASE_URL" in err and len(err.strip().splitlines()) == 1
    status, out, _ = run_cli(capsys, "db", "current")
    assert status == 1
    assert (
        out
        == f"none (no database yet) (needs an upgrade to {HEAD_REVISION}: run 'signoff db upgrade')\n"
    )
    assert not typo.parent.exists()  # looking made neither the file nor its folder

    # Storing a run makes it (and its folder), as a worker or the Slack app would.
    status, out, _ = run_cli(
        capsys, "run", "access-request", "--flows", "flows.py", "--param", "user=ada"
    )
    assert status == 0 and typo.exists()
    status, out, _ = run_cli(capsys, "runs", "list")
    assert status == 0 and "access-request" in out


def test_a_database_path_under_the_home_folder_is_the_one_used(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``~`` as the default's own URL has it (``sqlite:///~/.signoff/signoff.db``): its
    folder was made under the home folder, and then SQLite looked for a folder named '~'
    ('unable to open database file')."""
    monkeypatch.setenv("HOME", str(project / "home"))
    monkeypatch.setenv("SIGNOFF_DATABASE_URL", "sqlite:///~/.signoff/signoff.db")
    assert run_cli(capsys, "db", "upgrade")[:2] == (
        0,
        f"upgraded an empty database -> {HEAD_REVISION}\n",
    )
    status, out, _ = run_cli(
        capsys, "run", "access-request", "--flows", "flows.py", "--param", "user=ada"
    )
    assert status == 0
    status, listed, _ = run_cli(capsys, "runs", "list")
    assert status == 0 and out.strip()[:8] in listed
    assert (project / "home" / ".signoff" / "signoff.db").is_file()
    assert not (project / "~").exists()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", "sqlite:///:memory:"])
def test_an_in_memory_database_is_refused_by_every_command(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    """Each command is a process of its own: a run queued, a worker started or a schema
    upgraded there was reported done and gone at once (and 'db current' then asked for
    the upgrade again)."""
    # sqlite:/// is what a template such as sqlite:///$DB_PATH gives with the variable unset.
    monkeypatch.setenv("SIGNOFF_DATABASE_URL", url)
    for command_line in (
        ("runs", "list"),
        ("audit", "verify"),
        ("run", "access-request", "--flows", "flows.py", "--param", "user=ada"),
        ("worker", "--flows", "flows.py"),
        ("db", "upgrade"),
        ("db", "current"),
    ):
        status, out, err = run_cli(capsys, *command_line)
        assert (status, out) == (1, ""), command_line
        assert err.startswith("error: the database is in memory"), command_line
        assert "give SIGNOFF_DATABASE_URL (or --database-url) a file: sqlite:///path.db" in err
    status, out, _ = run_cli(capsys, "config", "show")
    assert status == 1
    assert "problem: the database is in memory" in out


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        ("notdb.db/x.db", "{project}/notdb.db is a file, not a folder"),
        ("/proc/no-such-folder/x.db", "No such file or directory: /proc/no-such-folder"),
        (  # read-only, even for root
            "/proc/self/x.db",
            "unable to open database file (the file is not there yet, and its folder "
            "/proc/self is read-only to this process, so it cannot be made)",
        ),
        ("folder", "{project}/folder is a folder, not a file"),
    ],
)
def test_a_database_path_that_cannot_be_made_is_one_line_naming_the_variable(
    project: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    where: str,
    reason: str,
) -> None:
    (project / "notdb.db").write_text("a file where the database's folder would be\n")
    (project / "folder").mkdir()  # a folder where the database's file would be
    path = project / where  # an absolute 'where' stays as it is
    monkeypatch.setenv("SIGNOFF_DATABASE_URL", f"sqlite:///{path}")
    for command_line in (
        ("db", "upgrade"),
        ("run", "access-request", "--flows", "flows.py", "--param", "user=ada"),
        ("worker", "--flows", "flows.py"),
    ):
        status, out, err = run_cli(capsys, *command_line)
        assert (status, out) == (1, ""), command_line
        assert err == (
            f"error: SIGNOFF_DATABASE_URL names the SQLite file {path}, which cannot be used: "
            f"{reason.format(project=project)}\n"
        ), command_line


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """``path`` read-only to this process: by its mode, or, for root, whom modes do not
    stop, by the immutable attribute."""
    mode = path.stat().st_mode
    path.chmod(mode & ~0o222)
    immutable = False
    try:
        if os.access(path, os.W_OK):
            try:
                made = subprocess.run(["chattr", "+i", str(path)], capture_output=True)
            except FileNotFoundError:  # no e2fsprogs
                pytest.skip(f"cannot make {path} read-only to this process")
            immutable = made.returncode == 0
            if not immutable or os.access(path, os.W_OK):
                pytest.skip(f"cannot make {path} read-only to this process")
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        path.chmod(mode)


def test_a_read_only_sqlite_file_or_folder_is_named_with_what_is_read_only(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A volume mounted read-only, or one made by another user than the service's.
    folder = project / "data"
    path = folder / "ops.db"
    monkeypatch.setenv("SIGNOFF_DATABASE_URL", f"sqlite:///{path}")
    assert run_cli(capsys, "db", "upgrade")[0] == 0
    start = ("run", "access-request", "--flows", "flows.py", "--param", "user=ada")

    with read_only(folder):
        for command_line in (("runs", "list"), start):
            status, out, err = run_cli(capsys, *command_line)
            assert (status, out) == (1, ""), command_line
            assert err == (
                f"error: SIGNOFF_DATABASE_URL names the SQLite file {path}, which cannot be "
                f"used: unable to open database file (its folder {folder} is read-only to "
                "this process, and SQLite keeps ops.db-wal and ops.db-shm beside the file)\n"
            ), command_line

    with read_only(path):
        assert run_cli(capsys, "runs", "list")[:2] == (0, "no runs\n")  # reads still work
        for command_line in (start, ("worker", "--flows", "flows.py")):
            status, out, err = run_cli(capsys, *command_line)
            assert (status, out) == (1, ""), command_line
            assert err == (
                "error: database write failed: attempt to write a readonly database: "
                f"SIGNOFF_DATABASE_URL names the SQLite file {path} (the file is read-only "
                "to this process)\n"
            ), command_line


def test_a_new_sqlite_file_in_a_read_only_folder_is_named_with_its_folder(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLite says only 'unable to open database file', as for a file it cannot read.
    folder = project / "data"
    folder.mkdir()
    path = folder / "new.db"
    monkeypatch.setenv("SIGNOFF_DATABASE_URL", f"sqlite:///{path}")
    start = ("run", "access-request", "--flows", "flows.py", "--param", "user=ada")
    with read_only(folder):
        for command_line in (("db", "upgrade"), start):
            status, out, err = run_cli(capsys, *command_line)
            assert (status, out) == (1, ""), command_line
            assert err == (
                f"error: SIGNOFF_DATABASE_URL names the SQLite file {path}, which cannot be "
                f"used: unable to open database file (the file is not there yet, and its "
                f"folder {folder} is read-only to this process, so it cannot be made)\n"
            ), command_line
    assert not path.exists()


def test_a_read_only_sqlite_url_reads_and_refuses_writes_in_one_line(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """'?mode=ro' was dropped (with a SAWarning) and the file written anyway; a 'file:' URI
    with uri=true was looked for in a folder called 'file:' (and its lock file made there)."""
    start = ("run", "access-request", "--flows", "flows.py", "--param", "user=ada")
    assert run_cli(capsys, *start)[0] == 0
    path = project / "ops.db"
    for url, shown in (
        (f"sqlite:///{path}?mode=ro", path),
        (f"sqlite:///file:{path}?mode=ro&uri=true", path),
        ("sqlite:///file:ops.db?mode=ro&uri=true", "ops.db"),
    ):
        monkeypatch.setenv("SIGNOFF_DATABASE_URL", url)
        status, out, err = run_cli(capsys, "runs", "list")
        assert (status, err, out.count("access-request")) == (0, "", 1), url
        status, out, err = run_cli(capsys, *start)
        assert (status, out) == (1, ""), url
        assert err == (
            "error: database write failed: attempt to write a readonly database: "
            f"SIGNOFF_DATABASE_URL opens the SQLite file {shown} read-only\n"
        ), url

    # A URI that may write writes to the file it names.
    monkeypatch.setenv("SIGNOFF_DATABASE_URL", "sqlite:///file:ops.db?uri=true")
    assert run_cli(capsys, *start)[0] == 0
    monkeypatch.setenv("SIGNOFF_DATABASE_URL", f"sqlite:///{path}")
    assert run_cli(capsys, "runs", "list")[1].count("access-request") == 2
    assert not [p.name for p in project.iterdir() if p.name.startswith("file:")]


def test_a_postgresql_server_that_never_answers_fails_the_command_in_time(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server behind a firewall that drops packets, or a hung one: the connection is
    made and nothing comes back. Every command (serve at start, with nothing logged)
    waited for ever; now it fails after the connect timeout, saying so."""
    monkeypatch.setitem(database.PG_CONNECTION_DEFAULTS, "connect_timeout", 1)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes connections; nobody ever answers them
        port = silent.getsockname()[1]
        monkeypatch.setenv("SIGNOFF_DATABASE_URL", f"postgresql://signoff@127.0.0.1:{port}/db")
        outcome: list[tuple[int, str, str]] = []
        command = threading.Thread(
            target=lambda: outcome.append(run_cli(capsys, "db", "current")), daemon=True
        )
        command.start()
        command.join(30)
    assert outcome, "db current still waits for the server"
    status, out, err = outcome[0]
    assert (status, out) == (1, "")
    assert err == (
        "error: cannot open the database at SIGNOFF_DATABASE_URL: connection timeout expired\n"
    )


def test_upgrades_run_at_once_say_which_one_upgraded(
    pg_cluster: PostgresCluster | None, tmp_path: Path
) -> None:
    """Each of several ``db upgrade`` run at the same moment (a migration job per replica)
    said it had upgraded the database, while one had and the others had waited for it."""
    if pg_cluster is None:
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) are not installed")
    server = f"host=127.0.0.1 port={pg_cluster.port} user=postgres"
    name = f"t_{os.urandom(6).hex()}"
    with psycopg.connect(f"{server} dbname=postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = pg_cluster.url(name)
    at_revision(url, "0001")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNOFF_")}
    env.update(SIGNOFF_DATABASE_URL=url, HOME=str(tmp_path))
    with psycopg.connect(f"{server} dbname={name}", autocommit=True) as holder:
        # Holding the migration lock, so that all of them are waiting for it at once.
        holder.execute("SELECT pg_advisory_lock(%s)", (revisions._MIGRATION_LOCK,))
        upgrades = [
            subprocess.Popen(
                [sys.executable, "-m", "signoff", "db", "upgrade"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(3)
        ]

        def waiting() -> bool:
            found = holder.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                "AND objid = %s",
                (revisions._MIGRATION_LOCK,),
            ).fetchone()
            return found is not None and found[0] == len(upgrades)

        wait_for(waiting, timeout=30, what="every upgrade to wait for the migration lock")
        holder.execute("SELECT pg_advisory_unlock(%s)", (revisions._MIGRATION_LOCK,))
    said = sorted(upgrade.communicate(timeout=60)[0] for upgrade in upgrades)
    assert [upgrade.returncode for upgrade in upgrades] == [0, 0, 0]
    assert said == [
        f"{HEAD_REVISION} (already up to date)\n",
        f"{HEAD_REVISION} (already up to date)\n",
        f"upgraded 0001 -> {HEAD_REVISION}\n",
    ]


def test_worker_migrates_when_told_and_logs_json(project: Path) -> None:
    url = os.environ["SIGNOFF_DATABASE_URL"]
    at_revision(url, "0001")
    env = {**os.environ, "SIGNOFF_LOG_FORMAT": "json", "SIGNOFF_LOG_LEVEL": "debug"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "signoff.bot.cli", "worker", "--flows", "flows.py", "--migrate"],
        cwd=project,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stderr is not None
        started = None
        lines = []
        for line in worker.stderr:
            lines.append(line)
            record = json.loads(line)
            if record.get("action") == "worker_started":
                started = record
                break
        assert started is not None, "".join(lines)
        assert {"time", "level", "logger", "message", "action"} <= set(started)
        assert started["level"] == "INFO"
        current = subprocess.run(
            [sys.executable, "-m", "signoff.bot.cli", "db", "current"],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert current.returncode == 0 and "(up to date)" in current.stdout
    finally:
        worker.send_signal(signal.SIGTERM)
        wait_for(lambda: worker.poll() is not None, timeout=30)


def test_serve_migrates_when_told(project: Path, tmp_path: Path) -> None:
    url = os.environ["SIGNOFF_DATABASE_URL"]
    at_revision(url, "0001")
    port = free_port()
    with SlackSandbox() as slack:
        serving = start_serve(slack, url, tmp_path, "C0GENERAL", port=port, options=("--migrate",))
        try:
            wait_until_ready(port, timeout=120)
            current = subprocess.run(
                [sys.executable, "-m", "signoff.bot.cli", "db", "current"],
                cwd=project,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert current.returncode == 0 and "(up to date)" in current.stdout
        finally:
            serving.send_signal(signal.SIGTERM)
            assert serving.wait(30) == 0


def test_shell_completion_as_the_readme_documents(tmp_path: Path) -> None:
    signoff = Path(sys.executable).with_name("signoff")
    script = subprocess.run(
        [str(signoff)],
        env={**os.environ, "_SIGNOFF_COMPLETE": "bash_source"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "complete -o nosort -F _signoff_completion signoff" in script.stdout
    words = subprocess.run(
        [str(signoff)],
        env={
            **os.environ,
            "_SIGNOFF_COMPLETE": "bash_complete",
            "COMP_WORDS": "signoff fl",
            "COMP_CWORD": "1",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "plain,flows" in words.stdout.splitlines()


def test_runs_show_json_gives_the_result_as_json(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from signoff.engine import Engine, load_flows

    load_flows(str(project / "flows.py"))
    engine = Engine(EngineSettings.load())
    try:
        run = engine.submit("access-request", {"user": "ada"})
        from signoff.engine import Worker

        worker = Worker(engine)
        worker.start()
        try:
            wait_for(lambda: engine.get_run(run.id).state.is_final, timeout=30)
        finally:
            worker.stop()
    finally:
        engine.close()
    status, out, _ = run_cli(capsys, "runs", "show", run.id, "--json")
    assert status == 0
    assert json.loads(out)["run"]["result"] == {"user": "ada", "days": 7}


def test_a_reader_that_stops_reading_ends_the_command_quietly(project: Path) -> None:
    # As in `signoff manifest | head -1` once head has exited: the pipe has no reader left.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "signoff.bot.cli", "manifest"],
            cwd=project,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (1, "")  # no 'error: ...BrokenPipeError'


def test_a_parameter_given_twice_is_refused_by_name(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("run", "access-request", "--flows", "flows.py", "--param", "user=ada")
    status, out, err = run_cli(capsys, *args, "--param", "days=3", "--param", "days=30")
    assert (status, out) == (2, "")
    assert err.startswith("error: Invalid value for '--param': 'days' is given twice")
    assert not (project / "ops.db").exists()  # refused before anything was stored


def test_a_parameter_left_out_says_how_to_give_it(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """'user: Field required' alone did not say that a parameter is given with --param."""
    status, out, err = run_cli(capsys, "run", "access-request", "--flows", "flows.py")
    assert (status, out) == (2, "")
    assert err.startswith("error: invalid parameters for flow 'access-request': user: Field")
    assert "; give --param user=VALUE" in err


def test_a_parameter_too_long_to_read_as_a_number_is_judged_by_the_flow(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("run", "access-request", "--flows", "flows.py", "--param", "user=ada")
    status, _, err = run_cli(capsys, *args, "--param", "days=" + "9" * 5000)
    assert status == 1
    assert err.startswith("error: invalid parameters for flow 'access-request': days: ")


def test_an_answer_naming_a_field_twice_is_refused_before_anything_is_stored(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    answer = '{"approve": true, "approve": false}'  # json.loads would keep the last
    status, out, err = run_cli(capsys, "runs", "resume", "abcd", "--input", answer, "--as", "bob")
    assert (status, out) == (2, "")
    assert err.startswith("error: Invalid value for '--input': the field 'approve' is given twice")
    for answer, why in [
        ('{"amount": Infinity}', "Infinity is not a JSON number"),
        ('{"amount": [1, NaN]}', "NaN is not a JSON number"),
        ('{"amount": ' + "9" * 5000 + "}", "a number has more than 4,300 digits"),
    ]:
        status, _, err = run_cli(capsys, "runs", "resume", "abcd", "--input", answer)
        assert status == 2 and err.startswith(f"error: Invalid value for '--input': {why}")


def test_a_bare_value_as_input_is_told_how_a_single_value_is_given(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--input '"hello"'`` for ``wait_for_input=str``: the error said only that an
    object was expected, not which one."""
    status, out, err = run_cli(capsys, "runs", "resume", "abcd", "--input", '"hello"')
    assert (status, out) == (2, "")
    assert err.strip() == (
        "error: Invalid value for '--input': expected a JSON object like "
        """'{"approved": true}', got "hello"; for a pause that asks for a single value, """
        """give it as '{"value": "hello"}' (see 'signoff runs resume --help')"""
    )


def test_a_wait_with_a_timeout_gives_up_with_124_and_leaves_the_run(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # No worker runs here, so the run stays queued.
    args = ("run", "access-request", "--flows", "flows.py", "--param", "user=ada")
    status, out, err = run_cli(capsys, *args, "--timeout", "0.2")
    run_id = out.split()[0]
    assert status == 124
    assert out.splitlines()[1] == f"{run_id} scheduled (Scheduled)"
    assert err == f"error: run {run_id} is still scheduled after 0.2s (--timeout)\n"
    status, out, err = run_cli(
        capsys, "runs", "wait", run_id, "--until", "paused", "--timeout", "0"
    )
    assert (status, err) == (124, f"error: run {run_id} is still scheduled after 0s (--timeout)\n")
    status, _, _ = run_cli(capsys, "runs", "cancel", run_id)
    status, out, err = run_cli(capsys, "runs", "wait", run_id, "--timeout", "60")
    assert (status, out.split()[1], err) == (1, "cancelled", "")  # ended: no need to wait


@pytest.mark.parametrize("seconds", ["nan", "inf", "-1", "1e400"])
@pytest.mark.parametrize(
    "command_line",
    [
        ("runs", "wait", "abc", "--timeout"),
        ("run", "access-request", "--flows", "flows.py", "--timeout"),
        ("runs", "resume", "abcd", "--input", "{}", "--verdict-timeout"),
    ],
)
def test_a_wait_for_no_number_of_seconds_is_refused_by_option(
    project: Path, capsys: pytest.CaptureFixture[str], command_line: tuple[str, ...], seconds: str
) -> None:
    """A wait of nan seconds never ended (and --verdict-timeout nan spun a core)."""
    status, out, err = run_cli(capsys, *command_line, seconds)
    assert (status, out) == (2, "")
    assert f"Invalid value for '{command_line[-1]}'" in err
    if seconds != "-1":  # named as typed ('1e400' was named as 'inf')
        assert f"'{seconds}' is not a number of seconds" in err


@pytest.mark.parametrize(
    ("command_line", "option"),
    [
        (("runs", "resume", "abcd", "--as", "a" * 201), "--as"),
        (("runs", "cancel", "abcd", "--as", ""), "--as"),
        (("runs", "reassign", "abcd", "--to", "U\x001"), "--to"),
        (
            ("run", "access-request", "--flows", "flows.py", "--started-by", "b" * 300),
            "--started-by",
        ),
    ],
)
def test_a_person_the_audit_trail_cannot_record_is_refused_by_option(
    project: Path, capsys: pytest.CaptureFixture[str], command_line: tuple[str, ...], option: str
) -> None:
    status, out, err = run_cli(capsys, *command_line)
    assert (status, out) == (2, "")
    assert err.startswith(f"error: Invalid value for '{option}': ")  # not "unexpected ValueError"
    assert not (project / "ops.db").exists()  # refused before anything was opened


def test_a_decision_is_handed_to_a_person_not_to_a_user_group(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--to S0ALI` (a group whose one member had answered) left a quorum nobody could
    finish; Slack's form refuses a group too."""
    status, out, err = run_cli(capsys, "runs", "reassign", "abcd", "--to", "S0ALI")
    assert (status, out) == (2, "")
    assert err.startswith(
        "error: Invalid value for '--to': S0ALI is a Slack user group; hand a decision to "
        "one person (a member's id)"
    )
    assert not (project / "ops.db").exists()


ODD_FLOWS = '''
from signoff.engine import flow


class Ticket:
    """A parameter type with no JSON schema: runs get it from code."""


@flow
def odd_params(ticket: Ticket, n: int = 1) -> int:
    return n
'''


def test_a_flow_whose_parameters_have_no_json_schema_is_listed_and_judged_by_its_types(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "odd.py").write_text(ODD_FLOWS)
    status, out, _ = run_cli(capsys, "flows", "list", "--flows", "odd.py", "--json")
    listed = {flow["name"]: flow for flow in json.loads(out)}
    assert status == 0 and listed["odd-params"]["parameters_schema"] is None
    status, _, err = run_cli(
        capsys, "run", "odd-params", "--flows", "odd.py", "--param", "ticket=1"
    )
    assert status == 1  # the flow's types refuse it, by name: not "unexpected Pydantic..."
    assert (
        err
        == "error: invalid parameters for flow 'odd-params': ticket: Input should be an instance of Ticket\n"
    )


def test_a_worker_warns_of_a_signoff_variable_that_is_no_setting(project: Path) -> None:
    """A typo in SIGNOFF_DATABASE_URL left a worker on the default database, silently:
    only 'config show' named it."""
    (project / ".env").write_text("SIGNOFF_POLL_SECOND=3\n")
    env = {**os.environ, "SIGNOFF_DATABSE_URL": "postgresql://db/signoff"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "signoff.bot.cli", "worker", "--flows", "flows.py"],
        cwd=project,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stderr is not None
        lines = []
        for line in worker.stderr:
            lines.append(line)
            if " worker_started " in line:
                break
    finally:
        worker.send_signal(signal.SIGTERM)
        wait_for(lambda: worker.poll() is not None, timeout=30)
    warnings = [line.split(" ", 4)[-1].strip() for line in lines if " setting_unknown " in line]
    assert warnings == [
        "SIGNOFF_DATABSE_URL is not a setting Signoff reads; did you mean SIGNOFF_DATABASE_URL?",
        "SIGNOFF_POLL_SECOND is not a setting Signoff reads; did you mean SIGNOFF_POLL_SECONDS?",
    ], lines


def test_every_command_warns_of_a_signoff_variable_that_is_no_setting(project: Path) -> None:
    """Only 'serve' and 'worker' warned: 'runs list' with SIGNOFF_DATABSE_URL set looked in
    the default database without a word of the typo."""
    (project / ".env").write_text("SIGNOFF_POLL_SECOND=3\n")
    env = {**os.environ, "SIGNOFF_DATABSE_URL": "postgresql://db/signoff"}
    listed = subprocess.run(
        [sys.executable, "-m", "signoff.bot.cli", "runs", "list"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # the default database, which is not there: the warning says why
    assert listed.returncode == 1
    assert "error: there is no database at" in listed.stderr
    warnings = [
        line.split(" ", 4)[-1].strip()
        for line in listed.stderr.splitlines()
        if "setting_unknown" in line
    ]
    assert warnings == [
        "SIGNOFF_DATABSE_URL is not a setting Signoff reads; did you mean SIGNOFF_DATABASE_URL?",
        "SIGNOFF_POLL_SECOND is not a setting Signoff reads; did you mean SIGNOFF_POLL_SECONDS?",
    ], listed.stderr
    shown = subprocess.run(
        [sys.executable, "-m", "signoff.bot.cli", "config", "show"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # 'config show' lists them among its problems, once, not as warnings too
    assert "setting_unknown" not in shown.stderr
    assert shown.stdout.count("SIGNOFF_DATABSE_URL is not a setting") == 1, shown.stdout


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.parametrize("levels", [101, 300, 500, 2000])
def test_an_answer_nested_too_deeply_is_refused_by_option_before_anything_is_stored(
    project: Path, capsys: pytest.CaptureFixture[str], levels: int
) -> None:
    # It failed inside the engine: "unexpected ValueError: Maximum serialization depth
    # exceeded" (300), a RecursionError (500, 2000), or was stored as a refused answer.
    answer = '{"approve": true, "note": ' + nested(levels) + "}"
    status, out, err = run_cli(capsys, "runs", "resume", "abcd", "--input", answer, "--as", "bob")
    assert (status, out) == (2, "")
    assert err.startswith(
        "error: Invalid value for '--input': JSON nested too deeply "
        "(more than 100 levels of lists and objects)"
    )
    assert not (project / "ops.db").exists()


@pytest.mark.parametrize("levels", [101, 1000, 5000])
def test_a_parameter_nested_too_deeply_is_refused_by_name(
    project: Path, capsys: pytest.CaptureFixture[str], levels: int
) -> None:
    # At 1000 levels it was passed on as text: "days: Input should be a valid integer".
    args = ("run", "access-request", "--flows", "flows.py", "--param", "user=ada")
    status, out, err = run_cli(capsys, *args, "--param", "days=" + nested(levels))
    assert (status, out) == (2, "")
    assert err.startswith(
        "error: Invalid value for '--param': days: JSON nested too deeply "
        "(more than 100 levels of lists and objects)"
    )
    # A parameter that takes text takes it as typed, however it nests.
    status, out, err = run_cli(
        capsys, "run", "access-request", "--flows", "flows.py", "--param", "user=" + nested(levels)
    )
    assert status == 0, err


def test_json_nested_up_to_the_limit_is_read() -> None:
    assert read_json(nested(MAX_NESTING)) is not None


def test_resume_of_a_run_suspended_from_outside_says_when_the_run_went_on_without_it(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A suspend asked from outside the flow is answered, and the flow runs again from the
    start; its code never asks for that input, so no verdict comes. `runs resume` waited
    out its 30 s for one, then asked whether a worker was running, though one had already
    run the flow to its end."""
    from signoff.engine import (
        Engine,
        RunState,
        Worker,
        flow,
        set_engine,
        suspend_flow_run,
        task,
    )
    from signoff.engine.input import RunInput

    class Go(RunInput):
        ok: bool

    entered, release = threading.Event(), threading.Event()

    @task
    def prepare() -> None:
        entered.set()
        release.wait(30)

    @task
    def deploy() -> str:
        return "deployed"

    @flow(name="ops-suspended-outside")
    def suspended_outside() -> str:
        prepare()
        return deploy()  # the task call where the suspend asked meanwhile takes effect

    engine = Engine(EngineSettings.load())
    previous = set_engine(engine)
    worker = Worker(engine)
    worker.start()
    try:
        run = engine.submit("ops-suspended-outside", {})
        assert entered.wait(30)
        suspend_flow_run(wait_for_input=Go, flow_run_id=run.id, key="hold")
        release.set()
        wait_for(lambda: engine.get_run(run.id).state is RunState.SUSPENDED, timeout=30)
        status, out, err = run_cli(
            capsys, "runs", "resume", run.id, "--as", "ada", "--input", '{"ok": true}'
        )
        assert (status, out) == (0, f"resumed {run.id} (input 'hold') as ada\n")
        assert err == "note: the run completed without its flow reading this answer\n"
        assert engine.get_run(run.id).result == "'deployed'"
    finally:
        release.set()
        worker.stop()
        set_engine(previous)
        engine.close()


def test_resume_of_a_run_that_fails_before_reading_the_answer_exits_1(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A deploy changed the flow while its run was suspended, and the re-run failed before
    it came to the question: `runs resume` said "note: ..." and exited 0, and a script
    took the answer for given."""
    from signoff.engine import Engine, RunState, RunSuspended, Worker, flow, set_engine
    from signoff.engine import suspend_flow_run as suspend
    from signoff.engine.input import RunInput

    class Go(RunInput):
        ok: bool

    executions: list[int] = []

    @flow(name="ops-fails-on-rerun")
    def fails_on_rerun() -> bool:
        executions.append(1)
        if len(executions) > 1:
            raise RuntimeError("the new release needs a region")
        answer = suspend(wait_for_input=Go)
        assert answer is not None
        return answer.ok

    engine = Engine(EngineSettings.load())
    previous = set_engine(engine)
    worker = Worker(engine)
    worker.start()
    try:
        with pytest.raises(RunSuspended) as suspended:
            fails_on_rerun()
        run_id = suspended.value.run_id
        status, out, err = run_cli(
            capsys, "runs", "resume", run_id, "--as", "ada", "--input", '{"ok": true}'
        )
        assert engine.get_run(run_id).state is RunState.FAILED
        assert (status, out) == (1, f"resumed {run_id} (input '1') as ada\n")
        # Among the worker's own lines (this process runs it too).
        assert (
            "error: the run failed without its flow reading this answer: RuntimeError: "
            "the new release needs a region"
        ) in err.splitlines()
    finally:
        worker.stop()
        set_engine(previous)
        engine.close()


def test_waiting_until_paused_stops_at_a_flow_the_run_called_and_names_that_run(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The outer run reads as running while the flow it called waits for input, and
    `runs wait --until paused` waited on until its timeout, then said the run was still
    running."""
    from signoff.engine import Engine, RunState, flow, pause_flow_run, set_engine
    from signoff.engine.input import RunInput
    from tests.support.running import start

    class Go(RunInput):
        ok: bool

    @flow(name="ops-approval")
    def approval() -> bool:
        return pause_flow_run(wait_for_input=Go).ok

    @flow(name="ops-release")
    def release() -> bool:
        return approval()

    engine = Engine(EngineSettings.load())
    previous = set_engine(engine)
    try:
        thread, box = start(release)
        inner = wait_for(lambda: engine.list_runs(states=[RunState.PAUSED]), what="a pause")[0]
        (outer,) = engine.list_runs(flow_name="ops-release")
        assert (inner.flow_name, outer.state) == ("ops-approval", RunState.RUNNING)
        status, out, _ = run_cli(
            capsys, "runs", "wait", outer.id, "--until", "paused", "--timeout", "60"
        )
        assert (status, out) == (0, f"{inner.id} paused (Paused: waiting for input '1')\n")
        engine.resume(inner.id, {"ok": True})
        thread.join(10)
        assert box == {"result": True}
    finally:
        set_engine(previous)
        engine.close()


@pytest.mark.parametrize(
    ("command_line", "option"),
    [
        (("runs", "resume", "abcd", "--input", '{"approved": true}', "--as", "S0OPS"), "--as"),
        (("runs", "cancel", "abcd", "--as", "S0OPS"), "--as"),
        (("run", "deploy", "--started-by", "S0OPS"), "--started-by"),
    ],
)
def test_a_user_group_does_not_act_as_a_person(
    project: Path, capsys: pytest.CaptureFixture[str], command_line: tuple[str, ...], option: str
) -> None:
    """`runs resume --as S0OPS` was one of a quorum's two different people (the group
    itself), and the trail named a group as who decided."""
    status, out, err = run_cli(capsys, *command_line)
    assert (status, out) == (2, "")
    assert err.startswith(
        f"error: Invalid value for '{option}': S0OPS is a Slack user group; name one person"
    )
    assert not (project / "ops.db").exists()


def test_a_name_in_capitals_is_not_taken_for_a_user_group(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--as takes an operator's name on trust; SAM is not a Slack id (those hold a digit)."""
    assert run_cli(capsys, "db", "upgrade")[0] == 0
    assert run_cli(capsys, "runs", "list", "--started-by", "SAM") == (0, "no runs\n", "")


@pytest.mark.parametrize(
    ("command_line", "option", "typed"),
    [
        (("runs", "resume", "abcd", "--input", "{}", "--as", "u0bob"), "--as", "u0bob"),
        (("runs", "cancel", "abcd", "--as", "U0bob"), "--as", "U0bob"),
        (("run", "deploy", "--started-by", "w0carol"), "--started-by", "w0carol"),
        (("runs", "reassign", "abcd", "--to", "u0bob"), "--to", "u0bob"),
        (("runs", "resume", "abcd", "--input", "{}", "--group", "s0ops"), "--group", "s0ops"),
    ],
)
def test_a_slack_id_in_lowercase_is_refused_naming_the_id_it_meant(
    project: Path,
    capsys: pytest.CaptureFixture[str],
    command_line: tuple[str, ...],
    option: str,
    typed: str,
) -> None:
    """`--as u0bob` matched nobody (Slack's ids are uppercase): the decision was refused
    as someone not among the approvers, or a hand-over went to nobody."""
    status, out, err = run_cli(capsys, *command_line)
    assert (status, out) == (2, "")
    assert err.startswith(f"error: Invalid value for '{option}': ")
    assert f"{typed!r} would match nobody: Slack user and group ids are uppercase" in err
    assert f"(did you mean {typed.upper()}?)" in err
    assert not (project / "ops.db").exists()


@pytest.mark.parametrize("name", ["user1", "sam2", "w", "SAM", "s3"])
def test_an_operator_name_with_a_digit_is_not_taken_for_a_slack_id(
    project: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """Only a U/W/S then a digit reads as a Slack id: `--as user1` is a login name."""
    assert run_cli(capsys, "db", "upgrade")[0] == 0
    assert run_cli(capsys, "runs", "list", "--started-by", name) == (0, "no runs\n", "")


def test_a_run_id_prefix_too_short_to_be_sure_of_is_refused_by_the_commands_that_act(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`runs cancel 1` cancelled the only run whose id starts with 1: a typo acted on it."""
    status, out, _ = run_cli(
        capsys, "run", "access-request", "--flows", "flows.py", "--param", "user=ada"
    )
    run_id = out.split()[0]
    assert status == 0
    for command_line in (
        ("runs", "cancel", run_id[:1]),
        ("runs", "resume", run_id[:3], "--input", "{}"),
        ("runs", "reassign", run_id[:2], "--to", "U0BOB"),
    ):
        typed = command_line[2]
        status, out, err = run_cli(capsys, *command_line)
        assert (status, out) == (2, ""), command_line
        assert err.startswith(
            f"error: Invalid value for 'RUN': '{typed}' is too short to act on a run: give at "
            "least 4 characters of its id (as runs are listed)"
        )
    # reading takes any unique prefix, as before: reading the wrong run changes nothing
    status, out, _ = run_cli(capsys, "runs", "show", run_id[:1])
    assert status == 0 and run_id in out
    status, out, _ = run_cli(capsys, "runs", "cancel", run_id[:4])
    assert status == 0 and out.startswith(f"cancelled {run_id} by ")
