"""Prefect's own pause and suspend tests (tests/test_flow_engine.py, TestPauseFlowRun and
TestSuspendFlowRun), ported where no other engine test already holds the same case. Each
test names the Prefect tests it stands for; where Signoff differs on purpose it says why
(prefect-semantics.md §4.3, §6)."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import Callable
from typing import Any

import pytest

from signoff.engine import (
    Engine,
    FlowPauseTimeout,
    InputInvalid,
    PauseStatus,
    RunNotWaiting,
    RunState,
    RunSuspended,
    Worker,
    flow,
    get_engine,
    pause_flow_run,
    resume_flow_run,
    suspend_flow_run,
    task,
)
from signoff.engine.input import RunInput
from tests.support.running import start
from tests.support.waiting import wait_for

CALLED: list[str] = []


@task
def sync_step() -> int:
    CALLED.append("step")
    return 42


@task
async def async_step() -> int:
    CALLED.append("step")
    return 42


@pytest.fixture(autouse=True)
def clear_calls() -> None:
    CALLED.clear()


def paused_run(engine: Engine, flow_name: str) -> str:
    """The id of the run of ``flow_name`` once it reads as paused (its state alone)."""
    return wait_for(
        lambda: (
            (runs := engine.list_runs(flow_name=flow_name, limit=1))
            and runs[0].state is RunState.PAUSED
            and runs[0].id
        ),
        what=f"a run of {flow_name} to pause",
    )


@flow(name="sync-unanswered")
def sync_unanswered() -> None:
    sync_step()
    sync_step()
    pause_flow_run(timeout=0.1)
    sync_step()


@flow(name="async-unanswered")
async def async_unanswered() -> None:
    await async_step()
    await async_step()
    await pause_flow_run(timeout=0.1)
    await async_step()


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (sync_unanswered, "sync-unanswered"),
        (lambda: asyncio.run(async_unanswered()), "async-unanswered"),
    ],
    ids=["sync", "async"],
)
def test_a_pause_nobody_answers_stops_the_flow_where_it_waits(
    engine: Engine, call: Callable[[], Any], name: str
) -> None:
    """Prefect's test_paused_flows_fail_if_not_resumed and
    test_paused_flows_block_execution_in_sync_flows / _in_async_flows: FlowPauseTimeout
    comes out of the flow's call, and only the two tasks before the pause ran."""
    with pytest.raises(FlowPauseTimeout):
        call()
    run = engine.list_runs(flow_name=name)[0]
    assert (run.state, run.state_name) == (RunState.FAILED, "TimedOut")
    assert CALLED == ["step", "step"]
    assert len(engine.detail(run.id).tasks) == 2


@flow(name="pauses-twice-on-one-key")
async def pauses_twice_on_one_key() -> None:
    await async_step()
    await async_step()
    await pause_flow_run(timeout=10, poll_interval=2, key="do-not-repeat")
    await async_step()
    await pause_flow_run(timeout=10, poll_interval=2, key="do-not-repeat")
    await async_step()
    await async_step()


def test_one_resume_without_input_lets_an_async_flow_past_both_pauses_on_its_key(
    engine: Engine,
) -> None:
    """Prefect's test_paused_flows_can_be_resumed: the second pause on the answered key is
    passed without asking, and all five tasks run (test_pause.py has the sync one with
    input)."""
    thread, box = start(lambda: asyncio.run(pauses_twice_on_one_key()))
    run_id = paused_run(engine, "pauses-twice-on-one-key")
    resume_flow_run(run_id)
    thread.join(10)
    assert box == {"result": None}
    assert len(engine.detail(run_id).tasks) == 5 and CALLED == ["step"] * 5
    assert [p.key for p in engine.detail(run_id).pauses] == ["do-not-repeat"]
    assert engine.get_run(run_id).state is RunState.COMPLETED


class FlowInput(RunInput):
    x: int


@flow(name="asks-for-x")
async def asks_for_x() -> FlowInput:
    return await pause_flow_run(timeout=10, poll_interval=2, wait_for_input=FlowInput)


