"""Schema migrations and settings."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
import sqlalchemy
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from signoff.engine import (
    ConfigurationError,
    Engine,
    EngineSettings,
    SchemaTooNew,
    flow,
    schema_status,
)
from signoff.engine.store.database import create_db_engine, failure_reason
from signoff.engine.store.revisions import HEAD_REVISION, schema_revisions
from signoff.engine.store.tables import metadata


def test_migrations_match_the_tables(engine: Engine) -> None:
    with engine.store.engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "include_name": lambda name, type_, _p: (
                    not (type_ == "table" and name == "apscheduler_jobs")
                )
            },
        )
        assert compare_metadata(context, metadata) == []


def test_the_known_head_is_the_newest_migration(engine: Engine) -> None:
    # An up-to-date database opens without alembic; that shortcut must name the real head.
    assert schema_revisions(engine.store.engine) == (HEAD_REVISION, HEAD_REVISION)


@flow(name="store-test-kept")
def kept_flow() -> None:
    return None


def test_a_schema_a_newer_signoff_upgraded_is_refused_by_name_and_left_as_it_is(
    engine: Engine, database_url: str
) -> None:
    kept = engine.submit("store-test-kept", {})
    engine.close()
    db = create_db_engine(database_url)
    with db.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0999'"))
    db.dispose()
    for migrate in (False, True):
        with pytest.raises(SchemaTooNew) as refused:
            Engine(EngineSettings.load(database_url=database_url), migrate=migrate)
        assert (refused.value.current, refused.value.head) == ("0999", HEAD_REVISION)
        assert "a newer Signoff upgraded it" in str(refused.value)
    status = schema_status(EngineSettings.load(database_url=database_url))
    assert (status.current, status.known, status.up_to_date) == ("0999", False, False)
    db = create_db_engine(database_url)
    with db.connect() as conn:
        assert conn.execute(text("SELECT id FROM runs")).scalars().all() == [kept.id]
    db.dispose()


def test_opening_an_up_to_date_database_does_not_load_alembic(tmp_path) -> None:
    url = f"sqlite:///{tmp_path}/up-to-date.db"
    Engine(EngineSettings.load(database_url=url)).close()
    opened = subprocess.run(
        [sys.executable, "-c", OPEN_AND_LIST_MODULES, url],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "alembic" not in opened.stdout.split()


OPEN_AND_LIST_MODULES = """
import sys
from signoff.engine import Engine, EngineSettings
Engine(EngineSettings.load(database_url=sys.argv[1])).close()
print(" ".join(sorted(name.split(".")[0] for name in sys.modules)))
"""


def test_opening_twice_is_harmless(make_engine) -> None:
    make_engine()
    second = make_engine()
    assert second.list_runs() == []


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (
            "postgresql://postgres@127.0.0.1:notaport/db",
            "is not a database URL: its port 'notaport' is not a number",
        ),
        (
            "postgresql://u:secret@[::1/db",
            "is not a database URL: its host '[::1' opens a [ that is never closed",
        ),
        ("postgresql://u@[::1]:x1/db", "is not a database URL: its port 'x1' is not a number"),
        ("postgresql+psycopg2://u@h/db", "names the driver 'psycopg2'; Signoff connects with"),
        ("postgresql+asyncpg://u@h/db", "names the driver 'asyncpg'"),
        ("sqlite+aiosqlite:///x.db", "names the driver 'aiosqlite'"),
        # Taken for in-memory databases ('sqlite:// with no file path') or for a scheme.
        (
            "sqlite://runs.db",
            "names 'runs.db' as a host, after two slashes; a SQLite file "
            "takes three: sqlite:///runs.db",
        ),
        (
            "sqlite://data/runs.db",
            "names 'data' as a host, after two slashes; a SQLite file takes three: "
            "sqlite:///data/runs.db",
        ),
        ("~/signoff/runs", "is a file path, not a URL: write sqlite:///~/signoff/runs"),
        (
            "/var/lib/signoff/runs.db",
            "is a file path, not a URL: write sqlite:////var/lib/signoff/runs.db",
        ),
        ("runs.db", "is a file path, not a URL: write sqlite:///runs.db"),
    ],
)
def test_a_database_url_signoff_cannot_use_is_refused_by_name(url: str, reason: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        EngineSettings.load(database_url=url)
    assert f"SIGNOFF_DATABASE_URL: {reason}" in str(refused.value)
    assert "secret" not in str(refused.value)  # a password is never echoed


def test_blanks_around_a_database_url_are_not_part_of_it(monkeypatch, tmp_path) -> None:
    # Kept, a trailing space named a new SQLite file 'runs.db ' beside the real one.
    monkeypatch.setenv("SIGNOFF_DATABASE_URL", f" sqlite:///{tmp_path}/runs.db \n")
    assert EngineSettings.load().database_url == f"sqlite:///{tmp_path}/runs.db"


def test_bad_settings_name_the_variable(monkeypatch) -> None:
    monkeypatch.setenv("SIGNOFF_DATABASE_URL", "mysql://x")
    with pytest.raises(
        ConfigurationError, match="SIGNOFF_DATABASE_URL: .*unsupported database URL scheme 'mysql'"
    ):
        EngineSettings.load()
    monkeypatch.setenv("SIGNOFF_DATABASE_URL", "sqlite:///x.db")
    monkeypatch.setenv("SIGNOFF_HEARTBEAT_SECONDS", "soon")
    with pytest.raises(ConfigurationError, match="SIGNOFF_HEARTBEAT_SECONDS"):
        EngineSettings.load()


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        # a worker would take over the runs of a process between two of its heartbeats
        (
            {"SIGNOFF_HEARTBEAT_SECONDS": "6"},
            r"SIGNOFF_HEARTBEAT_SECONDS \(6\) must be at most half SIGNOFF_OWNER_TIMEOUT_SECONDS \(10\)",
        ),
        # an infinite interval overflows the timers that wait on it
        ({"SIGNOFF_OWNER_TIMEOUT_SECONDS": "1e400"}, "SIGNOFF_OWNER_TIMEOUT_SECONDS: .*finite"),
        ({"SIGNOFF_POLL_SECONDS": "nan"}, "SIGNOFF_POLL_SECONDS: .*finite"),
        ({"SIGNOFF_POLL_SECONDS": "100000"}, "SIGNOFF_POLL_SECONDS: .*86400"),
    ],
)
def test_intervals_that_cannot_work_are_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], message: str
) -> None:
    monkeypatch.setenv("SIGNOFF_DATABASE_URL", "sqlite:///x.db")
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=message):
        EngineSettings.load()


def test_default_database_needs_no_setup(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    engine = Engine()
    try:
        assert engine.settings.database_url == f"sqlite:///{tmp_path}/.signoff/signoff.db"
        assert (tmp_path / ".signoff" / "signoff.db").exists()
    finally:
        engine.close()


@pytest.mark.parametrize("uri", ["file:{path}", "file://{path}", "file://localhost{path}"])
def test_a_sqlite_uri_opens_the_file_it_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, uri: str
) -> None:
    """Its lock files went to a folder literally called 'file:' (or 'file:/tmp/...')."""
    monkeypatch.chdir(tmp_path)  # where a folder called 'file:' would be made
    path = tmp_path / "my runs.db"
    url = f"sqlite:///{uri.format(path=urllib.parse.quote(str(path)))}?uri=true"
    engine = Engine(EngineSettings.load(database_url=url))
    try:
        kept = engine.submit("store-test-kept", {})
    finally:
        engine.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT id FROM runs").fetchall() == [(kept.id,)]
    made = {p.name for p in tmp_path.iterdir()}
    assert {"my runs.db", "my runs.db.write-lock", "my runs.db.migrate-lock"} <= made, made
    assert not [name for name in made if "file:" in name or "%20" in name], made


MIGRATE = """
import sys
from signoff.engine.store.database import create_db_engine
from signoff.engine.store.revisions import upgrade
engine = create_db_engine(sys.argv[1])
upgrade(engine)
engine.dispose()
"""


def test_processes_migrating_one_sqlite_file_at_once_all_succeed(tmp_path) -> None:
    # The lock beside the file (``filelock``: flock on POSIX, LockFileEx on Windows) lets one
    # process migrate while the others wait and then find the schema finished.
    url = f"sqlite:///{tmp_path / 'raced.db'}"
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", MIGRATE, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(3)
    ]
    outcomes = [(p.wait(timeout=120), p.stderr.read().decode()) for p in racers]
    for p in racers:
        p.stdout.close()
        p.stderr.close()
    assert [code for code, _ in outcomes] == [0, 0, 0], [err for _, err in outcomes]
    assert (tmp_path / "raced.db.migrate-lock").exists()
    engine = create_db_engine(url)
    try:
        current, head = schema_revisions(engine)
        assert current == head
    finally:
        engine.dispose()


def test_a_database_failure_is_told_without_the_statement_or_its_values(tmp_path: Path) -> None:
    """What a user sees of a failed write: the database's reason, not the INSERT with the
    run's parameters in it (nor SQLAlchemy's link)."""
    db = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with db.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE t (v TEXT NOT NULL)")
        with pytest.raises(sqlalchemy.exc.IntegrityError) as failed, db.begin() as connection:
            connection.execute(sqlalchemy.text("INSERT INTO t VALUES (:v)"), {"v": None})
        with pytest.raises(sqlalchemy.exc.OperationalError) as missing, db.begin() as connection:
            connection.execute(sqlalchemy.text("INSERT INTO nope VALUES (:v)"), {"v": "s3cret"})
    finally:
        db.dispose()
    assert failure_reason(failed.value) == "NOT NULL constraint failed: t.v"
    assert failure_reason(missing.value) == "no such table: nope"
    assert "s3cret" in str(missing.value)  # what SQLAlchemy's own message would have shown
