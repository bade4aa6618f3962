"""PostgreSQL: a write bounded in time (``StoreBase._write(within=)``) waits for no lock
past its deadline, and a lock wait cut short is told apart from other failures, so that
the caller hears ``TurnNotGiven`` (nothing was written) rather than a store error."""

from __future__ import annotations

import time

from sqlalchemy import Connection, text
from sqlalchemy.exc import SQLAlchemyError

from signoff.engine.store.prepared import Prepared
from signoff.engine.store.turns import TurnNotGiven

#: PostgreSQL: how long each lock this transaction waits for may take (``_write(within=)``)
_LOCK_TIMEOUT = Prepared(
    text("SELECT set_config('lock_timeout', :timeout, true)"), dialect="postgresql"
)
#: PostgreSQL's lock_not_available: a lock wait passed ``lock_timeout``
_LOCK_NOT_AVAILABLE = "55P03"


def bound_lock_waits(conn: Connection, ends: float) -> None:
    """PostgreSQL: the transaction on ``conn`` waits for no lock past ``ends`` (a
    ``time.monotonic()``); ``TurnNotGiven`` if that has passed already."""
    left = ends - time.monotonic()
    if left <= 0:
        raise TurnNotGiven()
    # Whole milliseconds, at least one: a lock_timeout of 0 waits for ever.
    _LOCK_TIMEOUT.execute(conn, {"timeout": f"{max(1, int(left * 1000))}ms"})


def lock_timed_out(exc: SQLAlchemyError) -> bool:
    """Whether PostgreSQL gave up waiting for a lock (``bound_lock_waits``)."""
    return getattr(getattr(exc, "orig", None), "sqlstate", None) == _LOCK_NOT_AVAILABLE