def test_a_run_that_reads_paused_can_be_answered_at_once(engine: Engine) -> None:
    """Prefect's test_paused_flows_can_receive_input. Its resumer must wait for the run to
    read Paused and then again for the schema to be saved: Prefect stores the schema after
    the state, and a resume between the two is refused ("Run input schema not found.",
    §6.7). Here the pause and its schema are stored with the state, so the answer may
    follow the state at once."""
    thread, box = start(lambda: asyncio.run(asks_for_x()))
    run_id = paused_run(engine, "asks-for-x")
    resume_flow_run(run_id, {"x": 42})
    thread.join(10)
    assert box == {"result": FlowInput(x=42)}
    (pause,) = engine.detail(run_id).pauses
    assert pause.key == "1" and pause.schema is not None
    assert set(pause.schema["properties"]) == {"x"}


@task
async def doesnt_pause() -> int:
    return 42


@task
async def runs_beside_the_pause() -> str:
    CALLED.append("beside")
    return "ran"


@flow(name="pause-left-in-the-background")
async def pause_left_in_the_background() -> str:
    await doesnt_pause()
    # not awaited: the flow goes on beside its pause
    background = asyncio.create_task(pause_flow_run(timeout=20, poll_interval=100))
    await asyncio.to_thread(paused_run, get_engine(), "pause-left-in-the-background")
    result = await runs_beside_the_pause()
    assert not background.done()
    return result


def test_a_flow_that_returns_beside_a_waiting_pause_completes_and_closes_it(
    engine: Engine,
) -> None:
    """Prefect's test_paused_task_polling (xfail there: it would have the task wait until
    the flow is resumed, but Prefect's client runs it, as Signoff does: a pause waits in
    the coroutine that awaits it, and the flow's other coroutines go on). The flow then
    returned with its pause still waiting: the run stayed paused (or running) for good,
    its question open, where Prefect's completes. It completes with what the flow
    returned, and nobody can answer the question it left."""
    assert asyncio.run(pause_left_in_the_background()) == "ran"
    (run,) = engine.list_runs(flow_name="pause-left-in-the-background")
    assert (run.state, run.result) == (RunState.COMPLETED, "'ran'")
    assert CALLED == ["beside"]
    assert engine.waiting_pause(run.id) is None
    assert [p.status for p in engine.detail(run.id).pauses] == [PauseStatus.CANCELLED]
    with pytest.raises(RunNotWaiting, match="it is completed"):
        resume_flow_run(run.id)


LEFT_WAITING: list[threading.Thread] = []


@flow(name="sync-pause-left-in-a-thread")
def sync_pause_left_in_a_thread(fail: bool) -> str:
    context = contextvars.copy_context()

    def ask() -> None:
        with contextlib.suppress(BaseException):  # unwound as a cancelled run's pause is
            pause_flow_run(int, timeout=60)

    LEFT_WAITING.append(threading.Thread(target=context.run, args=(ask,), daemon=True))
    LEFT_WAITING[-1].start()
    paused_run(get_engine(), "sync-pause-left-in-a-thread")
    if fail:
        raise ValueError("broke beside its pause")
    return "returned"


@pytest.mark.parametrize("fail", [False, True], ids=["returns", "raises"])
def test_a_sync_flow_that_ends_beside_a_waiting_pause_ends_it(engine: Engine, fail: bool) -> None:
    """As above, for a pause asked on a thread the sync flow started and did not join; and
    for a flow that fails there, whose pause was closed but the thread kept waiting on it
    until its deadline."""
    LEFT_WAITING.clear()
    if fail:
        with pytest.raises(ValueError, match="broke beside its pause"):
            sync_pause_left_in_a_thread(fail)
    else:
        assert sync_pause_left_in_a_thread(fail) == "returned"
    (run,) = engine.list_runs(flow_name="sync-pause-left-in-a-thread")
    ended = (RunState.FAILED, None) if fail else (RunState.COMPLETED, "'returned'")
    assert (run.state, run.result) == ended
    assert engine.waiting_pause(run.id) is None
    # The thread stops waiting at once, not when its pause would have timed out.
    LEFT_WAITING[-1].join(10)
    assert not LEFT_WAITING[-1].is_alive()


