"""Async flows at the pause API's edges: the loop or the engine going away under a waiting
flow."""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Callable

import pytest

from signoff.engine import (
    Engine,
    RunState,
    RunTakenOver,
    Worker,
    flow,
    pause_flow_run,
    resume_flow_run,
)
from tests.support.holding import writes_held
from tests.support.running import start, waiting
from tests.support.waiting import wait_for

pytestmark = pytest.mark.usefixtures("tasks_left_on_closed_loops_collected")

#: lets the flow's re-run end once the test has collected the flow its closed loop left
_rerun_goes_on = threading.Event()


@flow(name="loop-closed-while-waiting")
async def loop_closed_while_waiting() -> int:
    answer = await pause_flow_run(int, timeout=60)
    await asyncio.to_thread(_rerun_goes_on.wait, 30)
    return answer + 1


def _close_a_loop_under_a_waiting_flow(engine: Engine) -> str:
    """Run the flow until it waits, then close its loop without running it to its end."""
    loop = asyncio.new_event_loop()
    try:
        running = loop.create_task(loop_closed_while_waiting())

        async def until_it_waits() -> str:
            def paused() -> str | None:
                runs = engine.list_runs(flow_name="loop-closed-while-waiting")
                return runs[0].id if runs and runs[0].state is RunState.PAUSED else None

            return await asyncio.to_thread(wait_for, paused, what="the flow to pause")

        run_id = loop.run_until_complete(until_it_waits())
        assert not running.done()
    finally:
        loop.close()
    return run_id


def test_a_flow_whose_loop_is_closed_while_it_waits_is_suspended(
    engine: Engine, worker: Worker
) -> None:
    """The loop was closed with the flow awaiting its pause: the run read "paused" in a
    live process for good, and an answer left it "running" for good, as nothing could run
    the flow on. Now it is suspended, and answering runs the flow again on a worker.

    The flow the closed loop left is collected whenever the collector runs, on whatever
    thread: collected while the re-run ran (on a worker of the same process), it ended
    that re-run as its own ("Crashed: GeneratorExit", or "Failed" off the main thread);
    collected by a thread that held the waiters' lock, it waited for that lock for good,
    and so did every flow of the process that paused after it."""
    _rerun_goes_on.clear()
    run_id = _close_a_loop_under_a_waiting_flow(engine)
    run = wait_for(
        lambda: (r := engine.get_run(run_id)).state is RunState.SUSPENDED and r,
        what="the run whose loop closed to be suspended",
    )
    assert "event loop" in (run.state_message or "")
    assert not engine.waiters.any_waiting()
    resume_flow_run(run_id, {"value": 41}, "U0ALICE")
    try:
        wait_for(
            lambda: engine.get_run(run_id).state is RunState.RUNNING,
            what="the worker to run the flow again",
        )

        def collect() -> None:
            # As the dispatcher's wake-up may: what it allocates while it holds the
            # waiters' lock sets the collector off.
            with engine.waiters._lock:
                gc.collect()

        collector = threading.Thread(target=collect, daemon=True)
        collector.start()
        collector.join(10)
        assert not collector.is_alive(), "collecting the left flow waits for good"
    finally:
        _rerun_goes_on.set()
    done = wait_for(
        lambda: (r := engine.get_run(run_id)).state.is_final and r,
        what="the answered run to end on the worker",
    )
    assert (done.state, done.result) == (RunState.COMPLETED, "42")


@flow(name="waits-as-its-engine-closes")
async def waits_as_its_engine_closes() -> int:
    return await pause_flow_run(int, timeout=60)


def test_a_flow_waiting_as_its_engine_closes_stops_and_says_so(
    engine: Engine, make_engine: Callable[..., Engine]
) -> None:
    """Closing the engine suspends the runs paused here. Their flows went on waiting until
    their timeouts, then said the process "went quiet ... and was taken for dead". Now they
    stop at once and say why."""
    thread, box = start(lambda: asyncio.run(waits_as_its_engine_closes()))
    pause = waiting(engine, "waits-as-its-engine-closes")
    engine.close()
    thread.join(10)
    assert isinstance(box.get("error"), RunTakenOver)
    assert str(box["error"]) == (
        f"run {pause.run_id} stopped here: this process's engine was closed while its flow "
        "waited; a worker runs the flow again once the run is answered"
    )
    assert make_engine().get_run(pause.run_id).state is RunState.SUSPENDED


@flow(name="answered-as-its-engine-closes")
async def answered_as_its_engine_closes() -> int:
    return await pause_flow_run(int, timeout=60) + 1


def test_a_flow_answered_as_its_engine_closes_stops_too(
    engine: Engine, make_engine: Callable[..., Engine]
) -> None:
    """Answered from another process just as its engine closed, before the dispatcher woke
    it (close stops the dispatcher): the run was not paused to be suspended, so close left
    its flow waiting, until its timeout. Now it stops at once; a worker runs the flow
    again, with the answer."""
    thread, box = start(lambda: asyncio.run(answered_as_its_engine_closes()))
    pause = waiting(engine, "answered-as-its-engine-closes")
    other = make_engine()
    engine.dispatcher.stop()  # as close does, before the dispatcher heard of the answer
    other.resume(pause.run_id, {"value": 41}, "U0ALICE")
    engine.close()
    thread.join(10)
    assert isinstance(box.get("error"), RunTakenOver), box
    worker = Worker(other)
    worker.start()
    try:
        done = wait_for(
            lambda: (r := other.get_run(pause.run_id)).state.is_final and r,
            what="a worker to run the answered flow again",
        )
    finally:
        worker.stop()
    assert (done.state, done.result) == (RunState.COMPLETED, "42")


