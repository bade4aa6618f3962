"""What the Slack side knows about runs, whichever backend runs them: immutable values.

A backend maps its own records onto these; the Slack side never sees an engine object or a
Prefect one. Names follow Signoff's embedded engine, so the two read alike, but nothing
here imports it.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from signoff.bot.errors import NotAPerson

#: A JSON value.
JSON = Any


class RunState(enum.StrEnum):
    """Where a run is in its life (a backend's finer states map onto these)."""

    SCHEDULED = "scheduled"
    RUNNING = "running"
    #: waiting for input inside a live process
    PAUSED = "paused"
    #: waiting for input with no process; answering schedules it again
    SUSPENDED = "suspended"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    CRASHED = "crashed"

    @property
    def is_final(self) -> bool:
        return self in (RunState.COMPLETED, RunState.FAILED, RunState.CANCELLED, RunState.CRASHED)

    @property
    def is_waiting(self) -> bool:
        return self in (RunState.PAUSED, RunState.SUSPENDED)


class PauseStatus(enum.StrEnum):
    """Where one request for input is."""

    WAITING = "waiting"
    #: an answer was handed over; the flow has not judged it yet
    ANSWERED = "answered"
    #: the flow accepted the answer
    ACCEPTED = "accepted"
    #: the flow's own validation refused the answer
    REJECTED = "rejected"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"


class EventKind(enum.StrEnum):
    """What a change in the backend's stream reports; every change concerns one run."""

    STATE_CHANGED = "state_changed"
    #: a run began waiting for input; ``data["key"]`` names the request
    WAITING_FOR_INPUT = "waiting_for_input"
    INPUT_RECEIVED = "input_received"
    INPUT_ACCEPTED = "input_accepted"
    #: ``data`` has ``key``, ``responder``, ``response`` and ``errors``
    INPUT_REJECTED = "input_rejected"
    PAUSE_TIMED_OUT = "pause_timed_out"
    #: a request closed unanswered while its run is still ending (Prefect's Cancelling,
    #: which nothing may act on for a run without a runner or worker); ``data["key"]``
    PAUSE_CANCELLED = "pause_cancelled"
    #: one answer of a quorum was stored; the request still waits for more
    ANSWER_COUNTED = "answer_counted"
    #: approvers were added after the request's escalation delay (``data["to"]``)
    PAUSE_ESCALATED = "pause_escalated"
    #: a pending decision was handed to someone else (``data``: key, by, to)
    PAUSE_REASSIGNED = "pause_reassigned"
    SUSPEND_REQUESTED = "suspend_requested"
    #: the run is gone from the backend (deleted where it ran, as in Prefect's UI), and
    #: its records with it: ``data["records"]`` holds the consumer's records named in
    #: ``Backend.watch``'s ``kept``, as they were last set
    RUN_DELETED = "run_deleted"


class Via(enum.StrEnum):
    """Where an action came from, as the audit trail records it."""

    SLACK = "slack"
    CLI = "cli"
    PYTHON = "python"
    #: the backend (or the bot's own machinery) acting on its own
    SYSTEM = "system"


class Action(enum.StrEnum):
    """What someone may or may not do to a run."""

    START = "start"
    ANSWER = "answer"
    CANCEL = "cancel"
    REASSIGN = "reassign"
    #: see a run's details (``/runs show``) or find it in a ``/runs`` list
    VIEW = "view"


#: a Slack user group's id (``S0SRE``), as the engine reads one: Slack's ids hold a digit,
#: so an operator's name in capitals (``SAM``, ``SRE``) does not read as one
_GROUP_ID = re.compile(r"^S(?=[A-Z]*[0-9])[A-Z0-9]{2,63}$")


def is_group_id(value: str) -> bool:
    """Whether ``value`` is a Slack user group's id (``S0SRE``)."""
    return _GROUP_ID.match(value) is not None


@dataclass(frozen=True)
class Actor:
    """A person (or the bot itself) acting on a run: ``id`` is what rules name (a Slack user
    id); ``name`` is their display name at the time."""

    id: str
    name: str | None = None
    via: Via = Via.SLACK
    groups: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if not self.id or not self.id.strip():
            raise ValueError("an actor needs a non-empty id")
        # On Prefect a group's id answered as one person, and stood in the trail as who
        # decided; the engine refuses it (as the embedded backend's ``NotAPerson``).
        if is_group_id(self.id):
            raise NotAPerson(self.id)

    @classmethod
    def system(cls) -> Actor:
        """The bot acting on its own (cancelling a run it cannot show); never refused."""
        return SYSTEM


SYSTEM = Actor("signoff", name="Signoff", via=Via.SYSTEM)


@dataclass(frozen=True)
class Refusal:
    """Why an actor may not do something: the rule in words, and who may (ids)."""

    reason: str
    allowed: tuple[str, ...] = ()


@dataclass(frozen=True)
class Run:
    """One execution of a flow."""

    id: str
    flow_name: str
    state: RunState
    #: the backend's own name for the state (e.g. "Suspended", "AwaitingRetry")
    state_name: str
    state_message: str | None
    parameters: dict[str, JSON]
    created_at: datetime
    updated_at: datetime
    started_by: str | None
    result: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    #: who may answer its requests when a request names nobody itself
    approvers: tuple[str, ...] = ()
    #: who the flow lets cancel its runs (empty: the default rule)
    cancellers: tuple[str, ...] = ()
    #: why this run could not be read in full (its stored row was changed outside
    #: Signoff); the fields it names show stand-ins. None for a run read as stored
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


@dataclass(frozen=True)
class GivenAnswer:
    """One person's answer to a request (a quorum collects several)."""

    responder: str | None
    name: str | None
    via: str | None
    input: JSON
    at: datetime


@dataclass(frozen=True)
class Delegation:
    """A request handed from one person to another."""

    by: str
    to: str
    at: datetime


@dataclass(frozen=True)
class Pause:
    """A run's request for input (a pause or a suspend), and its answer once there is one.

    ``schema`` is the JSON schema of the expected input (None: the run only waits to be told
    to go on); ``initial`` holds the values a form starts with; ``approvers`` lists user and
    group ids allowed to answer (empty: anyone).
    """

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
    response: JSON = None
    responder: str | None = None
    answered_at: datetime | None = None
    errors: dict[str, str] = field(default_factory=dict)
    #: how many different people must answer
    quorum: int = 1
    #: the field whose "no" ends a quorum at once
    veto: str | None = None
    answers: tuple[GivenAnswer, ...] = ()
    #: "channel" (the run's thread) or "dm" (also each approver directly)
    notify: str = "channel"
    #: decision buttons ask "are you sure?" first
    confirm: bool = False
    delegations: tuple[Delegation, ...] = ()
    #: who is added as approvers at ``escalate_at``, unless it is answered by then
    escalate_to: tuple[str, ...] = ()
    escalate_at: datetime | None = None
    #: why nobody can answer this request although it waits (its form was never stored)
    unanswerable: str | None = None
    #: answered where Signoff does not learn who answered (Prefect's own UI or API)
    answered_outside: bool = False

    @property
    def wants_input(self) -> bool:
        return self.schema is not None

    @property
    def answered_by(self) -> tuple[str, ...]:
        """Who has answered so far (ids), oldest first."""
        return tuple(a.responder for a in self.answers if a.responder is not None)


@dataclass(frozen=True)
class LogEntry:
    """A line the run logged."""

    at: datetime
    level: str
    message: str
    task_key: str | None = None


@dataclass(frozen=True)
class RunDetail:
    """A run with everything the backend recorded about it."""

    run: Run
    history: tuple[StateChange, ...]
    tasks: tuple[TaskRun, ...]
    pauses: tuple[Pause, ...]
    logs: tuple[LogEntry, ...]


@dataclass(frozen=True)
class Event:
    """Something that happened to a run, as the backend's stream delivers it.

    ``id`` is unique per change and stable across deliveries, so a consumer that is handed
    the same change twice can tell.
    """

    id: int | str
    run_id: str
    kind: EventKind
    at: datetime
    data: dict[str, JSON] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditRecord:
    """One entry of the audit trail: who did what to which run, when."""

    at: datetime
    action: str
    run_id: str | None
    actor_id: str | None
    actor_name: str | None
    via: str | None
    key: str | None
    data: dict[str, JSON] = field(default_factory=dict)


@dataclass(frozen=True)
class StartForm:
    """What starting a flow (or deployment) takes: its name, parameter schema, description.

    ``schema`` is an empty object schema when the parameters cannot be described as JSON
    schema; values given as ``k=v`` then travel as text.
    """

    name: str
    schema: dict[str, JSON]
    description: str | None = None


@dataclass(frozen=True)
class ConsumerLag:
    """How far one consumer of the change stream is behind."""

    consumer: str
    events_behind: int
    seconds_behind: float


@dataclass(frozen=True)
class BackendStats:
    """Counts for ``/metrics``: runs by state, waiting requests, consumers' lag."""

    runs_by_state: dict[RunState, int]
    waiting_inputs: int
    consumers: tuple[ConsumerLag, ...] = ()


# -- answering ------------------------------------------------------------------------


@dataclass(frozen=True)
class Accepted:
    """The answer was stored; ``pause`` is the request after it (still ``WAITING`` when a
    quorum needs more answers). The flow may still refuse it by its own validation."""

    pause: Pause


@dataclass(frozen=True)
class Refused:
    """The answer breaks the request's schema; ``errors`` maps a dotted field path (``""``
    for the whole input) to what is wrong with it. Nothing was stored."""

    errors: dict[str, str]
    message: str


@dataclass(frozen=True)
class Stale:
    """There is nothing to answer any more: answered by someone, timed out, run ended."""

    reason: str


@dataclass(frozen=True)
class Denied:
    """The rules do not let this person answer this request (the attempt is recorded)."""

    refusal: Refusal


#: What ``Backend.answer`` returns.
Answer = Accepted | Refused | Stale | Denied
