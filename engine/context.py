"""The run that the current code belongs to, carried in context variables."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from signoff.engine.definition import FlowDefinition
from signoff.engine.errors import MissingContext, StoreError
from signoff.engine.signals import EngineClosed

if TYPE_CHECKING:
    from signoff.engine.runtime import Engine


@dataclass(slots=True, weakref_slot=True)  # slots: one lives as long as each waiting flow
class RunContext:
    """What a flow run knows about itself while it executes."""

    engine: Engine
    run_id: str
    flow: FlowDefinition
    is_async: bool
    started_by: str | None
    #: nothing is stored to replay: started by this very call, or a claimed run that never
    #: got as far as a task or a pause (saves a read per task, and two at the first pause)
    fresh: bool = False
    #: the run of the flow that called this one, for a flow called from another flow
    parent_run_id: str | None = None
    #: calls per task name, which gives each call a key that is stable across re-runs
    task_calls: Counter[str] = field(default_factory=Counter)
    #: pause and suspend calls so far; unnamed pauses are keyed "1", "2", ...
    pause_calls: int = 0
    #: calls per ``key=`` given, in this execution (a named pause asked again)
    named_calls: Counter[str] = field(default_factory=Counter)
    #: the keys unnamed pause calls got in this execution ("1", "2", ...): a few at most
    numbered: tuple[str, ...] = ()
    #: task results kept in memory because pickle refused them
    unstorable: dict[str, BaseException] = field(default_factory=dict)
    logs: list[tuple[datetime, str, str, str | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: the name the run is stored under (the flow's, unless it was renamed since)
    flow_name: str = ""
    #: the key of a pause the flow stopped awaiting (its await was cancelled), which the
    #: flow's next write ends first (``waiting.give_up_abandoned``)
    abandoned: str | None = None
    #: whether ``abandoned`` was cancelled as the process left the run, so not yet given up:
    #: if the flow goes on, its next write gives it up; if it stops too, the pause stays
    abandoned_leaving: bool = False
    #: the store thread's call storing the abandoned pause, if the flow stopped awaiting it
    #: before it was stored; ending the pause waits for it
    opening: Future[Any] | None = None
    #: held while the abandoned pause is ended, by whichever thread gets there first
    giving_up: threading.Lock = field(default_factory=threading.Lock)
    #: whether the process is leaving this run (a stopping worker, Ctrl-C under
    #: ``asyncio.run``): a pause the flow stops awaiting then stays, for the process that
    #: takes the run over or the run's suspension
    leaving: Callable[[], bool] = lambda: False
    #: whether this execution called another flow (whose run may be left when it ends)
    called_flows: bool = False
    #: ``Engine.heartbeat_lapses()`` when the run last knew it was this process's
    lapses_seen: int = 0
    #: the key of the suspend this execution stored, and the lock its storing holds: a
    #: call beside it (``asyncio.gather``) that asks after it unwinds with it
    suspended: str | None = None
    suspending: threading.RLock = field(default_factory=threading.RLock)
    #: the event loop of an async flow called directly (not a worker's run), for the
    #: heartbeat to find it closed under the flow; None once it judged that
    loop: asyncio.AbstractEventLoop | None = None

    def __post_init__(self) -> None:
        self.flow_name = self.flow_name or self.flow.name
        self.lapses_seen = self.engine.heartbeat_lapses()
        self.engine.heard.executing(self)
        # A flow of this engine may go on after it closes: its store calls stop it then.
        self.engine.store.closed_error = closed_store_error

    def next_task_key(self, task_name: str) -> str:
        with self.lock:
            self.task_calls[task_name] += 1
            for tally in task_tallies.get():
                tally.tasks[task_name] += 1
            return f"{task_name}-{self.task_calls[task_name]}"

    def next_pause_key(self, key: str | None) -> str:
        """The call's key: ``key``, or for an unnamed call the next number.

        Raises:
            ValueError: ``key`` is a number an unnamed call of this execution already has
                (the stored answer to that one would be this call's).
        """
        with self.lock:
            before = self.pause_calls
            given = self._pause_key(key)
            for tally in task_tallies.get():
                tally.pauses += self.pause_calls - before
            return given

    def _pause_key(self, key: str | None) -> str:
        # The counter moves on even for named pauses, so later unnamed keys stay stable.
        self.pause_calls += 1
        if key:
            if key in self.numbered:
                self.pause_calls -= 1
                raise ValueError(
                    f"pause key {key!r} is the key an earlier pause of this flow was given "
                    "by number (it has no key=): its answer would be taken for this one's; "
                    "give this pause a key that is not a number"
                )
            self.named_calls[key] += 1
            return key
        # Nor a number a named call took: that call's answer is not this one's.
        while str(self.pause_calls) in self.named_calls:
            self.pause_calls += 1
        self.numbered += (str(self.pause_calls),)
        return str(self.pause_calls)

    def asked_again(self, key: str) -> bool:
        """Whether this execution already made a call with ``key=key`` before this one."""
        with self.lock:
            return self.named_calls[key] > 1

    def skip_calls(self, made: Mapping[str, Any] | None) -> None:
        """Count calls a reused task made inside it (``CallTally.recorded``) as made again:
        by this run, and inside the tasks around this call."""
        if not made:
            return
        pauses = int(made.get("pauses") or 0)
        tasks = {str(name): int(count) for name, count in (made.get("tasks") or {}).items()}
        with self.lock:
            self.pause_calls += pauses
            self.task_calls.update(tasks)
            for tally in task_tallies.get():
                tally.pauses += pauses
                tally.tasks.update(tasks)

    def take_logs(self) -> list[tuple[datetime, str, str, str | None]]:
        with self.lock:
            taken, self.logs = self.logs, []
            return taken


@dataclass
class CallTally:
    """The pause and task calls made inside one task's body, and inside the tasks it calls.

    A task reused on a re-run does not run its body, so its calls would not move the run's
    counters, and every key after them would shift; the tally stored with the task moves
    them instead. It counts only the calls made in the task's own context: not those of
    flow code running beside it (``asyncio.gather``), which calls them again on a re-run.
    """

    pauses: int = 0
    tasks: Counter[str] = field(default_factory=Counter)

    def recorded(self) -> dict[str, Any] | None:
        """As a task records it (None: no calls): ``{"pauses": 1, "tasks": {"notify": 2}}``."""
        if not self.pauses and not self.tasks:
            return None
        return {"pauses": self.pauses, "tasks": dict(self.tasks)}


#: the tallies of the tasks whose bodies the current code runs in, innermost last
task_tallies: contextvars.ContextVar[tuple[CallTally, ...]] = contextvars.ContextVar(
    "signoff_task_tallies", default=()
)

current_run: contextvars.ContextVar[RunContext | None] = contextvars.ContextVar(
    "signoff_run", default=None
)
current_task: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "signoff_task", default=None
)
#: whether the task running now is a coroutine function (None: no task runs)
task_is_async: contextvars.ContextVar[bool | None] = contextvars.ContextVar(
    "signoff_task_is_async", default=None
)


def closed_store_error() -> BaseException:
    """What a store call made after its engine closed raises (the closed store opens no
    connection): in a flow's run ``EngineClosed``, which stops the flow as the closed store
    threads stop an async flow's call; elsewhere (a job that fired as the engine closed) a
    ``StoreError``, which callers already take for a failed read."""
    if current_run.get() is not None:
        return EngineClosed()
    return StoreError("the store is closed (its engine was closed); it opens no connection again")


def awaited_here(ctx: RunContext) -> bool:
    """Whether a pause or suspend called now is awaited: inside a task, when that task is
    async (a sync task of an async flow blocks, as its other calls do); else when the flow
    is. Either way only with an event loop running in this thread."""
    in_task = task_is_async.get()
    if not (ctx.is_async if in_task is None else in_task):
        return False
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def require_run(what: str) -> RunContext:
    ctx = current_run.get()
    if ctx is None:
        raise MissingContext(f"{what} can only be called inside a flow run")
    return ctx
