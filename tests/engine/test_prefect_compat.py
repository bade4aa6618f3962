"""Code written for Prefect's interactive workflows runs unchanged apart from imports."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import uuid
from datetime import timedelta

import pydantic
import pytest

from signoff.engine import (
    CannotSuspend,
    Engine,
    EngineError,
    FlowPauseTimeout,
    InputInvalid,
    MissingContext,
    NotPausedError,
    PauseExpired,
    PauseStatus,
    RunCancelled,
    RunNotWaiting,
    RunState,
    RunSuspended,
    Worker,
    apause_flow_run,
    aresume_flow_run,
    asuspend_flow_run,
    cancel_flow_run,
    flow,
    pause_flow_run,
    resume_flow_run,
    suspend_flow_run,
    task,
)
from signoff.engine.input import RunInput
from tests.engine.test_pause import start, waiting
from tests.support.waiting import wait_for


class Go(RunInput):
    go: bool


def final(engine: Engine, run_id: str):
    return wait_for(
        lambda: engine.get_run(run_id).state.is_final and engine.get_run(run_id),
        what="the run to finish",
    )


def test_await_resume_flow_run_in_async_code_resumes_once(engine: Engine) -> None:
    @flow
    def gated():
        return pause_flow_run(wait_for_input=Go).go

    thread, box = start(gated)
    pause = waiting(engine, "gated")

    async def answer():
        # Prefect's resume_flow_run returns an awaitable in async code.
        return await resume_flow_run(pause.run_id, {"go": True}, responder="alice")

    answered = asyncio.run(answer())
    thread.join(10)
    assert answered.responder == "alice" and answered.response == {"go": True}
    assert box == {"result": True}
    assert engine.get_pause(pause.run_id, pause.key).status is PauseStatus.ACCEPTED


def test_async_twins_pause_and_resume(engine: Engine) -> None:
    @flow
    async def async_gated():
        return await apause_flow_run(Go, timeout=60, poll_interval=10)

    async def main():
        running = asyncio.create_task(async_gated())
        pause = await asyncio.to_thread(waiting, engine, "async-gated")
        answered = await aresume_flow_run(pause.run_id, {"go": False}, responder="bob")
        return answered, await running

    answered, result = asyncio.run(main())
    assert answered.responder == "bob"
    assert result == Go(go=False)


def test_apause_in_a_sync_flow_and_positional_poll_interval(engine: Engine) -> None:
    @flow
    def sync_with_async_pause():
        first = pause_flow_run(int, 60, 5)  # Prefect's order: timeout, poll_interval
        second = asyncio.run(apause_flow_run(int, timeout=60, key="second"))
        return first + second

    thread, box = start(sync_with_async_pause)
    pause = waiting(engine, "sync-with-async-pause")
    assert pause.key == "1"
    resume_flow_run(pause.run_id, {"value": 2})
    second = wait_for(lambda: (p := engine.waiting_pause(pause.run_id)) and p.key == "second" and p)
    resume_flow_run(second.run_id, {"value": 3})
    thread.join(10)
    assert box == {"result": 5}


def test_run_ids_as_prefect_passes_them_flow_run_id_and_uuids(engine: Engine) -> None:
    @flow
    def twice():
        asked = [pause_flow_run(int, timeout=60) for _ in range(3)]
        return sum(asked)

    thread, box = start(twice)
    pause = waiting(engine, "twice")
    as_uuid = uuid.UUID(pause.run_id)
    assert engine.get_run(as_uuid).id == engine.get_run(str(as_uuid)).id == pause.run_id
    # Prefect's own call: resume_flow_run(flow_run_id: UUID, run_input=...)
    first = resume_flow_run(flow_run_id=as_uuid, run_input={"value": 2})
    assert (first.key, first.status) == ("1", PauseStatus.ACCEPTED)
    wait_for(lambda: (p := engine.waiting_pause(pause.run_id)) and p.key == "2")
    asyncio.run(aresume_flow_run(flow_run_id=str(as_uuid), run_input={"value": 3}))
    wait_for(lambda: (p := engine.waiting_pause(pause.run_id)) and p.key == "3")
    # The engine's own method takes them too (the bot and the CLI answer through it).
    third = engine.resume(as_uuid, {"value": 4}, "alice")
    assert (third.key, third.status) == ("3", PauseStatus.ACCEPTED)
    thread.join(10)
    assert box == {"result": 9}
    with pytest.raises(TypeError, match="a run id is text or a uuid.UUID, not int"):
        resume_flow_run(42, {"value": 1})  # type: ignore[arg-type]

    @flow
    def held():
        return pause_flow_run(int, timeout=60)

    thread, box = start(held)
    other = waiting(engine, "held")
    assert cancel_flow_run(flow_run_id=uuid.UUID(other.run_id)).state is RunState.CANCELLED
    thread.join(10)
    assert isinstance(box.get("error"), RunCancelled)
    with pytest.raises(CannotSuspend, match=f"^run {other.run_id} cannot be suspended: it is "):
        suspend_flow_run(flow_run_id=uuid.UUID(other.run_id))


def test_resume_errors_are_the_exceptions_prefect_raises(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    @flow
    def later():
        return suspend_flow_run(Go, timeout=60)

    with pytest.raises(RunSuspended) as suspended:
        later()
    run_id = suspended.value.run_id
    # Prefect: input its schema refuses is RuntimeError("Cannot resume this run: ...").
    with pytest.raises(RuntimeError, match="go: must be true or false") as refused:
        resume_flow_run(run_id, {"go": "yes"})
    assert isinstance(refused.value, InputInvalid)
    deadline = engine.waiting_pause(run_id).deadline
    monkeypatch.setattr(engine.store, "clock", lambda: deadline + timedelta(seconds=1))
    # Prefect: a resume after the pause's deadline raises FlowPauseTimeout.
    with pytest.raises(FlowPauseTimeout, match="stopped waiting for input '1'") as late:
        resume_flow_run(run_id, {"go": True})
    assert isinstance(late.value, PauseExpired)
    assert (late.value.run_id, late.value.key) == (run_id, "1")

    @flow
    def answers_late():
        resume_flow_run(run_id, {"go": True})

    with pytest.raises(PauseExpired):
        answers_late()
    failed = engine.list_runs(flow_name="answers-late")[0]
    # None of this flow's own pauses timed out: it failed as on any other error.
    assert (failed.state, failed.state_name) == (RunState.FAILED, "Failed")
    assert failed.state_message.startswith(f"PauseExpired: run {run_id} stopped waiting")
    # Prefect: a run that is not paused raises NotPausedError.
    monkeypatch.undo()
    engine.cancel(run_id)
    with pytest.raises(NotPausedError, match=f"run {run_id} is not waiting for input"):
        resume_flow_run(run_id, {"go": True})


def test_default_timeouts_are_prefects_an_hour_to_pause_none_to_suspend(engine: Engine) -> None:
    @flow
    def asks_with_defaults() -> bool:
        return pause_flow_run(Go).go

    thread, box = start(asks_with_defaults)
    paused = waiting(engine)
    assert paused.deadline - paused.created_at == timedelta(seconds=3600)
    resume_flow_run(paused.run_id, {"go": True})
    thread.join(10)
    assert box == {"result": True}

    @flow
    def suspends_with_defaults() -> bool:
        return suspend_flow_run(Go).go

    with pytest.raises(RunSuspended) as suspended:
        suspends_with_defaults()
    pause = engine.waiting_pause(suspended.value.run_id)
    assert pause.suspend and pause.deadline is None  # waits until someone answers


def test_a_named_pause_still_moves_the_counter_for_the_unnamed_ones_after_it(
    engine: Engine,
) -> None:
    """Prefect's keys: key="approve", then two unnamed pauses, are approve, 2 and 3."""

    @flow
    def three_questions() -> list[int]:
        return [pause_flow_run(int, key="approve"), pause_flow_run(int), pause_flow_run(int)]

    thread, box = start(three_questions)
    run_id = waiting(engine).run_id
    keys: list[str] = []
    for answer in (1, 2, 3):
        pause = wait_for(
            lambda: (p := engine.waiting_pause(run_id)) and p.key not in keys and p,
            what="the next question",
        )
        keys.append(pause.key)
        resume_flow_run(pause.run_id, {"value": answer})
    thread.join(10)
    assert (keys, box) == (["approve", "2", "3"], {"result": [1, 2, 3]})


