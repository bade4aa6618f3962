"""This process's liveness among those sharing the database: registering as one that runs
flows, proving it is alive by a heartbeat, and judging whether another process is gone."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from typing import Protocol, cast

from signoff.engine.errors import StoreError
from signoff.engine.heard import Heard
from signoff.engine.runs import RunState
from signoff.engine.settings import EngineSettings
from signoff.engine.store import SqlStore
from signoff.engine.waiters import Waiters


class RunningFlow(Protocol):
    """A flow executing here, as the heartbeat sees it (a ``RunContext``)."""

    run_id: str
    loop: asyncio.AbstractEventLoop | None


logger = logging.getLogger(__name__)


class Liveness:
    """The liveness part of ``Engine``."""

    settings: EngineSettings
    store: SqlStore
    process_id: str
    waiters: Waiters
    heard: Heard
    left_flows: list[RunningFlow]
    _lock: threading.Lock
    #: set when the engine closes; the heartbeat stops
    _closed: threading.Event
    _registered: bool = False
    _heartbeat: threading.Thread | None = None
    #: monotonic time of the last heartbeat stored (or of registering)
    _beat_at: float
    _lapses: int = 0
    #: monotonic time since which this process has reached the database without a failure
    #: of its heartbeats (from when it opened the store); None while they fail (see
    #: ``judges_others``)
    _reaching_since: float | None = float("-inf")

    def claim_ownership(self) -> str:
        """Register this process as one that runs flows, and keep proving it is alive."""
        with self._lock:
            if not self._registered:
                self._register()
                self._registered = True
                self._beat_at = time.monotonic()
                self._heartbeat = threading.Thread(
                    target=self._beat, name="signoff-heartbeat", daemon=True
                )
                self._heartbeat.start()
        return self.process_id

    def _register(self) -> None:
        # With the owner timeout this process keeps to, by which the others judge it (not
        # by theirs: a replica may be set to beat more slowly than they do).
        self.store.register_process(
            self.process_id,
            socket.gethostname(),
            os.getpid(),
            owner_timeout=self.settings.owner_timeout_seconds,
        )

    def _beat(self) -> None:
        while not self._closed.wait(self.settings.heartbeat_seconds):
            try:
                if not self.store.heartbeat(self.process_id):
                    # Another process judged us gone and removed the row; come back.
                    self._register()
                now = time.monotonic()
                if now - self._beat_at > self.settings.owner_timeout_seconds / 2:
                    self._lapses += 1  # this process stood still (a stop, a long pause)
                self._beat_at = now
                # First: a flow found waiting here is left to _suspend_gone_waits.
                self._crash_left_runs()
                self._suspend_gone_waits()
                if self._reaching_since is None:
                    self._reaching_since = now
                    # At the failure's level: wherever "heartbeat failed" shows, so does this.
                    logger.warning(
                        "heartbeat stored again", extra={"action": "heartbeat_recovered"}
                    )
            except StoreError:
                self._lapses += 1
                if self._reaching_since is not None:  # once per outage, not once a beat
                    logger.warning("heartbeat failed", extra={"action": "heartbeat_failed"})
                self._reaching_since = None

    def notify(self) -> None:
        raise NotImplementedError

    def _crash_left_runs(self) -> None:
        """Crash the runs whose async flow was left unfinished while it ran (not while it
        waited for input: ``_suspend_gone_waits``): its event loop was closed under it, or
        its coroutine was collected. The flow never runs on, yet the run read "running" in
        a live process for good, which no worker takes over. Each flow is judged once
        (its ``loop`` cleared); on the heartbeat's thread, so nothing on the paths that
        start, pause or end a run."""
        found: list[RunningFlow] = []
        while self.left_flows:
            found.append(self.left_flows.pop())
        executing = cast("list[RunningFlow]", self.heard.executing_now())
        found += [c for c in executing if c.loop is not None and c.loop.is_closed()]
        if not found:
            return
        left = {id(ctx) for ctx in found}
        # Another execution of the run here (a worker's, once the run was suspended or
        # taken for dead) is the run's now: the flow left behind does not end it.
        going = {c.run_id for c in executing if id(c) not in left}
        crashed: dict[str, str] = {}
        for ctx in found:
            loop, ctx.loop = ctx.loop, None
            if loop is None or ctx.run_id in self.waiters or ctx.run_id in going:
                continue
            crashed[ctx.run_id] = (
                "the event loop the flow ran in was closed before the flow ended"
                if loop.is_closed()
                else "the flow's coroutine was discarded before the flow ended (its task "
                "was no longer referenced)"
            )
        for run_id, reason in crashed.items():
            done = self.store.transition(
                run_id,
                RunState.CRASHED,
                "Crashed",
                f"{reason}; it cannot run on",
                expect=(RunState.RUNNING,),
                expect_owner=self.process_id,
                owner=None,
            )
            if done:
                logger.error(
                    "run crashed: %s",
                    reason,
                    extra={"action": "run_loop_closed", "run_id": run_id},
                )
                self._cancel_called_runs(run_id, f"its outer run {run_id} crashed")
        if crashed:
            self.notify()

    def _cancel_called_runs(self, run_id: str, reason: str) -> None:
        """Cancel the unfinished runs of the flows a crashed run's flow called (and theirs),
        as cancelling a run cancels them, and as a run that ends otherwise ends them: they
        were left running, or waiting for input an answer to which runs nothing (no worker
        runs a called flow alone; its loop went with its caller's)."""
        for child in self.store.unfinished_children(run_id):
            if self.store.cancel(child, reason):
                self.heard.cancelled(child)
                self.waiters.wake(child)
                logger.warning(
                    "run cancelled: %s",
                    reason,
                    extra={"action": "run_cancelled", "run_id": child, "parent_run_id": run_id},
                )
            self._cancel_called_runs(child, reason)

    def _suspend_gone_waits(self) -> None:
        """Suspend the runs whose async flow's event loop was closed while it awaited a
        pause (a loop dropped, not run to its end): the flow never runs again, yet the run
        read "paused" in a live process for good, and an answer left it "running" for good.
        Suspended, an answer runs the flow again on a worker, as for a process that died.
        On the heartbeat's thread: nothing on the paths that pause, answer or end a run."""
        gone = self.waiters.take_gone()
        if not gone:
            return
        runs = sorted({run_id for run_id, _ in gone})
        suspended = self.store.suspend_paused(
            self.process_id,
            "the event loop the flow waited in was closed; answering runs the flow again",
            runs,
        )
        for run_id in runs:
            logger.warning(
                "the event loop of a waiting flow was closed: %s",
                "run suspended" if run_id in suspended else "run no longer paused here",
                extra={"action": "wait_loop_closed", "run_id": run_id},
            )

    def heartbeat_lapses(self) -> int:
        """How many times this process's heartbeat failed or came late, so far (and now):
        each time, another process may have taken it for dead and its runs over. A run
        checks it still owns itself before a task when this has changed since it last
        looked (``tasks.Task``): no read on the common path."""
        late = time.monotonic() - self._beat_at > self.settings.owner_timeout_seconds / 2
        return self._lapses + (1 if self._registered and late else 0)

    def judges_others(self, owner_timeout: float | None = None) -> bool:
        """Whether this process may take another, which declared ``owner_timeout`` (this
        process's own when None), for dead by its stale heartbeat: not until its own
        heartbeats have been stored for that long since they last failed, nor until it has
        reached the database for that long since it started. An outage of the database
        stops every process's heartbeats, so right after one each looks dead, though the
        live ones beat again within their heartbeat interval (at most half their owner
        timeout); a process started as it ends sees the same."""
        since = self._reaching_since
        timeout = self.settings.owner_timeout_seconds if owner_timeout is None else owner_timeout
        return since is not None and time.monotonic() - since >= timeout

    def owner_alive(self, owner: str | None) -> bool:
        if owner is None:
            return False
        if owner == self.process_id:
            return self._registered
        return self.store.is_alive(owner, self.settings.owner_timeout_seconds)
