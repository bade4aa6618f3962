"""Suspending another run by id (``suspend_flow_run(flow_run_id=...)``) where it differs
from a task boundary: a run that ends first, a second request, a nested flow's run. Each
is as Prefect behaves, or refused where Prefect refuses."""

from __future__ import annotations

import asyncio
import threading

import pytest

from signoff.engine import (
    CannotSuspend,
    Engine,
    RunState,
    RunSuspended,
    Worker,
    asuspend_flow_run,
    flow,
    resume_flow_run,
    suspend_flow_run,
    task,
)
from tests.engine.test_prefect_compat import Go, final, step
from tests.support.running import start
from tests.support.waiting import wait_for

FINISH = threading.Event()
FINISHED: list[str] = []


@flow(name="ends-soon")
def ends_soon(fail: bool) -> str:
    FINISHED.append("body")
    FINISH.wait(10)
    if fail:
        raise ValueError("broke after the request")
    return "finished"


@flow(name="ends-soon-async")
async def ends_soon_async(fail: bool) -> str:
    FINISHED.append("body")
    await asyncio.to_thread(FINISH.wait, 10)
    if fail:
        raise ValueError("broke after the request")
    return "finished"


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("fail", [False, True], ids=["returns", "raises"])
def test_a_run_asked_to_suspend_that_ends_first_suspends_at_its_end(
    engine: Engine, worker: Worker, fail: bool, is_async: bool
) -> None:
    """As Prefect's flow return and exception are suspension boundaries: the request is not
    dropped by a run that reaches no task call or pause before it ends."""
    FINISH.clear()
    FINISHED.clear()
    call = (lambda: asyncio.run(ends_soon_async(fail))) if is_async else (lambda: ends_soon(fail))
    thread, box = start(call)
    name = "ends-soon-async" if is_async else "ends-soon"
    run = wait_for(lambda: FINISHED and engine.list_runs(flow_name=name)[0])
    suspend_flow_run(wait_for_input=Go, flow_run_id=run.id, key="hold")
    wait_for(lambda: engine.suspend_requests(run.id), what="the request to reach the engine")
    FINISH.set()
    thread.join(10)
    assert isinstance(box.get("error"), RunSuspended), box
    assert engine.get_run(run.id).state is RunState.SUSPENDED
    pause = engine.waiting_pause(run.id)
    assert (pause.key, pause.suspend, pause.title) == ("hold", True, "Go")

    resume_flow_run(run.id, {"go": True}, responder="alice")
    done = final(engine, run.id)
    assert FINISHED == ["body", "body"]  # run again from the start, as a suspend is
    if fail:
        assert (done.state, done.state_message) == (
            RunState.FAILED,
            "ValueError: broke after the request",
        )
    else:
        assert (done.state, done.result) == (RunState.COMPLETED, "'finished'")


@task
def open_lock() -> threading.Lock:
    return threading.Lock()


@flow(name="ends-holding-a-lock")
def ends_holding_a_lock() -> str:
    open_lock()  # a result no re-run could get back
    FINISHED.append("body")
    FINISH.wait(10)
    return "finished"


def test_a_run_that_cannot_be_suspended_at_its_end_completes_as_it_would_have(
    engine: Engine,
) -> None:
    FINISH.clear()
    FINISHED.clear()
    thread, box = start(ends_holding_a_lock)
    run = wait_for(lambda: FINISHED and engine.list_runs(flow_name="ends-holding-a-lock")[0])
    suspend_flow_run(flow_run_id=run.id)
    wait_for(lambda: engine.suspend_requests(run.id), what="the request to reach the engine")
    FINISH.set()
    thread.join(10)
    assert box == {"result": "finished"}
    assert engine.get_run(run.id).state is RunState.COMPLETED


def test_a_second_request_to_suspend_a_run_is_refused_and_it_is_asked_once(
    engine: Engine, worker: Worker
) -> None:
    """As in Prefect, where the first request suspends the run and the next is refused:
    two people asking (or one asking twice) must not make the run stop twice."""
    FINISH.clear()
    FINISHED.clear()
    thread, box = start(lambda: ends_soon(False))
    run = wait_for(lambda: FINISHED and engine.list_runs(flow_name="ends-soon")[0])
    suspend_flow_run(flow_run_id=run.id, key="first")
    for again in ("second", None):
        with pytest.raises(ValueError) as refused:
            suspend_flow_run(flow_run_id=run.id, key=again)
        assert str(refused.value) == (
            f"run {run.id} already has a request to suspend with key 'first', not met yet: "
            "the run suspends once, at its next task call, flow call or pause (or its end)"
        )
    wait_for(lambda: engine.suspend_requests(run.id), what="the request to reach the engine")
    FINISH.set()
    thread.join(10)
    assert isinstance(box.get("error"), RunSuspended)
    resume_flow_run(run.id)
    done = final(engine, run.id)
    assert (done.state, FINISHED) == (RunState.COMPLETED, ["body", "body"])
    assert [p.key for p in engine.detail(run.id).pauses] == ["first"]


NESTED_GATE = threading.Event()


@flow(name="nested-worker")
def nested_worker() -> str:
    NESTED_GATE.wait(10)
    return step("nested")


@flow(name="calls-nested-worker")
def calls_nested_worker() -> str:
    return nested_worker()


