"""A worker's sync runs: each in progress has a thread of its own (a paused run holds
it), the threads of finished runs are reused rather than started anew, and no more than
``concurrency`` are in progress at once."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar

import pytest

from signoff.engine import Engine, RunState, Worker, flow
from tests.support.waiting import wait_for

_together = threading.Barrier(5, timeout=15)


@flow(name="threads-quick")
def threads_quick(n: int) -> int:
    return n


@flow(name="threads-together")
def threads_together(n: int) -> int:
    # Returns only once all five runs are in progress at the same time.
    _together.wait()
    return n


_released = {n: threading.Event() for n in range(3)}


@flow(name="threads-held")
def threads_held(n: int) -> int:
    # Stays in progress until the test lets it finish.
    if not _released[n].wait(30):
        raise TimeoutError(f"run {n} was never released")
    return n


_leftover: ContextVar[int | None] = ContextVar("leftover", default=None)


@flow(name="threads-context")
def threads_context(n: int) -> str:
    seen = _leftover.get()
    _leftover.set(n)  # and never reset: the next run on this thread must not see it
    return repr(seen)


def _run_threads() -> set[threading.Thread]:
    # Named after the run while they run one (signoff-run-3f2a9c0e).
    return {t for t in threading.enumerate() if t.name.startswith("signoff-run")}


def _finished(engine: Engine, run_ids: list[str]) -> list[RunState] | None:
    states = [engine.get_run(run_id).state for run_id in run_ids]
    return states if all(state.is_final for state in states) else None


def test_runs_one_after_another_reuse_one_thread(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine()
    worker = Worker(engine)
    earlier = _run_threads()  # other workers' in this process, ending
    worker.start()
    try:
        for n in range(30):
            run = engine.submit("threads-quick", {"n": n})
            done = wait_for(lambda run=run: _finished(engine, [run.id]), 15)
            assert done == [RunState.COMPLETED]
        # Each run's thread waits for the next run instead of ending: 30 runs, not 30 threads.
        assert 1 <= len(_run_threads() - earlier) <= 2
    finally:
        worker.stop()
    # Stopping the worker ends its idle threads.
    wait_for(lambda: not (_run_threads() - earlier), 10, "the idle run threads to end")


def test_runs_in_progress_together_each_have_a_thread(make_engine: Callable[..., Engine]) -> None:
    engine = make_engine()
    worker = Worker(engine)
    earlier = _run_threads()
    worker.start()
    try:
        runs = [engine.submit("threads-together", {"n": n}) for n in range(5)]
        states = wait_for(lambda: _finished(engine, [r.id for r in runs]), 30)
        assert states == [RunState.COMPLETED] * 5
        assert [engine.get_run(r.id).result for r in runs] == [str(n) for n in range(5)]
        assert len(_run_threads() - earlier) == 5  # kept for the next runs
    finally:
        worker.stop()


def test_a_reused_thread_starts_each_run_in_a_fresh_context(
    make_engine: Callable[..., Engine],
) -> None:
    engine = make_engine()
    worker = Worker(engine)
    earlier = _run_threads()
    worker.start()
    try:
        results = []
        for n in range(5):
            run = engine.submit("threads-context", {"n": n})
            wait_for(lambda run=run: _finished(engine, [run.id]), 15)
            results.append(engine.get_run(run.id).result)
        # Five runs on at most two threads: some thread ran a second one...
        assert 1 <= len(_run_threads() - earlier) <= 2
        # ...and no run saw what the run before it on that thread left behind.
        assert set(results) == {repr(repr(None))}
    finally:
        worker.stop()


@contextlib.contextmanager
def _holding(engine: Engine, concurrency: int) -> Iterator[Worker]:
    """A started worker whose "threads-held" runs wait until released; at the end every
    run is released and the worker stopped."""
    worker = Worker(engine, concurrency=concurrency)
    for released in _released.values():
        released.clear()
    worker.start()
    try:
        yield worker
    finally:
        for released in _released.values():
            released.set()
        worker.stop()


def _said_full(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The worker's "worker full" records, once there is one."""
    return wait_for(
        lambda: [r for r in caplog.records if getattr(r, "action", None) == "worker_full"],
        15,
        "the worker to say it is full",
    )


def test_a_full_worker_takes_a_waiting_run_as_soon_as_one_ends(
    make_engine: Callable[..., Engine], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="signoff.engine.workers")
    # Its timed look for work comes every 30 s here: only the run's end can be in time.
    engine = make_engine(heartbeat_seconds=5.0, owner_timeout_seconds=60.0)
    with _holding(engine, concurrency=2):
        runs = [engine.submit("threads-held", {"n": n}) for n in range(3)]
        _released[2].set()  # the third finishes as soon as it runs
        wait_for(
            lambda: [engine.get_run(r.id).state for r in runs[:2]] == [RunState.RUNNING] * 2,
            15,
            "two runs in progress",
        )
        # Two at once: the third waits for room, and the worker says why, once.
        assert engine.get_run(runs[2].id).state is RunState.SCHEDULED
        full = _said_full(caplog)
        assert [r.getMessage() for r in full] == [
            "worker full: 2 runs in progress (paused ones included); queued runs wait until "
            "one ends (--concurrency)"
        ]
        _released[0].set()
        states = wait_for(lambda: _finished(engine, [runs[0].id, runs[2].id]), 10)
        assert states == [RunState.COMPLETED, RunState.COMPLETED]
        assert engine.get_run(runs[1].id).state is RunState.RUNNING
        actions = [getattr(r, "action", None) for r in caplog.records]
        assert actions.count("worker_full") >= 1 and "worker_room" in actions


def test_a_worker_kept_full_by_one_run_after_another_says_so_once(
    make_engine: Callable[..., Engine], caplog: pytest.LogCaptureFixture
) -> None:
    """Each run's end made room for the next queued one, and the worker said "full" and
    "room again" for each: 65 warnings in a second from a worker of short runs."""
    caplog.set_level(logging.INFO, logger="signoff.engine.workers")
    engine = make_engine()
    with _holding(engine, concurrency=1):
        runs = [engine.submit("threads-held", {"n": n}) for n in range(3)]
        _said_full(caplog)
        for released in _released.values():
            released.set()
        wait_for(lambda: _finished(engine, [r.id for r in runs]), 15, "every run to end")
        actions = [getattr(r, "action", None) for r in caplog.records]
        assert (actions.count("worker_full"), actions.count("worker_room")) == (1, 1)


def test_a_worker_of_one_says_it_is_full_with_one_run(
    make_engine: Callable[..., Engine], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="signoff.engine.workers")
    engine = make_engine()
    with _holding(engine, concurrency=1):
        runs = [engine.submit("threads-held", {"n": n}) for n in range(2)]
        full = _said_full(caplog)
        assert full[0].getMessage().startswith("worker full: 1 run in progress (")
        for released in _released.values():
            released.set()
        wait_for(lambda: _finished(engine, [r.id for r in runs]), 15, "both runs to end")
