"""Reminders in a run's thread shortly before a prompt's deadline.

When the notifier posts a prompt whose pause has a deadline, it schedules ``remind`` as a
durable backend timer (``Backend.call_at``): the job survives restarts, and is executed by
a process that serves the backend (``signoff serve`` does).

When: ``deadline - min(10 minutes, half the time from posting to the deadline)``. Long
waits get a reminder ten minutes before the end; short ones get it halfway, so that the
reminder is never due before the prompt has been seen and there is still time to answer.

The job needs the running bot (a Slack client and the run's thread), so every notifier
started in this process registers here (``track``). A process with a worker but no
notifier does nothing when the job fires. A reminder is posted at most once per pause,
and only while the pause still waits: the process that claims it posts it, whether or not
it holds the notifier's lease (which keeps replicas from repeating each other's posts of
the run's changes; a claimed reminder cannot be repeated).
"""

from __future__ import annotations

import logging
import threading
import weakref
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from signoff.bot.backends import Backend, PauseStatus
from signoff.bot.errors import BackendError
from signoff.bot.slack import ids, thread_notes

logger = logging.getLogger(__name__)

#: the longest lead a reminder has before the deadline
LEAD = timedelta(minutes=10)
#: import path of the job body, as the timer table stores it
JOB = "signoff.bot.slack.reminders:remind"


class SlackNotifier(Protocol):
    """What posting a reminder needs of the notifier (``bot.slack.notifier`` registers
    itself here, so this module does not import it)."""

    @property
    def backend(self) -> Backend: ...

    def thread(self, run_id: str) -> dict[str, str] | None: ...

    def reply(
        self,
        run_id: str,
        thread: dict[str, str],
        post_id: str,
        text: str,
        blocks: list[Any] | None = None,
        *,
        fenced: bool = True,
    ) -> dict[str, str]: ...


# Weak references: a notifier lives as long as its backend's subscription; the registry
# must not keep old backends (and their database pools) alive.
_notifiers: list[weakref.ref[SlackNotifier]] = []
_lock = threading.Lock()


def track(notifier: SlackNotifier) -> None:
    """Make ``notifier`` the newest one reminders are posted through."""
    with _lock:
        _notifiers[:] = [r for r in _notifiers if r() is not None and r() is not notifier]
        _notifiers.append(weakref.ref(notifier))


def active_notifiers() -> list[SlackNotifier]:
    """Registered notifiers, newest first."""
    with _lock:
        alive = [n for n in (r() for r in reversed(_notifiers)) if n is not None]
    return alive


def reminder_time(deadline: datetime, now: datetime) -> datetime:
    """``deadline - min(LEAD, (deadline - now) / 2)``."""
    return deadline - min(LEAD, (deadline - now) / 2)


def job_id(run_id: str, key: str) -> str:
    return f"signoff:remind:{run_id}:{key}"


def schedule(
    backend: Backend, run_id: str, key: str, deadline: datetime, now: datetime | None = None
) -> datetime | None:
    """Set the reminder for pause ``key`` of ``run_id``; returns when it fires (None: too late)."""
    now = now or datetime.now(UTC)
    if deadline <= now:
        return None
    when = reminder_time(deadline, now)
    backend.call_at(job_id(run_id, key), when, JOB, {"run_id": run_id, "key": key})
    logger.info(
        "reminder scheduled",
        extra={"action": "reminder_scheduled", "run_id": run_id, "key": key, "at": when},
    )
    return when


def cancel(backend: Backend, run_id: str, key: str) -> None:
    """Drop the reminder of a pause that no longer waits (the job would do nothing anyway)."""
    backend.cancel_call(job_id(run_id, key))


def remind(run_id: str, key: str) -> bool:
    """Job body: post the reminder for pause ``key`` if it still waits. True if posted."""
    for notifier in active_notifiers():
        try:
            notifier.backend.get_run(run_id)
        except BackendError:
            continue  # another backend's notifier (tests run several); not this run's
        return _post(notifier, run_id, key)
    logger.info(
        "no Slack notifier in this process; reminder skipped",
        extra={"action": "reminder_skipped", "run_id": run_id, "key": key},
    )
    return False


def _post(notifier: SlackNotifier, run_id: str, key: str) -> bool:
    backend = notifier.backend
    run = backend.get_run(run_id)
    pause = backend.get_pause(run_id, key)
    if pause is None or pause.status is not PauseStatus.WAITING or not run.state.is_waiting:
        return False
    if pause.deadline is not None and pause.deadline <= datetime.now(UTC):
        return False
    thread = notifier.thread(run_id)
    if thread is None:
        return False  # no prompt to remind of
    # Several workers may fire the same job: the one that claims the key posts, and the
    # claim and its audit record are written together, so the trail has it once.
    claim = ids.reminder_key(key)
    if not backend.claim_reminder(run_id, key, claim, deadline=pause.deadline):
        return False
    # Claimed, so posted once whichever replica fired the job: not only by the one holding
    # the notifier's lease, which may not be among the processes that fire it.
    text = thread_notes.reminder_text(run, pause)
    reply = notifier.reply(run_id, thread, f"reminder.{key}", text, fenced=False)
    backend.set_record(run_id, claim, reply["ts"])
    logger.info(
        "reminder posted", extra={"action": "reminder_posted", "run_id": run_id, "key": key}
    )
    return True