AFTER_SUSPEND: list[str] = []


@flow(name="suspends-for-input")
async def suspends_for_input(kind: str) -> object:
    wanted: type[Any] = FlowInput if kind == "model" else int
    answer = await suspend_flow_run(wait_for_input=wanted)
    AFTER_SUSPEND.append(kind)
    return answer


@pytest.mark.parametrize(
    ("kind", "answer", "result"),
    [("model", {"x": 42}, "FlowInput(x=42)"), ("int", {"value": 42}, "42")],
)
def test_an_async_flow_suspends_at_once_without_a_deployment_and_gets_its_input_rerun(
    engine: Engine, worker: Worker, kind: str, answer: dict[str, int], result: str
) -> None:
    """Prefect's test_suspended_flow_runs_do_not_block_execution,
    test_suspended_flow_run_has_correct_state and test_suspend_can_receive_input /
    _automatic_input. Prefect refuses to suspend a run without a deployment ("Cannot
    suspend flows without a deployment.", test_suspending_flow_run_without_deployment_fails);
    any run can be suspended here, since a worker runs it again by its flow's name."""
    AFTER_SUSPEND.clear()
    with pytest.raises(RunSuspended) as suspended:
        asyncio.run(suspends_for_input(kind))
    assert AFTER_SUSPEND == []  # nothing after the suspend ran
    run_id = suspended.value.run_id
    run = engine.get_run(run_id)
    assert (run.state, run.state_name) == (RunState.SUSPENDED, "Suspended")
    pause = engine.waiting_pause(run_id)
    assert pause.suspend and pause.schema is not None

    resume_flow_run(run_id, answer)
    done = wait_for(lambda: (r := engine.get_run(run_id)).state.is_final and r)
    assert (done.state, done.result) == (RunState.COMPLETED, result)
    assert AFTER_SUSPEND == [kind]  # the re-run passed its answered suspend


@flow(name="asks-for-text")
def asks_for_text() -> str:
    return pause_flow_run(str, timeout=60)


def test_a_hydrated_resume_value_is_refused_as_not_the_plain_value(engine: Engine) -> None:
    """Prefect's server tests test_resume_flow_run_waiting_for_input_with_json_hydrated_input
    and _with_jinja_hydrated_input: Prefect's /resume hydrates {"__prefect_kind": ...}
    values (JSON text, Jinja, workspace variables) before its schema check. Signoff takes
    the plain value only (README, "Not carried over"): a hydrated one is the object it is,
    refused for a text field, and the run still waits for the plain answer."""
    thread, box = start(asks_for_text)
    run_id = paused_run(engine, "asks-for-text")
    for hydrated in (
        {"__prefect_kind": "json", "value": '"3"'},
        {"__prefect_kind": "jinja", "template": "{{ 2 + 2 }}"},
    ):
        with pytest.raises(InputInvalid) as refused:
            resume_flow_run(run_id, {"value": hydrated})
        assert set(refused.value.errors) == {"value"}
    pause = engine.waiting_pause(run_id)
    assert pause is not None and pause.response is None
    resume_flow_run(run_id, {"value": "3"})
    thread.join(10)
    assert box == {"result": "3"}


@flow(name="asks-under-a-bad-key")
def asks_under_a_bad_key() -> int:
    return pause_flow_run(int, timeout=60, key="my key")


def test_a_key_no_pause_can_have_is_refused_before_the_run_reads_paused(
    engine: Engine,
) -> None:
    """Prefect [exp] (§1.6, §6.6): pause_flow_run(int, key="My_Key") was accepted as a
    Paused state, then the schema's save refused the key, so the run stayed Paused on the
    server while the flow went on. Here the key is refused at the call: nothing is
    stored, and the run fails with the reason, never reading as waiting."""
    with pytest.raises(ValueError, match="pause key 'my key'"):
        asks_under_a_bad_key()
    (run,) = engine.list_runs(flow_name="asks-under-a-bad-key")
    assert run.state is RunState.FAILED
    assert [h.name for h in engine.detail(run.id).history] == ["Running", "Failed"]
    assert engine.detail(run.id).pauses == ()