class Order(RunInput):
    count: int

    @pydantic.field_validator("count")
    @classmethod
    def positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be 1 or more")
        return value


def test_a_named_pause_asked_again_after_a_refusal_or_timeout_is_refused(
    engine: Engine,
) -> None:
    """An answered key asked again returns its answer (test_pause.py), as Prefect's. But
    the reference's retry loop with a key= would get the refusal back at once, forever
    (Prefect's does), asking no one: refused, naming the key."""

    refusals: list[str] = []

    @flow(name="named-retry-loop")
    def named_retry_loop() -> Order:
        order = None
        while order is None and len(refusals) < 100:
            try:
                order = pause_flow_run(Order, key="order")
            except pydantic.ValidationError as exc:
                refusals.append(str(exc))
        assert order is not None
        return order

    thread, box = start(named_retry_loop)
    run_id = waiting(engine, "named-retry-loop").run_id
    resume_flow_run(run_id, {"count": 0})
    thread.join(10)
    assert len(refusals) == 1  # refused once, then the loop stops instead of spinning
    assert isinstance(box.get("error"), ValueError)
    assert str(box["error"]) == (
        f"pause key 'order' was already asked in run {run_id} and the answer to it was "
        "refused by Order, so it cannot be asked again: each question needs a key of its "
        "own (leave key out, and each call gets the next number, or put the attempt in it: "
        'f"order-{attempt}")'
    )
    assert engine.get_run(run_id).state is RunState.FAILED

    @flow(name="named-timeout-loop")
    def named_timeout_loop() -> int | None:
        for _ in range(3):
            try:
                return pause_flow_run(int, timeout=0, key="late")
            except FlowPauseTimeout:
                continue
        return None

    with pytest.raises(ValueError, match=r"'late' was .* and nobody answered it in time, so"):
        named_timeout_loop()


