"""Finding and listing runs, at any number stored: each page is one short read from an
index range (keyset paging), and a run is found by a unique prefix of its id."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, literal, or_, select

from signoff.engine.audit import AuditAction
from signoff.engine.errors import SHOWN_CANDIDATES, RunNotFound
from signoff.engine.runs import Run, RunState, WaitingInput, handed_on
from signoff.engine.serialization import is_storable_text
from signoff.engine.store import rows
from signoff.engine.store.audit_rows import AUDIT
from signoff.engine.store.base import RUN_COLUMNS, RUNS, StoreBase, run_columns
from signoff.engine.store.dropped import read_again_if_dropped
from signoff.engine.store.pauses import IS_WAITING, PAUSES
from signoff.engine.store.undecodable import read_again_if_unreadable

#: the states a run ends in
_FINAL = [s.value for s in RunState if s.is_final]
#: how deep ``waiting_within`` looks for flows called from flows
_MAX_NESTING = 32


#: The first instant any run can have been created at (runs created before the trail's
#: first record predate it, and have no records of their own).
_TRAIL_BEGAN = func.coalesce(
    select(func.min(AUDIT.c.at)).scalar_subquery(), literal(datetime(1, 1, 1, tzinfo=UTC))
)
#: Runs created since the audit trail began that have no record of their start: served by
#: the index on runs' creation time, and a probe per run into its records by run id.
_UNRECORDED = (
    select(RUNS.c.id)
    .where(
        RUNS.c.created_at >= _TRAIL_BEGAN,
        ~select(AUDIT.c.seq)
        .where(AUDIT.c.run_id == RUNS.c.id, AUDIT.c.action == AuditAction.RUN_STARTED.value)
        .exists(),
    )
    .order_by(RUNS.c.created_at, RUNS.c.id)
    .limit(bindparam("limit"))
)


#: the longest run id the runs table holds
MAX_RUN_ID = 32


class ListingQueries(StoreBase):
    @read_again_if_dropped
    def runs_without_start_record(self, limit: int) -> list[str]:
        """Ids of runs created since the audit trail's first record (any run, when it has
        none) that have no ``run.started`` record, oldest first, at most ``limit``."""
        with self._read() as conn:
            return list(conn.execute(_UNRECORDED, {"limit": limit}).scalars())

    @read_again_if_dropped
    @read_again_if_unreadable
    def find_run(self, prefix: str) -> Run:
        """A run by its id or by a unique prefix of it (as the CLI and /runs accept)."""
        if not is_storable_text(prefix) or len(prefix) > MAX_RUN_ID:
            # Longer than any id, it matches none: SQLite refuses a LIKE over 50,000.
            raise RunNotFound(prefix)
        with self._read() as conn:
            found = conn.execute(
                select(*run_columns())
                .where(RUNS.c.id.startswith(prefix, autoescape=True))
                .order_by(RUNS.c.id)
                .limit(SHOWN_CANDIDATES + 1)
            ).all()
        if len(found) != 1 or not prefix:
            several = len(found) > 1 and bool(prefix)
            candidates = [row.id for row in found] if several else []
            raise RunNotFound(prefix, several=several, candidates=candidates)
        return rows.to_run(found[0])

    @read_again_if_dropped
    def unfinished_child(self, run_id: str, flow_name: str) -> Run | None:
        """The oldest run of flow ``flow_name`` that ``run_id``'s flow called and that has not
        finished (its process died while it ran or waited), if any."""
        with self._read() as conn:
            row = conn.execute(
                select(*RUN_COLUMNS)
                .where(
                    RUNS.c.parent_run_id == run_id,
                    RUNS.c.flow_name == flow_name,
                    RUNS.c.state.not_in(_FINAL),
                )
                .order_by(RUNS.c.created_at, RUNS.c.id)
                .limit(1)
            ).first()
        return None if row is None else rows.to_run(row)

    @read_again_if_dropped
    def waiting_within(self, run_id: str) -> Run | None:
        """A run of a flow that ``run_id``'s flow called (or that those called, at any
        depth) and that waits for input now; the oldest if several do."""
        frontier = [run_id]
        with self._read() as conn:
            for _ in range(_MAX_NESTING):
                found = conn.execute(
                    select(*RUN_COLUMNS)
                    .where(RUNS.c.parent_run_id.in_(frontier), RUNS.c.state.not_in(_FINAL))
                    .order_by(RUNS.c.created_at, RUNS.c.id)
                ).all()
                waiting = [row for row in found if RunState(row.state).is_waiting]
                if waiting:
                    return rows.to_run(waiting[0])
                frontier = [row.id for row in found]
                if not frontier:
                    break
        return None

    @read_again_if_dropped
    def parent_run(self, run_id: str) -> str | None:
        """The run whose flow called ``run_id``'s flow; None for a top-level run.

        Raises:
            RunNotFound: no run has that id.
        """
        with self._read() as conn:
            row = conn.execute(select(RUNS.c.parent_run_id).where(RUNS.c.id == run_id)).first()
        if row is None:
            raise RunNotFound(run_id)
        parent: str | None = row.parent_run_id
        return parent

    @read_again_if_dropped
    def unfinished_children(self, run_id: str) -> list[str]:
        """The runs of flows that run ``run_id``'s flow called, not finished yet."""
        with self._read() as conn:
            found = conn.execute(
                select(RUNS.c.id).where(RUNS.c.parent_run_id == run_id, RUNS.c.state.not_in(_FINAL))
            ).all()
        return [row.id for row in found]

    @read_again_if_dropped
    @read_again_if_unreadable
    def list_runs(
        self,
        states: Sequence[RunState] | None = None,
        flow_name: str | None = None,
        limit: int = 50,
        before: Run | None = None,
        *,
        started_by: str | None = None,
        answered_by: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[Run]:
        """Runs newest first; for the next page, pass the last run of this one as ``before``.

        Each state is read from its own range of an index on (state, created_at, id), so a
        page costs the same with a hundred runs stored or with millions; ``flow_name`` and
        ``started_by`` have indexes that lead with them, and ``answered_by`` is looked up in
        the audit trail by its index on (actor_id, seq). ``since`` and ``until`` bound the
        creation time (``since`` included, ``until`` not).
        """
        if not all(is_storable_text(t) for t in (flow_name, started_by, answered_by) if t):
            return []  # no run has such a flow's name, nor was started or answered by one
        answered = (
            select(AUDIT.c.run_id).where(
                AUDIT.c.actor_id == answered_by,
                AUDIT.c.action == AuditAction.ANSWER_RECEIVED.value,
            )
            if answered_by is not None
            else None
        )

        def page(state: str | None) -> Any:
            query = select(*run_columns())
            if state is not None:
                query = query.where(RUNS.c.state == state)
            if flow_name:
                query = query.where(RUNS.c.flow_name == flow_name)
            if started_by is not None:
                query = query.where(RUNS.c.started_by == started_by)
            if answered is not None:
                query = query.where(RUNS.c.id.in_(answered))
            # Stored times are UTC (SQLite keeps no offset): compare in UTC.
            if since is not None:
                query = query.where(RUNS.c.created_at >= rows.utc(since).astimezone(UTC))
            if until is not None:
                query = query.where(RUNS.c.created_at < rows.utc(until).astimezone(UTC))
            if before is not None:
                query = query.where(
                    or_(
                        RUNS.c.created_at < before.created_at,
                        and_(RUNS.c.created_at == before.created_at, RUNS.c.id < before.id),
                    )
                )
            return query.order_by(RUNS.c.created_at.desc(), RUNS.c.id.desc()).limit(limit)

        wanted = list(dict.fromkeys(s.value for s in states)) if states else [None]
        with self._read() as conn:
            found = [rows.to_listed_run(r) for state in wanted for r in conn.execute(page(state))]
        found.sort(key=lambda run: (run.created_at, run.id), reverse=True)
        return found[:limit]

    @read_again_if_dropped
    @read_again_if_unreadable
    def runs_started_by(self, started_by: str, limit: int) -> list[Run]:
        """The newest runs one person started (served by an index on both columns)."""
        query = (
            select(*run_columns())
            .where(RUNS.c.started_by == started_by)
            .order_by(RUNS.c.created_at.desc(), RUNS.c.id)
            .limit(limit)
        )
        with self._read() as conn:
            return [rows.to_listed_run(r) for r in conn.execute(query)]

    def waiting_inputs(self, page: int = 500) -> Iterator[WaitingInput]:
        """Every waiting pause's answer rule, newest first, a page at a time: a few small
        columns per pause, so scanning hundreds of them costs little."""
        first = (
            select(
                PAUSES.c.id,
                PAUSES.c.run_id,
                PAUSES.c.key,
                RUNS.c.started_by,
                PAUSES.c.approvers,
                PAUSES.c.forbid_starter,
                PAUSES.c.answers,
                PAUSES.c.quorum,
                PAUSES.c.delegations,
            )
            .join(RUNS, PAUSES.c.run_id == RUNS.c.id)
            .where(IS_WAITING)
            .order_by(PAUSES.c.id.desc())
            .limit(page)
        )
        later = first.where(PAUSES.c.id < bindparam("before"))
        before: int | None = None
        while True:
            found = (
                self._waiting_inputs_page(first, {})
                if before is None
                else self._waiting_inputs_page(later, {"before": before})
            )
            for _id, run_id, key, started_by, approvers, forbid, answers, quorum, handed in found:
                yield WaitingInput(
                    run_id,
                    key,
                    started_by,
                    tuple(approvers or ()),
                    bool(forbid),
                    tuple(a["responder"] for a in answers or () if a.get("responder")),
                    int(quorum or 1),
                    handed_on((d["by"], d["to"]) for d in handed or ()),
                )
            if len(found) < page:
                return
            before = int(found[-1][0])

    @read_again_if_dropped
    def _waiting_inputs_page(self, query: Any, params: dict[str, Any]) -> Sequence[Any]:
        """One page of ``waiting_inputs``: a read of its own, so that a dropped connection
        costs it a second read and not the Home tab's "Waiting on you" an error (a
        decorator on the generator would cover none of its reads)."""
        with self._read() as conn:
            return conn.execute(query, params).all()


__all__ = ["ListingQueries"]
