"""Persistence: the only package that talks to the database.

``SqlStore`` serves SQLite and PostgreSQL alike and hands out the domain values of
``engine.runs``; table classes never leave this package.
"""

from __future__ import annotations

from signoff.engine.store.sql import SqlStore

__all__ = ["SqlStore"]
