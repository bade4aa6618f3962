"""Opening the database: URL normalisation, SQLite tuning, pooled connections kept alive,
and failures in one line. (The schema's revisions: ``revisions``.)"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, InvalidatePoolError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from signoff.engine.errors import (
    DatabaseNotFound,
)
from signoff.engine.store.checkpoints import BACKSTOP_PAGES
from signoff.engine.store.sqlite_files import opened_read_only, sqlite_file, sqlite_url

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)

#: A pooled PostgreSQL connection returned to the pool this recently is handed out without
#: a liveness check (HikariCP skips its check within the same 0.5 s). Under load no
#: transaction pays the extra round trip; a connection that sat idle, which a server restart
#: or an idle-timeout on the network may have cut, is pinged first and replaced if dead.
PING_AFTER_IDLE_SECONDS = 0.5
#: How long a new PostgreSQL connection may take before it fails, unless the URL says
#: (``?connect_timeout=``). libpq waits for ever: a server behind a firewall that drops
#: packets, or one that hangs, held ``serve`` at start with nothing logged, and a health
#: check or an outage's retry for as long as it lasted.
CONNECT_TIMEOUT_SECONDS = 10
#: libpq settings every PostgreSQL connection gets unless its URL gives its own: the
#: connect timeout above, and how soon a peer that vanished without a word (a failover, a
#: NAT or firewall that dropped the flow) is noticed. The system's default keepalive idle
#: time is two hours, so a query or a LISTEN on such a connection hung that long;
#: ``tcp_user_timeout`` (ms) bounds a send the peer never acknowledges.
PG_CONNECTION_DEFAULTS: dict[str, int] = {
    "connect_timeout": CONNECT_TIMEOUT_SECONDS,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
}
_BEGIN_WRITE = "BEGIN IMMEDIATE"
_BEGIN_READ = "BEGIN DEFERRED"


def normalise_url(url: str) -> str:
    """Point PostgreSQL URLs at the psycopg 3 driver, which is the one we ship."""
    parsed = make_url(url)
    if parsed.drivername in {"postgresql", "postgres"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


#: How a JSON column's value becomes text: standard JSON only. Python's ``json`` writes
#: ``Infinity`` and ``NaN``, which PostgreSQL refuses and other readers of a SQLite file
#: cannot parse; the engine's checks refuse such values by name before they get here.
#: One encoder for every value: ``json.dumps`` given any option builds a new one per call.
json_text = json.JSONEncoder(allow_nan=False).encode


def create_db_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 40,
    ping_after_idle: float = PING_AFTER_IDLE_SECONDS,
    create: bool = True,
) -> Engine:
    """Create a SQLAlchemy engine tuned for many short transactions from several threads.

    ``pool_size`` and ``max_overflow`` size PostgreSQL's connection pool (per process);
    a pooled connection idle for ``ping_after_idle`` seconds or more is pinged before use.
    ``create=False``: a SQLite file that is not there is not made (``DatabaseNotFound``),
    nor its folder; nor is an in-memory database, which would be new and empty.
    """
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        # Last in, first out: the connections in use stay warm (no ping), and those beyond
        # what the load needs sit idle until pinged, rather than every one going cold in turn.
        waits = pg_connection_options(url)
        engine = create_engine(
            url,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_use_lifo=True,
            json_serializer=json_text,
            connect_args=waits,
        )
        _ping_idle_connections(engine, ping_after_idle)
        _times_read_in_utc(engine)
        return engine

    kwargs: dict[str, Any] = {
        "connect_args": {"check_same_thread": False, "timeout": 30},
        "json_serializer": json_text,
    }
    path = sqlite_file(parsed)
    if path is None:
        if not create:
            raise DatabaseNotFound(":memory:")
        kwargs["poolclass"] = StaticPool
    else:
        if not create and not path.exists():
            raise DatabaseNotFound(str(path.absolute()))
        path.parent.mkdir(parents=True, exist_ok=True)
        url = sqlite_url(parsed).render_as_string(hide_password=False)
        kwargs["pool_size"] = 20
        kwargs["max_overflow"] = 40
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _tune(dbapi_connection: Any, _record: Any) -> None:
        # We issue BEGIN ourselves (below) so that writers can take the lock up front.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # WAL is a property of the file, and switching to it rewrites the file's header:
        # another application's file is left in its own mode (every command refuses it,
        # after connecting, by ``revisions.check_ours``).
        if not _foreign_sqlite(cursor):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        # Checkpoints run on a thread of their own (store.checkpoints); a commit does one
        # only past this backstop.
        cursor.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # A deferred transaction that reads and then writes can fail with SQLITE_BUSY
        # without waiting; BEGIN IMMEDIATE takes the write lock first and honours busy_timeout.
        sql = _BEGIN_WRITE if conn.get_execution_options().get("sqlite_write") else _BEGIN_READ
        # On the driver's connection: Core's execute path costs more than BEGIN itself.
        driver = conn.connection.driver_connection
        try:
            driver.execute(sql)  # type: ignore[union-attr]
        except engine.dialect.loaded_dbapi.Error as exc:
            # As Core does: a connection that is gone is not used again.
            dead = engine.dialect.is_disconnect(exc, driver, None)
            if dead:
                conn.invalidate(exc)
            raise DBAPIError.instance(
                sql,
                None,
                exc,
                engine.dialect.loaded_dbapi.Error,
                dialect=engine.dialect,
                connection_invalidated=dead,
            ) from exc

    return engine


def is_signoff_revision(revision: str) -> bool:
    """Whether a migration revision is of Signoff's numbering (``0009``); another tool's
    alembic writes hashes."""
    return revision.isdigit() and len(revision) == 4


def _foreign_sqlite(cursor: Any) -> bool:
    """Whether the SQLite file ``cursor`` reads holds tables but no Signoff schema, or a
    schema at another tool's revision: what ``revisions.check_ours`` refuses, read with
    the driver's cursor as the connection is being made."""
    tables = {
        row[0] for row in cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    if not tables:
        return False
    if "alembic_version" not in tables:
        return True
    revisions = [row[0] for row in cursor.execute("SELECT version_num FROM alembic_version")]
    return not revisions or not all(is_signoff_revision(str(r)) for r in revisions)


class _IdleCheck:
    """When a pooled connection is pinged at checkout: after sitting idle ``after``
    seconds, or after a call found another connection dropped (``distrust``), since a
    server that dropped one may have dropped them all."""

    def __init__(self, after: float) -> None:
        self.after = after
        #: connections idle since before this are pinged whatever their idle time
        self.distrusted_at = 0.0

    def wanted(self, idle_since: float) -> bool:
        return time.monotonic() - idle_since >= self.after or idle_since < self.distrusted_at


#: each PostgreSQL engine's check (weakly: an engine's pool goes with it)
_IDLE_CHECKS: weakref.WeakKeyDictionary[Engine, _IdleCheck] = weakref.WeakKeyDictionary()


def pg_connection_options(url: str) -> dict[str, int]:
    """``PG_CONNECTION_DEFAULTS`` that PostgreSQL ``url`` does not set itself, as keyword
    arguments to ``psycopg.connect`` (the pool's connections and the LISTEN one alike)."""
    given = make_url(url).query
    return {name: value for name, value in PG_CONNECTION_DEFAULTS.items() if name not in given}


def _times_read_in_utc(engine: Engine) -> None:
    """Read PostgreSQL's times back in UTC, whatever the session's ``TimeZone`` (the
    server's or database's setting, ``PGTZ``): psycopg hands them back in that zone, and
    the audit chain hashes a time as the text of its UTC form, so a record read as
    ``16:56-05:00`` failed ``audit verify`` untouched, and the CLI showed local times
    labelled UTC."""
    from psycopg.types.datetime import TimestamptzBinaryLoader, TimestamptzLoader

    class _UtcText(TimestamptzLoader):
        def load(self, data: Any) -> Any:
            return super().load(data).astimezone(UTC)

    class _UtcBinary(TimestamptzBinaryLoader):
        def load(self, data: Any) -> Any:
            return super().load(data).astimezone(UTC)

    @event.listens_for(engine, "connect")
    def _in_utc(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.adapters.register_loader("timestamptz", _UtcText)
        dbapi_connection.adapters.register_loader("timestamptz", _UtcBinary)


def _ping_idle_connections(engine: Engine, after: float) -> None:
    """Check a pooled connection's liveness at checkout only when it sat idle ``after``
    seconds, or was pooled before another one was found dropped (``pool_pre_ping`` checks
    every checkout: a round trip per transaction)."""
    dialect = engine.dialect
    check = _IDLE_CHECKS[engine] = _IdleCheck(after)

    @event.listens_for(engine, "checkin")
    def _idle_from(dbapi_connection: Any, record: Any) -> None:
        if dbapi_connection is not None:
            record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or not check.wanted(idle_since):
            return  # new, or in use moments ago
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            # The pool replaces the connection (and, when the server went away, every
            # connection made before now) and hands out a new one.
            dead = dialect.is_disconnect(exc, dbapi_connection, None)
            error = InvalidatePoolError if dead else DisconnectionError
            raise error(f"pooled connection failed its ping: {exc}") from exc


def distrust_pooled_connections(engine: Engine) -> None:
    """Ping every connection now in ``engine``'s pool before its next use: a call just
    met one the server had dropped. Without this, those used within the idle time would
    be handed out unchecked, and a server restart would fail one call per connection."""
    check = _IDLE_CHECKS.get(engine)
    if check is not None:
        check.distrusted_at = time.monotonic()


class HeldConnection:
    """One connection kept between uses, for work that one thread at a time does (the
    caller serialises ``use``); a connection that died, or failed a use, is replaced.

    Example::

        events = HeldConnection(engine.connect)
        with lock, events.use() as conn:
            ...
        events.close()
    """

    def __init__(self, connect: Callable[[], Connection]) -> None:
        self._connect = connect
        self._connection: Connection | None = None

    @property
    def current(self) -> Connection | None:
        """The connection held now, if any."""
        return self._connection

    @contextmanager
    def use(self) -> Iterator[Connection]:
        held = self._connection
        if held is None or held.closed or held.invalidated:
            held = self._connection = self._connect()
        try:
            yield held
        except SQLAlchemyError:
            # Rare, and the connection's state is unknown: the next use starts afresh.
            # (Other errors come from the caller, after its own rollback.)
            self._connection = None
            held.close()
            raise

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def failure_reason(exc: BaseException) -> str:
    """The database's own one-line reason for ``exc``: the driver's message, without the
    statement and its parameters (which would put stored values in a log or a terminal)
    or SQLAlchemy's link to its documentation."""
    driver = getattr(exc, "orig", None)
    text = str(driver if driver is not None else exc)
    text = re.split(r"\s*\[SQL: |\s*\(Background on this error at:", text, maxsplit=1)[0]
    lines = text.strip().splitlines()
    return lines[0] if lines else type(exc).__name__


#: SQLSTATE classes and codes of a server that is there but cannot take the connection
#: now: 08 (connection exceptions), 57P01-57P03 (shutting down, crash recovery, starting)
_UNREACHABLE_STATES = ("08", "57P01", "57P02", "57P03")
#: libpq's words for a connection refused or cut before the server said anything (no
#: SQLSTATE): the server is down or restarting
_UNREACHABLE_WORDS = (
    "Connection refused",
    "server closed the connection unexpectedly",
    "Connection reset by peer",
    "the database system is starting up",
    "the database system is shutting down",
)


def unreachable(exc: BaseException) -> bool:
    """Whether opening failed because a PostgreSQL server could not be reached now (down,
    restarting, failing over), where trying again later may work; not for settings that
    are wrong (a password, a database or a host name that does not resolve)."""
    driver = getattr(exc, "orig", None)
    if driver is None or type(driver).__module__.split(".")[0] != "psycopg":
        return False
    state = getattr(driver, "sqlstate", None)
    if state:
        return str(state).startswith(_UNREACHABLE_STATES)
    return any(words in str(driver) for words in _UNREACHABLE_WORDS)


def open_failure(url: str, exc: Exception) -> str:
    """One line naming the setting and, for SQLite, the file that could not be used."""
    reason = failure_reason(exc)
    if isinstance(exc, OSError) and exc.strerror:
        reason = f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
        if isinstance(exc, FileExistsError) and Path(exc.filename or "").is_file():
            reason = f"{exc.filename} is a file, not a folder"
    parsed = make_url(url)
    path = sqlite_file(parsed) if parsed.get_backend_name() == "sqlite" else None
    if path is not None:
        # SQLite says only 'unable to open database file', as for a missing folder.
        is_folder = path.is_dir()
        if is_folder:
            reason = f"{path} is a folder, not a file"
        read_only = "" if is_folder else _read_only_parts(path, exc)
        return (
            f"SIGNOFF_DATABASE_URL names the SQLite file {path}, "
            f"which cannot be used: {reason}{read_only}"
        )
    return f"cannot open the database at SIGNOFF_DATABASE_URL: {reason}"


def write_failure(engine: Engine, exc: Exception) -> str:
    """One line for a write the database refused; for a SQLite file this process may read
    but not write, naming the setting, the file and what is read-only."""
    reason = failure_reason(exc)
    database = sqlite_file(engine.url) if is_sqlite(engine) else None
    if database is not None:
        if opened_read_only(engine.url):
            return (
                f"database write failed: {reason}: SIGNOFF_DATABASE_URL opens the SQLite "
                f"file {database} read-only"
            )
        read_only = _read_only_parts(database, exc)
        if read_only:
            return (
                f"database write failed: {reason}: SIGNOFF_DATABASE_URL names the SQLite "
                f"file {database}{read_only}"
            )
    return f"database write failed: {reason}"


def _read_only_parts(path: Path, exc: Exception) -> str:
    """What of ``path`` and its folder this process cannot write, when SQLite refused it
    for that: SQLite's own words ('unable to open database file', 'attempt to write a
    readonly database') name neither, and the file reads fine in a file manager."""
    code = str(getattr(getattr(exc, "orig", exc), "sqlite_errorname", ""))
    if not code.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN")):
        return ""
    if not path.exists():
        if path.parent.is_dir() and not os.access(path.parent, os.W_OK):
            return (
                f" (the file is not there yet, and its folder {path.parent} is read-only to "
                "this process, so it cannot be made)"
            )
        return ""
    parts = []
    if not os.access(path, os.W_OK):
        parts.append("the file is read-only to this process")
    if not os.access(path.parent, os.W_OK):
        # Without the log files beside it, SQLite cannot even read a database in WAL mode.
        parts.append(
            f"its folder {path.parent} is read-only to this process, and SQLite keeps "
            f"{path.name}-wal and {path.name}-shm beside the file"
        )
    return f" ({'; '.join(parts)})" if parts else ""


def open_write_connection(engine: Engine) -> Connection:
    """A connection whose transactions take the SQLite write lock at BEGIN; the caller
    closes it."""
    return engine.connect().execution_options(sqlite_write=True)


@contextmanager
def write_connection(engine: Engine) -> Iterator[Connection]:
    """A connection whose transaction takes the SQLite write lock at BEGIN."""
    with open_write_connection(engine) as connection:
        yield connection
