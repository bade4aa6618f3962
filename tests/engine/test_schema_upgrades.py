"""``signoff db upgrade`` on a database with runs in it, as operators run it: while an old
replica still writes, and again after an upgrade was killed part-way."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from signoff.engine import (
    DatabaseBusy,
    Engine,
    EngineSettings,
    flow,
    schema_status,
    upgrade_schema,
)
from signoff.engine.store.database import create_db_engine, write_connection
from signoff.engine.store.revisions import HEAD_REVISION, _alembic_config


@flow(name="upgrade-kept")
def upgrade_kept() -> int:
    return 7


def stored_at(database_url: str, revision: str) -> None:
    db = create_db_engine(database_url)
    with write_connection(db) as conn:
        command.downgrade(_alembic_config(conn), revision)
        conn.commit()
    db.dispose()


@contextmanager
def old_replica_writes_before_the_first_change(path: Path) -> Iterator[list[str]]:
    """As the migration sends its first change to the schema, another process (an old
    replica's heartbeat) writes to the file, or finds the migration holding the write lock
    and would wait its turn. Yields what it found."""
    found: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if found or not statement.lstrip().upper().startswith(("CREATE", "ALTER", "DROP")):
            return
        replica = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            replica.execute("UPDATE runs SET updated_at = updated_at")
            found.append("wrote")
        except sqlite3.OperationalError as exc:
            found.append(str(exc))
        finally:
            replica.close()

    sa.event.listen(sa.Engine, "before_cursor_execute", before)
    try:
        yield found
    finally:
        sa.event.remove(sa.Engine, "before_cursor_execute", before)


# PostgreSQL's migration takes each lock as it goes, waiting for it.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_upgrade_while_an_old_replica_writes_to_sqlite_waits_its_turn(
    tmp_path: Path, make_engine: Any, database_url: str
) -> None:
    engine: Engine = make_engine()
    run_id = engine.submit("upgrade-kept").id
    engine.close()
    stored_at(database_url, "0010")
    settings = EngineSettings.load(database_url=database_url)
    with old_replica_writes_before_the_first_change(tmp_path / "signoff.db") as found:
        # Before: "cannot upgrade the database: database is locked", at once.
        before, after = upgrade_schema(settings)
    assert found == ["database is locked"]  # the replica waits for the migration
    assert (before.current, after.current) == ("0010", HEAD_REVISION)
    reopened: Engine = make_engine()
    assert reopened.get_run(run_id).flow_name == "upgrade-kept"


KILLED_AT_AN_INDEX = """
import os, signal, sys
from alembic.operations import Operations
from signoff.engine import EngineSettings, upgrade_schema

made = Operations.create_index

def create_index(self, name, *args, **kwargs):
    made(self, name, *args, **kwargs)
    if name == sys.argv[2]:
        os.kill(os.getpid(), signal.SIGKILL)

Operations.create_index = create_index
upgrade_schema(EngineSettings.load(database_url=sys.argv[1]))
"""


def test_an_upgrade_killed_part_way_is_undone_and_runs_again(
    make_engine: Any, database_url: str
) -> None:
    engine: Engine = make_engine()
    run_id = engine.submit("upgrade-kept").id
    engine.close()
    stored_at(database_url, "0010")
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_AT_AN_INDEX, database_url, "ix_pauses_waiting_run"],
        capture_output=True,
        timeout=120,
    )
    assert killed.returncode == -9, killed.stderr
    settings = EngineSettings.load(database_url=database_url)
    # Revisions 0011 and the half of 0012 it made are gone with it: none is half-applied.
    assert schema_status(settings).current == "0010"
    before, after = upgrade_schema(settings)
    assert (before.current, after.current) == ("0010", HEAD_REVISION)
    reopened: Engine = make_engine()
    assert reopened.get_run(run_id).flow_name == "upgrade-kept"
    assert reopened.verify_audit().ok


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_signoff_replica_that_must_answer_quickly_hears_an_upgrade_holds_sqlite(
    tmp_path: Path, make_engine: Any, database_url: str
) -> None:
    """A SQLite upgrade took SQLite's lock but not the writers' turn that Signoff's
    processes queue on: a replica's bounded claim (a '/runs' typed meanwhile) got the turn,
    then waited in SQLite's busy handler for 30 s and failed as 'database is locked'. It
    now hears at once that another writer holds the database."""
    replica: Engine = make_engine()
    replica.submit("upgrade-kept")
    stored_at(database_url, "0012")
    heard: list[BaseException] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if heard or not statement.lstrip().upper().startswith(("CREATE", "ALTER", "DROP")):
            return
        started = time.monotonic()
        with pytest.raises(DatabaseBusy) as busy:
            replica.claim_once("slack:request:typed-during-the-upgrade", 60, within=0.3)
        heard.append(busy.value)
        assert time.monotonic() - started < 5

    sa.event.listen(sa.Engine, "before_cursor_execute", before)
    try:
        before_upgrade, after = upgrade_schema(EngineSettings.load(database_url=database_url))
    finally:
        sa.event.remove(sa.Engine, "before_cursor_execute", before)
    assert len(heard) == 1
    assert (before_upgrade.current, after.current) == ("0012", HEAD_REVISION)
    # Once the upgrade is done, the same claim goes through.
    assert replica.claim_once("slack:request:typed-during-the-upgrade", 60, within=0.3)