def test_an_empty_key_is_no_key_and_the_call_is_numbered(engine: Engine) -> None:
    """Prefect's pause_key = key or str(counter): code passing key="" (an unset setting,
    say) runs as it does there."""

    @flow(name="empty-key")
    def empty_key() -> int:
        return pause_flow_run(int, key="") + pause_flow_run(int, key="")

    thread, box = start(empty_key)
    first = waiting(engine, "empty-key")
    assert first.key == "1"
    resume_flow_run(first.run_id, {"value": 1})
    second = wait_for(lambda: (p := engine.waiting_pause(first.run_id)) and p.key == "2" and p)
    resume_flow_run(second.run_id, {"value": 2})
    thread.join(10)
    assert box == {"result": 3}


def test_pause_and_suspend_outside_a_flow_raise_runtime_error(engine: Engine) -> None:
    for call in (lambda: pause_flow_run(int), lambda: suspend_flow_run(int)):
        with pytest.raises(RuntimeError) as raised:
            call()
        assert isinstance(raised.value, MissingContext) and isinstance(raised.value, EngineError)
        assert "can only be called inside a flow run" in str(raised.value)
    with pytest.raises(RuntimeError, match="inside a flow run"):
        asyncio.run(apause_flow_run(int))


def test_prefect_2_pause_options_say_what_to_call_instead(engine: Engine) -> None:
    @flow
    def prefect_2_style(option: str):
        return pause_flow_run(int, timeout=60, **{option: True})

    with pytest.raises(TypeError) as raised:
        prefect_2_style("reschedule")
    assert str(raised.value) == (
        "pause_flow_run(reschedule=...) is Prefect 2's; to end the execution and run the "
        "flow again once answered, call suspend_flow_run"
    )
    with pytest.raises(TypeError, match=r"call suspend_flow_run\(flow_run_id=\.\.\.\)$"):
        prefect_2_style("flow_run_id")
    with pytest.raises(TypeError, match=r"^apause_flow_run\(reschedule=\.\.\.\) is Prefect 2's"):
        asyncio.run(apause_flow_run(int, reschedule=True))
    with pytest.raises(
        TypeError, match=r"^pause_flow_run\(\) got an unexpected keyword argument 'colour'$"
    ):
        prefect_2_style("colour")
    assert engine.list_runs(flow_name="prefect-2-style")[0].state is RunState.FAILED
    assert engine.waiting_pause(engine.list_runs(flow_name="prefect-2-style")[0].id) is None


