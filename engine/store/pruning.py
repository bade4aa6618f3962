"""Deleting runs that finished long ago (``Engine.prune_finished``), with their pauses,
task records, logs, metadata and events. Their audit records stay: the trail is the record
of who decided what, and its hash chain runs through them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, exists, func, select

from signoff.engine.runs import RunState
from signoff.engine.store.base import EVENTS, LOGS, RUNS, StoreBase
from signoff.engine.store.consumers import CURSORS
from signoff.engine.store.dropped import read_again_if_dropped, write_again_if_dropped
from signoff.engine.store.metadata import METADATA
from signoff.engine.store.pauses import PAUSES
from signoff.engine.store.tasks import TASKS

_FINAL = [state.value for state in RunState if state.is_final]
_PARENT = RUNS.alias("parent")


class PruningQueries(StoreBase):
    def _prunable(self, finished_before: datetime, behind: int | None) -> Any:
        """Runs that ended before ``finished_before``, oldest first (read through the
        (state, updated_at) index). Not a nested flow's run while the run that called it
        may still read it, nor a run with events a consumer (Slack) has not read yet."""
        query = select(RUNS.c.id).where(
            RUNS.c.state.in_(_FINAL),
            RUNS.c.updated_at < finished_before,
            ~exists().where(_PARENT.c.id == RUNS.c.parent_run_id, _PARENT.c.state.not_in(_FINAL)),
        )
        if behind is not None:
            query = query.where(~exists().where(EVENTS.c.run_id == RUNS.c.id, EVENTS.c.id > behind))
        return query

    @read_again_if_dropped
    def count_prunable(self, finished_before: datetime) -> int:
        """How many runs ``prune_runs`` would delete for ``finished_before``."""
        with self._read() as conn:
            behind = conn.execute(select(func.min(CURSORS.c.position))).scalar()
            prunable = self._prunable(finished_before, behind).subquery()
            return int(conn.execute(select(func.count()).select_from(prunable)).scalar_one())

    @read_again_if_dropped
    def kept_for_consumers(self, finished_before: datetime) -> dict[str, int]:
        """For each durable consumer behind, how many runs that ended before
        ``finished_before`` it keeps from ``prune_runs`` (their events it has not read)."""
        with self._read() as conn:
            cursors = conn.execute(select(CURSORS.c.consumer, CURSORS.c.position)).all()
            kept: dict[str, int] = {}
            for cursor in cursors:
                held = self._prunable(finished_before, None).where(
                    exists().where(EVENTS.c.run_id == RUNS.c.id, EVENTS.c.id > cursor.position)
                )
                count = int(
                    conn.execute(select(func.count()).select_from(held.subquery())).scalar_one()
                )
                if count:
                    kept[cursor.consumer] = count
            return kept

    @write_again_if_dropped
    def prune_runs(self, finished_before: datetime, *, limit: int) -> list[str]:
        """Delete up to ``limit`` runs that ended before ``finished_before`` and everything
        stored for them but their audit records, in one transaction; their ids."""
        with self._write() as conn:
            behind = conn.execute(select(func.min(CURSORS.c.position))).scalar()
            query = self._prunable(finished_before, behind).order_by(RUNS.c.updated_at)
            ids = list(conn.execute(query.limit(limit)).scalars())
            if ids:
                for table in (TASKS, PAUSES, LOGS, METADATA, EVENTS):
                    conn.execute(delete(table).where(table.c.run_id.in_(ids)))
                conn.execute(delete(RUNS).where(RUNS.c.id.in_(ids)))
        return ids


__all__ = ["PruningQueries"]
