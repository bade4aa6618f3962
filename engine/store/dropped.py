"""Store calls made once more when the server dropped their connection (a restart, a
failover, a killed session), so that the person asking sees the answer, not an error.

A pooled connection that sat idle is pinged before use (``database``), and once one call
met a dropped connection every other pooled one is pinged too; what is left is the first
call that meets the drop. What may be made again:

- a read (``read_again_if_dropped``): it changes nothing;
- a write whose connection dropped before its COMMIT was sent
  (``write_again_if_dropped``): the server rolls back a transaction whose session ends, so
  nothing of it was stored. A write whose COMMIT met the drop may or may not have been
  applied; writing it again could store it twice, so it fails (``database write
  failed``), as does a statement run on its own without a transaction (autocommit),
  which the server may have run before the connection went.

Example::

    class Queries(StoreBase):
        @write_again_if_dropped
        def claim(self, key: str) -> bool:
            with self._write() as conn:  # raises NotCommitted when it may be written again
                ...
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from signoff.engine.errors import DatabaseUnavailable, StoreError
from signoff.engine.store.database import unreachable

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")
#: the store whose method it is
StoreT = TypeVar("StoreT")


class NotCommitted(StoreError):
    """A write failed because the server dropped its connection before its COMMIT was sent:
    the server rolled it back, and it may be written again. (A ``StoreError`` like any other
    to a caller that does not write again.)"""


def _dropped(exc: StoreError) -> bool:
    """``exc`` came from a connection the server dropped (the pool has replaced it)."""
    cause = exc.__cause__
    return isinstance(cause, DBAPIError) and cause.connection_invalidated


def read_again_if_dropped(
    method: Callable[Concatenate[StoreT, P], R],
) -> Callable[Concatenate[StoreT, P], R]:
    """``method``, a read, run once more on another connection when the one it had was
    dropped by the server."""

    @functools.wraps(method)
    def read(store: StoreT, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(store, *args, **kwargs)
        except StoreError as exc:
            if not _dropped(exc):
                raise
            # The pool's other connections are checked or replaced already (``Prepared``,
            # or Core's own handling of a disconnect): the second try gets a live one.
            logger.warning(
                "database connection dropped; reading again on another",
                extra={"action": "read_retried", "read": method.__name__, "error": str(exc)},
            )
        return method(store, *args, **kwargs)

    return read


def write_again_if_dropped(
    method: Callable[Concatenate[StoreT, P], R],
) -> Callable[Concatenate[StoreT, P], R]:
    """``method``, a write whose every effect is in its transaction, run once more on another
    connection when the one it had was dropped before its COMMIT was sent (``NotCommitted``).
    Its arguments must be readable twice (no iterators)."""

    @functools.wraps(method)
    def write(store: StoreT, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(store, *args, **kwargs)
        except NotCommitted as exc:
            logger.warning(
                "database connection dropped before the commit; writing again on another",
                extra={"action": "write_retried", "write": method.__name__, "error": str(exc)},
            )
        return method(store, *args, **kwargs)

    return write


def failed_write(message: str, exc: SQLAlchemyError, *, commit_sent: bool) -> StoreError:
    """The error for a write transaction that failed with ``exc`` (raise it ``from exc``):
    ``NotCommitted`` when the server dropped the connection before the COMMIT was sent;
    ``DatabaseUnavailable`` when no server could be reached to begin with."""
    dropped = isinstance(exc, DBAPIError) and exc.connection_invalidated
    if dropped and not commit_sent:
        return NotCommitted(message)
    if not commit_sent and unreachable(exc):
        return DatabaseUnavailable(message)
    return StoreError(message)


__all__ = [
    "NotCommitted",
    "failed_write",
    "read_again_if_dropped",
    "write_again_if_dropped",
]
