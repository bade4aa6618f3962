"""Holding a database's writes from outside Signoff, as a busy or stuck writer would."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql
from sqlalchemy import Engine, text

from tests.support.waiting import wait_for


@contextmanager
def writes_held(database_url: str, table: str = "pauses") -> Iterator[None]:
    """Hold every write to the database (reads go on): on SQLite the writers' lock file
    (Signoff's writers queue on it before they begin), on PostgreSQL ``table``."""
    if database_url.startswith("sqlite"):
        path = database_url.removeprefix("sqlite:///")
        fd = os.open(f"{path}.write-lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)
        return
    dsn = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        conn.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(sql.Identifier(table)))
        yield
        conn.rollback()


def wait_until_blocked(db: Engine, what: str) -> None:
    """Wait until some session of the PostgreSQL database ``db`` waits for a lock another
    holds (a row the test holds, say)."""
    with db.connect() as watching:
        wait_for(
            lambda: watching.execute(
                text("SELECT count(*) FROM pg_locks WHERE NOT granted")
            ).scalar(),
            what=what,
        )
