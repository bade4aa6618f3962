"""Statements every run executes, compiled once and run on the driver's cursor.

Core spends about 100 µs of Python on each ``Connection.execute`` (an execution context,
result metadata, cache look-ups) even for a statement built once, which is several times
what SQLite takes to run it. A run executes a dozen such statements between its start and
its end, so on the hot paths (start, pause, resume, events, the audit chain) a statement is
compiled once per dialect and set of columns, and executed on the DBAPI connection with
the same conversions Core applies: the column types' own bind and result processors and
the columns' scalar defaults. Driver errors are raised as SQLAlchemy's
(``DBAPIError.instance``), so callers handle them exactly as they handle Core's.

Example::

    _RUN = Prepared(select(RUNS.c.id, RUNS.c.state).where(RUNS.c.id == bindparam("run_id")))
    with engine.connect() as conn:
        row = _RUN.execute(conn, {"run_id": run_id}).first()
        row.state
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import Insert, Update
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from signoff.engine.store.database import distrust_pooled_connections

Params = Mapping[str, Any]
Processor = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Compiled:
    sql: str
    #: bound names in the order the driver takes them (None: the driver takes a mapping)
    order: tuple[str, ...] | None
    #: every bound name, with its conversion and the value it takes (converted already)
    #: when the caller leaves it out
    binds: tuple[tuple[str, Processor, Any], ...]
    #: a row's fields, with the conversion each value needs (None: no rows)
    row: Any
    result: tuple[Processor, ...]


#: a default its conversion refuses (a placeholder): the caller must give the value
_UNCONVERTIBLE = object()


def _converted(process: Processor, default: Any) -> Any:
    """A default converted once, when compiled: literals (a JSON path, a kind) are fixed."""
    if process is None:
        return default
    try:
        return process(default)
    except (TypeError, ValueError):
        return _UNCONVERTIBLE


class Result:
    """What the cursor returned: rows as named tuples, and how many rows were changed."""

    __slots__ = ("_compiled", "_cursor", "_dialect", "rowcount")

    def __init__(self, cursor: Any, compiled: _Compiled, dialect: Dialect) -> None:
        self._cursor = cursor
        self._compiled = compiled
        self._dialect = dialect
        self.rowcount: int = cursor.rowcount

    def _failed(self, exc: Exception) -> StatementError:
        """The driver's error in a fetch (SQLite text that is not UTF-8, say), as Core
        raises it, so that the store's callers see what they see of any other."""
        dialect = self._dialect
        self._cursor.close()
        return DBAPIError.instance(None, None, exc, dialect.loaded_dbapi.Error, dialect=dialect)

    def _convert(self, values: Sequence[Any]) -> Any:
        compiled = self._compiled
        assert compiled.row is not None, "this statement returns no rows"
        return compiled.row._make(
            value if process is None else process(value)
            for process, value in zip(compiled.result, values, strict=True)
        )

    def first(self) -> Any:
        """The first row, or None."""
        try:
            values = self._cursor.fetchone()
        except self._dialect.loaded_dbapi.Error as exc:
            raise self._failed(exc) from exc
        self._cursor.close()
        return None if values is None else self._convert(values)

    def all(self) -> list[Any]:
        try:
            fetched = self._cursor.fetchall()
        except self._dialect.loaded_dbapi.Error as exc:
            raise self._failed(exc) from exc
        rows = [self._convert(values) for values in fetched]
        self._cursor.close()
        return rows

    def scalar(self) -> Any:
        """The first column of the first row, or None."""
        row = self.first()
        return None if row is None else row[0]


