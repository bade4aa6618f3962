"""What the engine records about runs, as immutable domain values.

The store maps its rows to these; nothing outside ``engine.store`` sees a table.

Run states and the moves between them (the letters match the README's diagram)::

    SCHEDULED --a--> RUNNING --b--> COMPLETED
                      |  |  \\--c--> FAILED / CRASHED
                      |  d   \\-e-> CANCELLED
                      |  v
                      | PAUSED  --f (answered)--> RUNNING
                      |   \\--g (owner process gone)--> SUSPENDED
                      h
                      v
                   SUSPENDED --i (answered)--> SCHEDULED   (a worker runs the flow again)
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

#: A JSON value as stored in the database.
JSON = Any


def run_id_text(run_id: str | uuid.UUID) -> str:
    """A run id as the engine writes it (32 hex digits), given as that, as a ``uuid.UUID``
    or as a UUID's text with dashes (code written for Prefect passes either as
    ``flow_run_id``). Any other text (a prefix of an id, say) is returned as it is.

    Raises:
        TypeError: ``run_id`` is neither text nor a ``uuid.UUID``.
    """
    if isinstance(run_id, uuid.UUID):
        return run_id.hex
    if not isinstance(run_id, str):
        raise TypeError(f"a run id is text or a uuid.UUID, not {type(run_id).__name__}")
    if len(run_id) == 36 and run_id.count("-") == 4:
        try:
            return uuid.UUID(run_id).hex
        except ValueError:
            pass
    return run_id


class RunState(enum.StrEnum):
    """Where a run is in its life."""

    #: queued for a worker (new, resumed after a suspend, or recovered after a crash)
    SCHEDULED = "scheduled"
    #: executing in a process
    RUNNING = "running"
    #: waiting for input inside a live process
    PAUSED = "paused"
    #: waiting for input with no process; answering queues it again
    SUSPENDED = "suspended"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    #: could not be executed at all (e.g. no worker can import its flow)
    CRASHED = "crashed"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATES

    @property
    def is_waiting(self) -> bool:
        return self in (RunState.PAUSED, RunState.SUSPENDED)


FINAL_STATES = frozenset(
    {RunState.COMPLETED, RunState.FAILED, RunState.CANCELLED, RunState.CRASHED}
)


class PauseStatus(enum.StrEnum):
    """Where one request for input is."""

    WAITING = "waiting"
    #: input stored; the flow has not validated it yet
    ANSWERED = "answered"
    #: the flow's model accepted the input
    ACCEPTED = "accepted"
    #: the flow's own validators refused the input
    REJECTED = "rejected"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"


class EventKind(enum.StrEnum):
    """What an event reports. Every event concerns one run."""

    STATE_CHANGED = "state_changed"
    #: a pause or suspend began waiting; data has the pause key
    WAITING_FOR_INPUT = "waiting_for_input"
    INPUT_RECEIVED = "input_received"
    INPUT_ACCEPTED = "input_accepted"
    INPUT_REJECTED = "input_rejected"
    PAUSE_TIMED_OUT = "pause_timed_out"
    #: one answer of a quorum was stored; the pause still waits for more (data: key, count)
    ANSWER_COUNTED = "answer_counted"
    #: approvers were added after the pause's escalation delay (data: key, added)
    PAUSE_ESCALATED = "pause_escalated"
    #: a pending decision was handed to someone else (data: key, by, to)
    PAUSE_REASSIGNED = "pause_reassigned"
    #: someone asked the running run to suspend at its next task or pause; data has the key
    SUSPEND_REQUESTED = "suspend_requested"


@dataclass(frozen=True)
class Run:
    """One execution of a flow."""

    id: str
    flow_name: str
    state: RunState
    state_name: str
    state_message: str | None
    parameters: dict[str, JSON]
    created_at: datetime
    updated_at: datetime
    started_by: str | None
    owner: str | None
    result: str | None
    tags: dict[str, str] = field(default_factory=dict)
    #: the flow's approvers when the run started (its pauses may name others)
    approvers: tuple[str, ...] = ()
    #: who the flow lets cancel its runs; empty means the default rule
    cancellers: tuple[str, ...] = ()
    #: why a listing could not read this run in full ("its flow_name is not UTF-8 text"):
    #: its row was changed outside Signoff, and the fields named show stand-ins; None
    #: for every run read as stored
    unreadable: str | None = None


@dataclass(frozen=True)
class StateChange:
    """One entry in a run's state history."""

    state: RunState
    name: str
    message: str | None
    at: datetime


@dataclass(frozen=True)
class TaskRun:
    """One task call inside a run, with its outcome."""

    key: str
    task_name: str
    state: RunState
    attempts: int
    result: str | None
    error: str | None
    started_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True)
class GivenAnswer:
    """One person's answer to a pause, as stored (a quorum keeps one per person)."""

    responder: str | None
    name: str | None
    via: str | None
    input: JSON
    at: datetime


@dataclass(frozen=True)
class Delegation:
    """A pending decision handed from one person to another."""

    by: str
    to: str
    at: datetime


