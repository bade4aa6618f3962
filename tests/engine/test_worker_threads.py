"""A worker's sync runs: each in progress has a thread of its own (a paused run holds
it), and the threads of finished runs are reused rather than started anew."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextvars import ContextVar

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
