"""Timers on APScheduler, with their jobs kept in the engine's own database.

This is the only module that imports apscheduler. Jobs survive restarts because they
live in the ``apscheduler_jobs`` table. Every process that waits on runs adds jobs, but
only workers (``active=True``) execute them: other processes start the scheduler paused,
which still writes jobs to the table. Several workers may fire the same job, so every
job must be idempotent: pause expiry and escalation are conditional updates, and the bot's reminders
claim their pause with ``Engine.add_metadata`` before posting.

Jobs refer to functions by import path (``"package.module:function"``) so that any process
can run them. The engine's own job, ``expire_due_pauses``, sweeps every engine in the
process; applications add their own (the Slack bot's reminders) through ``Timers.call_at``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import weakref
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from apscheduler.events import EVENT_JOB_SUBMITTED, JobSubmissionEvent
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_RUNNING
from sqlalchemy import text as sql_text

from signoff.engine.outages import Outage

if TYPE_CHECKING:
    from sqlalchemy import Engine as SqlEngine

logger = logging.getLogger(__name__)


class Sweeper(Protocol):
    """What the sweep job calls (an ``Engine``); named here so timers need not import it."""

    def expire_due_pauses(self) -> list[str]: ...

    def escalate_due_pauses(self) -> list[str]: ...


#: engines in this process whose due pauses a fired sweep job expires
_sweeping: weakref.WeakSet[Sweeper] = weakref.WeakSet()
#: how often a worker sweeps even without a job, for pauses whose job was lost
SAFETY_SWEEP_SECONDS = 30


def expire_due_pauses() -> None:
    """Job body: expire overdue pauses (and escalate due ones) for every engine here."""
    for engine in list(_sweeping):
        engine.expire_due_pauses()
        engine.escalate_due_pauses()


def escalate_due_pauses() -> None:
    """Job body: escalate pauses whose escalation delay has passed, for every engine here."""
    for engine in list(_sweeping):
        engine.escalate_due_pauses()


#: the jobs that time out and escalate pauses: ``<prefix><run id>:<pause key>``
EXPIRE_PREFIX, ESCALATE_PREFIX = "expire:", "escalate:"
#: pauses whose timers still matter (answered: judged yet, and may still be refused)
_TIMED_STATUSES = ("waiting", "answered")


def pause_job_id(prefix: str, run_id: str, key: str) -> str:
    """The id of a pause's timer (``EXPIRE_PREFIX`` or ``ESCALATE_PREFIX``)."""
    return f"{prefix}{run_id}:{key}"


def _settled_jobs(prefix: str) -> Any:
    """Deletes the ``prefix`` timers of pauses that no longer wait. A job names its run
    (32 characters: every run id) and pause; a job whose pause is not found is left to
    fire, which does nothing."""
    run_at, key_at = len(prefix) + 1, len(prefix) + 34
    return sql_text(
        f"DELETE FROM apscheduler_jobs WHERE id IN ("
        f"SELECT j.id FROM apscheduler_jobs j JOIN pauses p "
        f"ON p.run_id = substr(j.id, {run_at}, 32) AND p.key = substr(j.id, {key_at}) "
        f"WHERE j.id LIKE '{prefix}%' "
        f"AND p.status NOT IN ({', '.join(repr(s) for s in _TIMED_STATUSES)}))"
    )


_FORGET_SETTLED = tuple(_settled_jobs(prefix) for prefix in (EXPIRE_PREFIX, ESCALATE_PREFIX))

#: how soon the scheduler tries again after its job store failed (a new job wakes it sooner)
RETRY_SECONDS = 5.0
#: the job table's id column (APScheduler's ``VARCHAR(191)``; PostgreSQL enforces it)
STORED_ID_LENGTH = 191


def stored_id(job_id: str) -> str:
    """``job_id`` as the job table holds it: itself when it fits, else its start and a
    digest of the whole (ids name a run and a pause key, together up to about 250
    characters, and must stay distinct)."""
    if len(job_id) <= STORED_ID_LENGTH:
        return job_id
    digest = hashlib.sha256(job_id.encode()).hexdigest()
    return f"{job_id[: STORED_ID_LENGTH - len(digest) - 1]}#{digest}"