class Prepared:
    """A Core statement run on the DBAPI cursor of the connection it is given.

    INSERT and UPDATE statements without explicit values take their columns from the
    parameters, as Core's do; each set of columns is compiled once. Statements that need
    rendering at execution time (expanding ``IN``, SQL-side defaults computed by Python
    callables with a context) are refused when first compiled.
    """

    #: every statement made, so that a process can compile them all before it needs them
    _made: weakref.WeakSet[Prepared] = weakref.WeakSet()

    def __init__(
        self,
        statement: ClauseElement,
        *,
        columns: Sequence[Sequence[str]] = (),
        dialect: str | None = None,
    ) -> None:
        """``columns``: for an INSERT or UPDATE, the sets of parameters it is usually given,
        compiled by ``compile_all`` ahead of the first execution. ``dialect``: the one
        dialect a statement is written for (its own ON CONFLICT, say), which
        ``compile_all`` compiles it for alone."""
        self.statement = statement
        self._dialect = dialect
        self._dml = isinstance(statement, Insert | Update)
        self._usual = [frozenset(keys) for keys in columns] if self._dml else [None]
        self._compiled: dict[tuple[str, str, frozenset[str] | None], _Compiled] = {}
        # Threads that need the same compilation at once wait for the first: each would
        # otherwise spend the milliseconds it takes, holding the GIL in turn.
        self._compiling = threading.Lock()
        # The row class is made here, when the module defining the statement is imported:
        # namedtuple compiles code, and CPython 3.11 can fail compiling in two threads at
        # once (SystemError "AST constructor recursion depth mismatch", cpython#106905).
        returned = getattr(statement, "exported_columns", ())
        self._row = namedtuple("Row", [c.key for c in returned]) if returned else None
        Prepared._made.add(self)

    @classmethod
    def compile_all(cls, dialect: Dialect) -> None:
        """Compile every statement made so far for ``dialect``, with its usual parameters.

        Compiling takes a few milliseconds per statement: a process does it when it starts,
        so that the first answer it takes does not wait for it.
        """
        for prepared in list(cls._made):
            if prepared._dialect not in (None, dialect.name):
                continue
            for keys in prepared._usual:
                if (dialect.name, dialect.driver, keys) not in prepared._compiled:
                    prepared._compile(dialect, keys)

    @classmethod
    def ready_writes(cls, conn: Connection) -> None:
        """SQLite: parse every write statement compiled so far on ``conn`` now.

        SQLite's driver keeps the statements a connection parsed (``cached_statements``, 128
        by default), and parsing one costs a few times what running it does. A process
        holds one connection for all its writes, so readying that connection when it opens
        keeps the parsing off the first answer's clock (about 0.1 ms of it).
        """
        dialect = conn.dialect
        if dialect.name != "sqlite":
            return
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            for prepared in list(cls._made):
                if not prepared._dml:
                    continue
                for (name, driver, _keys), compiled in list(prepared._compiled.items()):
                    if (name, driver) != (dialect.name, dialect.driver):
                        continue
                    # The driver parses (and keeps) the statement before it looks at the
                    # rows; given none, it runs nothing. One it cannot parse fails as it
                    # would have anyway, when it is run.
                    with contextlib.suppress(dialect.loaded_dbapi.Error):
                        cursor.executemany(compiled.sql, [])
        finally:
            cursor.close()

    def execute(self, conn: Connection, params: Params | Sequence[Params] | None = None) -> Result:
        """Execute with one set of parameters, or many (one INSERT per mapping)."""
        many = isinstance(params, list | tuple)
        batch = cast(Sequence[Params], params) if many else ()
        first: Params = (batch[0] if batch else {}) if many else cast(Params, params or {})
        # One row goes as one execute: psycopg runs executemany in a pipeline of its own,
        # which costs more Python than the statement (most batches here hold one event).
        many = many and len(batch) != 1
        dialect = conn.dialect
        keys = frozenset(first) if self._dml else None
        compiled = self._compiled.get((dialect.name, dialect.driver, keys))
        if compiled is None:
            compiled = self._compile(dialect, keys)
        driver = conn.connection.driver_connection
        cursor = None
        try:
            cursor = driver.cursor()  # type: ignore[union-attr]
            if many:
                cursor.executemany(compiled.sql, [self._bind(compiled, p) for p in batch])
            else:
                cursor.execute(compiled.sql, self._bind(compiled, first))
        except dialect.loaded_dbapi.Error as exc:
            if cursor is not None:
                cursor.close()
            # As Core does: a connection the server dropped is not returned to the pool, and
            # the others, which the server (restarted) may have dropped too, are not handed
            # out unchecked (Core replaces them; here each is pinged before its next use).
            dead = dialect.is_disconnect(exc, driver, cursor)
            if dead:
                conn.invalidate(exc)
                distrust_pooled_connections(conn.engine)
            raise DBAPIError.instance(
                compiled.sql,
                params,
                exc,
                dialect.loaded_dbapi.Error,
                dialect=dialect,
                ismulti=many,
                connection_invalidated=dead,
            ) from exc
        except BaseException as exc:
            if not isinstance(exc, Exception):
                # Ctrl-C or SIGTERM while the driver waited for the server: the connection
                # is mid-exchange, and the pool's ROLLBACK on it would fail with a logged
                # traceback. As Core does with such an exception, it is dropped instead.
                conn.invalidate()
            raise
        return Result(cursor, compiled, dialect)

    @staticmethod
    def _bind(compiled: _Compiled, params: Params) -> Any:
        values = {}
        for name, process, default in compiled.binds:
            if name in params or default is _UNCONVERTIBLE:
                value = params[name]
                values[name] = value if process is None else process(value)
            else:
                values[name] = default
        if compiled.order is None:
            return values
        return tuple(values[name] for name in compiled.order)

    def _compile(self, dialect: Dialect, keys: frozenset[str] | None) -> _Compiled:
        with self._compiling:
            done = self._compiled.get((dialect.name, dialect.driver, keys))
            return done if done is not None else self._compile_now(dialect, keys)

    def _compile_now(self, dialect: Dialect, keys: frozenset[str] | None) -> _Compiled:
        compiled = cast(
            SQLCompiler,
            self.statement.compile(
                dialect=dialect, column_keys=sorted(keys) if keys is not None else None
            ),
        )
        if "POSTCOMPILE" in compiled.string:
            raise ValueError(f"{self.statement} needs rendering per execution; use Core")
        defaults: dict[str, Any] = {name: bind.value for name, bind in compiled.binds.items()}
        for column in (*compiled.insert_prefetch, *compiled.update_prefetch):
            default = column.default if column in compiled.insert_prefetch else column.onupdate
            if not isinstance(default, ScalarElementColumnDefault):
                raise ValueError(f"column {column.key} has a default Prepared cannot compute")
            defaults[column.key] = default.arg
        bind: dict[str, Processor] = {
            name: b.type.dialect_impl(dialect).bind_processor(dialect)
            for name, b in compiled.binds.items()
        }
        returns = getattr(self.statement, "exported_columns", ())
        if compiled.isinsert or compiled.isupdate or compiled.isdelete:
            returns = returns if compiled.effective_returning else ()
        result = tuple(
            c.type.dialect_impl(dialect).result_processor(dialect, None) for c in returns
        )
        done = _Compiled(
            sql=compiled.string,
            order=tuple(compiled.positiontup or ()) if compiled.positional else None,
            binds=tuple(
                (name, bind[name], _converted(bind[name], v)) for name, v in defaults.items()
            ),
            row=self._row if returns else None,
            result=result,
        )
        self._compiled[(dialect.name, dialect.driver, keys)] = done
        return done


__all__ = ["Prepared", "Result"]
