"""``Engine``: one process's connection to the run store, and the operations on runs.

A process has one default engine, created on first use from ``SIGNOFF_*`` settings (see
``get_engine``). Flows run against it; the CLI and the Slack bot call its methods.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pydantic

from engine import serialization
from engine.dispatch import Dispatcher
from engine.errors import (
    AlreadyAnswered,
    EngineError,
    FlowNotFound,
    InputInvalid,
    InvalidTransition,
    PauseExpired,
    ResponderNotAllowed,
    RunNotFound,
    RunNotWaiting,
    StoreError,
)
from engine.events import DurableConsumer, RunObserver
from engine.input import load_answer
from engine.registry import FlowRegistry, registry
from engine.runs import JSON, Event, EventKind, Pause, PauseStatus, Run, RunDetail, RunState
from engine.settings import EngineSettings
from engine.store import SqlStore
from engine.timers import Timers
from engine.validation import model_errors, schema_errors
from engine.waiters import Answer, Waiters

logger = logging.getLogger(__name__)


class Engine:
    """The run store plus what a process needs to wait on runs and to act on them.

    Example::

        engine = Engine(EngineSettings.load(database_url="sqlite:///runs.db"))
        run = engine.resume(run_id, {"approved": True}, responder="alice")
    """

    def __init__(
        self,
        settings: EngineSettings | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
        flows: FlowRegistry | None = None,
    ) -> None:
        self.settings = settings or EngineSettings.load()
        self.store = SqlStore.open(
            self.settings.database_url, **({"clock": clock} if clock else {})
        )
        self.flows = flows or registry
        self.process_id = uuid.uuid4().hex
        self.waiters = Waiters()
        self.timers = Timers(self.store.engine)
        self._observers: list[RunObserver] = []
        self._consumers: list[DurableConsumer] = []
        self._schedule_listeners: list[Callable[[], None]] = []
        self._cancelled: set[str] = set()
        self._registered = False
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self.dispatcher = Dispatcher(self.store, self._dispatch, self.settings.poll_seconds)
        self.dispatcher.start()

    # -- process identity ----------------------------------------------------------------

    def claim_ownership(self) -> str:
        """Register this process as one that runs flows, and keep proving it is alive."""
        with self._lock:
            if not self._registered:
                self.store.register_process(self.process_id, socket.gethostname(), os.getpid())
                self._registered = True
                self._heartbeat = threading.Thread(
                    target=self._beat, name="signoff-heartbeat", daemon=True
                )
                self._heartbeat.start()
        return self.process_id

    def _beat(self) -> None:
        while not self._closed.wait(self.settings.heartbeat_seconds):
            try:
                if not self.store.heartbeat(self.process_id):
                    # Another process judged us gone and removed the row; come back.
                    self.store.register_process(self.process_id, socket.gethostname(), os.getpid())
            except StoreError:
                logger.warning("heartbeat failed", extra={"action": "heartbeat_failed"})

    def owner_alive(self, owner: str | None) -> bool:
        if owner is None:
            return False
        if owner == self.process_id:
            return self._registered
        return self.store.is_alive(owner, self.settings.owner_timeout_seconds)

    # -- events --------------------------------------------------------------------------

    def add_observer(self, observer: RunObserver) -> None:
        """Offer every event this process sees to ``observer`` (not durable; see subscribe)."""
        self._observers.append(observer)

    def remove_observer(self, observer: RunObserver) -> None:
        self._observers.remove(observer)

    def subscribe(self, consumer: str, observer: RunObserver) -> DurableConsumer:
        """Deliver stored events to ``observer`` at least once, in order, from a named cursor.

        A new consumer starts with the events stored after it first subscribes.
        """
        durable = DurableConsumer(self.store, consumer, observer)
        self._consumers.append(durable)
        durable.start()
        return durable

    def on_scheduled(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` whenever a run becomes scheduled (workers use this to wake)."""
        self._schedule_listeners.append(callback)

    def notify(self) -> None:
        """Tell this process's dispatcher that new events were stored."""
        self.dispatcher.poke()

    def _dispatch(self, events: list[Event]) -> None:
        for event in events:
            if event.kind in (EventKind.INPUT_RECEIVED, EventKind.PAUSE_TIMED_OUT):
                self.waiters.wake(event.run_id)
            elif event.kind is EventKind.STATE_CHANGED:
                state = event.data.get("state")
                if state == RunState.CANCELLED.value:
                    self._cancelled.add(event.run_id)
                    self.waiters.wake(event.run_id)
                elif state == RunState.SCHEDULED.value:
                    for callback in self._schedule_listeners:
                        callback()
            elif event.kind is EventKind.WAITING_FOR_INPUT:
                self.timers.wakeup()
            for observer in list(self._observers):
                try:
                    observer.on_event(event)
                except Exception:
                    logger.exception("observer failed", extra={"action": "observer_failed"})
        for consumer in self._consumers:
            consumer.poke()

    def is_cancelled(self, run_id: str) -> bool:
        return run_id in self._cancelled

    # -- reading runs --------------------------------------------------------------------

    def get_run(self, run_id: str) -> Run:
        """A run by id, or by a unique prefix of its id."""
        try:
            return self.store.get_run(run_id)
        except RunNotFound:
            return self.store.find_run(run_id)

    def list_runs(
        self,
        states: Sequence[RunState] | None = None,
        flow_name: str | None = None,
        limit: int = 50,
    ) -> list[Run]:
        return self.store.list_runs(states, flow_name, limit)

    def detail(self, run_id: str) -> RunDetail:
        return self.store.detail(self.get_run(run_id).id)

    def get_pause(self, run_id: str, key: str) -> Pause | None:
        return self.store.get_pause(run_id, key)

    def waiting_pause(self, run_id: str) -> Pause | None:
        return self.store.waiting_pause(run_id)

    def set_metadata(self, run_id: str, key: str, value: JSON) -> None:
        """Attach a small JSON value to a run (applications keep their own references here)."""
        self.store.set_metadata(run_id, key, value)

    def add_metadata(self, run_id: str, key: str, value: JSON) -> bool:
        """Attach ``value`` only if the run has nothing under ``key`` yet.

        Returns True if this call attached it. Of several processes trying at once, exactly
        one gets True, so this serves as a claim::

            if engine.add_metadata(run.id, "reminded", True):
                post_reminder(run)
        """
        return self.store.add_metadata(run_id, key, value)

    def get_metadata(self, run_id: str, key: str) -> JSON:
        return self.store.get_metadata(run_id, key)

    # -- acting on runs ------------------------------------------------------------------

    def submit(
        self,
        flow_name: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        started_by: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Run:
        """Queue a run of a registered flow for a worker, with validated parameters.

        ``tags`` are small labels applications read back from ``Run.tags`` (e.g. the Slack
        channel a run was started from).
        """
        flow = self.flows.get(flow_name)
        if flow is None:
            raise FlowNotFound(flow_name)
        bound = flow.validate_parameters(dict(parameters or {}))
        run = self.store.create_run(
            uuid.uuid4().hex,
            flow.name,
            flow.ref,
            serialization.dump(bound),
            serialization.jsonable(bound),
            RunState.SCHEDULED,
            owner=None,
            started_by=started_by,
            tags=dict(tags or {}),
        )
        self.notify()
        logger.info(
            "run queued", extra={"action": "run_queued", "run_id": run.id, "flow": flow.name}
        )
        return run

    def resume(
        self,
        run_id: str,
        run_input: Mapping[str, JSON] | None = None,
        responder: str | None = None,
        *,
        key: str | None = None,
        responder_groups: Iterable[str] = (),
    ) -> Pause:
        """Answer the pause a run waits on (or pause ``key``). See ``engine.resume_flow_run``."""
        timeout = self.settings.owner_timeout_seconds
        try:
            target = self.store.resume_target(run_id, timeout)
        except RunNotFound:
            target = self.store.resume_target(self.store.find_run(run_id).id, timeout)
        run, pause = target.run, target.pause
        if key is not None and (pause is None or pause.key != key):
            raise self._not_waiting_for(run, key)
        if pause is None or not run.state.is_waiting:
            raise RunNotWaiting(run.id, run.state.value)
        now = self.store.clock()
        if pause.deadline is not None and pause.deadline <= now:
            raise PauseExpired(run.id, pause.key, pause.deadline.isoformat())
        self._check_responder(run, pause, responder, set(responder_groups))
        payload: dict[str, JSON] = dict(run_input or {})
        if pause.schema is not None:
            errors = schema_errors(pause.schema, payload)
            if errors:
                raise InputInvalid(run.id, pause.key, errors)
        elif payload:
            raise InputInvalid(run.id, pause.key, {"": "this pause takes no input"})
        in_process = run.state is RunState.PAUSED and not pause.suspend
        alive = self._registered if run.owner == self.process_id else target.owner_alive
        next_state = RunState.RUNNING if in_process and alive else RunState.SCHEDULED
        # When the flow waits in this process, its model judges the answer right here, so the
        # verdict is stored with the answer and handed over without another round trip.
        local = (
            self.waiters.waiting_for(run.id, pause.key) if next_state is RunState.RUNNING else None
        )
        answer: Answer | None = None
        verdict: tuple[bool, dict[str, str]] | None = None
        if local is not None:
            try:
                answer = Answer(value=load_answer(local.model, payload))
                verdict = (True, {})
            except pydantic.ValidationError as exc:
                answer, verdict = Answer(error=exc), (False, model_errors(exc))
        if not self.store.answer_pause(run.id, pause.key, payload, responder, next_state, verdict):
            raise self._not_waiting_for(self.store.get_run(run.id), pause.key)
        if local is not None:
            local.answer = answer
            local.wake()
        self.waiters.wake(run.id)
        self.notify()
        logger.info(
            "input received",
            extra={"action": "input_received", "run_id": run.id, "key": pause.key},
        )
        status = PauseStatus.ANSWERED
        if verdict is not None:
            status = PauseStatus.ACCEPTED if verdict[0] else PauseStatus.REJECTED
        return dataclasses.replace(
            pause,
            status=status,
            response=payload,
            responder=responder,
            answered_at=self.store.clock(),
        )

    def _not_waiting_for(self, run: Run, key: str) -> EngineError:
        """Why pause ``key`` of ``run`` cannot be answered (any more)."""
        pause = self.store.get_pause(run.id, key)
        if pause is None:
            return RunNotWaiting(run.id, f"{run.state.value}, with no input {key!r}")
        if pause.status is PauseStatus.TIMED_OUT:
            deadline = pause.deadline.isoformat() if pause.deadline else "its deadline"
            return PauseExpired(run.id, key, deadline)
        if pause.status is PauseStatus.CANCELLED:
            return RunNotWaiting(run.id, RunState.CANCELLED.value)
        if pause.status is PauseStatus.WAITING:
            return RunNotWaiting(run.id, run.state.value)
        return AlreadyAnswered(run.id, key, pause.responder)

    def _check_responder(
        self, run: Run, pause: Pause, responder: str | None, groups: set[str]
    ) -> None:
        if pause.forbid_starter and responder is not None and responder == run.started_by:
            raise ResponderNotAllowed(
                run.id, pause.key, responder, "the person who started a run may not answer it"
            )
        if pause.approvers:
            allowed = set(pause.approvers)
            if responder is None or not ({responder} | groups) & allowed:
                raise ResponderNotAllowed(
                    run.id, pause.key, responder, f"only {', '.join(pause.approvers)} may answer"
                )

    def cancel(self, run_id: str, by: str | None = None) -> Run:
        """Cancel a run that has not finished; a waiting flow stops where it waits."""
        run = self.get_run(run_id)
        message = f"cancelled by {by}" if by else "cancelled"
        if not self.store.cancel(run.id, message):
            current = self.store.get_run(run.id).state
            raise InvalidTransition(run.id, current.value, RunState.CANCELLED.value)
        self._cancelled.add(run.id)
        self.waiters.wake(run.id)
        self.notify()
        logger.info("run cancelled", extra={"action": "run_cancelled", "run_id": run.id})
        return self.store.get_run(run.id)

    # -- upkeep --------------------------------------------------------------------------

    def expire_due_pauses(self, now: datetime | None = None) -> list[str]:
        """Time out overdue pauses; fail runs that no live process waits for. Idempotent."""
        now = now or self.store.clock()
        failed: list[str] = []
        for pause in self.store.due_pauses(now):
            if not self.store.expire_pause(pause.run_id, pause.key):
                continue
            run = self.store.get_run(pause.run_id)
            if run.state is RunState.PAUSED and self.owner_alive(run.owner):
                continue  # the waiting flow wakes, gets PauseTimeout, and may handle it
            message = (
                f"waited for input {pause.key!r} until {pause.deadline:%Y-%m-%d %H:%M:%S} UTC "
                "and nobody answered in time"
            )
            if self.store.transition(
                run.id,
                RunState.FAILED,
                "TimedOut",
                message,
                expect=(RunState.PAUSED, RunState.SUSPENDED),
                owner=None,
            ):
                failed.append(run.id)
        if failed:
            self.notify()
        return failed

    def recover_orphans(self) -> list[str]:
        """Take over runs whose process died: paused ones wait on, running ones re-run."""
        live = self.store.live_processes(self.settings.owner_timeout_seconds)
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
        self.store.forget_dead_processes(self.settings.owner_timeout_seconds * 3)
        if moved:
            self.notify()
        return moved

    def close(self) -> None:
        """Stop background threads and release the database."""
        self._closed.set()
        for consumer in self._consumers:
            consumer.stop()
        self.dispatcher.stop()
        self.timers.shutdown(self)
        if self._registered:
            with contextlib.suppress(StoreError):
                self.store.remove_process(self.process_id)
        self.store.close()


_default: Engine | None = None
_default_lock = threading.Lock()


def get_engine() -> Engine:
    """The process's engine, created from ``SIGNOFF_*`` settings on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Engine()
        return _default


def set_engine(engine: Engine | None) -> Engine | None:
    """Make ``engine`` the process's engine; returns the previous one (not closed)."""
    global _default
    with _default_lock:
        previous, _default = _default, engine
        return previous


def utcnow() -> datetime:
    return datetime.now(UTC)
