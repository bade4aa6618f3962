"""Holding a database's writes from outside Signoff, as a busy or stuck writer would."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg


@contextmanager
def writes_held(database_url: str) -> Iterator[None]:
    """Hold every write to the database (reads go on): on SQLite the writers' lock file
    (Signoff's writers queue on it before they begin), on PostgreSQL the pauses table."""
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
        conn.execute("LOCK TABLE pauses IN EXCLUSIVE MODE")
        yield
        conn.rollback()
