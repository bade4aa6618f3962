"""A worker's upkeep: what no event announces (runs of dead processes) is still found, by
the clock, however busy the worker is, and seldom enough for an idle worker to cost little
(measured by ``bench/scenarios.py worker``); a worker that stops leaves its runs, quietly,
for another to take over, its waiting ones suspended at once."""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable

import pytest

from signoff.engine import (
    Engine,
    EngineSettings,
    RunState,
    Worker,
    flow,
    pause_flow_run,
    resume_flow_run,
)
from tests.conftest import FAST
from tests.support.waiting import wait_for


@flow(name="upkeep-noop")
def upkeep_noop(n: int) -> int:
    return n


@flow(name="upkeep-waits-async")
async def upkeep_waits_async() -> int:
    return await pause_flow_run(int, timeout=60)


def test_a_busy_worker_still_takes_over_the_runs_of_a_dead_process(
    make_engine: Callable[..., Engine], database_url: str
) -> None:
    engine = make_engine()
    # The dying process takes a run before any worker runs (so that none can claim it
    # first), then goes away with it while the worker is busy.
    dying = Engine(EngineSettings.load(database_url=database_url, **FAST))
    dying.claim_ownership()
    run = dying.submit("upkeep-noop", {"n": -1})
    assert [s.run.id for s in dying.store.claim_scheduled(dying.process_id, 1)] == [run.id]
    assert engine.get_run(run.id).owner == dying.process_id
    worker = Worker(engine)
    worker.start()
    stop = threading.Event()

    def keep_it_busy() -> None:
        # A run scheduled every 50 ms wakes the worker far more often than its timed pass.
        n = 0
        while not stop.wait(0.05):
            engine.submit("upkeep-noop", {"n": n})
            n += 1

    feeder = threading.Thread(target=keep_it_busy)
    feeder.start()
    try:
        dying.close()
        done = wait_for(lambda: (r := engine.get_run(run.id)).state.is_final and r, 15)
        assert (done.state, done.result) == (RunState.COMPLETED, "-1")
    finally:
        stop.set()
        feeder.join()
        worker.stop()


def test_the_timed_pass_follows_the_owner_timeout(make_engine: Callable[..., Engine]) -> None:
    assert Worker(make_engine()).safety_seconds == 0.5  # FAST: owner timeout 1 s
    assert (
        Worker(make_engine(heartbeat_seconds=2.0, owner_timeout_seconds=10.0)).safety_seconds == 5.0
    )


def test_a_stopping_worker_leaves_its_async_runs_quietly_for_another_to_take_over(
    engine: Engine, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    leaving = Engine(EngineSettings.load(database_url=database_url, **FAST))
    worker = Worker(leaving)
    worker.start()
    runs = [engine.submit("upkeep-waits-async", {}).id for _ in range(3)]
    try:
        wait_for(
            lambda: all(engine.get_run(r).state is RunState.PAUSED for r in runs),
            what="the runs to wait for input",
        )
        with caplog.at_level(logging.INFO):
            worker.stop()
            leaving.close()
            gc.collect()  # a run's coroutine destroyed with the loop would be reported now
    finally:
        worker.stop()
        leaving.close()
    # Nothing reported as an error, and each run said where it went.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    left = sorted(r.run_id for r in caplog.records if getattr(r, "action", "") == "run_left")
    assert left == sorted(runs)
    # Not crashed: the runs still wait for input, suspended as the process stopped (they
    # read "paused" until another process took it for gone); an answer finishes each on
    # another worker.
    stopped = [engine.get_run(r) for r in runs]
    assert {(r.state, r.owner) for r in stopped} == {(RunState.SUSPENDED, None)}
    assert stopped[0].state_message == (
        "the process that was waiting stopped; answering runs the flow again"
    )
    (said,) = [r for r in caplog.records if getattr(r, "action", "") == "paused_runs_suspended"]
    assert said.runs == len(runs)  # type: ignore[attr-defined]
    taker = Worker(engine)
    taker.start()
    try:
        for n, run_id in enumerate(runs):
            resume_flow_run(run_id, {"value": n})
        done = [
            wait_for(lambda run_id=run_id: (r := engine.get_run(run_id)).state.is_final and r)
            for run_id in runs
        ]
    finally:
        taker.stop()
    assert [(r.state, r.result) for r in done] == [
        (RunState.COMPLETED, str(n)) for n in range(len(runs))
    ]
