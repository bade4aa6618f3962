"""The schema's revisions: which one a database is at, and upgrading it to the newest
(Alembic's migrations in ``migrations/``), once, whichever process gets there first."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock
from sqlalchemy import Connection, Engine, inspect, text

from signoff.engine.errors import (
    DatabaseNotFound,
    NotSignoffDatabase,
    SchemaOutdated,
    SchemaRevisionLost,
    SchemaTooNew,
)
from signoff.engine.store.database import is_signoff_revision, is_sqlite
from signoff.engine.store.sqlite_files import sqlite_file
from signoff.engine.store.writer import SqliteWriter

if TYPE_CHECKING:
    from alembic.config import Config

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
#: The newest migration in ``MIGRATIONS`` (a test holds the two together). A database at
#: this revision is opened without loading alembic, which costs every command a fraction of
#: a second; anything else goes through alembic.
HEAD_REVISION = "0013"
#: tables the first migration made, which no later one dropped: a database holding them all
#: is Signoff's, whatever else it holds
_FIRST_TABLES = frozenset({"runs", "pauses", "events", "task_runs", "run_metadata"})
#: an arbitrary constant that names the lock serialising migrations on PostgreSQL
_MIGRATION_LOCK = 727_361_001


def _alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.cache
def _known_revisions() -> frozenset[str]:
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(_alembic_config())
    return frozenset(script.revision for script in scripts.walk_revisions())


def is_known_revision(revision: str) -> bool:
    """Whether ``revision`` is one of this version's migrations (not a newer version's)."""
    return revision in _known_revisions()


@contextmanager
def _sqlite_migration_lock(engine: Engine) -> Iterator[None]:
    """SQLite has no advisory locks: serialise migrating processes with a lock file
    (``filelock``: flock on POSIX, LockFileEx on Windows). The migration also takes the
    writers' turn that Signoff's processes queue on (``SqliteWriter``): holding SQLite's
    own lock alone, a replica's writes got their turn and then waited in SQLite's busy
    handler, where a write bounded in time (``claim_once(within=)``) cannot give up."""
    database = sqlite_file(engine.url)
    if database is None:
        yield
        return
    writer = SqliteWriter(str(database))
    try:
        with FileLock(f"{database}.migrate-lock"), writer.turn():
            yield
    finally:
        writer.close()


def schema_revisions(engine: Engine) -> tuple[str | None, str]:
    """The database's schema revision (None for an empty database) and the newest one.

    Raises:
        NotSignoffDatabase: the database is another application's (``check_ours``).
    """
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
        check_ours(connection, current)
        head = ScriptDirectory.from_config(_alembic_config(connection)).get_current_head()
    assert head is not None, "the migrations folder has no head revision"
    return current, head


def check_ours(connection: Connection, revision: str | None) -> None:
    """Refuse a database that another application keeps: one whose migration revision is
    not of Signoff's numbering (``0009``; another tool's alembic writes hashes), or a SQLite
    file that has tables but no Signoff schema. (A PostgreSQL database may hold other
    applications' tables beside Signoff's.)

    Raises:
        NotSignoffDatabase: naming what was found.
        SchemaRevisionLost: Signoff's tables are there, but not the revision they are at.
    """
    if revision is not None and not is_signoff_revision(revision):
        raise NotSignoffDatabase(f"its schema is at revision {revision!r}, another tool's")
    if revision is None:
        tables = sorted(inspect(connection).get_table_names())
        ours = [t for t in tables if t in _FIRST_TABLES]
        if len(ours) == len(_FIRST_TABLES):
            raise SchemaRevisionLost(ours)
        if tables and connection.dialect.name == "sqlite":
            shown = ", ".join(tables[:3]) + (", ..." if len(tables) > 3 else "")
            raise NotSignoffDatabase(
                f"the SQLite file holds tables ({shown}) and no Signoff schema"
            )


def upgrade(engine: Engine) -> str | None:
    """Bring the schema to the newest migration; safe to call from several processes at once.

    Returns:
        The revision this call found once it held the migration lock (None: an empty
        database): the newest one when another process upgraded it meanwhile.
    """
    return ensure_schema(engine, migrate=True)


def ensure_schema(engine: Engine, *, migrate: bool, create: bool = True) -> str | None:
    """Give an empty database the schema (unless ``create`` is off: ``DatabaseNotFound``),
    and an outdated one too when ``migrate``; otherwise refuse an outdated one
    (``SchemaOutdated``). One a newer Signoff upgraded is refused either way
    (``SchemaTooNew``).

    The check runs under the migration lock, so a process that starts while another is
    migrating waits for it and then sees the finished schema, not a half-migrated one. A
    database already at ``HEAD_REVISION`` needs neither: its last migration has committed.

    Returns:
        The revision found under the lock, before any migration this call made.
    """
    with engine.connect() as connection:
        stored = _stored_revision(connection)
        if stored == HEAD_REVISION:
            return HEAD_REVISION
        if is_sqlite(engine) or (stored is None and not create):
            # Refused before the lock is taken: its file, beside another application's
            # database, would be something written there.
            check_ours(connection, stored)
        if stored is None and not create:
            # A command that only reads or acts on stored runs, pointed at the wrong
            # database, must not give it Signoff's tables.
            raise DatabaseNotFound(engine.url.render_as_string(hide_password=True), empty=True)
    if is_sqlite(engine):
        with _sqlite_migration_lock(engine):
            return _ensure_schema(engine, migrate)
    return _ensure_schema(engine, migrate)


def _stored_revision(connection: Connection) -> str | None:
    if not inspect(connection).has_table("alembic_version"):
        return None
    revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return None if revision is None else str(revision)


def _ensure_schema(engine: Engine, migrate: bool) -> str | None:
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    # SQLite: a migration takes the write lock as it begins (BEGIN IMMEDIATE, waiting its
    # turn): a deferred transaction that read the revision fails with "database is locked",
    # without waiting, once another process (an old replica still running) commits a write.
    with engine.connect().execution_options(sqlite_write=migrate) as connection:
        if not is_sqlite(engine):
            connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _MIGRATION_LOCK})
            connection.commit()
        try:
            config = _alembic_config(connection)
            current = MigrationContext.configure(connection).get_current_revision()
            check_ours(connection, current)
            head = ScriptDirectory.from_config(config).get_current_head()
            if current is not None and not is_known_revision(current):
                # Upgrading or running on it would fail in ways that name neither version.
                raise SchemaTooNew(str(current), str(head))
            if current != head:
                if current is not None and not migrate:
                    raise SchemaOutdated(str(current), str(head))
                command.upgrade(config, "head")
                connection.commit()
        finally:
            if not is_sqlite(engine):
                connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _MIGRATION_LOCK})
                connection.commit()
    logger.debug("schema up to date", extra={"action": "schema_upgraded"})
    return None if current is None else str(current)


__all__ = [
    "HEAD_REVISION",
    "MIGRATIONS",
    "check_ours",
    "ensure_schema",
    "is_known_revision",
    "schema_revisions",
    "upgrade",
]
