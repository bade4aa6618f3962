"""The database schema's revision, read and upgraded on purpose (``signoff db``)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from signoff.engine.errors import DatabaseNotFound, StoreError
from signoff.engine.settings import EngineSettings
from signoff.engine.store.database import create_db_engine, failure_reason, open_failure
from signoff.engine.store.revisions import (
    HEAD_REVISION,
    is_known_revision,
    schema_revisions,
    upgrade,
)


@dataclass(frozen=True)
class SchemaStatus:
    """Where a database's schema is, against the newest revision this version knows."""

    #: None for an empty database
    current: str | None
    head: str
    #: False for a SQLite file that is not there yet (reading it made nothing)
    exists: bool = True

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head

    @property
    def known(self) -> bool:
        """False when a newer Signoff upgraded the schema past what this version knows."""
        return self.current is None or is_known_revision(self.current)


def schema_status(settings: EngineSettings | None = None) -> SchemaStatus:
    """Read the schema revision of the configured database, changing nothing.

    Raises:
        StoreError: the database cannot be reached.
    """
    settings = settings or EngineSettings.load()
    try:
        db = create_db_engine(settings.database_url, create=False)
        try:
            return SchemaStatus(*schema_revisions(db))
        finally:
            db.dispose()
    except DatabaseNotFound:
        return SchemaStatus(None, HEAD_REVISION, exists=False)
    except (SQLAlchemyError, OSError) as exc:
        raise StoreError(open_failure(settings.database_url, exc)) from exc


def upgrade_schema(settings: EngineSettings | None = None) -> tuple[SchemaStatus, SchemaStatus]:
    """Bring the configured database's schema to the newest revision.

    Safe while other processes run it too (a lock serialises them). Stored runs, paused
    or suspended, are kept: migrations only add or widen.

    Returns:
        The status before and after.

    Raises:
        StoreError: the database cannot be reached or a migration failed.
    """
    settings = settings or EngineSettings.load()
    try:
        # Opening: a SQLite path whose folder cannot be made (a file is in the way, a
        # read-only location) fails here, with an OSError as often as a driver error.
        db = create_db_engine(settings.database_url)
        before = SchemaStatus(*schema_revisions(db))
    except (SQLAlchemyError, OSError) as exc:
        raise StoreError(open_failure(settings.database_url, exc)) from exc
    try:
        # Another process may have upgraded it while this one waited for the lock: what
        # this one found then says whether it upgraded anything.
        found = upgrade(db)
        return SchemaStatus(found, before.head), SchemaStatus(*schema_revisions(db))
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot upgrade the database: {failure_reason(exc)}") from exc
    except OSError as exc:  # the migration lock file beside a SQLite database
        raise StoreError(open_failure(settings.database_url, exc)) from exc
    finally:
        db.dispose()
