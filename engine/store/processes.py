"""Which processes are alive: each one that runs flows registers and sends heartbeats, so
that another can tell a run whose owner died from one that is merely busy."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, insert, select, update

from signoff.engine.store.base import StoreBase
from signoff.engine.store.tables import ProcessRow

PROCESSES = ProcessRow.__table__  # type: ignore[attr-defined]


class ProcessQueries(StoreBase):
    def register_process(self, process_id: str, hostname: str, pid: int) -> None:
        now = self.clock()
        with self._write() as conn:
            conn.execute(
                insert(PROCESSES).values(
                    id=process_id, hostname=hostname, pid=pid, started_at=now, heartbeat_at=now
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

    def remove_process(self, process_id: str) -> None:
        with self._write() as conn:
            conn.execute(delete(PROCESSES).where(PROCESSES.c.id == process_id))

    def live_processes(self, timeout: float) -> set[str]:
        cutoff = self.clock() - timedelta(seconds=timeout)
        with self._read() as conn:
            ids = conn.execute(select(PROCESSES.c.id).where(PROCESSES.c.heartbeat_at >= cutoff))
            return {row[0] for row in ids}

    def is_alive(self, process_id: str | None, timeout: float) -> bool:
        if process_id is None:
            return False
        cutoff = self.clock() - timedelta(seconds=timeout)
        with self._read() as conn:
            found = conn.execute(
                select(PROCESSES.c.id).where(
                    PROCESSES.c.id == process_id, PROCESSES.c.heartbeat_at >= cutoff
                )
            ).first()
            return found is not None

    def forget_dead_processes(self, timeout: float) -> None:
        cutoff = self.clock() - timedelta(seconds=timeout)
        with self._write() as conn:
            conn.execute(delete(PROCESSES).where(PROCESSES.c.heartbeat_at < cutoff))


__all__ = ["PROCESSES", "ProcessQueries"]