def handed_on(delegations: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """Who handed a pause on and has not had it handed back, with whom they handed it to,
    from its ``(by, to)`` hand-overs, oldest first."""
    current: dict[str, str] = {}
    for by, to in delegations:
        current[by] = to
        current.pop(to, None)
    return tuple(current.items())


@dataclass(frozen=True)
class WaitingInput:
    """What decides who may answer a waiting pause, without its schema or values (App Home
    checks hundreds of these to find the few a person may answer)."""

    run_id: str
    key: str
    started_by: str | None
    approvers: tuple[str, ...]
    forbid_starter: bool
    answered_by: tuple[str, ...]
    quorum: int
    #: ``(by, to)``: who handed the decision on, and to whom (see ``handed_on``); they no
    #: longer answer it, not even through a group that stays among its approvers
    handed_on: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Involvement:
    """Who a run's pauses name and who acted on it: what the view rule reads of a run beyond
    the run itself, read for a page of runs at once (``/runs`` lists check each of them)."""

    #: every pause's approvers as they stand (with those added by escalation or a hand-over)
    approvers: tuple[str, ...] = ()
    #: whoever the audit trail says started, answered, handed on or cancelled it
    acted: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Pause:
    """A request for input, and its answer once there is one."""

    run_id: str
    key: str
    suspend: bool
    status: PauseStatus
    schema: dict[str, JSON] | None
    title: str | None
    description: str | None
    initial: dict[str, JSON]
    approvers: tuple[str, ...]
    forbid_starter: bool
    created_at: datetime
    deadline: datetime | None
    response: JSON
    responder: str | None
    answered_at: datetime | None
    errors: dict[str, str]
    #: how many different people must answer before the flow goes on
    quorum: int = 1
    #: a bool field of the input; an answer with it false ends a quorum at once
    veto: str | None = None
    #: the answers given so far, oldest first
    answers: tuple[GivenAnswer, ...] = ()
    #: when more approvers are added, if nobody answered by then
    escalate_at: datetime | None = None
    escalate_to: tuple[str, ...] = ()
    escalated_at: datetime | None = None
    #: "channel" (the run's thread) or "dm" (each approver is also messaged directly)
    notify: str = "channel"
    #: the person answering is asked to confirm first
    confirm: bool = False
    delegations: tuple[Delegation, ...] = ()

    @classmethod
    def waiting(
        cls,
        run_id: str,
        key: str,
        created_at: datetime,
        timeout: float | None,
        **asked: Any,
    ) -> Pause:
        """A pause just asked, nobody has answered it yet; ``timeout`` seconds from
        ``created_at`` set its deadline (None: no deadline). ``asked`` gives the other
        fields (``suspend``, ``schema``, ``title``, ``approvers``, ...)."""
        deadline = created_at + timedelta(seconds=timeout) if timeout is not None else None
        return cls(
            run_id=run_id,
            key=key,
            status=PauseStatus.WAITING,
            created_at=created_at,
            deadline=deadline,
            response=None,
            responder=None,
            answered_at=None,
            errors={},
            **asked,
        )

    @property
    def wants_input(self) -> bool:
        return self.schema is not None

    @property
    def answered_by(self) -> tuple[str, ...]:
        """Who has answered so far (ids), oldest first."""
        return tuple(a.responder for a in self.answers if a.responder is not None)

    def __await__(self) -> Generator[Any, None, Pause]:
        """``await resume_flow_run(...)`` gives the pause, as code written for Prefect expects.

        Prefect's ``resume_flow_run`` returns an awaitable in async code. Signoff's resume
        is already done when the call returns, so awaiting its result just hands it back.
        """
        return self
        yield  # pragma: no cover - makes this a generator, as __await__ must be


@dataclass(frozen=True)
class LogEntry:
    """A record written through ``get_run_logger()``."""

    at: datetime
    level: str
    message: str
    task_key: str | None


@dataclass(frozen=True)
class Event:
    """Something that happened to a run, in the order it was stored."""

    id: int
    run_id: str
    kind: EventKind
    at: datetime
    data: dict[str, JSON]


@dataclass(frozen=True)
class RunDetail:
    """A run with everything recorded about it."""

    run: Run
    history: tuple[StateChange, ...]
    tasks: tuple[TaskRun, ...]
    pauses: tuple[Pause, ...]
    logs: tuple[LogEntry, ...]


@dataclass(frozen=True)
class ConsumerLag:
    """How far one durable consumer of the events (``slack`` posts to Slack) is behind."""

    consumer: str
    events_behind: int
    #: age of the oldest event it has not handled; 0 when it is caught up
    seconds_behind: float


@dataclass(frozen=True)
class EngineStats:
    """Counts over the whole database, for monitoring (``Engine.stats``)."""

    runs_by_state: dict[RunState, int]
    #: prompts for input that nobody has answered yet
    waiting_inputs: int
    newest_event_id: int
    consumers: tuple[ConsumerLag, ...]