def test_suspend_by_id_of_a_nested_run_is_refused_naming_the_outer_run(engine: Engine) -> None:
    """Prefect refuses it ("Cannot suspend subflows."); accepted, the request would be
    dropped unseen at the nested run's next task."""
    NESTED_GATE.clear()
    thread, box = start(calls_nested_worker)
    child = wait_for(lambda: engine.list_runs(flow_name="nested-worker")[:1])[0]
    parent = engine.list_runs(flow_name="calls-nested-worker")[0]
    with pytest.raises(CannotSuspend) as refused:
        suspend_flow_run(wait_for_input=Go, flow_run_id=child.id)
    assert isinstance(refused.value, RuntimeError)
    assert str(refused.value) == (
        f"run {child.id} cannot be suspended: its flow 'nested-worker' was called from the "
        f"flow of run {parent.id}, and only that outermost run can be run again from the "
        f"start; suspend run {parent.id}"
    )
    with pytest.raises(CannotSuspend):
        asyncio.run(asuspend_flow_run(flow_run_id=child.id))
    assert engine.suspend_requests(child.id) == set()
    NESTED_GATE.set()
    thread.join(10)
    assert box == {"result": "nested"}


CALLED: list[str] = []


@flow(name="called-after-request")
def called_after_request() -> str:
    CALLED.append("child")
    return "child done"


@flow(name="called-after-request-async")
async def called_after_request_async() -> str:
    CALLED.append("child")
    return "child done"


@flow(name="calls-a-flow-after-request")
def calls_a_flow_after_request() -> str:
    CALLED.append("parent")
    FINISH.wait(10)
    return called_after_request()


@flow(name="calls-a-flow-after-request-async")
async def calls_a_flow_after_request_async() -> str:
    CALLED.append("parent")
    await asyncio.to_thread(FINISH.wait, 10)
    return await called_after_request_async()


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_a_run_asked_to_suspend_stops_before_the_flow_it_calls_next(
    engine: Engine, worker: Worker, is_async: bool
) -> None:
    """A flow call is a suspension boundary, as in Prefect
    (test_child_flow_stops_at_suspension_boundary): the called flow does not run first."""
    FINISH.clear()
    CALLED.clear()
    outer = calls_a_flow_after_request_async if is_async else calls_a_flow_after_request
    name = "calls-a-flow-after-request" + ("-async" if is_async else "")
    thread, box = start((lambda: asyncio.run(outer())) if is_async else outer)
    run = wait_for(lambda: CALLED and engine.list_runs(flow_name=name)[0])
    suspend_flow_run(flow_run_id=run.id, key="hold")
    wait_for(lambda: engine.suspend_requests(run.id), what="the request to reach the engine")
    FINISH.set()
    thread.join(10)
    assert isinstance(box.get("error"), RunSuspended), box
    assert CALLED == ["parent"]  # the called flow never started
    assert [r.flow_name for r in engine.list_runs() if r.flow_name.startswith("called-")] == []

    resume_flow_run(run.id)
    done = final(engine, run.id)
    assert (done.state, done.result) == (RunState.COMPLETED, "'child done'")
    assert CALLED == ["parent", "parent", "child"]


@flow(name="decided-by-two", confirm=True)
def decided_by_two() -> str:
    FINISHED.append("body")
    FINISH.wait(10)
    return step("decided")


def test_a_suspend_asked_by_id_is_decided_as_its_options_say(
    engine: Engine, worker: Worker
) -> None:
    """quorum, notify, escalation and confirm were dropped from a suspend asked by id (and
    the flow's own confirm too): one answer from anyone resumed it."""
    FINISH.clear()
    FINISHED.clear()
    thread, box = start(decided_by_two)
    run = wait_for(lambda: FINISHED and engine.list_runs(flow_name="decided-by-two")[0])
    with pytest.raises(ValueError, match="^veto only applies to a pause with a quorum$"):
        suspend_flow_run(Go, flow_run_id=run.id, veto="go")
    suspend_flow_run(
        Go,
        flow_run_id=run.id,
        key="hold",
        quorum=2,
        notify="dm",
        escalate_after=600,
        escalate_to=["S0ONCALL"],
    )
    wait_for(lambda: engine.suspend_requests(run.id), what="the request to reach the engine")
    FINISH.set()
    thread.join(10)
    assert isinstance(box.get("error"), RunSuspended), box
    pause = engine.waiting_pause(run.id)
    assert (pause.key, pause.quorum, pause.notify, pause.confirm, pause.escalate_to) == (
        "hold",
        2,
        "dm",
        True,  # the flow's
        ("S0ONCALL",),
    )
    assert pause.escalate_at is not None
    resume_flow_run(run.id, {"go": True}, responder="U0ALICE")
    assert engine.get_run(run.id).state is RunState.SUSPENDED  # one of two
    resume_flow_run(run.id, {"go": True}, responder="U0BOB")
    done = final(engine, run.id)
    assert (done.state, done.result) == (RunState.COMPLETED, "'decided'")
    assert engine.get_pause(run.id, "hold").answered_by == ("U0ALICE", "U0BOB")


def test_a_run_in_this_process_that_ends_right_after_the_request_suspends(
    engine: Engine,
) -> None:
    """Once suspend_flow_run(flow_run_id=...) has returned, a run of this process does not
    complete before the request's event comes back to it (it did, and the request was
    left unmet: the caller had been told nothing of it)."""
    FINISH.clear()
    FINISHED.clear()
    thread, box = start(lambda: ends_soon(False))
    run = wait_for(lambda: FINISHED and engine.list_runs(flow_name="ends-soon")[0])
    suspend_flow_run(flow_run_id=run.id, key="now")
    FINISH.set()  # at once: no waiting for the engine to hear of it
    thread.join(10)
    assert isinstance(box.get("error"), RunSuspended), box
    assert engine.get_run(run.id).state is RunState.SUSPENDED
    assert engine.waiting_pause(run.id).key == "now"
