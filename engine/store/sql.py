"""``SqlStore``: every domain query, for SQLite and PostgreSQL alike.

This module holds the queries on runs; the store takes the rest from one module each:
``tasks`` (task calls and their results), ``pauses`` and ``decisions`` (inputs and who
answered), ``claiming`` (workers taking scheduled runs), ``listing`` (finding and paging runs), ``audit`` (the hash chain),
``processes`` (who is alive), ``consumers`` (reading the events outbox), ``metadata``,
``stats`` and ``pruning`` (deleting runs that ended long ago), all on ``base.StoreBase``'s transactions.

Each write is one transaction that changes the rows and appends the matching events, so
the events table is an outbox: whoever reads it in id order sees every change, in order.
On PostgreSQL, writers that append events take a transaction-level advisory lock as they
insert them, which makes event ids follow commit order (a reader never skips a
late-committing id; see ``appending``).
"""

from __future__ import annotations

import logging
from collections import namedtuple
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    bindparam,
    func,
    insert,
    select,
    type_coerce,
)
from sqlalchemy.types import NullType

from signoff.engine.audit import AuditEntry
from signoff.engine.errors import RunNotFound
from signoff.engine.runs import (
    JSON,
    EventKind,
    Pause,
    PauseStatus,
    Run,
    RunDetail,
    RunState,
)
from signoff.engine.serialization import is_storable_text
from signoff.engine.store import rows
from signoff.engine.store.answers import AnswerQueries
from signoff.engine.store.base import EVENTS, LOGS, RUN_COLUMNS, RUN_COLUMNS_AS_TEXT, RUNS
from signoff.engine.store.claiming import ClaimQueries
from signoff.engine.store.consumers import ConsumerQueries
from signoff.engine.store.decisions import DecisionQueries
from signoff.engine.store.dropped import read_again_if_dropped, write_again_if_dropped
from signoff.engine.store.involvement import InvolvementQueries
from signoff.engine.store.lenient import as_text
from signoff.engine.store.listing import ListingQueries
from signoff.engine.store.metadata import MetadataQueries
from signoff.engine.store.pauses import PAUSES
from signoff.engine.store.prepared import Prepared
from signoff.engine.store.processes import PROCESSES, ProcessQueries, judge_alive
from signoff.engine.store.pruning import PruningQueries
from signoff.engine.store.stats import StatsQueries
from signoff.engine.store.tasks import TASKS, TaskQueries
from signoff.engine.store.undecodable import read_again_if_unreadable, reading_leniently

logger = logging.getLogger(__name__)

#: what a Run needs: everything but the pickled parameters, which only a re-run reads
_RUN = Prepared(select(*RUN_COLUMNS).where(RUNS.c.id == bindparam("run_id")))
#: ``_RUN`` on a read made again for a value that could not be read (``rows.to_run`` names it)
_RUN_AS_TEXT = Prepared(select(*RUN_COLUMNS_AS_TEXT).where(RUNS.c.id == bindparam("run_id")))


def _resume_target(run_columns: Sequence[Any], pause_columns: Sequence[Any]) -> Prepared:
    """What an answer needs in one read: the run, its owner's last heartbeat and declared
    owner timeout, and the pause it waits on now (the newest waiting one), whose columns
    come last, prefixed ``pause_``."""
    return Prepared(
        select(
            *run_columns,
            PROCESSES.c.heartbeat_at,
            # Both drivers hand back a float as it is, but psycopg's Float result processor
            # needs the column's type code, which a statement compiled ahead (Prepared) lacks.
            type_coerce(PROCESSES.c.owner_timeout_seconds, NullType()).label(
                "owner_timeout_seconds"
            ),
            *pause_columns,
        )
        .select_from(
            RUNS.outerjoin(PROCESSES, PROCESSES.c.id == RUNS.c.owner).outerjoin(
                PAUSES,
                PAUSES.c.id
                == select(func.max(PAUSES.c.id))
                .where(PAUSES.c.run_id == RUNS.c.id, PAUSES.c.status == PauseStatus.WAITING.value)
                .correlate(RUNS)
                .scalar_subquery(),
            )
        )
        .where(RUNS.c.id == bindparam("run_id"))
    )


_RESUME_TARGET = _resume_target(RUN_COLUMNS, [c.label(f"pause_{c.name}") for c in PAUSES.c])
#: ``_RESUME_TARGET`` on a read made again for a value that could not be read
_RESUME_TARGET_AS_TEXT = _resume_target(RUN_COLUMNS_AS_TEXT, as_text(PAUSES.c, "pause_"))
_RunRow = namedtuple("_RunRow", [c.name for c in RUN_COLUMNS])  # type: ignore[misc]
_PauseRow = namedtuple("_PauseRow", [c.name for c in PAUSES.c])  # type: ignore[misc]
#: the columns ``create_run`` gives
_RUN_COLUMNS = (
    *("id", "flow_name", "flow_ref", "parameters", "parameters_json", "state", "state_name"),
    *("state_message", "started_by", "owner", "result", "tags", "policy", "created_at"),
    *("updated_at", "parent_run_id"),
)
_INSERT_RUN = Prepared(insert(RUNS), columns=[_RUN_COLUMNS])


