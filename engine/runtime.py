"""``Engine``: one process's connection to the run store, and the operations on runs.

A process has one default engine, created on first use from ``SIGNOFF_*`` settings (see
``get_engine``). Flows run against it; the CLI and the Slack bot call its methods.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from signoff.engine import serialization
from signoff.engine.actors import Actor, as_actor
from signoff.engine.audit import AuditAction, AuditEntry
from signoff.engine.dispatch import Dispatcher
from signoff.engine.errors import (
    RunNotFound,
    StoreError,
)
from signoff.engine.events import DurableConsumer, RunObserver
from signoff.engine.heard import Heard
from signoff.engine.hearing import Hearing
from signoff.engine.liveness import Liveness, RunningFlow
from signoff.engine.offload import StoreThreads
from signoff.engine.permissions import Action, Permissions
from signoff.engine.registry import FlowRegistry, registry
from signoff.engine.resuming import Resuming
from signoff.engine.runs import (
    JSON,
    EngineStats,
    Pause,
    Run,
    RunDetail,
    RunState,
    run_id_text,
)
from signoff.engine.settings import EngineSettings
from signoff.engine.store import SqlStore
from signoff.engine.timers import Timers
from signoff.engine.upkeep import Upkeep
from signoff.engine.waiters import Waiters

logger = logging.getLogger(__name__)


class Engine(Hearing, Liveness, Resuming, Upkeep):
    """The run store plus what a process needs to wait on runs and to act on them.

    Example::

        engine = Engine(EngineSettings.load(database_url="sqlite:///runs.db"))
        run = engine.resume(run_id, {"approved": True}, responder="alice")

    ``migrate=False`` refuses a database whose schema is older than this version needs
    (``SchemaOutdated``) instead of upgrading it; an empty database still gets the schema.
    ``create=False`` refuses a SQLite file that is not there, or a database with no Signoff
    schema (``DatabaseNotFound``), instead of making it: for tools that only look at or act
    on runs already stored.
    """

    def __init__(
        self,
        settings: EngineSettings | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
        flows: FlowRegistry | None = None,
        migrate: bool = True,
        create: bool = True,
    ) -> None:
        self.settings = settings or EngineSettings.load()
        self.store = SqlStore.open(
            self.settings.database_url,
            **({"clock": clock} if clock else {}),
            pool_size=self.settings.pool_size,
            max_overflow=self.settings.pool_max_overflow,
            migrate=migrate,
            create=create,
        )
        # Reached the database just now: until it has for the owner timeout, this process
        # cannot tell a dead process from one whose connection is not back after an outage
        # (judges_others); a process started as one ends took every waiting run for gone.
        self._reaching_since = time.monotonic()
        self.flows = flows or registry
        self.permissions = Permissions(self.settings.admins)
        if self.settings.audit_key is not None:
            self.store.audit_secret = self.settings.audit_key.get_secret_value().encode()
        self.process_id = uuid.uuid4().hex
        self.waiters = Waiters()
        self.timers = Timers(self.store.engine)
        self._observers: list[RunObserver] = []
        self._consumers: list[DurableConsumer] = []
        self._schedule_listeners: list[Callable[[], None]] = []
        #: runs heard cancelled, and suspend requests heard (checked at boundaries)
        self.heard = Heard()
        #: contexts of flows whose coroutine was closed unfinished (see Liveness)
        self.left_flows: list[RunningFlow] = []
        self._beat_at = time.monotonic()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        #: where async flows' store calls run (SQLite takes one writer at a time anyway)
        self.store_threads = StoreThreads(4 if self.store.is_sqlite else 8)
        self.dispatcher = Dispatcher(
            self.store,
            self._dispatch,
            self.settings.poll_seconds,
            self._interest,
            self.waiters.any_waiting,
        )
        self.dispatcher.start()
        self.store.prepare()

    # -- reading runs --------------------------------------------------------------------

    def get_run(self, run_id: str | uuid.UUID) -> Run:
        """A run by id (also as a ``uuid.UUID`` or with dashes), or by a unique prefix."""
        run_id = run_id_text(run_id)
        try:
            return self.store.get_run(run_id)
        except RunNotFound:
            return self.store.find_run(run_id)

    def list_runs(
        self,
        states: Sequence[RunState] | None = None,
        flow_name: str | None = None,
        limit: int = 50,
        before: Run | None = None,
        *,
        started_by: str | None = None,
        answered_by: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[Run]:
        """Runs newest first, ``limit`` at a time; pass a page's last run as ``before`` for
        the next page (answered from an index, however many runs are stored).

        Args:
            states: Only runs in one of these states.
            flow_name: Only runs of this flow.
            limit: At most this many runs.
            before: The last run of the previous page.
            started_by: Only runs this actor id started (``Actor.id``: a Slack user id, or
                the CLI operator's name).
            answered_by: Only runs this actor id gave an answer to (a stored answer, as the
                audit trail records it; refused attempts do not count).
            since: Only runs created at or after this time.
            until: Only runs created before this time.

        Example::

            page = engine.list_runs([RunState.COMPLETED], answered_by="U0BOB", limit=20)
            more = engine.list_runs([RunState.COMPLETED], answered_by="U0BOB", limit=20,
                                    before=page[-1])
        """
        return self.store.list_runs(
            states,
            flow_name,
            limit,
            before,
            started_by=started_by,
            answered_by=answered_by,
            since=since,
            until=until,
        )

    def detail(self, run_id: str | uuid.UUID) -> RunDetail:
        """A run's detail by id, or by a unique prefix (as ``get_run``)."""
        # A full id (the bot's case, redrawing a run's message) is read once, not resolved
        # by a read of its own first: one connection and round trips fewer per redraw.
        run_id = run_id_text(run_id)
        try:
            return self.store.detail(run_id)
        except RunNotFound:
            return self.store.detail(self.store.find_run(run_id).id)

    def stats(self) -> EngineStats:
        """Counts over the whole database for monitoring: runs by state, waiting inputs,
        and how far behind each durable consumer of the events is."""
        return self.store.stats()

    def get_pause(self, run_id: str, key: str) -> Pause | None:
        return self.store.get_pause(run_id, key)

    def waiting_pause(self, run_id: str) -> Pause | None:
        return self.store.waiting_pause(run_id)

    def waiting_within(self, run_id: str) -> Run | None:
        """A run of a flow that this run's flow called (at any depth) that waits for input
        now, if any: a run reads as running while a flow it called waits for someone."""
        return self.store.waiting_within(run_id)

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

    def metadata_of(self, run_ids: Collection[str], key: str) -> dict[str, JSON]:
        """``get_metadata`` of many runs in one read (a page of a listing): run id -> value,
        for the runs that have one."""
        return self.store.metadata_of(run_ids, key)

    def claim_once(self, key: str, seconds: float, *, within: float | None = None) -> bool:
        """Claim ``key`` (at most 200 characters) for ``seconds``, for every process sharing
        the database.

        Returns True if this call claimed it, False if a claim on it has not expired yet. Of
        several processes trying at once, exactly one gets True::

            if engine.claim_once(f"request:{signature}", 300):
                handle(request)

        ``within``: seconds to wait at most for the turn to write, while another writer
        holds the database (SQLite: this process's other writers and other processes;
        PostgreSQL: each lock the claim waits for); past them ``DatabaseBusy`` is raised
        and nothing was claimed. On SQLite a claim whose turn comes at once costs what it
        did; on PostgreSQL the bound is one more statement in the claim's transaction.
        """
        if not key or len(key) > 200:
            raise ValueError(f"a once key has 1 to 200 characters, not {len(key)}")
        return self.store.claim_once(key, seconds, within=within)

    # -- acting on runs ------------------------------------------------------------------

    def submit(
        self,
        flow_name: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        started_by: str | Actor | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Run:
        """Queue a run of a registered flow for a worker, with validated parameters.

        ``started_by`` is checked against the flow's ``starters`` (a bare id acts through the
        Python API); the start is recorded in the audit trail with the run. ``tags`` are
        small labels applications read back from ``Run.tags`` (e.g. the Slack channel a run
        was started from).

        Raises:
            FlowNotFound: no flow of that name is registered.
            NotAllowed: ``started_by`` may not start this flow (the refusal is recorded).
            InvalidParameters: the parameters do not fit the flow's signature.
        """
        flow = self.flows.find(flow_name)
        actor = as_actor(started_by)
        refusal = self.permissions.start(actor, flow.name, flow.starters)
        if refusal is not None:
            raise self._refuse(Action.START, actor, refusal, flow=flow.name)
        if parameters is not None and not isinstance(parameters, Mapping):
            raise TypeError(
                f"parameters is a mapping of names to values, not {type(parameters).__name__}"
            )
        bound = flow.validate_parameters(dict(parameters or {}))
        run_id = uuid.uuid4().hex
        jsonable = serialization.jsonable(bound)
        run = self.store.create_run(
            run_id,
            flow.name,
            flow.ref,
            serialization.dump(bound),
            jsonable,
            RunState.SCHEDULED,
            owner=None,
            started_by=actor.id if actor else None,
            tags=dict(tags or {}),
            approvers=flow.approvers,
            cancellers=flow.cancellers,
            audit=AuditEntry(
                AuditAction.RUN_STARTED, run_id, flow.name, actor, data={"parameters": jsonable}
            ),
        )
        self.notify()
        logger.info(
            "run queued", extra={"action": "run_queued", "run_id": run.id, "flow": flow.name}
        )
        return run

    @property
    def closed(self) -> bool:
        """Whether ``close`` was called."""
        return self._closed.is_set()

    def close(self) -> None:
        """Stop background threads and release the database (once: a second call does nothing)."""
        if self._closed.is_set():
            return
        self._closed.set()
        with _close_step("suspension of the runs paused here"), contextlib.suppress(StoreError):
            self.suspend_own_paused()
        # Their flows stop now, rather than wait here until their timeouts; so do those
        # answered as the engine closes (the dispatcher that would wake them stops next),
        # and those whose suspension failed: a worker takes their runs over.
        self.waiters.stop_all()
        with _close_step("event consumers"):
            for consumer in self._consumers:
                consumer.stop()
        with _close_step("dispatcher"):
            self.dispatcher.stop()
        with _close_step("timers"):
            if self.timers.set_any:
                # A script without workers: nobody else deletes the timers its answered
                # pauses left.
                self.timers.forget_settled()
            self.timers.shutdown(self)
        with _close_step("store threads"):
            self.store_threads.close()
        with _close_step("database"):
            if self._registered:
                with contextlib.suppress(StoreError):
                    self.store.remove_process(self.process_id)
            self.store.close()


#: a step of ``Engine.close`` that takes this long is logged at WARNING: each waits for
#: something (a thread, the database) within a bound, and a close that takes many seconds
#: otherwise says nothing of which
SLOW_CLOSE_SECONDS = 2.0


@contextlib.contextmanager
def _close_step(step: str) -> Iterator[None]:
    began = time.monotonic()
    try:
        yield
    finally:
        took = time.monotonic() - began
        logger.log(
            logging.WARNING if took >= SLOW_CLOSE_SECONDS else logging.DEBUG,
            "closing the engine: the %s took %.1f s",
            step,
            took,
            extra={"action": "engine_close_step", "step": step, "seconds": round(took, 3)},
        )


_default: Engine | None = None
_default_lock = threading.Lock()


def get_engine() -> Engine:
    """The process's engine, created from ``SIGNOFF_*`` settings on first use, and closed
    as the interpreter exits (unless closed before)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Engine()
            atexit.register(_close_at_exit, _default, os.getpid())
        return _default


def _close_at_exit(engine: Engine, pid: int) -> None:
    """Close an engine that ``get_engine`` made, which a script never closes itself: its
    process leaves the process table (where workers would count it alive for an owner
    timeout), its runs still paused are suspended (answering one runs the flow again on a
    worker), and its wake-up socket goes. Not in a child forked since: the engine, its
    process row and its runs are the parent's."""
    if os.getpid() == pid and not engine.closed:
        engine.close()


def set_engine(engine: Engine | None) -> Engine | None:
    """Make ``engine`` the process's engine; returns the previous one (not closed)."""
    global _default
    with _default_lock:
        previous, _default = _default, engine
        return previous


def utcnow() -> datetime:
    return datetime.now(UTC)