STEPS: list[str] = []
GATE = threading.Event()


@task
def step(name: str) -> str:
    STEPS.append(name)
    return name


@flow
def long_job() -> str:
    step("one")
    GATE.wait(10)
    step("two")
    approval = pause_flow_run(wait_for_input=Go, timeout=60)
    return f"two done, go={approval.go}"


def test_suspend_another_run_by_id_stops_it_at_its_next_task(
    engine: Engine, worker: Worker
) -> None:
    STEPS.clear()
    GATE.clear()
    thread, box = start(long_job)
    run = wait_for(lambda: STEPS == ["one"] and engine.list_runs(flow_name="long-job")[0])
    assert suspend_flow_run(wait_for_input=Go, flow_run_id=run.id, key="hold") is None
    wait_for(lambda: engine.suspend_requests(run.id), what="the request to reach the engine")
    GATE.set()
    thread.join(10)
    assert isinstance(box.get("error"), RunSuspended)
    suspended = engine.get_run(run.id)
    assert suspended.state is RunState.SUSPENDED
    pause = engine.waiting_pause(run.id)
    assert (pause.key, pause.suspend, pause.title) == ("hold", True, "Go")
    assert STEPS == ["one"]  # stopped before the next task

    resume_flow_run(run.id, {"go": True}, responder="alice")
    # The re-run reuses task one, runs task two, and its own pause keeps key "1".
    own = wait_for(lambda: (p := engine.waiting_pause(run.id)) and p.key == "1" and p)
    resume_flow_run(own.run_id, {"go": True}, responder="alice")
    done = final(engine, run.id)
    assert (done.state, done.result) == (RunState.COMPLETED, "'two done, go=True'")
    assert STEPS == ["one", "two"]


def test_suspend_by_id_of_a_run_that_is_not_running_is_refused(engine: Engine) -> None:
    @flow
    def quick():
        return 1

    quick()
    run = engine.list_runs(flow_name="quick")[0]
    # Prefect: RuntimeError("Flow run cannot be suspended. Received unexpected state ...").
    refused = f"^run {run.id} cannot be suspended: it is completed, not running$"
    with pytest.raises(RuntimeError, match=refused) as raised:
        suspend_flow_run(flow_run_id=run.id)
    assert isinstance(raised.value, CannotSuspend) and raised.value.run_id == run.id

    async def from_async_code():
        await suspend_flow_run(flow_run_id=run.id)

    with pytest.raises(RuntimeError, match=refused):
        asyncio.run(from_async_code())
    with pytest.raises(RuntimeError, match=refused):
        asyncio.run(asuspend_flow_run(flow_run_id=run.id))
    assert engine.get_run(run.id).state is RunState.COMPLETED  # nothing was asked of it
    assert not engine.suspend_requests(run.id)