@flow(name="waits-beside-a-close")
async def waits_beside_a_close() -> int:
    return await pause_flow_run(int, timeout=60)


def test_an_engine_closed_on_its_waiting_flow_s_loop_stops_the_flow_and_says_so(
    engine: Engine,
) -> None:
    """Closed on the loop the flow waits on (a script's shutdown code): the flow went on
    only once close had shut the store threads, and raised their refusal ("cannot schedule
    new futures after shutdown") for what it had no need to store, not why it stopped."""

    async def main() -> int:
        flow_run = asyncio.create_task(waits_beside_a_close())
        await asyncio.to_thread(waiting, engine, "waits-beside-a-close")
        engine.close()
        return await flow_run

    thread, box = start(lambda: asyncio.run(main()))
    thread.join(10)
    assert isinstance(box.get("error"), RunTakenOver), box
    assert "engine was closed" in str(box["error"])


#: holds the flows below until their engine is closed
_after_close = threading.Event()


@flow(name="pauses-after-close")
def pauses_after_close() -> int:
    _after_close.wait(30)
    return pause_flow_run(int, timeout=60) + 1


@flow(name="apauses-after-close")
async def apauses_after_close() -> int:
    await asyncio.to_thread(_after_close.wait, 30)
    return await pause_flow_run(int, timeout=60) + 1


@pytest.mark.parametrize(
    ("name", "call"),
    [
        ("pauses-after-close", pauses_after_close),
        ("apauses-after-close", lambda: asyncio.run(apauses_after_close())),
    ],
)
def test_a_flow_that_pauses_after_its_engine_closed_stops_at_once_and_is_run_again(
    engine: Engine, make_engine: Callable[..., Engine], name: str, call: Callable[[], int]
) -> None:
    """Running as its engine closed, the flow paused after close had stopped the waiters:
    a sync flow waited out its whole timeout (nothing could wake it), then failed the run
    as TimedOut; an async one raised "cannot schedule new futures after shutdown". Now it
    stops at once and says why, and its run, left running under the closed process, is
    run again by a worker, which asks again."""
    _after_close.clear()
    thread, box = start(call)
    run_id = wait_for(lambda: (runs := engine.list_runs(flow_name=name)) and runs[0].id)
    engine.close()
    _after_close.set()
    thread.join(10)
    assert isinstance(box.get("error"), RunTakenOver), box
    assert str(box["error"]) == (
        f"run {run_id} stopped here: its flow asked for input after this process's engine "
        "was closed; a worker runs the flow again, as for a process that stopped"
    )
    other = make_engine()
    assert other.get_run(run_id).state is RunState.RUNNING
    worker = Worker(other)
    worker.start()
    try:
        pause = waiting(other, name)
        other.resume(run_id, {"value": 41}, "U0ALICE")
        done = wait_for(
            lambda: (r := other.get_run(run_id)).state.is_final and r,
            what="the worker's run of the flow to end",
        )
    finally:
        worker.stop()
    assert pause.run_id == run_id
    assert (done.state, done.result) == (RunState.COMPLETED, "42")


#: set once the flow below is running, awaiting something that never comes
_running_on = threading.Event()


@flow(name="loop-closed-while-running")
async def loop_closed_while_running() -> int:
    _running_on.set()
    await asyncio.Event().wait()
    return 1


@pytest.mark.parametrize("collected", [False, True], ids=["left", "collected"])
def test_a_flow_whose_loop_is_closed_while_it_runs_crashes_and_says_why(
    engine: Engine, collected: bool
) -> None:
    """The loop was closed while the flow ran (not at a pause): the flow never runs on,
    yet its run read "Running" for good, as its process lives on and no worker takes it
    over. Now it is crashed, naming the cause, whether the flow left behind was collected
    already or not."""
    _running_on.clear()
    loop = asyncio.new_event_loop()
    try:
        running = loop.create_task(loop_closed_while_running())
        loop.run_until_complete(asyncio.to_thread(_running_on.wait, 10))
        assert not running.done()
    finally:
        loop.close()
    (run,) = engine.list_runs(flow_name="loop-closed-while-running")
    assert run.state is RunState.RUNNING
    if collected:
        del running
        gc.collect()
    crashed = wait_for(
        lambda: (r := engine.get_run(run.id)).state is RunState.CRASHED and r,
        what="the run whose loop closed to crash",
    )
    assert crashed.state_message == (
        "the event loop the flow ran in was closed before the flow ended; it cannot run on"
    )


@flow(name="cancelled-while-starting")
async def cancelled_while_starting() -> str:
    return "ran"


def test_a_flow_cancelled_while_its_run_is_stored_ends_that_run(
    engine: Engine, database_url: str
) -> None:
    """Cancelled by whoever awaited it while its run was still being written (a
    ``wait_for`` that ran out at once, the database busy), the run was stored all the same
    and read "running" for good, though nothing ran it."""
    cancelled = threading.Event()

    async def cancel_as_it_starts() -> bool:
        task = asyncio.ensure_future(cancelled_while_starting())
        await asyncio.sleep(0)  # the task hands its run's start to a store thread
        task.cancel()
        for _ in range(2):  # the task takes the cancellation in
            await asyncio.sleep(0)
        cancelled.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        return True

    with writes_held(database_url, table="runs"):
        thread, box = start(lambda: asyncio.run(cancel_as_it_starts()))
        assert cancelled.wait(30)
    thread.join(30)
    assert box == {"result": True}
    (run,) = engine.list_runs(flow_name="cancelled-while-starting")
    assert run.state is RunState.CRASHED, run
