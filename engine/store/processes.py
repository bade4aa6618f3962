"""Which processes are alive: each one that runs flows registers and sends heartbeats, so
that another can tell a run whose owner died from one that is merely busy.

Each process declares, when it registers, how long it may go without a heartbeat before
it counts as gone (its ``owner_timeout_seconds``), and every other process judges it by
that figure, not by its own setting: replicas may beat at different rates, and one with a
short timeout must not take a slowly beating live one for dead and its runs over."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select, update

from signoff.engine.store import rows
from signoff.engine.store.base import StoreBase
from signoff.engine.store.dropped import read_again_if_dropped, write_again_if_dropped
from signoff.engine.store.tables import ProcessRow

PROCESSES = ProcessRow.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ProcessBeat:
    """A registered process's last heartbeat and the owner timeout it declared."""

    id: str
    heartbeat_at: datetime
    #: the owner timeout the process declared; None in a row stored before processes
    #: declared one (see ``timeout``)
    owner_timeout_seconds: float | None

    def timeout(self, fallback: float) -> float:
        """How long this process may go without a heartbeat: what it declared, or for a
        row that declares nothing, ``fallback`` (the observer's own owner timeout)."""
        declared = self.owner_timeout_seconds
        return fallback if declared is None else declared

    def alive(self, now: datetime, fallback: float) -> bool:
        return judge_alive(self.heartbeat_at, self.owner_timeout_seconds, now, fallback)


def judge_alive(
    heartbeat_at: datetime | None, declared: float | None, now: datetime, fallback: float
) -> bool:
    """Whether a process that last beat at ``heartbeat_at`` (None: it has no row) and
    declared the owner timeout ``declared`` still counts as alive at ``now``."""
    if heartbeat_at is None:
        return False
    timeout = fallback if declared is None else declared
    return rows.utc(heartbeat_at) >= now - timedelta(seconds=timeout)


class ProcessQueries(StoreBase):
    @write_again_if_dropped
    def register_process(
        self, process_id: str, hostname: str, pid: int, owner_timeout: float
    ) -> None:
        """Register a process that promises a heartbeat at least every ``owner_timeout``
        seconds; others take it for gone only after that long without one."""
        now = self.clock()
        with self._write() as conn:
            conn.execute(
                insert(PROCESSES).values(
                    id=process_id,
                    hostname=hostname,
                    pid=pid,
                    started_at=now,
                    heartbeat_at=now,
                    owner_timeout_seconds=owner_timeout,
                )
            )

    def heartbeat(self, process_id: str) -> bool:
        """Prove the process is alive; False if its row was removed as stale."""
        # One statement on its own: on PostgreSQL it runs without BEGIN and COMMIT, which
        # matters to an idle worker, whose CPU is mostly its heartbeat.
        with self._write_one() as conn:
            result = conn.execute(
                update(PROCESSES)
                .where(PROCESSES.c.id == process_id)
                .values(heartbeat_at=self.clock())
            )
            return result.rowcount == 1

    @write_again_if_dropped
    def remove_process(self, process_id: str) -> None:
        with self._write() as conn:
            conn.execute(delete(PROCESSES).where(PROCESSES.c.id == process_id))

    @read_again_if_dropped
    def processes(self) -> list[ProcessBeat]:
        """Every registered process's last heartbeat (a handful of rows: one per process,
        the gone ones until ``forget_processes``)."""
        with self._read() as conn:
            found = conn.execute(
                select(PROCESSES.c.id, PROCESSES.c.heartbeat_at, PROCESSES.c.owner_timeout_seconds)
            )
            return [
                ProcessBeat(r.id, rows.utc(r.heartbeat_at), r.owner_timeout_seconds) for r in found
            ]

    def live_processes(self, timeout: float) -> set[str]:
        """The processes alive by the owner timeout each declared (``timeout`` for a row
        that declares none)."""
        now = self.clock()
        return {beat.id for beat in self.processes() if beat.alive(now, timeout)}

    @read_again_if_dropped
    def is_alive(self, process_id: str | None, timeout: float) -> bool:
        """Whether ``process_id`` is alive by the owner timeout it declared (``timeout`` for
        a row that declares none)."""
        if process_id is None:
            return False
        with self._read() as conn:
            found = conn.execute(
                select(PROCESSES.c.heartbeat_at, PROCESSES.c.owner_timeout_seconds).where(
                    PROCESSES.c.id == process_id
                )
            ).first()
        if found is None:
            return False
        return judge_alive(found.heartbeat_at, found.owner_timeout_seconds, self.clock(), timeout)

    @write_again_if_dropped
    def forget_processes(self, stale_before: Mapping[str, datetime]) -> None:
        """Delete the rows of gone processes: each named one whose last heartbeat is still
        older than its cutoff (one that beat since it was judged keeps its row)."""
        if not stale_before:
            return
        with self._write() as conn:
            for process_id, cutoff in stale_before.items():
                conn.execute(
                    delete(PROCESSES).where(
                        PROCESSES.c.id == process_id, PROCESSES.c.heartbeat_at < cutoff
                    )
                )


__all__ = ["PROCESSES", "ProcessBeat", "ProcessQueries", "judge_alive"]
