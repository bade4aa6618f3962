"""Counting queries for monitoring: runs by state, waiting inputs, and how far behind each
consumer of the events table is. A few aggregate reads, meant for a scrape every few seconds."""

from __future__ import annotations

from sqlalchemy import func, select

from signoff.engine.runs import ConsumerLag, EngineStats, RunState
from signoff.engine.store import rows
from signoff.engine.store.base import EVENTS, RUNS, StoreBase
from signoff.engine.store.dropped import read_again_if_dropped
from signoff.engine.store.pauses import IS_WAITING, PAUSES
from signoff.engine.store.tables import CursorRow

_CURSORS = CursorRow.__table__  # type: ignore[attr-defined]


class StatsQueries(StoreBase):
    """``stats()``: what a metrics endpoint reports about the whole database."""

    @read_again_if_dropped
    def stats(self) -> EngineStats:
        """Counts over every run, pause and consumer in the database (not only this process's)."""
        now = self.clock()
        with self._read() as conn:
            by_state = {
                RunState(state): int(count)
                for state, count in conn.execute(
                    select(RUNS.c.state, func.count()).group_by(RUNS.c.state)
                )
            }
            waiting = int(
                conn.execute(
                    select(func.count()).select_from(PAUSES).where(IS_WAITING)
                ).scalar_one()
            )
            newest = int(conn.execute(select(func.coalesce(func.max(EVENTS.c.id), 0))).scalar_one())
            consumers = []
            for cursor in conn.execute(select(_CURSORS.c.consumer, _CURSORS.c.position)):
                oldest_at = conn.execute(
                    select(EVENTS.c.at)
                    .where(EVENTS.c.id > cursor.position)
                    .order_by(EVENTS.c.id)
                    .limit(1)
                ).scalar_one_or_none()
                consumers.append(
                    ConsumerLag(
                        consumer=cursor.consumer,
                        events_behind=max(newest - int(cursor.position), 0),
                        seconds_behind=(
                            max((now - rows.utc(oldest_at)).total_seconds(), 0.0)
                            if oldest_at is not None
                            else 0.0
                        ),
                    )
                )
        return EngineStats(
            runs_by_state={state: by_state.get(state, 0) for state in RunState},
            waiting_inputs=waiting,
            newest_event_id=newest,
            consumers=tuple(consumers),
        )
