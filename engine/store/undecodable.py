"""Text SQLite holds that is not UTF-8, read so that the row holding it is named.

SQLite keeps whatever bytes it is given in a text column (``CAST(X'C3' AS TEXT)`` from its
shell), and its driver fails a whole read on one such value ("Could not decode to UTF-8
column ..."): every page of runs, or of the audit trail, holding it. A read that names the
rows it cannot read (``read_again_if_undecodable``) is made once more, and that once such
text comes back as ``NotUtf8`` bytes, for the code that makes rows into domain values to
name the row. Only then: every other read keeps the driver's own decoding, in C.

PostgreSQL refuses text that is not valid in the database's encoding when it is written,
so there this cannot happen, and nothing here runs.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection

from signoff.engine.errors import StoreError

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")
StoreT = TypeVar("StoreT")

#: the start of the message of the driver's error (CPython's Modules/_sqlite/cursor.c)
_DRIVER_MESSAGE = "Could not decode to UTF-8"
#: set while a read is made again with text that is not UTF-8 handed over as bytes
_lenient: ContextVar[bool] = ContextVar("signoff_lenient_text", default=False)


class NotUtf8(bytes):
    """A value of a SQLite text column whose bytes are not UTF-8 (read leniently)."""


class TextNotUtf8(StoreError):
    """A read met a SQLite text value that is not UTF-8 (the driver's error is the cause)."""


def is_not_utf8(exc: BaseException) -> bool:
    """``exc`` (a driver's error, or SQLAlchemy's around one) is SQLite's failure to decode."""
    driver = getattr(exc, "orig", exc)
    return type(driver).__name__ == "OperationalError" and str(driver).startswith(_DRIVER_MESSAGE)


class JsonNotJson(StoreError):
    """SQLite refused a statement that looks into a JSON column whose text is not JSON
    (``json_extract``: "malformed JSON"); the driver's error is the cause."""


def is_malformed_json(exc: BaseException) -> bool:
    """``exc`` (a driver's error, or SQLAlchemy's around one) is SQLite's ``json_extract``
    meeting text that is not JSON."""
    driver = getattr(exc, "orig", exc)
    return type(driver).__name__ == "OperationalError" and str(driver) == "malformed JSON"


def _lenient_text(value: bytes) -> str | bytes:
    try:
        return str(value, "utf-8")
    except UnicodeDecodeError:
        return NotUtf8(value)


def reading_leniently() -> bool:
    """Whether this read is the second, which hands text that is not UTF-8 as ``NotUtf8``."""
    return _lenient.get()


@contextmanager
def decoding(conn: Connection) -> Iterator[None]:
    """Within: a SQLite ``conn`` hands text that is not UTF-8 as ``NotUtf8``, when this read
    is made again for it; the pooled connection decodes as the driver does once more after."""
    driver: Any = conn.connection.driver_connection
    driver.text_factory = _lenient_text
    try:
        yield
    except UnicodeDecodeError as exc:
        # a JSON column's value, which SQLAlchemy decodes as it reads the row
        raise StoreError(f"database read failed: stored JSON is not UTF-8 text: {exc}") from exc
    finally:
        driver.text_factory = str


@contextmanager
def leniently() -> Iterator[None]:
    """Within: reads are made as a read made again is (``reading_leniently``), for a reader
    that reads a page again itself rather than through ``read_again_if_unreadable``."""
    token = _lenient.set(True)
    try:
        yield
    finally:
        _lenient.reset(token)


def first_not_utf8(row: Any) -> str | None:
    """The name of the first column of ``row`` holding text that is not UTF-8, if any."""
    for name, value in zip(row._fields, row, strict=True):
        if type(value) is NotUtf8:
            return str(name)
    return None


def read_again_if_undecodable(
    method: Callable[Concatenate[StoreT, P], R],
) -> Callable[Concatenate[StoreT, P], R]:
    """``method``, a read whose rows are checked for ``NotUtf8`` values as they become domain
    values, made once more when SQLite could not decode a value it read, with such values
    handed over as ``NotUtf8``."""
    return _read_again(method, values_too=False)


def read_again_if_unreadable(
    method: Callable[Concatenate[StoreT, P], R],
) -> Callable[Concatenate[StoreT, P], R]:
    """``read_again_if_undecodable``, for a read of a run's rows (the run, its pauses,
    tasks, log records, state history) that ``rows`` checks leniently (see ``lenient``):
    made once more also when a value it read is UTF-8 but not what its column holds
    (``ValueError``: text that is not JSON in a JSON column, a state that is none, a time
    that is not one, JSON not of the shape Signoff stores), for the row to be named."""
    return _read_again(method, values_too=True)


def _read_again(
    method: Callable[Concatenate[StoreT, P], R], *, values_too: bool
) -> Callable[Concatenate[StoreT, P], R]:
    caught: tuple[type[Exception], ...] = (
        (TextNotUtf8, ValueError) if values_too else (TextNotUtf8,)
    )

    @functools.wraps(method)
    def read(store: StoreT, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(store, *args, **kwargs)
        except caught as exc:
            # The error that follows names the row; this says which read met it.
            if isinstance(exc, TextNotUtf8):
                message, action = "stored text is not UTF-8", "read_text_not_utf8"
            else:
                message, action = "a stored value cannot be read", "read_value_unreadable"
            logger.info(
                f"{message}; reading again to name its row",
                extra={"action": action, "read": method.__name__, "error": str(exc)[:300]},
            )
        token = _lenient.set(True)
        try:
            return method(store, *args, **kwargs)
        finally:
            _lenient.reset(token)

    return read


__all__ = [
    "JsonNotJson",
    "NotUtf8",
    "TextNotUtf8",
    "decoding",
    "first_not_utf8",
    "is_malformed_json",
    "is_not_utf8",
    "leniently",
    "read_again_if_undecodable",
    "read_again_if_unreadable",
    "reading_leniently",
]