def test_suspend_in_a_nested_flow_is_refused_at_once(engine: Engine) -> None:
    @flow
    def child():
        return suspend_flow_run(wait_for_input=Go)

    @flow
    def parent():
        return child()

    with pytest.raises(CannotSuspend) as raised:
        parent()
    assert isinstance(raised.value, RuntimeError)
    assert "called from the flow of run" in str(raised.value)
    runs = {r.flow_name: r for r in engine.list_runs()}
    assert runs["parent"].state is RunState.FAILED
    assert runs["child"].state is RunState.FAILED
    assert "cannot be suspended" in runs["child"].state_message
    # Nothing waits for an answer that could never reach the parent.
    assert engine.waiting_pause(runs["child"].id) is None
    assert engine.waiting_pause(runs["parent"].id) is None


def test_pause_in_a_nested_flow_returns_the_answer_to_the_parent(engine: Engine) -> None:
    @flow
    def ask():
        return pause_flow_run(wait_for_input=Go).go

    @flow
    def outer():
        return f"child said {ask()}"

    thread, box = start(outer)
    pause = waiting(engine, "ask")
    parent = engine.list_runs(flow_name="outer")[0]
    assert parent.state is RunState.RUNNING
    with pytest.raises(RunNotWaiting) as parent_not_waiting:
        resume_flow_run(parent.id, {"go": True})
    assert str(parent_not_waiting.value) == (
        f"run {parent.id} is not waiting for input (it is running; a flow it called waits "
        f"for input in run {pause.run_id})"
    )
    resume_flow_run(pause.run_id, {"go": True})
    thread.join(10)
    assert box == {"result": "child said True"}
    assert final(engine, parent.id).state is RunState.COMPLETED


def test_cancelling_a_parent_cancels_the_nested_flow_waiting_under_it(engine: Engine) -> None:
    @flow(name="nested-ask")
    def nested_ask():
        return pause_flow_run(wait_for_input=Go).go

    @flow(name="nested-outer")
    def nested_outer():
        return nested_ask()

    thread, box = start(nested_outer)
    pause = waiting(engine, "nested-ask")
    parent = engine.list_runs(flow_name="nested-outer")[0]
    cancel_flow_run(parent.id, by="U0ALICE")
    thread.join(10)
    assert isinstance(box.get("error"), RunCancelled)
    child = engine.get_run(pause.run_id)
    assert child.state is RunState.CANCELLED
    assert child.state_message == f"its parent run {parent.id} was cancelled"
    assert engine.waiting_pause(child.id) is None  # its prompt is closed, not left open
    with pytest.raises(RunNotWaiting):
        resume_flow_run(child.id, {"go": True})
    cancels = [r for r in engine.audit_trail(child.id) if r.action == "run.cancelled"]
    assert [r.actor_id for r in cancels] == ["U0ALICE"]


LEAVE = threading.Event()


@flow(name="left-behind")
def left_behind() -> bool:
    return pause_flow_run(wait_for_input=Go, timeout=60).go


LEFT_ENDED: list[BaseException] = []


def run_left_behind() -> None:
    try:
        left_behind()
    except RunCancelled as exc:  # what its caller (this thread) hears once it is cancelled
        LEFT_ENDED.append(exc)


@flow(name="leaves-a-flow-behind")
def leaves_a_flow_behind() -> str:
    context = contextvars.copy_context()
    threading.Thread(target=context.run, args=(run_left_behind,), daemon=True).start()
    LEAVE.wait(10)
    return "done without it"


def test_a_run_that_ends_cancels_the_flow_it_called_and_left_waiting(engine: Engine) -> None:
    LEAVE.clear()
    LEFT_ENDED.clear()
    thread, box = start(leaves_a_flow_behind)
    pause = waiting(engine, "left-behind")
    LEAVE.set()
    thread.join(10)
    assert box == {"result": "done without it"}
    child = wait_for(
        lambda: (r := engine.get_run(pause.run_id)).state is RunState.CANCELLED and r,
        what="the left run cancelled",
    )
    assert (
        child.state_message.startswith("its outer run ")
        and "ended without it" in child.state_message
    )
    # The flow left waiting hears it too (before the engine closes, which would stop it
    # with RunTakenOver instead).
    (heard,) = wait_for(lambda: LEFT_ENDED, what="the left flow told it was cancelled")
    assert isinstance(heard, RunCancelled)