class _JobStore(SQLAlchemyJobStore):  # type: ignore[misc]
    """The job table, whose failed read of due jobs the scheduler is told of
    (``read_error``): APScheduler itself logs a warning of its own at each failed read
    (every 10 s while the database is down) and never says when reads work again."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.read_error: Exception | None = None

    def get_due_jobs(self, now: datetime) -> list[Any]:
        try:
            jobs: list[Any] = super().get_due_jobs(now)
        except Exception as exc:
            self.read_error = exc
            return []
        return jobs

    def remove_job(self, job_id: str) -> None:
        # Several workers fire the same due job, and each then removes it: the first one
        # does, the others find it gone. APScheduler takes that for a failed pass.
        with contextlib.suppress(JobLookupError):
            super().remove_job(job_id)


class _Scheduler(BackgroundScheduler):  # type: ignore[misc]
    def __init__(self, store: _JobStore, **kwargs: Any) -> None:
        super().__init__(jobstores={"default": store}, **kwargs)
        self._store = store
        self._outage = Outage(
            logger,
            "timers_failed",
            "timers_recovered",
            failed="timers failed; trying again every %g s",
            recovered="timers work again after %d failed tries",
        )

    def _process_jobs(self) -> float | None:
        # APScheduler 3 processes jobs once more if shutdown() lands between its wake-up and
        # its paused check, and then fails to submit to the closed executor.
        if self.state != STATE_RUNNING:
            return None
        self._store.read_error = None
        try:
            result: float | None = super()._process_jobs()
            if self._store.read_error is not None:
                raise self._store.read_error
        except Exception:
            if self.state != STATE_RUNNING:
                return None  # shut down during the pass: its removal of a fired job failed
            # The due jobs could not be read, or a fired job's write failed (a database
            # locked or down), which APScheduler lets end its thread, and with it every
            # later timer of this process. Try again.
            self._outage.failed(RETRY_SECONDS, traceback=True)
            return RETRY_SECONDS
        self._outage.over()
        return result


class Timers:
    """Schedules calls at a time, durably.

    Example::

        engine.timers.call_at("remind:run42", when, "signoff.bot.slack.reminders:remind", {"run_id": "run42"})
    """

    def __init__(self, db: SqlEngine) -> None:
        self._db = db
        #: whether this process set a timer (so may leave some behind, settled, at close)
        self.set_any = False
        self._scheduler = _Scheduler(
            _JobStore(engine=db, tablename="apscheduler_jobs"),
            job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1},
            timezone="UTC",
        )
        self._lock = threading.Lock()
        self._active = False
        self._fired_listeners: list[Callable[[str, float], None]] = []
        self._scheduler.add_listener(self._on_submitted, EVENT_JOB_SUBMITTED)

    def on_fired(self, listener: Callable[[str, float], None]) -> None:
        """Call ``listener(job_id, lag_seconds)`` whenever this process fires a job, with
        how late it fired (metrics). Listeners run on the scheduler's thread: keep them quick."""
        self._fired_listeners.append(listener)

    def _on_submitted(self, event: JobSubmissionEvent) -> None:
        now = datetime.now(UTC)
        for scheduled in event.scheduled_run_times:
            lag = (now - scheduled).total_seconds()
            for listener in list(self._fired_listeners):
                try:
                    listener(event.job_id, lag)
                except Exception:
                    logger.exception(
                        "timer listener failed", extra={"action": "timer_listener_failed"}
                    )

    @property
    def running(self) -> bool:
        return bool(self._scheduler.running)

    def start(self, *, active: bool, engine: Sweeper | None = None) -> None:
        """Start the scheduler; only an active one executes jobs."""
        with self._lock:
            if not self._scheduler.running:
                self._scheduler.start(paused=not active)
            elif active and not self._active:
                self._scheduler.resume()
            if active and not self._active:
                self._active = True
                if engine is not None:
                    _sweeping.add(engine)
                self._scheduler.add_job(
                    expire_due_pauses,
                    "interval",
                    seconds=SAFETY_SWEEP_SECONDS,
                    id="signoff:sweep",
                    replace_existing=True,
                )

    def call_at(
        self, job_id: str, when: datetime, func: str, kwargs: Mapping[str, Any] | None = None
    ) -> None:
        """Run ``func`` (an import path) with ``kwargs`` at ``when``; replaces a job of that id."""
        if not self._scheduler.running:
            self.start(active=False)
        self._scheduler.add_job(
            func,
            "date",
            run_date=when,
            id=stored_id(job_id),
            kwargs=dict(kwargs or {}),
            replace_existing=True,
        )
        self.set_any = True
        logger.debug("timer set", extra={"action": "timer_set", "job_id": job_id})

    def cancel(self, job_id: str) -> None:
        if not self._scheduler.running:
            self.start(active=False)
        with contextlib.suppress(JobLookupError):
            self._scheduler.remove_job(stored_id(job_id))

    def forget_settled(self) -> int:
        """Delete the timers of pauses answered, cancelled or ended since they were set;
        how many. Left, each stays until its time comes (an hour, a week), to fire for
        nothing: one row per pause ever made, in a table every worker reads."""
        try:
            with self._db.begin() as conn:
                forgotten = sum(
                    int(conn.execute(statement).rowcount) for statement in _FORGET_SETTLED
                )
        except Exception as exc:  # tidying only: tried again at the next pass
            logger.warning(
                "could not delete the timers of settled pauses: %s",
                str(exc)[:200],
                extra={"action": "timers_forget_failed"},
            )
            return 0
        if forgotten:
            logger.debug(
                "timers of settled pauses deleted",
                extra={"action": "timers_forgotten", "count": forgotten},
            )
        return forgotten

    def pending(self) -> list[tuple[str, datetime | None]]:
        """Ids (as stored: see ``stored_id``) and next run times of stored jobs."""
        if not self._scheduler.running:
            self.start(active=False)
        return [(job.id, job.next_run_time) for job in self._scheduler.get_jobs()]

    def wakeup(self) -> None:
        """Look at the job table again (another process may have added a job)."""
        if self._active:
            self._scheduler.wakeup()

    def shutdown(self, engine: Sweeper | None = None) -> None:
        if engine is not None:
            _sweeping.discard(engine)
        with self._lock:
            if self._scheduler.running:
                self._scheduler.shutdown(wait=False)
            self._active = False
