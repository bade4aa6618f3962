"""Which file a SQLite URL names: a path (``sqlite:///runs.db``) or a SQLite URI
(``sqlite:///file:runs.db?mode=ro&uri=true``), whose ``file:`` and parameters are no part
of the file's name.

Everything the store keeps beside the file (its write lock, checkpoints, wake-up socket,
migration lock) finds the file here, so that a URI never becomes a file or folder
literally called ``file:...``.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, unquote

from sqlalchemy.engine import URL
from sqlalchemy.util import asbool

__all__ = ["opened_read_only", "sqlite_file", "sqlite_url"]

#: query arguments SQLAlchemy hands to Python's sqlite3 itself; any other is a parameter
#: of SQLite's own (``mode``, ``cache``, ``immutable``...), which SQLite reads only in a URI
_DRIVER_ARGUMENTS = frozenset(
    {"uri", "timeout", "isolation_level", "detect_types", "check_same_thread", "cached_statements"}
)


def _argument(url: URL, name: str) -> str | None:
    value = url.query.get(name)
    return value[-1] if isinstance(value, tuple) else value


def _is_uri(url: URL) -> bool:
    value = _argument(url, "uri")
    return value is not None and bool(asbool(value))


def sqlite_file(url: URL) -> Path | None:
    """The file a SQLite URL names ('~' expanded); None for an in-memory database
    (``sqlite://``, ``sqlite:///:memory:``, ``file::memory:``, ``mode=memory``)."""
    database = url.database or ""
    if _is_uri(url) and database.startswith("file:"):
        if _argument(url, "mode") == "memory":
            return None
        name = database.removeprefix("file:")
        if name.startswith("//"):  # file://localhost/path or file:///path
            name = "/" + name[2:].partition("/")[2]
        database = unquote(name)
    if database in ("", ":memory:"):
        return None
    return Path(database).expanduser()


def sqlite_url(url: URL) -> URL:
    """``url`` as the store opens it: '~' expanded (SQLite itself would take it for a
    folder of that name), and SQLite's own parameters (``?mode=ro``) in a URI, the only
    place SQLite reads them; without ``uri=true`` SQLAlchemy drops them with a warning, and
    a file meant to be read-only would be written."""
    path = sqlite_file(url)
    if path is None:
        return url
    if not _is_uri(url) and _DRIVER_ARGUMENTS.issuperset(url.query):
        return url.set(database=str(path))
    return url.set(database=f"file:{quote(str(path))}", query={**url.query, "uri": "true"})


def opened_read_only(url: URL) -> bool:
    """Whether the URL asks SQLite to open its file read-only (``mode=ro``, ``immutable``)."""
    immutable = _argument(url, "immutable")
    return _argument(url, "mode") == "ro" or (immutable is not None and bool(asbool(immutable)))
