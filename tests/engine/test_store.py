"""Schema migrations and settings."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from engine import ConfigurationError, Engine, EngineSettings
from engine.store.tables import metadata


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
