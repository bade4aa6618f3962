"""A run's task calls as the store keeps them: the record of each call, and the finished
ones a run that runs again replays instead of calling again.

Example::

    store.record_task(run_id, "add-0", "add", RunState.COMPLETED, 1, result, "3", None, began)
    store.completed_task(run_id, "add-0").result
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select

from signoff.engine.runs import RunState
from signoff.engine.store.base import StoreBase
from signoff.engine.store.dropped import read_again_if_dropped, write_again_if_dropped
from signoff.engine.store.prepared import Prepared
from signoff.engine.store.tables import TaskRunRow

TASKS = TaskRunRow.__table__  # type: ignore[attr-defined]

#: the columns ``record_task`` gives
_TASK_COLUMNS = (
    *("run_id", "key", "task_name", "state", "attempts", "result", "result_preview", "error"),
    *("started_at", "ended_at", "inner_calls"),
)
_COMPLETED_TASK = Prepared(
    select(TASKS.c.state, TASKS.c.result, TASKS.c.inner_calls).where(
        TASKS.c.run_id == bindparam("run_id"),
        TASKS.c.key == bindparam("key"),
        TASKS.c.state == RunState.COMPLETED.value,
    )
)


@dataclass(frozen=True)
class StoredTask:
    """A finished task call as the replay needs it."""

    state: RunState
    result: bytes | None
    #: the pause and task calls made inside it (``context.CallTally.recorded``)
    inner_calls: dict[str, Any] | None = None


class TaskQueries(StoreBase):
    @read_again_if_dropped
    def completed_task(self, run_id: str, key: str) -> StoredTask | None:
        with self._read() as conn:
            row = _COMPLETED_TASK.execute(conn, {"run_id": run_id, "key": key}).first()
        if row is None:
            return None
        return StoredTask(RunState(row.state), row.result, row.inner_calls)

    @write_again_if_dropped
    def record_task(
        self,
        run_id: str,
        key: str,
        task_name: str,
        state: RunState,
        attempts: int,
        result: bytes | None,
        preview: str | None,
        error: str | None,
        started_at: datetime,
        logs: Sequence[tuple[datetime, str, str, str | None]] = (),
        inner_calls: dict[str, Any] | None = None,
    ) -> None:
        values = {
            "task_name": task_name,
            "state": state.value,
            "attempts": attempts,
            "result": result,
            "result_preview": preview,
            "error": error,
            "started_at": started_at,
            "ended_at": self.clock(),
            "inner_calls": inner_calls,
        }
        if not logs:
            with self._write_one() as conn:
                self._record_task.execute(conn, {"run_id": run_id, "key": key, **values})
            return
        with self._write() as conn:
            self._record_task.execute(conn, {"run_id": run_id, "key": key, **values})
            self._insert_logs(conn, run_id, logs)

    @functools.cached_property
    def _record_task(self) -> Prepared:
        """An INSERT of a task record that replaces one stored under its key: a re-run
        records a task that failed before again (built once per store, for its dialect)."""
        statement = self._dialect_insert(TASKS)
        replaced = [c.name for c in TASKS.c if c.name not in ("id", "run_id", "key")]
        return Prepared(
            statement.on_conflict_do_update(
                index_elements=[TASKS.c.run_id, TASKS.c.key],
                set_={name: statement.excluded[name] for name in replaced},
            ),
            columns=[_TASK_COLUMNS],
            dialect=self.engine.dialect.name,
        )


__all__ = ["TASKS", "StoredTask", "TaskQueries"]
