"""Schema migrations and settings."""

from __future__ import annotations

import subprocess
import sys

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from signoff.engine import ConfigurationError, Engine, EngineSettings
from signoff.engine.store.database import create_db_engine, schema_revisions
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


def test_opening_twice_is_harmless(make_engine) -> None:
    make_engine()
    second = make_engine()
    assert second.list_runs() == []


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


def test_default_database_needs_no_setup(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    engine = Engine()
    try:
        assert engine.settings.database_url == f"sqlite:///{tmp_path}/.signoff/signoff.db"
        assert (tmp_path / ".signoff" / "signoff.db").exists()
    finally:
        engine.close()


MIGRATE = """
import sys
from signoff.engine.store.database import create_db_engine, upgrade
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
