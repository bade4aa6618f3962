"""A worker's timed pass: what no event announces (runs of dead processes) is still found,
by the clock, however busy the worker is; and it runs seldom enough for an idle worker to
cost little (measured by ``bench/scenarios.py worker``)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from signoff.engine import Engine, EngineSettings, RunState, Worker, flow
from tests.conftest import FAST
from tests.support.waiting import wait_for


@flow(name="upkeep-noop")
def upkeep_noop(n: int) -> int:
    return n


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
