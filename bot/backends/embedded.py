"""``EmbeddedBackend``: Signoff's own engine behind the ``Backend`` interface.

Every call goes to the engine's public API; its objects become ``bot.backends.model``
values and its errors become ``bot.errors`` ones, so nothing of the engine reaches the Slack
side. The worker that executes runs lives here too, so ``start`` makes this process run
flows as well as serve Slack (``signoff serve``).

Example::

    backend = EmbeddedBackend(get_engine(), flows=["flows/deploy.py"])
    server = Server(backend, BotSettings.load())
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from signoff import engine as eng
from signoff.bot.backends.interface import ChangeObserver, GroupDirectory, Watch
from signoff.bot.backends.model import (
    JSON,
    Accepted,
    Action,
    Actor,
    Answer,
    AuditRecord,
    BackendStats,
    ConsumerLag,
    Delegation,
    Denied,
    Event,
    EventKind,
    GivenAnswer,
    LogEntry,
    Pause,
    PauseStatus,
    Refusal,
    Refused,
    Run,
    RunDetail,
    RunState,
    Stale,
    StartForm,
    StateChange,
    TaskRun,
    Via,
)
from signoff.bot.errors import (
    BackendBusy,
    BackendError,
    BackendUnavailable,
    ChangeDeferred,
    FlowUnknown,
    NotPermitted,
    ParametersInvalid,
    RunNotChangeable,
    RunNotFound,
    RunUnreadable,
)
from signoff.engine.audit import describe

T = TypeVar("T")

#: Parameters of arbitrary types have no JSON schema: such a flow takes ``k=v`` text only.
EMPTY_SCHEMA: dict[str, JSON] = {"type": "object", "properties": {}, "required": []}


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Raise the engine's errors as the ``bot.errors`` ones the Slack side knows."""
    try:
        yield
    except eng.RunNotFound as exc:
        raise RunNotFound(exc.run_id, several=exc.several, choices=exc.choices) from exc
    except eng.FlowNotFound as exc:
        raise FlowUnknown(exc.flow) from exc
    except eng.NotAllowed as exc:
        raise NotPermitted(
            exc.action,
            exc.actor,
            exc.reason,
            allowed=exc.allowed,
            run_id=exc.run_id,
            message=str(exc),
        ) from exc
    except eng.InvalidParameters as exc:
        raise ParametersInvalid(exc.flow, dict(exc.errors), str(exc)) from exc
    except eng.InvalidTransition as exc:
        raise RunNotChangeable(exc.run_id, exc.current, exc.requested, str(exc)) from exc
    except eng.RunUnreadable as exc:
        raise RunUnreadable(str(exc.run_id), exc.reason, str(exc)) from exc
    except eng.DatabaseBusy as exc:
        raise BackendBusy("embedded", exc.key, str(exc)) from exc
    except eng.StoreError as exc:
        raise BackendUnavailable("embedded", str(exc)) from exc
    except eng.EngineError as exc:
        raise BackendError(str(exc)) from exc


def _copy(source: Any, cls: type[T], **values: Any) -> T:
    """``cls`` from the same-named attributes of ``source``; ``values`` override some."""
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    return cls(**{n: values[n] if n in values else getattr(source, n) for n in names})


def run_of(run: eng.Run) -> Run:
    return _copy(run, Run, state=RunState(run.state.value))


def _engine_run(run: Run) -> eng.Run:
    """The engine's ``Run`` for one of ours (which the engine made: ``run_of``)."""
    return _copy(run, eng.Run, state=eng.RunState(run.state.value), owner=None)


def pause_of(pause: eng.Pause) -> Pause:
    # The Slack side only shows answers (a secret is never asked in a form): masked here.
    return _copy(
        pause,
        Pause,
        status=PauseStatus(pause.status.value),
        response=eng.hide_secrets(pause.schema, pause.response),
        answers=tuple(
            _copy(a, GivenAnswer, input=eng.hide_secrets(pause.schema, a.input))
            for a in pause.answers
        ),
        delegations=tuple(_copy(d, Delegation) for d in pause.delegations),
        # The engine stores a pause with its schema: whoever may answer it can.
        unanswerable=None,
        # Every answer the engine takes names who gave it.
        answered_outside=False,
    )


def event_of(event: eng.Event) -> Event:
    return _copy(event, Event, kind=EventKind(event.kind.value))


def audit_of(record: eng.AuditRecord) -> AuditRecord:
    if record.problem is not None:
        # Changed outside Signoff: say so where the action would be, not show a 1970 time
        # and empty data as if they were what happened.
        return _copy(record, AuditRecord, action=describe(record), data={})
    return _copy(record, AuditRecord)


def detail_of(detail: eng.RunDetail) -> RunDetail:
    return RunDetail(
        run=run_of(detail.run),
        history=tuple(_copy(h, StateChange, state=RunState(h.state.value)) for h in detail.history),
        tasks=tuple(_copy(t, TaskRun, state=RunState(t.state.value)) for t in detail.tasks),
        pauses=tuple(pause_of(p) for p in detail.pauses),
        logs=tuple(_copy(e, LogEntry) for e in detail.logs),
    )


