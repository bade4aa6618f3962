"""Workers taking scheduled runs (``claim_scheduled``): oldest first, each claimed by one
process however many claim at once (PostgreSQL: ``FOR UPDATE SKIP LOCKED``; SQLite: one
writer at a time), read with what the worker needs to execute it."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Collection
from dataclasses import dataclass

from sqlalchemy import bindparam, exists, or_, select

from signoff.engine.runs import Run, RunState
from signoff.engine.store import rows
from signoff.engine.store.base import RUN_COLUMNS, RUNS
from signoff.engine.store.dropped import write_again_if_dropped
from signoff.engine.store.pauses import PAUSES
from signoff.engine.store.prepared import Prepared
from signoff.engine.store.state_changes import StateChangeQueries
from signoff.engine.store.tasks import TASKS

#: the runs of flows a run's flow called
_CALLED = RUNS.alias("called")
#: what a worker reads to run a run it claimed, and whether it ever got as far as a task,
#: a pause or a flow call (a run with none has nothing to replay, nor to take up)
_SOURCE_COLUMNS = (
    *RUN_COLUMNS,
    RUNS.c.flow_ref,
    RUNS.c.parameters,
    or_(
        exists().where(TASKS.c.run_id == RUNS.c.id),
        exists().where(PAUSES.c.run_id == RUNS.c.id),
        exists().where(_CALLED.c.parent_run_id == RUNS.c.id),
    ).label("has_history"),
)
#: the oldest scheduled runs, with what a worker needs to run them (locked, skipping those
#: another worker is taking, on PostgreSQL)
_SCHEDULED = (
    select(*_SOURCE_COLUMNS)
    # A nested flow's run is run again by its outer run's re-run, which takes it up; alone,
    # its result would reach no one.
    .where(RUNS.c.state == RunState.SCHEDULED.value, RUNS.c.parent_run_id.is_(None))
    .order_by(RUNS.c.updated_at, RUNS.c.id)
    .limit(bindparam("limit"))
)
_SCHEDULED_SQLITE = Prepared(_SCHEDULED)
_SCHEDULED_LOCKED = Prepared(_SCHEDULED.with_for_update(of=RUNS, skip_locked=True))


@functools.lru_cache(maxsize=16)
def _scheduled_of(flows: tuple[str, ...], locked: bool) -> Prepared:
    """``_SCHEDULED`` of only the runs of ``flows`` (a worker kept to its flows), prepared
    once per set of flows: a worker claims every time a run is queued."""
    query = _SCHEDULED.where(
        or_(*(RUNS.c.flow_name == bindparam(f"flow_{n}", name) for n, name in enumerate(flows)))
    )
    return Prepared(query.with_for_update(of=RUNS, skip_locked=True) if locked else query)


@dataclass(frozen=True)
class RunSource:
    """What a worker needs to execute a run it claimed."""

    run: Run
    #: where the flow was loaded from, for a worker that does not know it by name
    flow_ref: str | None
    #: the pickled parameters
    parameters: bytes
    #: no task result or pause is stored for it yet: an execution has nothing to replay
    fresh: bool


class ClaimQueries(StateChangeQueries):
    @write_again_if_dropped
    def claim_scheduled(
        self,
        owner: str,
        limit: int,
        skip: Collection[str] = (),
        before_commit: Callable[[str], None] | None = None,
        *,
        flows: Collection[str] | None = None,
    ) -> list[RunSource]:
        """Atomically take up to ``limit`` scheduled runs for this process, oldest first,
        with what it needs to run them (read in the same statement); none of ``skip``, and
        with ``flows``, only runs of the flows it names.

        ``before_commit`` is called with each claimed run's id before the claim commits:
        whatever this process still runs of it from before learns that it lost the run
        ahead of anyone who could read the run as claimed by this process."""
        now = self.clock()
        claimed: list[RunSource] = []
        with self._write() as conn:
            if flows is not None and not flows:
                return []
            if skip:
                # Rare (runs whose flow this process cannot import): not worth a prepared
                # statement, which cannot take a list of ids.
                query = _SCHEDULED.where(RUNS.c.id.not_in(sorted(skip)))
                if flows is not None:
                    query = query.where(RUNS.c.flow_name.in_(sorted(flows)))
                if not self.is_sqlite:
                    query = query.with_for_update(of=RUNS, skip_locked=True)
                found = list(conn.execute(query, {"limit": limit}).all())
            else:
                if flows is not None:
                    prepared = _scheduled_of(tuple(sorted(flows)), not self.is_sqlite)
                else:
                    prepared = _SCHEDULED_SQLITE if self.is_sqlite else _SCHEDULED_LOCKED
                found = prepared.execute(conn, {"limit": limit}).all()
            for row in found:
                self._change_state(
                    conn, row.id, RunState.RUNNING, "Running", None, now, owner=owner
                )
                run = dataclasses.replace(
                    rows.to_run(row),
                    state=RunState.RUNNING,
                    state_name="Running",
                    state_message=None,
                    updated_at=now,
                    owner=owner,
                )
                claimed.append(RunSource(run, row.flow_ref, row.parameters, not row.has_history))
            if before_commit is not None:
                for source in claimed:
                    before_commit(source.run.id)
        return claimed
