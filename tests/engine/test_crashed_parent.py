"""The runs of flows a crashed run's flow called end with it: cancelled, as when it is
cancelled, rather than left waiting for input nothing can act on."""

from __future__ import annotations

import asyncio
import gc

import pytest

from signoff.engine import Engine, RunNotWaiting, RunState, flow, pause_flow_run
from tests.support.running import waiting
from tests.support.waiting import wait_for


@flow(name="asks-under-a-parent")
async def asks_under_a_parent() -> int:
    return await pause_flow_run(int, timeout=60)


@flow(name="parent-whose-loop-closes")
async def parent_whose_loop_closes() -> int:
    return await asks_under_a_parent() + 1


def test_a_flow_called_by_a_run_that_crashes_as_its_loop_closes_is_cancelled(
    engine: Engine,
) -> None:
    """The loop was closed while the outer flow awaited the flow it called, which waited
    for input: the outer run crashed, but the called one read "suspended" for good, and
    its question took an answer that ran nothing (no worker runs a called flow alone)."""
    loop = asyncio.new_event_loop()
    try:
        running = loop.create_task(parent_whose_loop_closes())
        pause = loop.run_until_complete(asyncio.to_thread(waiting, engine, "asks-under-a-parent"))
        assert not running.done()
    finally:
        loop.close()
    (parent,) = engine.list_runs(flow_name="parent-whose-loop-closes")
    wait_for(
        lambda: engine.get_run(parent.id).state is RunState.CRASHED,
        what="the outer run to crash",
    )
    child = wait_for(
        lambda: (r := engine.get_run(pause.run_id)).state.is_final and r,
        what="the called run to end",
    )
    assert (child.state, child.state_message) == (
        RunState.CANCELLED,
        f"its outer run {parent.id} crashed",
    )
    with pytest.raises(RunNotWaiting) as refused:
        engine.resume(pause.run_id, {"value": 41}, "U0ALICE")
    assert str(refused.value) == (f"run {pause.run_id} is not waiting for input (it is cancelled)")
    assert engine.waiting_pause(pause.run_id) is None
    # The flows left on the closed loop are collected here, where asyncio's "Task was
    # destroyed but it is pending!" belongs, not in whichever test the collector next ran.
    del running
    gc.collect()