def engine_actor(actor: Actor) -> eng.Actor:
    """The engine's ``Actor`` for ours (the bot itself is the engine's system actor)."""
    if actor.via is Via.SYSTEM:
        return eng.Actor.system()
    return eng.Actor(actor.id, name=actor.name, via=eng.Via(actor.via.value), groups=actor.groups)


def refusal_of(refusal: eng.Refusal | None) -> Refusal | None:
    return None if refusal is None else Refusal(refusal.reason, tuple(refusal.allowed))


class _Observer:
    """Hands the engine's events to a ``ChangeObserver`` as ``bot.backends`` events."""

    def __init__(self, observer: ChangeObserver) -> None:
        self.observer = observer

    def on_event(self, event: eng.Event) -> None:
        try:
            self.observer.on_event(event_of(event))
        except ChangeDeferred as exc:
            raise eng.DeliverLater(exc.run_id, exc.seconds, str(exc)) from exc


class _Watch:
    """A durable consumer of the engine's outbox, as a ``Watch``."""

    def __init__(self, consumer: eng.DurableConsumer) -> None:
        self.consumer = consumer

    def start(self) -> None:
        self.consumer.start()

    def check_lease(self) -> None:
        # Left as the engine's LeaseLost: the consumer delivering the event expects it.
        self.consumer.check_lease()

    def stop(self) -> None:
        self.consumer.stop()


#: how many of the questions already waiting when the Slack app first serves a database
#: it posts (the newest): older ones, perhaps thousands, are for ``/runs`` to list, not
#: for a channel to receive at once (at Slack's pace of a post a second)
BACKLOG = 100


