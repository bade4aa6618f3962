"""This process's liveness among those sharing the database: registering as one that runs
flows, proving it is alive by a heartbeat, and judging whether another process is gone."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

from signoff.engine.errors import StoreError
from signoff.engine.settings import EngineSettings
from signoff.engine.store import SqlStore
from signoff.engine.waiters import Waiters

logger = logging.getLogger(__name__)


class Liveness:
    """The liveness part of ``Engine``."""

    settings: EngineSettings
    store: SqlStore
    process_id: str
    waiters: Waiters
    _lock: threading.Lock
    #: set when the engine closes; the heartbeat stops
    _closed: threading.Event
    _registered: bool = False
    _heartbeat: threading.Thread | None = None
    #: monotonic time of the last heartbeat stored (or of registering)
    _beat_at: float
    _lapses: int = 0
    #: monotonic time since which this process's heartbeats have been stored without a
    #: failure; None while they fail (see ``judges_others``)
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
        heartbeats have been stored for that long since they last failed. An outage of the
        database stops every process's heartbeats, so right after one each looks dead,
        though the live ones beat again within their heartbeat interval (at most half
        their owner timeout)."""
        since = self._reaching_since
        timeout = self.settings.owner_timeout_seconds if owner_timeout is None else owner_timeout
        return since is not None and time.monotonic() - since >= timeout

    def owner_alive(self, owner: str | None) -> bool:
        if owner is None:
            return False
        if owner == self.process_id:
            return self._registered
        return self.store.is_alive(owner, self.settings.owner_timeout_seconds)
