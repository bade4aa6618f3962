"""``Worker``: executes queued runs (new, resumed after a suspend, or recovered).

A worker wakes as soon as a run is scheduled (no polling interval in this process, and
LISTEN/NOTIFY or a local datagram across processes); a slow timed pass is only the safety
net, so an idle worker costs little. Sync flows run on their own threads,
because a paused sync flow holds its thread (threads are kept a while and reused, since
starting one costs more than a short run); async flows share one event loop.
It also keeps the timers running and takes over runs whose process died.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable

from signoff.engine import registry as flow_sources
from signoff.engine.audit import written_with
from signoff.engine.errors import StoreError
from signoff.engine.outages import Outage
from signoff.engine.runner import (
    crash_unstartable,
    execute_queued,
    execute_queued_async,
    prepare_queued,
)
from signoff.engine.runs import RunState
from signoff.engine.runtime import Engine, get_engine
from signoff.engine.signals import EngineClosed
from signoff.engine.store.claiming import RunSource

logger = logging.getLogger(__name__)

#: how long a stopping worker waits for its async runs to stop where they are
_LET_GO_SECONDS = 5.0
#: how soon a worker whose loop failed (its database down) tries again
_RETRY_SECONDS = 1.0
#: the longest a run whose writes keep failing here waits before it is run again
_RERUN_BACKOFF_MAX_SECONDS = 60.0


#: the least time between two "worker full" warnings
FULL_SAID_SECONDS = 60.0


class _RunThreads:
    """Daemon threads for sync runs: one per run in progress, each kept ``idle_seconds``
    after its run ends to take the next one.

    Not a ``ThreadPoolExecutor``: its threads are joined when the interpreter exits, and a
    thread here may hold a flow paused for days; nor does it need a size, since a paused
    run holds its thread and the worker's ``concurrency`` already bounds them.
    """

    def __init__(self, idle_seconds: float = 30.0) -> None:
        self._idle_seconds = idle_seconds
        # None tells a thread to end. Jobs are put under the lock, so that a thread that
        # finds the queue empty under it knows that nothing was handed to it.
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0  # threads waiting for a job, less the jobs handed to them
        self._closed = False

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            if self._idle:
                self._idle -= 1
                self._jobs.put(job)
                return
        threading.Thread(target=self._serve, args=(job,), name="signoff-run", daemon=True).start()

    def close(self) -> None:
        """End the idle threads now; the others end when their runs do."""
        with self._lock:
            self._closed = True
            for _ in range(self._idle):
                self._jobs.put(None)
            self._idle = 0

    def _serve(self, job: Callable[[], None] | None) -> None:
        while job is not None:
            # In an empty context, as on a new thread: a context variable one run sets
            # is not seen by the next run this thread takes.
            contextvars.Context().run(job)
            with self._lock:
                if self._closed:
                    return
                self._idle += 1
            try:
                job = self._jobs.get(timeout=self._idle_seconds)
            except queue.Empty:
                with self._lock:
                    try:
                        job = self._jobs.get_nowait()  # handed over as the wait ran out
                    except queue.Empty:
                        self._idle -= 1
                        return


class Worker:
    """Runs queued runs: given ``flows`` (files, folders or modules to load), only runs of
    the flows this process has then (those, and any they import); otherwise runs of any
    flow, each imported from where its run was started.

    Example::

        worker = Worker(flows=["flows/deploy.py"])   # deploy's runs, and no others
        worker.start()          # background threads; or worker.run() to block
    """

    def __init__(
        self,
        engine: Engine | None = None,
        *,
        flows: Iterable[str] = (),
        concurrency: int = 200,
    ) -> None:
        sources = tuple(flows)
        flow_sources.load(*sources)
        #: whether this worker keeps to the flows it was given (and those it has anyway)
        self.kept_to_flows = bool(sources)
        self.engine = engine or get_engine()
        self.concurrency = concurrency
        self._wake = threading.Event()
        self._stop = threading.Event()
        #: runs executing here, with how many executions: one taken for dead while it stood
        #: still may not have stopped yet when this worker runs its run again
        self._active: Counter[str] = Counter()
        #: runs whose execution here the database failed under, with when to hand each
        #: back (it then runs again, here or on another replica) once the database answers
        self._unrecorded: dict[str, float] = {}
        #: how many times in a row each run's writes failed here: a write the database
        #: keeps failing (a full disk takes a run's large write but not the small one that
        #: queues it again) would otherwise run its flow again and again, many times a second
        self._store_failures: dict[str, int] = {}
        #: runs whose flow this process could not import, left queued for other workers:
        #: not claimed here again
        self._not_importable: set[str] = set()
        self._lock = threading.Lock()
        #: the last look for runs stopped at ``concurrency``: runs may still wait for room,
        #: so a run's end looks again (otherwise nothing does until a run is scheduled)
        self._full = False
        #: when "worker full" was last said, and whether "room again" is owed for it
        self._full_said_at: float | None = None
        self._room_owed = False
        self._loop = asyncio.new_event_loop()
        self._threads: list[threading.Thread] = []
        self._run_threads = _RunThreads()

    def start(self) -> None:
        """Start claiming runs in background threads."""
        self.engine.claim_ownership()
        self._check_audit_key()
        self.engine.on_scheduled(self._wake.set)
        self.engine.timers.start(active=True, engine=self.engine)
        loop_thread = threading.Thread(
            target=self._loop.run_forever, name="signoff-async-flows", daemon=True
        )
        claim_thread = threading.Thread(target=self._claim_loop, name="signoff-worker", daemon=True)
        self._threads = [loop_thread, claim_thread]
        for thread in self._threads:
            thread.start()
        logger.info(
            "worker started",
            extra={
                "action": "worker_started",
                "flows": self.engine.flows.names(),
                # with --flows, runs of no other flow are taken
                "kept_to_flows": self.kept_to_flows,
            },
        )

    def _check_audit_key(self) -> None:
        """Say so at start when the newest audit record is not hashed as this process
        hashes: replicas with different ``SIGNOFF_AUDIT_KEY`` values (or one without) make a
        chain that ``audit verify`` can only report as edited, and nothing said so when
        the records were written."""
        newest = self.engine.store.newest_audit_record()
        if newest is None or written_with(newest, self.engine.store.audit_secret):
            return
        keyed = self.engine.store.audit_secret is not None
        logger.error(
            "the newest audit record (%d) is not hashed with %s: another process writes "
            "the audit trail with %s, and records from both break its chain; give every "
            "replica the same SIGNOFF_AUDIT_KEY (if they have it, record %d was changed: "
            "see signoff audit verify)",
            newest.seq,
            "this process's SIGNOFF_AUDIT_KEY" if keyed else "no key (SIGNOFF_AUDIT_KEY is unset)",
            "another key" if keyed else "a key",
            newest.seq,
            extra={"action": "audit_key_mismatch", "seq": newest.seq},
        )

    def run(self) -> None:
        """Start, then block until ``stop()`` (or Ctrl-C)."""
        self.start()
        try:
            while not self._stop.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    @property
    def running(self) -> bool:
        """True between ``start`` and ``stop`` while its threads are alive."""
        return (
            bool(self._threads)
            and not self._stop.is_set()
            and all(thread.is_alive() for thread in self._threads)
        )

    def stop(self) -> None:
        """Stop taking runs. Runs still going are left as stored: another process takes them
        over as from a process that died (this one's record goes when its engine closes)."""
        self._stop.set()
        self._wake.set()
        if not self._loop.is_closed():  # not stopped already
            if self._loop.is_running():
                let_go = asyncio.run_coroutine_threadsafe(self._let_go(), self._loop)
                with contextlib.suppress(Exception):
                    let_go.result(_LET_GO_SECONDS + 1)
            self._loop.call_soon_threadsafe(self._loop.stop)
        for thread in self._threads:
            thread.join(5)
        if not self._loop.is_running():
            self._loop.close()
        self._run_threads.close()

    async def _let_go(self) -> None:
        """End the async runs on this worker's loop: cancelled, each stops where it is and
        records nothing (``execute_queued_async``), instead of being destroyed with the loop
        mid-await (which asyncio reports as an error, run by run)."""
        this = asyncio.current_task()
        going = [task for task in asyncio.all_tasks() if task is not this]
        for task in going:
            task.cancel()
        if going:
            await asyncio.wait(going, timeout=_LET_GO_SECONDS)

    @property
    def active_runs(self) -> int:
        with self._lock:
            return len(self._active)

    def _claim_loop(self) -> None:
        every = self.safety_seconds
        # At once: upkeep (catching up on timers that fell due while no worker ran) and
        # the runs queued before this worker started.
        due, full = time.monotonic(), True
        outage = Outage(
            logger,
            "worker_error",
            "worker_recovered",
            failed="worker loop failed",
            recovered="worker loop works again after %d failed attempts",
        )
        while not self._stop.is_set():
            # While failing, neither wake-ups (a reconnecting LISTEN sends some) nor runs due
            # to be queued again hurry it: a hand-back that failed stays due, so waiting for
            # it would retry at once, thousands of times a second, until the database is back.
            until = due if outage.failures else min(due, self._next_hand_back())
            (self._stop if outage.failures else self._wake).wait(max(0.0, until - time.monotonic()))
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                # By the clock, not only when no wake-up came: a busy worker takes over
                # dead processes' runs too.
                if time.monotonic() >= due:
                    self._upkeep(full=full)
                    full, due = False, time.monotonic() + every
                self._hand_back()
                self._claim()
            except Exception:
                # The database is down, most likely: one traceback, then quiet retries
                # (a second apart at most) until it answers, rather than a busy loop.
                outage.failed(traceback=True)
                due = time.monotonic() + min(every, _RETRY_SECONDS)
                continue
            outage.over()

    @property
    def safety_seconds(self) -> float:
        """How often the worker looks for work that no event announced: runs of dead
        processes (judged after ``owner_timeout_seconds``, so half of that is soon enough)
        and scheduled runs whose event it missed. New work wakes it at once instead."""
        settings = self.engine.settings
        return max(settings.heartbeat_seconds, settings.owner_timeout_seconds / 2)

    def _upkeep(self, *, full: bool) -> None:
        self.engine.recover_orphans()
        if full:
            # Afterwards the durable timers (and their safety sweep) expire and escalate
            # pauses when they are due; at start they catch up on what fell due meanwhile.
            self.engine.expire_due_pauses()
            self.engine.escalate_due_pauses()

    def _next_hand_back(self) -> float:
        with self._lock:
            return min(self._unrecorded.values(), default=float("inf"))

    def _hand_back(self) -> None:
        """Queue again the runs the database failed under here, each once its wait is over:
        their last stored state is not how they ended, and this live process would
        otherwise hold them forever."""
        now = time.monotonic()
        with self._lock:
            unrecorded = [run_id for run_id, at in self._unrecorded.items() if at <= now]
        for run_id in unrecorded:
            if self.engine.store.transition(
                run_id,
                RunState.SCHEDULED,
                "Recovering",
                "the database failed while the run went on in this process; running it again",
                expect=(RunState.RUNNING, RunState.PAUSED),
                expect_owner=self.engine.process_id,
                owner=None,
            ):
                self.engine.notify()
                logger.info(
                    "run queued again after the database failed under it",
                    extra={"action": "run_requeued", "run_id": run_id},
                )
            # Otherwise it was cancelled or taken over meanwhile: not this process's.
            with self._lock:
                self._unrecorded.pop(run_id, None)

    def _store_failed(self, run_id: str, exc: StoreError) -> None:
        with self._lock:
            failures = self._store_failures[run_id] = self._store_failures.get(run_id, 0) + 1
            # 1 s, 2 s, 4 s ... 60 s: a short outage costs a second; a write that keeps
            # failing costs a run of its flow a minute, not a hot loop of them.
            wait = min(_RETRY_SECONDS * 2 ** (failures - 1), _RERUN_BACKOFF_MAX_SECONDS)
            self._unrecorded[run_id] = time.monotonic() + wait
        # A thread traceback on stderr would tell the operator less than this line.
        logger.error(
            "run not recorded: %s; it runs again in %gs, once the database answers "
            "(failed writes in a row: %d)",
            exc,
            wait,
            failures,
            extra={"action": "run_store_failed", "run_id": run_id, "failures": failures},
        )
        self._wake.set()

    def _recorded(self, run_id: str) -> None:
        with self._lock:
            self._store_failures.pop(run_id, None)

    def _claim(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                free = self.concurrency - len(self._active)
                was_full, self._full = self._full, free <= 0
                now, said = time.monotonic(), self._full_said_at
                # Once a minute at most: a worker kept full by short runs fills again as
                # soon as one ends, many times a second.
                say_full = (
                    free <= 0 and not was_full and (said is None or now - said >= FULL_SAID_SECONDS)
                )
                say_room = free > 0 and was_full and self._room_owed
                if say_full:
                    self._full_said_at, self._room_owed = now, True
                elif say_room:
                    self._room_owed = False
            if say_full:
                # Paused runs hold their place too: an operator sees why queued runs wait.
                logger.warning(
                    "worker full: %d %s in progress (paused ones included); queued runs "
                    "wait until one ends (--concurrency)",
                    self.concurrency,
                    "run" if self.concurrency == 1 else "runs",
                    extra={"action": "worker_full", "concurrency": self.concurrency},
                )
            elif say_room:
                logger.info("worker has room again", extra={"action": "worker_room"})
            if free <= 0:
                return
            with self._lock:
                skip = frozenset(self._not_importable)
            claimed = self.engine.store.claim_scheduled(
                self.engine.process_id,
                min(free, 20),
                skip,
                # A flow of the run still paused here stood still and was taken for dead:
                # the run is this process's again, and only the new execution goes on.
                before_commit=self.engine.waiters.run_again,
                flows=self.engine.flows.names() if self.kept_to_flows else None,
            )
            if not claimed:
                return
            self.engine.notify()
            for source in claimed:
                try:
                    self._execute(source)
                except StoreError:
                    raise
                except Exception as exc:
                    # One run that cannot start must not strand those claimed with it:
                    # running, and held by a live worker, nobody would take them over.
                    logger.exception(
                        "run could not be started",
                        extra={"action": "run_start_failed", "run_id": source.run.id},
                    )
                    crash_unstartable(
                        self.engine,
                        source.run.id,
                        source.run.flow_name,
                        f"the worker could not start it: {type(exc).__name__}: {exc}",
                    )

    def _execute(self, source: RunSource) -> None:
        run_id = source.run.id

        def others_may_import() -> bool:
            # Other live processes may have the flow this one lacks: the run is left to
            # them, and not taken here again.
            settings = self.engine.settings
            live = self.engine.store.live_processes(settings.owner_timeout_seconds)
            others = bool(live - {self.engine.process_id})
            if others:
                with self._lock:
                    self._not_importable.add(run_id)
            return others

        prepared = prepare_queued(self.engine, source, others_may_import=others_may_import)
        if prepared is None:
            return
        ctx, parameters = prepared
        with self._lock:
            self._active[run_id] += 1
        logger.info(
            "run taken", extra={"action": "run_claimed", "run_id": run_id, "flow": ctx.flow.name}
        )
        if ctx.flow.is_async:
            future = asyncio.run_coroutine_threadsafe(
                execute_queued_async(ctx, parameters, stopping=self._stop.is_set), self._loop
            )

            def finished(done: concurrent.futures.Future[None]) -> None:
                failure = None if done.cancelled() else done.exception()
                if isinstance(failure, StoreError):
                    self._store_failed(run_id, failure)
                else:
                    self._recorded(run_id)
                self._done(run_id)

            future.add_done_callback(finished)
            return

        def body() -> None:
            thread = threading.current_thread()
            thread.name = f"signoff-run-{run_id[:8]}"  # names the run in thread dumps
            try:
                execute_queued(ctx, parameters)
            except StoreError as exc:
                self._store_failed(run_id, exc)
            except EngineClosed:
                # Closed under the run's last steps (its end was stored, the bookkeeping
                # after it refused): nothing more is stored, as for a flow the close unwinds.
                pass
            else:
                self._recorded(run_id)
            finally:
                thread.name = "signoff-run"
                self._done(run_id)

        self._run_threads.submit(body)

    def _done(self, run_id: str) -> None:
        with self._lock:
            self._active[run_id] -= 1
            if self._active[run_id] <= 0:
                del self._active[run_id]
            full = self._full
        # Only when runs may wait for the room: looking costs a transaction, and a run
        # scheduled meanwhile wakes the worker anyway.
        if full:
            self._wake.set()