class EmbeddedBackend:
    """The ``Backend`` over one ``engine.Engine``.

    ``flows`` (files or modules) are loaded at once, so a broken one is reported before
    anything starts; ``start`` starts a worker that runs them (and the engine's timers).
    """

    name = "embedded"
    answerable_elsewhere = False
    deletes_runs = False

    def __init__(self, engine: eng.Engine, *, flows: Iterable[str] = ()) -> None:
        self.engine = engine
        with translated():
            eng.load_flows(*flows)
        self.worker: eng.Worker | None = None

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        if self.worker is None:
            self.worker = eng.Worker(self.engine)
        self.worker.start()

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()

    def check(self) -> None:
        with translated():
            self.engine.list_runs(limit=1)

    def not_ready(self) -> str | None:
        if self.worker is None or not self.worker.running:
            return "the worker is not running"
        return None

    def stats(self) -> BackendStats:
        with translated():
            stats = self.engine.stats()
        return BackendStats(
            runs_by_state={RunState(s.value): n for s, n in stats.runs_by_state.items()},
            waiting_inputs=stats.waiting_inputs,
            consumers=tuple(_copy(c, ConsumerLag) for c in stats.consumers),
        )

    def on_timer_fired(self, listener: Callable[[str, float], None]) -> None:
        self.engine.timers.on_fired(listener)

    # -- runs ---------------------------------------------------------------------------

    def get_run(self, run_id: str) -> Run:
        with translated():
            return run_of(self.engine.get_run(run_id))

    def list_runs(
        self,
        states: Sequence[RunState] | None = None,
        *,
        flow_name: str | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> list[Run]:
        wanted = None if states is None else [eng.RunState(s.value) for s in states]
        with translated():
            after = self.engine.get_run(before) if before is not None else None
            return [run_of(r) for r in self.engine.list_runs(wanted, flow_name, limit, after)]

    def visible(self, actor: Actor, runs: Sequence[Run]) -> list[Run]:
        with translated():
            shown = self.engine.visible(engine_actor(actor), [_engine_run(r) for r in runs])
        ids = {r.id for r in shown}
        return [r for r in runs if r.id in ids]

    def open_to_all(self, runs: Sequence[Run]) -> list[Run]:
        with translated():
            found = self.engine.open_to_all([_engine_run(r) for r in runs])
        ids = {r.id for r in found}
        return [r for r in runs if r.id in ids]

    def detail(self, run_id: str) -> RunDetail:
        with translated():
            return detail_of(self.engine.detail(run_id))

    def audit_trail(self, run_id: str) -> list[AuditRecord]:
        with translated():
            return [audit_of(r) for r in self.engine.audit_trail(run_id)]

    def flow_names(self) -> list[str]:
        return self.engine.flows.names()

    def start_form(self, flow: str) -> StartForm | None:
        found = self.engine.flows.get(flow)
        if found is None:
            return None
        schema = found.parameters_schema() or dict(EMPTY_SCHEMA)
        return StartForm(found.name, schema, found.description)

    def may_start(self, actor: Actor, flow: str) -> Refusal | None:
        with translated():
            return refusal_of(self.engine.may_start(engine_actor(actor), flow))

    def start_run(
        self,
        flow: str,
        parameters: Mapping[str, JSON],
        *,
        started_by: Actor,
        tags: Mapping[str, str] | None = None,
    ) -> Run:
        with translated():
            run = self.engine.submit(
                flow, dict(parameters), started_by=engine_actor(started_by), tags=tags
            )
        return run_of(run)

    def cancel(self, run_id: str, *, by: Actor, reason: str | None = None) -> Run:
        with translated():
            return run_of(self.engine.cancel(run_id, by=engine_actor(by), reason=reason))

    # -- requests for input ---------------------------------------------------------------

    def get_pause(self, run_id: str, key: str) -> Pause | None:
        with translated():
            found = self.engine.get_pause(run_id, key)
        return None if found is None else pause_of(found)

    def waiting_pause(self, run_id: str) -> Pause | None:
        with translated():
            found = self.engine.waiting_pause(run_id)
        return None if found is None else pause_of(found)

    def refusal(
        self, action: Action, actor: Actor, run_id: str, key: str | None = None
    ) -> Refusal | None:
        with translated():
            return refusal_of(
                self.engine.refusal(
                    eng.Action(action.value), engine_actor(actor), run_id, key, record=True
                )
            )

    def answer(
        self, run_id: str, key: str, values: Mapping[str, JSON], *, responder: Actor
    ) -> Answer:
        try:
            with translated():
                try:
                    pause = self.engine.resume(
                        run_id, values, responder=engine_actor(responder), key=key
                    )
                except eng.InputInvalid as exc:
                    return Refused(dict(exc.errors), str(exc))
                except eng.ResponderNotAllowed as exc:
                    return Denied(Refusal(exc.reason, tuple(exc.allowed)))
                except (eng.AlreadyAnswered, eng.PauseExpired, eng.RunNotWaiting) as exc:
                    return Stale(str(exc))
        except RunNotFound as exc:
            return Stale(str(exc))
        return Accepted(pause_of(pause))

    def reassign(self, run_id: str, to: str, by: Actor, *, key: str) -> Pause:
        with translated():
            return pause_of(self.engine.reassign(run_id, to, engine_actor(by), key=key))

    def waiting_on(self, actor: Actor, limit: int = 20) -> list[tuple[Run, Pause]]:
        with translated():
            found = self.engine.waiting_on(engine_actor(actor), limit=limit)
        return [(run_of(r), pause_of(p)) for r, p in found]

    def started_by(self, actor_id: str, limit: int = 20) -> list[Run]:
        with translated():
            return [run_of(r) for r in self.engine.started_by(actor_id, limit=limit)]

    def decisions_by(self, actor_id: str, limit: int = 20) -> list[AuditRecord]:
        with translated():
            return [audit_of(r) for r in self.engine.decisions_by(actor_id, limit=limit)]

    def claim_reminder(
        self, run_id: str, key: str, claim: str, *, deadline: datetime | None
    ) -> bool:
        with translated():
            pause = self.engine.get_pause(run_id, key)
            return self.engine.record_once(
                run_id,
                claim,
                eng.AuditAction.REMINDER_SENT,
                key=key,
                data={
                    "deadline": deadline.isoformat() if deadline else None,
                    "approvers": list(pause.approvers) if pause else [],
                },
            )

    def set_group_directory(self, directory: GroupDirectory) -> None:
        self.engine.set_group_directory(directory)

    # -- changes ------------------------------------------------------------------------

    def watch(
        self, consumer: str, observer: ChangeObserver, *, kept: Collection[str] = ()
    ) -> Watch:
        """``kept`` is not needed: the engine's runs are never deleted under the bot. A new
        consumer hears first of the runs that waited for input before it was made (the
        newest ``BACKLOG``)."""
        with translated():
            return _Watch(
                self.engine.subscribe(consumer, _Observer(observer), start=False, backlog=BACKLOG)
            )

    # -- records and timers -------------------------------------------------------------

    def get_record(self, run_id: str, key: str) -> JSON:
        with translated():
            return self.engine.get_metadata(run_id, key)

    def get_records(self, run_ids: Sequence[str], key: str) -> dict[str, JSON]:
        with translated():
            return self.engine.metadata_of(run_ids, key)

    def set_record(self, run_id: str, key: str, value: JSON) -> None:
        with translated():
            self.engine.set_metadata(run_id, key, value)

    def add_record(self, run_id: str, key: str, value: JSON) -> bool:
        with translated():
            return self.engine.add_metadata(run_id, key, value)

    def claim_once(self, key: str, seconds: float, *, within: float | None = None) -> bool:
        with translated():
            return self.engine.claim_once(key, seconds, within=within)

    def call_at(self, job_id: str, when: datetime, job: str, kwargs: Mapping[str, JSON]) -> None:
        with translated():
            self.engine.timers.call_at(job_id, when, job, kwargs)

    def cancel_call(self, job_id: str) -> None:
        with translated():
            self.engine.timers.cancel(job_id)


__all__ = ["EmbeddedBackend", "translated"]
