"""Flows that go on after their engine was closed under them: each stops at once, naming
its run, which stays as stored for a worker to run again."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest

from signoff.engine import (
    Engine,
    RunState,
    RunTakenOver,
    Worker,
    asuspend_flow_run,
    flow,
    get_run_logger,
    suspend_flow_run,
    task,
)
from tests.support.running import start, waiting
from tests.support.waiting import wait_for

#: holds the flows below until their engine is closed
_after_close = threading.Event()


def _held() -> None:
    _after_close.wait(30)


@flow(name="suspends-after-close")
def suspends_after_close() -> int:
    _held()
    return suspend_flow_run(int, timeout=60) + 1


@flow(name="asuspends-after-close")
async def asuspends_after_close() -> int:
    await asyncio.to_thread(_held)
    return await asuspend_flow_run(int, timeout=60) + 1


def _run_again_on_a_worker(engine: Engine, run_id: str, answer: int | None = None) -> Any:
    """The run, once a worker of ``engine`` ran its flow again (answering its suspend)."""
    worker = Worker(engine)
    worker.start()
    try:
        if answer is not None:
            pause = waiting(engine)
            assert pause.run_id == run_id
            engine.resume(run_id, {"value": answer}, "U0ALICE")
        return wait_for(
            lambda: (r := engine.get_run(run_id)).state.is_final and r,
            what="a worker's run of the flow to end",
        )
    finally:
        worker.stop()


@pytest.mark.parametrize(
    ("name", "call"),
    [
        ("suspends-after-close", suspends_after_close),
        ("asuspends-after-close", lambda: asyncio.run(asuspends_after_close())),
    ],
)
def test_a_flow_that_suspends_after_its_engine_closed_stops_as_one_that_pauses(
    engine: Engine, make_engine: Callable[..., Engine], name: str, call: Callable[[], int]
) -> None:
    """A sync flow stored its suspension through the store close had released (opening
    connections again that nothing closes); an async one raised the store threads' "cannot
    schedule new futures after shutdown". Now both stop at once as a pause asked after close
    does, naming the run, which stays running for a worker; the worker's run suspends."""
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
    assert other.waiting_pause(run_id) is None
    done = _run_again_on_a_worker(other, run_id, answer=41)
    assert (done.state, done.result) == (RunState.COMPLETED, "42")


@task
async def add_one(value: int) -> int:
    return value + 1


@flow(name="called-after-close")
async def called_after_close() -> int:
    return 2


@flow(name="records-a-task-after-close")
async def records_a_task_after_close() -> int:
    await asyncio.to_thread(_held)
    return await add_one(1)


@flow(name="logs-and-returns-after-close")
async def logs_and_returns_after_close() -> int:
    await asyncio.to_thread(_held)
    get_run_logger().info("still here")
    return 2


@flow(name="calls-a-flow-after-close")
async def calls_a_flow_after_close() -> int:
    await asyncio.to_thread(_held)
    return await called_after_close()


@flow(name="fails-after-close")
async def fails_after_close() -> int:
    await asyncio.to_thread(_held)
    if _after_close.is_set() and not _rerun.is_set():
        raise ValueError("failed after close")
    return 2


#: set once the test runs the flows again on a worker
_rerun = threading.Event()


@pytest.mark.parametrize(
    "fn",
    [
        records_a_task_after_close,
        logs_and_returns_after_close,
        calls_a_flow_after_close,
        fails_after_close,
    ],
    ids=["task", "log-and-return", "nested-flow", "raise"],
)
def test_an_async_flow_that_goes_on_after_its_engine_closed_stops_and_says_why(
    engine: Engine, make_engine: Callable[..., Engine], fn: Callable[[], Any]
) -> None:
    """Its task's record, its called flow's start, its end: each raised the store threads'
    "cannot schedule new futures after shutdown", which the flow's ``except Exception``
    could take for its own error, and which said nothing of why. Now the flow stops at its
    first store call, naming its run, which stays running for a worker to run again. (The
    worker's run of the flow that calls another started the called run on the process's
    engine, the closed one, rather than the worker's, and failed.)"""
    _after_close.clear()
    _rerun.clear()
    thread, box = start(lambda: asyncio.run(fn()))
    name = fn.name  # type: ignore[attr-defined]
    run_id = wait_for(lambda: (runs := engine.list_runs(flow_name=name)) and runs[0].id)
    engine.close()
    _after_close.set()
    thread.join(10)
    assert isinstance(box.get("error"), RunTakenOver), box
    assert str(box["error"]) == (
        f"run {run_id} stopped here: its flow went on after this process's engine was "
        "closed, and could store nothing more; a worker runs the flow again, as for a process "
        "that stopped"
    )
    other = make_engine()
    assert other.get_run(run_id).state is RunState.RUNNING
    _rerun.set()
    done = _run_again_on_a_worker(other, run_id)
    assert (done.state, done.result, done.state_message) == (RunState.COMPLETED, "2", None)