@dataclass(frozen=True)
class ResumeTarget:
    """What answering a run needs to know, read in one go."""

    run: Run
    #: the pause the run waits on now, if any
    pause: Pause | None
    #: whether the process that owns the run has sent a heartbeat within its owner timeout
    owner_alive: bool
    #: the owner timeout the owner is judged by: the one it declared, or for a row that
    #: declares none, the one ``resume_target`` was given
    owner_timeout: float


class SqlStore(
    ClaimQueries,
    ListingQueries,
    AnswerQueries,
    DecisionQueries,
    StatsQueries,
    ProcessQueries,
    ConsumerQueries,
    MetadataQueries,
    TaskQueries,
    PruningQueries,
    InvolvementQueries,
):
    """The engine's persistence, over one SQLAlchemy engine, for SQLite and PostgreSQL.

    Example::

        store = SqlStore.open("sqlite:///runs.db")
        run = store.get_run(run_id)
    """

    # -- runs ---------------------------------------------------------------------------

    @write_again_if_dropped
    def create_run(
        self,
        run_id: str,
        flow_name: str,
        flow_ref: str | None,
        parameters: bytes,
        parameters_json: dict[str, JSON],
        state: RunState,
        owner: str | None,
        started_by: str | None,
        tags: dict[str, str] | None = None,
        *,
        approvers: Sequence[str] = (),
        cancellers: Sequence[str] = (),
        audit: AuditEntry | None = None,
        parent_run_id: str | None = None,
    ) -> Run:
        """Store a new run (and its audit record, written with it); ``parent_run_id``: the
        run whose flow called this one's."""
        now = self.clock()
        policy = {"approvers": list(approvers), "cancellers": list(cancellers)}
        name = "Running" if state is RunState.RUNNING else "Scheduled"
        with self._write() as conn:
            _INSERT_RUN.execute(
                conn,
                {
                    "id": run_id,
                    "flow_name": flow_name,
                    "flow_ref": flow_ref,
                    "parameters": parameters,
                    "parameters_json": parameters_json,
                    "state": state.value,
                    "state_name": name,
                    "state_message": None,
                    "started_by": started_by,
                    "owner": owner,
                    "result": None,
                    "tags": tags or {},
                    "policy": policy,
                    "created_at": now,
                    "updated_at": now,
                    "parent_run_id": parent_run_id,
                },
            )
            self._emit(
                conn,
                run_id,
                EventKind.STATE_CHANGED,
                {"state": state.value, "name": name, "message": None, "flow": flow_name},
                now,
            )
            if audit is not None:
                self._audit(conn, [audit], now)
        return Run(
            id=run_id,
            flow_name=flow_name,
            state=state,
            state_name=name,
            state_message=None,
            parameters=parameters_json,
            created_at=now,
            updated_at=now,
            started_by=started_by,
            owner=owner,
            result=None,
            tags=dict(tags or {}),
            approvers=tuple(approvers),
            cancellers=tuple(cancellers),
        )

    def prepare(self) -> None:
        """Compile the statements of a run's life now (a few milliseconds each), rather
        than on the first run's or answer's clock; an engine calls this when it starts."""
        # Made on first use (their dialect spells ON CONFLICT): made now, compiled below.
        _ = self._insert_pause, self._record_task
        Prepared.compile_all(self.engine.dialect)

    @read_again_if_dropped
    @read_again_if_unreadable
    def get_run(self, run_id: str) -> Run:
        if not is_storable_text(run_id):
            raise RunNotFound(run_id)
        with self._read() as conn:
            row = (
                (_RUN_AS_TEXT if reading_leniently() else _RUN)
                .execute(conn, {"run_id": run_id})
                .first()
            )
        if row is None:
            raise RunNotFound(run_id)
        return rows.to_run(row)

    @read_again_if_dropped
    @read_again_if_unreadable
    def resume_target(self, run_id: str, owner_timeout: float) -> ResumeTarget:
        """The run, the pause it waits on, and whether its owner lives (by the owner
        timeout it declared; ``owner_timeout`` for a row that declares none), on one
        connection."""
        if not is_storable_text(run_id):
            raise RunNotFound(run_id)
        now = self.clock()
        with self._read() as conn:
            row = (
                (_RESUME_TARGET_AS_TEXT if reading_leniently() else _RESUME_TARGET)
                .execute(conn, {"run_id": run_id})
                .first()
            )
        if row is None:
            raise RunNotFound(run_id)
        declared = row.owner_timeout_seconds
        pause: Any = _PauseRow._make(row[-len(_PauseRow._fields) :])
        return ResumeTarget(
            run=rows.to_run(_RunRow._make(row[: len(_RunRow._fields)])),
            pause=None if pause.id is None else rows.to_pause(pause),
            owner_alive=judge_alive(row.heartbeat_at, declared, now, owner_timeout),
            owner_timeout=owner_timeout if declared is None else declared,
        )

    @read_again_if_dropped
    @read_again_if_unreadable
    def detail(self, run_id: str, log_limit: int = 200) -> RunDetail:
        # The run is read here, not by ``get_run``: that is a read tried again of its own,
        # so a dropped connection could have had the run tried four times, not twice.
        if not is_storable_text(run_id):
            raise RunNotFound(run_id)
        with self._read() as conn:
            row = (
                (_RUN_AS_TEXT if reading_leniently() else _RUN)
                .execute(conn, {"run_id": run_id})
                .first()
            )
            if row is None:
                raise RunNotFound(run_id)
            as_read = as_text if reading_leniently() else tuple
            history = conn.execute(
                # The state history is the run's STATE_CHANGED events: stored once, read here.
                select(*as_read(EVENTS.c))
                .where(EVENTS.c.run_id == run_id, EVENTS.c.kind == EventKind.STATE_CHANGED.value)
                .order_by(EVENTS.c.id)
            ).all()
            tasks = conn.execute(
                select(*as_read(TASKS.c))
                .where(TASKS.c.run_id == run_id)
                .order_by(TASKS.c.started_at, TASKS.c.id)
            ).all()
            pauses = conn.execute(
                select(*as_read(PAUSES.c)).where(PAUSES.c.run_id == run_id).order_by(PAUSES.c.id)
            ).all()
            logs = conn.execute(
                select(*as_read(LOGS.c))
                .where(LOGS.c.run_id == run_id)
                .order_by(LOGS.c.id.desc())
                .limit(log_limit)
            ).all()
        # Every row that cannot be read named at once, rather than the first met.
        rows.unreadable(
            run_id,
            [
                (rows.RUN, [row]),
                (rows.STATE_ENTRY, history),
                (rows.TASK, tasks),
                (rows.PAUSE, pauses),
                (rows.LOG, logs),
            ],
        )
        return RunDetail(
            run=rows.to_run(row),
            history=tuple(rows.to_state(r) for r in history),
            tasks=tuple(rows.to_task(r) for r in tasks),
            pauses=tuple(rows.to_pause(r) for r in pauses),
            logs=tuple(rows.to_log(r) for r in reversed(logs)),
        )

    @write_again_if_dropped
    def transition(
        self,
        /,
        run_id: str,
        state: RunState,
        name: str,
        message: str | None = None,
        *,
        expect: Collection[RunState] | None = None,
        expect_owner: str | None = None,
        logs: Sequence[tuple[datetime, str, str, str | None]] = (),
        **columns: Any,
    ) -> bool:
        """Move a run to ``state``; with ``expect``, only from one of those states.

        Returns False (and changes nothing) when the run was not in an expected state, so
        that racing writers can tell who won. ``logs`` are stored in the same transaction
        either way.
        """
        now = self.clock()
        guard = None if expect is None else tuple(expect)
        if not self.is_sqlite and not logs:
            return self._change_state_alone(
                run_id,
                state,
                name,
                message,
                now,
                expect=guard,
                expect_owner=expect_owner,
                **columns,
            )
        # One conditional UPDATE: the database decides who wins a race, in one round trip.
        with self._write() as conn:
            self._insert_logs(conn, run_id, logs)
            return self._change_state(
                conn,
                run_id,
                state,
                name,
                message,
                now,
                expect=guard,
                expect_owner=expect_owner,
                **columns,
            )

    @read_again_if_dropped
    def orphans(self, live: set[str]) -> list[Run]:
        """Runs that a process owned (running or paused) whose process is gone."""
        # Filtered in the database: a process with 10,000 runs waiting would otherwise
        # have them all read and converted on every pass of every worker.
        query = select(*RUN_COLUMNS).where(
            RUNS.c.state.in_([RunState.RUNNING.value, RunState.PAUSED.value]),
            RUNS.c.owner.is_not(None),
            RUNS.c.owner.not_in(sorted(live)),
        )
        with self._read() as conn:
            return [rows.to_run(r) for r in conn.execute(query)]

    # -- tasks and logs -----------------------------------------------------------------

    @write_again_if_dropped
    def add_logs(self, run_id: str, logs: Sequence[tuple[datetime, str, str, str | None]]) -> None:
        if logs:
            with self._write() as conn:
                self._insert_logs(conn, run_id, logs)


__all__ = ["ResumeTarget", "SqlStore"]
