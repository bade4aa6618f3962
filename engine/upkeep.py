"""Upkeep that any worker may do for every run: timing out pauses, escalating them, and
taking over runs whose process died. Every step is idempotent (a conditional update in the
store decides), so several workers doing it at once change each run once."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from signoff.engine.errors import missed
from signoff.engine.runs import RunState
from signoff.engine.settings import EngineSettings
from signoff.engine.store import SqlStore
from signoff.engine.timers import Timers

logger = logging.getLogger(__name__)

#: runs deleted per transaction by ``prune_finished``
PRUNE_BATCH = 500


class Upkeep:
    """The upkeep half of ``Engine``."""

    settings: EngineSettings
    store: SqlStore
    timers: Timers
    process_id: str
    _registered: bool
    #: monotonic time when stale process rows are next deleted
    _forget_due: float = 0.0
    #: whether ``recover_orphans`` said it waits after an outage (said once per outage)
    _deferred: bool = False

    def notify(self) -> None:
        raise NotImplementedError

    def owner_alive(self, owner: str | None) -> bool:
        raise NotImplementedError

    def judges_others(self, owner_timeout: float | None = None) -> bool:
        raise NotImplementedError

    def expire_due_pauses(self, now: datetime | None = None) -> list[str]:
        """Time out overdue pauses. Idempotent.

        A flow still waiting in a live process wakes and gets ``PauseTimeout``. A paused
        run whose process is gone is run again, so that its flow gets ``PauseTimeout`` at
        the same call and may handle it, as it would have. A suspended run fails, as
        Prefect fails it. Returns the ids of the runs settled or run again.
        """
        now = now or self.store.clock()
        settled: list[str] = []
        for pause in self.store.due_pauses(now):
            if not self.store.expire_pause(pause.run_id, pause.key):
                continue
            run = self.store.get_run(pause.run_id)
            if run.state is RunState.PAUSED and self.owner_alive(run.owner):
                continue  # the waiting flow wakes, gets PauseTimeout, and may handle it
            if not pause.suspend and self.store.transition(
                run.id,
                RunState.SCHEDULED,
                "Recovering",
                f"nobody answered input {pause.key!r} in time and the process that waited "
                "is gone; running the flow again, where the pause raises PauseTimeout",
                expect=(RunState.PAUSED, RunState.SUSPENDED),
                owner=None,
            ):
                settled.append(run.id)
                continue
            assert pause.deadline is not None  # due: it has one
            # isoformat, not %Y: that drops a year's leading zeros on Linux
            until = pause.deadline.replace(tzinfo=None).isoformat(" ", "seconds")
            message = (
                f"waited for input {pause.key!r} until {until} UTC "
                f"and {missed(len(pause.answers), pause.quorum)}"
            )
            if self.store.transition(
                run.id,
                RunState.FAILED,
                "TimedOut",
                message,
                expect=(RunState.PAUSED, RunState.SUSPENDED),
                owner=None,
            ):
                settled.append(run.id)
        if settled:
            self.notify()
        return settled

    def recover_orphans(self) -> list[str]:
        """Take over runs whose process died: paused ones wait on, running ones re-run.

        Each process is judged by the owner timeout it declared, not by this one's: a
        replica set to beat more slowly than this one is alive between its beats. Not while
        this process is just back from an outage of the database (``judges_others``): the
        others' heartbeats stopped with its own, and taking their waiting runs for orphans
        would run each flow again from its start."""
        if not self.judges_others():
            # Said only when some process looks dead: a process that has just started
            # defers too, mostly with nobody to defer.
            own, now = self.settings.owner_timeout_seconds, self.store.clock()
            if any(
                not b.alive(now, own) for b in self.store.processes() if b.id != self.process_id
            ):
                self._defer()
            return []
        own = self.settings.owner_timeout_seconds
        now = self.store.clock()
        beats = self.store.processes()
        live = {beat.id for beat in beats if beat.alive(now, own)}
        # A stale process that declared a longer timeout than this one's may not have had
        # time to beat again since this process's outage ended: judged once it has.
        waiting = {
            beat.id
            for beat in beats
            if beat.id not in live and not self.judges_others(beat.timeout(own))
        }
        if waiting:
            self._defer()
            live |= waiting
        else:
            self._deferred = False
        if self._registered:
            live.add(self.process_id)
        moved: list[str] = []
        for run in self.store.orphans(live):
            if run.state is RunState.PAUSED:
                done = self.store.transition(
                    run.id,
                    RunState.SUSPENDED,
                    "Suspended",
                    "the process that was waiting is gone; answering runs the flow again",
                    expect=(RunState.PAUSED,),
                    expect_owner=run.owner,
                    owner=None,
                )
            else:
                done = self.store.transition(
                    run.id,
                    RunState.SCHEDULED,
                    "Recovering",
                    "the process that ran it is gone; running it again",
                    expect=(RunState.RUNNING,),
                    expect_owner=run.owner,
                    owner=None,
                )
            if done:
                moved.append(run.id)
                logger.warning(
                    "took over an orphaned run",
                    extra={"action": "run_orphaned", "run_id": run.id, "state": run.state.value},
                )
        if time.monotonic() >= self._forget_due:
            # A write: only as often as rows can have gone stale, not on every pass. A row
            # goes once its process has been silent for three of its own owner timeouts.
            stale: dict[str, datetime] = {}
            for beat in beats:
                cutoff = now - timedelta(seconds=beat.timeout(own) * 3)
                if beat.id not in live and beat.heartbeat_at < cutoff:
                    stale[beat.id] = cutoff
            self.store.forget_processes(stale)
            self.timers.forget_settled()
            self._forget_due = time.monotonic() + own
        if moved:
            self.notify()
        return moved

    def suspend_own_paused(self) -> list[str]:
        """As this process stops: suspend its paused runs, whose flows wait here for an
        answer nobody will hand them now. Answering one runs its flow again on a worker,
        as for a process that died; until now such runs read "paused" until another
        process took this one for gone, an owner timeout later."""
        if not self._registered:
            return []
        suspended = self.store.suspend_paused(
            self.process_id, "the process that was waiting stopped; answering runs the flow again"
        )
        if suspended:
            logger.info(
                "suspended the runs waiting in this process as it stops",
                extra={"action": "paused_runs_suspended", "runs": len(suspended)},
            )
        return suspended

    def _defer(self) -> None:
        """Say once per outage that this process leaves other processes' runs for now."""
        if not self._deferred:
            self._deferred = True
            logger.info(
                "not taking over other processes' runs until they have had time to "
                "send a heartbeat again since this process (re)gained the database",
                extra={"action": "orphans_deferred"},
            )

    def prune_finished(self, finished_before: datetime, *, dry_run: bool = False) -> int:
        """Delete the runs that ended before ``finished_before``, with their pauses, task
        records, logs, metadata and events; how many (with ``dry_run``, how many would be,
        deleting nothing). Their audit records stay, and ``audit_trail`` still reads them.

        Kept whatever their age: a nested flow's run while the run that called it has not
        ended, and a run with events a consumer (the Slack bot) has not read yet. Deleted
        a batch per transaction, so that other writers are not held up.

        Example::

            engine.prune_finished(datetime.now(UTC) - timedelta(days=90))
        """
        if finished_before.tzinfo is None:
            raise ValueError("finished_before must be timezone-aware (UTC)")
        if dry_run:
            return self.store.count_prunable(finished_before)
        pruned = 0
        while True:
            ids = self.store.prune_runs(finished_before, limit=PRUNE_BATCH)
            pruned += len(ids)
            if len(ids) < PRUNE_BATCH:
                break
        logger.info(
            "finished runs pruned",
            extra={"action": "runs_pruned", "runs": pruned, "before": finished_before.isoformat()},
        )
        return pruned

    def runs_kept_for_consumers(self, finished_before: datetime) -> dict[str, int]:
        """How many runs that ended before ``finished_before`` ``prune_finished`` keeps for
        each durable consumer that has not read their events yet (the Slack bot's is
        ``slack``). A consumer nothing runs any more (a retired bot's) keeps them for good,
        until ``forget_consumer``.

        Example::

            engine.runs_kept_for_consumers(datetime.now(UTC) - timedelta(days=90))
            # {'slack': 1234}
        """
        if finished_before.tzinfo is None:
            raise ValueError("finished_before must be timezone-aware (UTC)")
        return self.store.kept_for_consumers(finished_before)

    def forget_consumer(self, consumer: str) -> None:
        """Forget a durable consumer nothing runs any more, so that the runs whose events it
        never read can be pruned. One started again later under that name starts from the
        present, as a new one does.

        Raises:
            ConsumerNotFound: No consumer of that name has read the events.
            ConsumerInUse: A running process holds it.
        """
        self.store.forget_cursor(consumer)
        logger.warning(
            "durable consumer forgotten",
            extra={"action": "consumer_forgotten", "consumer": consumer},
        )

    def escalate_due_pauses(self, now: datetime | None = None) -> list[str]:
        """Add the escalation approvers of waiting pauses whose delay has passed. Idempotent:
        of several workers firing the same timer, one escalates each pause."""
        now = now or self.store.clock()
        escalated: list[str] = []
        for pause in self.store.due_escalations(now):
            if self.store.escalate_pause(pause.run_id, pause.key) is not None:
                escalated.append(pause.run_id)
                logger.info(
                    "pause escalated",
                    extra={"action": "pause_escalated", "run_id": pause.run_id, "key": pause.key},
                )
        if escalated:
            self.notify()
        return escalated


__all__ = ["Upkeep"]
