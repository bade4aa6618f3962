"""``Backend``: everything the Slack side asks of whatever runs the flows.

The Slack side (``bot.slack``, ``bot.forms``) holds a ``Backend`` and nothing else; to add a
capability, extend this protocol and every implementation, never reach past it. Methods
raise ``BackendError`` subclasses (``bot.errors``): ``RunNotFound`` for an unknown run id,
``NotPermitted`` when the rules refuse the actor, ``BackendUnavailable`` when the backend
does not answer.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from signoff.bot.backends.model import (
    JSON,
    Action,
    Actor,
    Answer,
    AuditRecord,
    BackendStats,
    Event,
    Pause,
    Refusal,
    Run,
    RunDetail,
    RunState,
    StartForm,
)

#: record keys ``Backend.get_records`` reads for a page at once: where the Slack side
#: posted a run's messages (``bot.slack.ids.THREAD``), whose channel may be private
LISTED_RECORDS: frozenset[str] = frozenset({"slack.thread"})


class ChangeObserver(Protocol):
    """Receives a backend's run changes. Raising makes the backend deliver the same change
    again later (at least once, in order per run)."""

    def on_event(self, event: Event) -> None: ...


class Watch(Protocol):
    """A subscription to run changes (``Backend.watch``), delivering once started."""

    def start(self) -> None: ...

    def check_lease(self) -> None:
        """Raise if this process may no longer deliver (another replica took over)."""

    def stop(self) -> None: ...


class GroupDirectory(Protocol):
    """Tells the backend which of some groups a person belongs to (Slack user groups)."""

    def groups_of(self, actor_id: str, candidates: Collection[str]) -> set[str]: ...


class Backend(Protocol):
    """The runs, their requests for input, and the Slack side's own per-run records."""

    #: short name for logs and errors ("embedded", "prefect")
    name: str
    #: whether a request for input can be answered outside Slack too (Prefect's own UI):
    #: one Slack cannot show is then left to that, not cancelled
    answerable_elsewhere: bool
    #: whether a run can be deleted where it ran (Prefect's UI), which a watch then tells
    #: as ``RUN_DELETED`` with the records it was asked to keep
    deletes_runs: bool

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Start what this backend runs in the serving process (workers, watchers)."""

    def stop(self) -> None:
        """Stop what ``start`` started."""

    def check(self) -> None:
        """Return if the backend answers; raise ``BackendUnavailable`` if not (/healthz)."""

    def not_ready(self) -> str | None:
        """Why this process cannot serve now (/readyz), or None."""

    def stats(self) -> BackendStats:
        """Counts for /metrics."""

    def on_timer_fired(self, listener: Callable[[str, float], None]) -> None:
        """Call ``listener(job_id, lag_seconds)`` whenever one of ``call_at``'s jobs fires."""

    # -- runs ---------------------------------------------------------------------------

    def get_run(self, run_id: str) -> Run:
        """The run; a unique prefix of its id is enough."""

    def list_runs(
        self,
        states: Sequence[RunState] | None = None,
        *,
        flow_name: str | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> list[Run]:
        """Newest first; ``before`` (a run id, or a unique prefix of one) lists the page after
        that run. Raises ``RunNotFound`` when ``before`` names no run."""

    def visible(self, actor: Actor, runs: Sequence[Run]) -> list[Run]:
        """Of ``runs`` (a page ``list_runs`` gave), those ``actor`` may view, in order: by
        ``refusal``'s rule for ``Action.VIEW``, judged for the page at once (no request per
        run). Records nothing."""

    def open_to_all(self, runs: Sequence[Run]) -> list[Run]:
        """Of ``runs`` (a page ``list_runs`` gave), those the view rule lets anyone view (their
        flow names nobody to start, answer, cancel or view them, nor do their requests), in
        order; judged for the page at once, as ``visible``. The Slack side shows such a run
        whose messages are in a private channel only to that channel's members and its
        starter; a run that names people is judged by ``visible`` alone. A backend that
        cannot tell from the page alone that a request was handed to someone (Prefect)
        counts the run open: it is then shown to fewer people, never to more."""

    def detail(self, run_id: str) -> RunDetail:
        """The run with its state history, tasks, requests for input and logs."""

    def audit_trail(self, run_id: str) -> list[AuditRecord]:
        """Who did what to the run, oldest first."""

    def flow_names(self) -> list[str]:
        """Flows (or deployments) that ``start_run`` accepts."""

    def start_form(self, flow: str) -> StartForm | None:
        """What starting ``flow`` takes; None if there is no such flow."""

    def may_start(self, actor: Actor, flow: str) -> Refusal | None:
        """Why ``actor`` may not start ``flow``, or None if they may."""

    def start_run(
        self,
        flow: str,
        parameters: Mapping[str, JSON],
        *,
        started_by: Actor,
        tags: Mapping[str, str] | None = None,
    ) -> Run:
        """Start a run as ``started_by``. Raises ``FlowUnknown``, ``NotPermitted`` (the
        attempt is recorded) or ``ParametersInvalid`` with field errors."""

    def cancel(self, run_id: str, *, by: Actor, reason: str | None = None) -> Run:
        """Cancel as ``by`` (``Actor.system()``: the bot itself, never refused), recording
        ``reason``. Raises ``RunNotChangeable`` when the run has ended, ``NotPermitted``."""

    # -- requests for input ---------------------------------------------------------------

    def get_pause(self, run_id: str, key: str) -> Pause | None: ...

    def waiting_pause(self, run_id: str) -> Pause | None:
        """The request the run waits on now, if any."""

    def refusal(
        self, action: Action, actor: Actor, run_id: str, key: str | None = None
    ) -> Refusal | None:
        """Why ``actor`` may not do ``action`` to the run (or its request ``key``), or None.
        A refusal is recorded in the audit trail."""

    def answer(
        self, run_id: str, key: str, values: Mapping[str, JSON], *, responder: Actor
    ) -> Answer:
        """Answer request ``key`` of ``run_id`` as ``responder``: ``Accepted``, ``Refused``
        (field errors; nothing stored), ``Stale`` (nothing to answer any more) or ``Denied``."""

    def reassign(self, run_id: str, to: str, by: Actor, *, key: str) -> Pause:
        """Hand request ``key`` from ``by`` to ``to``. Raises ``NotPermitted``."""

    def waiting_on(self, actor: Actor, limit: int = 20) -> list[tuple[Run, Pause]]:
        """Requests ``actor`` may answer now, newest first (App Home)."""

    def started_by(self, actor_id: str, limit: int = 20) -> list[Run]:
        """Runs ``actor_id`` started, newest first (App Home)."""

    def decisions_by(self, actor_id: str, limit: int = 20) -> list[AuditRecord]:
        """``actor_id``'s recent answers, newest first (App Home)."""

    def claim_reminder(
        self, run_id: str, key: str, claim: str, *, deadline: datetime | None
    ) -> bool:
        """Record that a reminder of request ``key`` goes out, under the record ``claim``;
        True for the one caller that claimed it (the audit trail gets it once)."""

    def set_group_directory(self, directory: GroupDirectory) -> None:
        """Let the rules resolve group ids (Slack user groups) through ``directory``."""

    # -- changes ------------------------------------------------------------------------

    def watch(
        self, consumer: str, observer: ChangeObserver, *, kept: Collection[str] = ()
    ) -> Watch:
        """A subscription that, once started, delivers run changes to ``observer``, at least
        once and in order per run, across restarts under the same ``consumer`` name; of the
        processes using one name, one delivers at a time. A new ``consumer`` first hears of
        the runs already waiting for input (their ``WAITING_FOR_INPUT``; the newest hundred
        or so), so that the questions asked before the app first ran get their threads too.

        ``kept``: record keys the observer still needs once a run is deleted under the
        backend (where it posted about the run). A backend whose runs can be deleted so
        keeps a copy of them apart from the run, from when they are set until the run ends,
        and hands it over with ``RUN_DELETED``; one whose runs cannot be, ignores it."""

    # -- the Slack side's durable records and timers ---------------------------------------

    def get_record(self, run_id: str, key: str) -> JSON:
        """A value the Slack side stored about a run (None if none)."""

    def get_records(self, run_ids: Sequence[str], key: str) -> dict[str, JSON]:
        """``get_record`` of many runs (a page of a listing) in one read, not one per run:
        run id -> value, for the runs that have one. For a key of ``LISTED_RECORDS`` only: a
        backend that cannot read many runs' records at once keeps a copy of those where it
        can (Prefect: the run's labels)."""

    def set_record(self, run_id: str, key: str, value: JSON) -> None: ...

    def add_record(self, run_id: str, key: str, value: JSON) -> bool:
        """Store ``value`` unless ``key`` exists; True for the one caller that stored it."""

    def claim_once(self, key: str, seconds: float, *, within: float | None = None) -> bool:
        """Claim ``key`` for ``seconds``, across every replica; False if claimed already.

        ``within``: seconds to wait at most for the turn to write while another writer
        holds the backend's database; past them ``BackendBusy`` is raised and nothing was
        claimed."""

    def call_at(self, job_id: str, when: datetime, job: str, kwargs: Mapping[str, JSON]) -> None:
        """Call ``job`` (``"module:function"``) with ``kwargs`` at ``when``, once, even across
        a restart; a later call with the same ``job_id`` replaces it."""

    def cancel_call(self, job_id: str) -> None: ...
