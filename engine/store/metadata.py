"""Values a run keeps under a key (``set_metadata`` and friends), and requests to suspend a
running run, which are stored the same way and announced by an event."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import literal, select
from sqlalchemy.exc import IntegrityError

from signoff.engine.errors import RunNotFound
from signoff.engine.runs import JSON, EventKind, RunState
from signoff.engine.serialization import unstorable_values
from signoff.engine.store.base import RUNS, StoreBase
from signoff.engine.store.dropped import read_again_if_dropped, write_again_if_dropped
from signoff.engine.store.pauses import PAUSES
from signoff.engine.store.state_changes import checked
from signoff.engine.store.tables import MetadataRow

METADATA = MetadataRow.__table__  # type: ignore[attr-defined]


#: the longest metadata key kept
MAX_KEY = 300


class MetadataQueries(StoreBase):
    def _insert_metadata(self, run_id: str, key: str, value: JSON) -> Any:
        if len(key) > MAX_KEY:
            raise ValueError(
                f"metadata key {key[:40]!r}... is {len(key)} characters; at most {MAX_KEY}"
            )
        if "\x00" in key:
            raise ValueError(f"metadata key {key!r} has a NUL character")
        for path, why in unstorable_values(value).items():
            where = f"the number at {path}" if path else "its number"
            raise ValueError(f"metadata {key!r} of run {run_id} cannot be stored: {where} {why}")
        # SQLAlchemy drops an INSERT's row count unless asked to keep it.
        return (
            self._dialect_insert(METADATA)
            .values(run_id=run_id, key=key, value=value)
            .execution_options(preserve_rowcount=True)
        )

    def set_metadata(self, run_id: str, key: str, value: JSON) -> None:
        # An upsert, so that two processes setting the same key cannot collide on the insert.
        statement = self._insert_metadata(run_id, key, value)
        self._put_metadata(
            run_id,
            statement.on_conflict_do_update(
                index_elements=[METADATA.c.run_id, METADATA.c.key],
                set_={"value": statement.excluded.value},
            ),
        )

    def add_metadata(self, run_id: str, key: str, value: JSON) -> bool:
        """Store ``value`` unless ``key`` already has one; True if this call stored it."""
        statement = self._insert_metadata(run_id, key, value).on_conflict_do_nothing()
        return self._put_metadata(run_id, statement)

    @write_again_if_dropped
    def _put_metadata(self, run_id: str, statement: Any) -> bool:
        with self._write() as conn:
            try:
                return bool(conn.execute(statement).rowcount == 1)
            except IntegrityError as exc:  # the only constraint left is the run's foreign key
                raise RunNotFound(run_id) from exc

    @write_again_if_dropped
    def request_suspend(self, run_id: str, prefix: str, key: str, request: JSON) -> bool:
        """Store a request that a running run suspend itself (under ``prefix`` + ``key``,
        the key of the pause it asks for), and announce it; True if stored.

        Nothing is stored unless the run is running and has no request it has not met yet
        (under any key): it suspends once for all of them, as Prefect's run, suspended at
        the first request, refuses the next.
        """
        now = self.clock()
        with self._write() as conn:
            running = conn.execute(
                select(RUNS.c.id).where(
                    RUNS.c.id == run_id, checked(RUNS.c.state) == RunState.RUNNING.value
                )
            ).first()
            if running is None or conn.execute(_unmet(run_id, prefix)).first() is not None:
                return False
            name = prefix + key
            statement = self._insert_metadata(run_id, name, request).on_conflict_do_nothing()
            if conn.execute(statement).rowcount != 1:
                return False
            self._emit(conn, run_id, EventKind.SUSPEND_REQUESTED, {"key": name}, now)
            return True

    @read_again_if_dropped
    def unmet_suspend_request(self, run_id: str, prefix: str) -> str | None:
        """The key (after ``prefix``) of a request to suspend ``run_id`` that it has not met
        yet (no pause has that key), if there is one."""
        with self._read() as conn:
            row = conn.execute(_unmet(run_id, prefix)).first()
        return None if row is None else str(row.key)[len(prefix) :]

    @read_again_if_dropped
    def get_metadata(self, run_id: str, key: str) -> JSON:
        with self._read() as conn:
            row = conn.execute(
                select(METADATA.c.value).where(METADATA.c.run_id == run_id, METADATA.c.key == key)
            ).first()
        return None if row is None else row[0]

    @read_again_if_dropped
    def metadata_of(self, run_ids: Collection[str], key: str) -> dict[str, JSON]:
        """``key``'s value of each of ``run_ids`` that has one, by run id: one read."""
        wanted = sorted(set(run_ids))
        if not wanted:
            return {}
        with self._read() as conn:
            rows = conn.execute(
                select(METADATA.c.run_id, METADATA.c.value).where(
                    METADATA.c.run_id.in_(wanted), METADATA.c.key == key
                )
            )
            return {str(run_id): value for run_id, value in rows}


def _unmet(run_id: str, prefix: str) -> Any:
    """Requests to suspend ``run_id`` (metadata keyed ``prefix`` + pause key) whose pause
    does not exist: the run has not met them yet."""
    met = (
        select(PAUSES.c.key)
        .where(PAUSES.c.run_id == run_id, literal(prefix) + PAUSES.c.key == METADATA.c.key)
        .exists()
    )
    return (
        select(METADATA.c.key)
        .where(
            METADATA.c.run_id == run_id,
            METADATA.c.key.startswith(prefix, autoescape=True),
            ~met,
        )
        .limit(1)
    )


__all__ = ["METADATA", "MetadataQueries"]
