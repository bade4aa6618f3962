"""Waiting from the command line: for a run to pause or finish, and for an answer's verdict.

Events from any process wake the wait; the run is also looked at again every
``RECHECK_SECONDS`` in case an event was missed, so no wait depends on one delivery.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal, NamedTuple

import click

from signoff.bot.backends import model
from signoff.bot.cli.render import dump_json, state_line
from signoff.bot.cli.times import Seconds
from signoff.bot.forms.labels import clip
from signoff.engine import Event, Pause, PauseStatus, Run, RunState, StoreError
from signoff.engine.actors import printable

if TYPE_CHECKING:
    from signoff.engine import Engine

__all__ = [
    "NO_WORKER_SECONDS",
    "OUTAGE_SECONDS",
    "RECHECK_SECONDS",
    "TIMED_OUT",
    "UNSUCCESSFUL",
    "ReadOutage",
    "RunWatch",
    "Until",
    "Verdict",
    "report_wait",
    "say_no_worker",
    "timeout_option",
    "wait_for_run",
    "wait_for_verdict",
]

#: How long a wait goes without an event about its run before looking again anyway.
RECHECK_SECONDS = 1.0
#: How long a queued run may sit untaken before the wait says that no worker took it.
NO_WORKER_SECONDS = 5.0
#: How long a wait keeps trying while the database does not answer (a restart, a
#: failover) before it gives up with the database's error.
OUTAGE_SECONDS = 60.0

logger = logging.getLogger(__name__)

Until = Literal["paused", "finished"]

#: final states a wait reports with exit status 1
UNSUCCESSFUL = frozenset({RunState.FAILED, RunState.CRASHED, RunState.CANCELLED})
#: the exit status of a wait that ran out of time, as ``timeout(1)`` gives
TIMED_OUT = 124


class ReadOutage:
    """A wait's failed reads of its run while the database or the server does not answer:
    the first is logged (``wait_read_failed``), the wait gives up once they have failed for
    ``OUTAGE_SECONDS`` or its deadline has passed, and the first read after them is logged
    too (``wait_read_recovered``, at the failure's level: never a warning left alone)."""

    def __init__(self, run_id: str, deadline: float | None) -> None:
        self._run_id = run_id
        self._deadline = deadline
        self._since: float | None = None

    def failed(self, exc: Exception) -> bool:
        """Note a failed read; True when the wait should give up (re-raise ``exc``)."""
        now = time.monotonic()
        if self._since is None:
            self._since = now
            logger.warning(
                "could not read the run; trying again for up to %g s: %s",
                OUTAGE_SECONDS,
                exc,
                extra={"action": "wait_read_failed", "run_id": self._run_id},
            )
        return now - self._since >= OUTAGE_SECONDS or (
            self._deadline is not None and now >= self._deadline
        )

    def over(self) -> None:
        """A read worked: if reads had failed, say that they work again."""
        if self._since is not None:
            logger.warning(
                "read the run again after %.0f s",
                time.monotonic() - self._since,
                extra={"action": "wait_read_recovered", "run_id": self._run_id},
            )
            self._since = None


#: ``--timeout`` for the commands that wait for a run (at most a week)
timeout_option = click.option(
    "--timeout",
    type=Seconds(7 * 86_400),
    metavar="SECONDS",
    help="Give up after SECONDS: exit 124, the run left as it is.",
)


class RunWatch:
    """A ``RunObserver`` that sets ``changed`` whenever an event concerns one run."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.changed = threading.Event()

    def on_event(self, event: Event) -> None:
        """Note an event of the watched run."""
        if event.run_id == self.run_id:
            self.changed.set()


def _reached(run: Run | model.Run, until: Until) -> bool:
    if run.state.is_final:
        return True
    return until == "paused" and run.state.is_waiting


def wait_for_run(
    engine: Engine,
    run_id: str,
    until: Until = "finished",
    *,
    on_no_worker: Callable[[Run], None] | None = None,
    timeout: float | None = None,
) -> Run:
    """Block until a run is final, or (``until="paused"``) also waits for input, or
    ``timeout`` seconds have passed.

    Args:
        engine: The engine to read the run from and to observe.
        run_id: The run's id.
        until: ``"finished"`` waits for a final state; ``"paused"`` also stops at a pause.
        on_no_worker: Called once if the run is still queued after ``NO_WORKER_SECONDS``
            (no worker has taken it).

    Returns:
        The run in the state it stopped in, or as it was when the time ran out. With
        ``until="paused"``, a run of a flow it called (at any depth) when that one waits
        for input while the run itself reads as running: it is the one to answer.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    watch = RunWatch(run_id)
    engine.add_observer(watch)
    queued_since: float | None = None
    outage = ReadOutage(run_id, deadline)
    told = False
    try:
        while True:
            watch.changed.clear()  # before reading, so an event during the read is kept
            try:
                run = engine.get_run(run_id)
            except StoreError as exc:
                # A pipeline's wait should outlast a database restart, not fail on it.
                if outage.failed(exc):
                    raise
                watch.changed.wait(RECHECK_SECONDS)
                continue
            outage.over()
            if _reached(run, until):
                return run
            if until == "paused" and run.state is RunState.RUNNING:
                inner = engine.waiting_within(run.id)
                if inner is not None:
                    return inner
            if deadline is not None and time.monotonic() >= deadline:
                return run
            if run.state is RunState.SCHEDULED:
                queued_since = queued_since or time.monotonic()
                if not told and time.monotonic() - queued_since >= NO_WORKER_SECONDS:
                    told = True
                    if on_no_worker is not None:
                        on_no_worker(run)
            else:
                queued_since = None
            wait = RECHECK_SECONDS
            if queued_since is not None and not told:
                wait = min(wait, max(queued_since + NO_WORKER_SECONDS - time.monotonic(), 0.01))
            if deadline is not None:
                wait = min(wait, max(deadline - time.monotonic(), 0.0))
            watch.changed.wait(wait)
    finally:
        engine.remove_observer(watch)


class Verdict(NamedTuple):
    """Where a wait for an answer's verdict ended."""

    #: the pause as stored last: ``ACCEPTED`` or ``REJECTED`` once judged, else ``ANSWERED``
    pause: Pause
    #: the run, when it went on without its flow reading the answer: it ended, or it waits
    #: for other input (a suspend asked from outside the flow, whose code never asks it)
    went_on: Run | None = None
    #: the run waited ``NO_WORKER_SECONDS`` for a worker to run it again with the answer
    #: (a suspended run), and none took it
    unclaimed: bool = False


def wait_for_verdict(engine: Engine, pause: Pause, timeout: float) -> Verdict:
    """Wait until the flow has judged an answer (accepted or rejected), up to ``timeout``,
    or until its run went on without reading it.

    A flow judges an answer with its model when it takes the answer: at once when it waits
    in a live process, or when a worker runs a suspended run again. If no worker has taken
    the run after ``NO_WORKER_SECONDS``, waiting longer is no use: the verdict says so.
    """
    watch = RunWatch(pause.run_id)
    engine.add_observer(watch)
    deadline = time.monotonic() + timeout
    queued_since: float | None = None
    try:
        while True:
            watch.changed.clear()
            current = engine.get_pause(pause.run_id, pause.key) or pause
            if current.status is not PauseStatus.ANSWERED:
                return Verdict(current)
            run = engine.get_run(pause.run_id)
            if run.state.is_final or (
                run.state is RunState.PAUSED
                and (waiting := engine.waiting_pause(run.id)) is not None
                and waiting.key != pause.key
            ):
                # Read again: a verdict is stored no later than the run's next change, so
                # one given just before the run ended shows now.
                current = engine.get_pause(pause.run_id, pause.key) or current
                return Verdict(current, None if current.status is not PauseStatus.ANSWERED else run)
            now = time.monotonic()
            queued_since = (queued_since or now) if run.state is RunState.SCHEDULED else None
            if queued_since is not None and now - queued_since >= NO_WORKER_SECONDS:
                return Verdict(current, unclaimed=True)
            left = deadline - now
            if left <= 0:
                return Verdict(current)
            if queued_since is not None:
                left = min(left, queued_since + NO_WORKER_SECONDS - now)
            watch.changed.wait(min(left, RECHECK_SECONDS))
    finally:
        engine.remove_observer(watch)


def report_verdict(pause: Pause, verdict: Verdict, who: str, verdict_timeout: float) -> None:
    """Print what became of the answer to ``pause`` (given ``who``, as `` as bob``), and
    end with exit status 1 if the flow refused it."""
    judged, went_on = verdict.pause, verdict.went_on
    if judged.status is PauseStatus.REJECTED:
        reasons = "; ".join(f"{k or 'input'}: {v}" for k, v in judged.errors.items())
        what = f"the answer to {pause.run_id} (input {pause.key!r}){who}"
        if len(judged.answers) > 1:
            # A quorum's answers are judged together once the last is in: the refusal may
            # be of another's answer (each reason names whose), not of this one.
            what = (
                f"the {len(judged.answers)} answers to {pause.run_id} (input {pause.key!r}), "
                f"judged together once yours{who} completed them"
            )
        click.echo(f"error: the flow refused {what}: {reasons or 'its model refused it'}", err=True)
        raise click.exceptions.Exit(1)
    if judged.status is PauseStatus.ACCEPTED:
        click.echo(f"resumed {pause.run_id} (input {pause.key!r}){who}; the flow accepted it")
        return
    click.echo(f"resumed {pause.run_id} (input {pause.key!r}){who}")
    if went_on is not None and went_on.state.is_final and went_on.state.value != "completed":
        # It failed (or was cancelled) before its flow came to this input: the answer did
        # nothing, which a script checking the status must see.
        why = f": {went_on.state_message}" if went_on.state_message else ""
        click.echo(
            f"error: the run {went_on.state.value} without its flow reading this answer{why}",
            err=True,
        )
        raise click.exceptions.Exit(1)
    if went_on is not None:
        # A suspend asked from outside the flow: its code never asks for this input.
        where = (
            f"{went_on.state.value}"
            if went_on.state.is_final
            else "went on to wait for other input"
        )
        click.echo(f"note: the run {where} without its flow reading this answer", err=True)
        return
    if verdict.unclaimed:
        click.echo(
            f"note: no worker has taken the run after {NO_WORKER_SECONDS:g}s to run it again "
            "with the answer; start one with `signoff worker --flows ...`, and the flow "
            "judges the answer then (see `signoff runs show`)",
            err=True,
        )
        return
    click.echo(
        f"note: the flow has not judged the answer within {verdict_timeout:g}s "
        "(is a worker running?); see `signoff runs show`",
        err=True,
    )


#: the most of a completed run's result ``runs wait`` prints (``runs show`` has it all)
RESULT_CHARS = 500


def report_wait(
    run: Run | model.Run, until: Until, *, as_json: bool, timeout: float | None
) -> None:
    """Print where a wait left the run, and end with its exit status: 1 if the run ended
    without completing, ``TIMED_OUT`` if it got neither as far as ``until`` in time."""
    click.echo(dump_json(run) if as_json else state_line(run))
    if not as_json and run.state.value == "completed" and run.result is not None:
        # What the flow returned, as `runs show` gives it: often what the waiter wants.
        click.echo(f"result: {printable(clip(run.result, RESULT_CHARS))}")
    if run.state in UNSUCCESSFUL:
        raise click.exceptions.Exit(1)
    if not _reached(run, until):
        click.echo(
            f"error: run {run.id} is still {run.state.value} after {timeout:g}s (--timeout)",
            err=True,
        )
        raise click.exceptions.Exit(TIMED_OUT)


def say_no_worker(run: Run) -> None:
    """Tell the person on stderr that nobody has taken their queued run."""
    click.echo(
        f"note: no worker has taken run {run.id} after {NO_WORKER_SECONDS:g}s; start one "
        f"that runs flow {run.flow_name!r} with `signoff worker --flows ...` (still waiting)",
        err=True,
    )
