"""pause_flow_run and resume_flow_run: blocking, waking, validating and refusing (races are in
test_answer_races)."""

from __future__ import annotations

import asyncio
import datetime
import enum
import signal
import threading
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Literal

import pydantic
import pytest

from signoff.engine import (
    AlreadyWaiting,
    Engine,
    InputInvalid,
    InvalidTransition,
    MissingContext,
    PauseExpired,
    PauseStatus,
    PauseTimeout,
    ResponderNotAllowed,
    RunCancelled,
    RunNotFound,
    RunNotWaiting,
    RunState,
    flow,
    pause_flow_run,
    resume_flow_run,
    set_engine,
    task,
)
from signoff.engine.input import RunInput
from tests.support.holding import writes_held
from tests.support.running import start, waiting
from tests.support.waiting import wait_for


class Approval(RunInput):
    approved: bool
    reason: str = pydantic.Field(default="", max_length=20)
    risk: int = pydantic.Field(default=1, ge=1, le=5)
    env: Literal["staging", "production"] = "staging"


class Reply(pydantic.BaseModel):
    text: str


def test_sync_pause_blocks_and_returns_validated_input(engine: Engine) -> None:
    after = []

    @flow
    def deploy():
        answer = pause_flow_run(wait_for_input=Approval)
        after.append(answer)
        return answer.approved

    thread, box = start(deploy)
    pause = waiting(engine)
    assert after == []
    assert engine.get_run(pause.run_id).state is RunState.PAUSED
    resume_flow_run(pause.run_id, {"approved": True, "env": "production"}, responder="alice")
    thread.join(10)
    assert box == {"result": True}
    assert after == [Approval(approved=True, env="production")]
    stored = engine.get_pause(pause.run_id, "1")
    assert (stored.responder, stored.response) == ("alice", {"approved": True, "env": "production"})
    assert stored.answered_at is not None


class Speed(enum.Enum):
    SLOW = "slow"
    FAST = "fast"


class Order(RunInput):
    amount: Decimal = pydantic.Field(le=1000)
    ship_on: datetime.date
    order_id: uuid.UUID
    speed: Speed


def test_python_values_answer_as_a_form_would_send_them(engine: Engine) -> None:
    # A Decimal from Python was checked, then failed as the answer was stored ("Object of
    # type Decimal is not JSON serializable"); a date or UUID too.
    @flow
    def ship() -> Order:
        return pause_flow_run(wait_for_input=Order)

    thread, box = start(ship)
    pause = waiting(engine)
    answer = {
        "amount": Decimal("12.50"),
        "ship_on": datetime.date(2026, 12, 24),
        "order_id": uuid.UUID(int=7),
        "speed": Speed.FAST,
    }
    with pytest.raises(InputInvalid) as refused:
        resume_flow_run(pause.run_id, {**answer, "amount": Decimal("1e10000000")}, "alice")
    assert refused.value.errors == {
        "amount": "must be a smaller number (at most 4,300 digits before the point)"
    }
    with pytest.raises(TypeError, match="no answer can hold: Unable to serialize unknown type"):
        resume_flow_run(pause.run_id, {**answer, "speed": object()}, "alice")
    assert engine.get_run(pause.run_id).state is RunState.PAUSED
    resume_flow_run(pause.run_id, answer, responder="alice")
    thread.join(10)
    assert box == {"result": Order(**answer)}
    assert engine.get_pause(pause.run_id, "1").response == {
        "amount": "12.50",
        "ship_on": "2026-12-24",
        "order_id": str(uuid.UUID(int=7)),
        "speed": "fast",
    }


def test_async_pause_is_awaited(engine: Engine) -> None:
    @flow
    async def ask():
        return await pause_flow_run(wait_for_input=int)

    async def main():
        waiter = asyncio.ensure_future(ask())
        pause = await asyncio.to_thread(waiting, engine)
        resume_flow_run(pause.run_id, {"value": 42})
        return await waiter

    assert asyncio.run(main()) == 42


def test_pause_without_input_returns_none_and_refuses_input(engine: Engine) -> None:
    @flow
    def hold():
        return pause_flow_run()

    thread, box = start(hold)
    pause = waiting(engine)
    assert pause.schema is None
    with pytest.raises(InputInvalid, match="takes no input"):
        resume_flow_run(pause.run_id, {"x": 1})
    resume_flow_run(pause.run_id)
    thread.join(10)
    assert box == {"result": None}


@pytest.mark.parametrize(
    ("input_type", "answer", "expected"),
    [
        (str, {"value": "hi"}, "hi"),
        (int, {"value": 3}, 3),
        (bool, {"value": False}, False),
        (Literal["yes", "no"], {"value": "no"}, "no"),
        (list[str], {"value": ["a", "b"]}, ["a", "b"]),
        (Reply, {"text": "ok"}, Reply(text="ok")),
    ],
)
def test_plain_types_and_models_come_back_unwrapped(engine, input_type, answer, expected) -> None:
    @flow
    def ask():
        return pause_flow_run(wait_for_input=input_type)

    thread, box = start(ask)
    resume_flow_run(waiting(engine).run_id, answer)
    thread.join(10)
    result = box["result"]
    assert result == expected if not isinstance(expected, Reply) else result.text == "ok"


def test_pause_inside_a_task_pauses_the_flow(engine: Engine) -> None:
    @task
    def approve():
        return pause_flow_run(wait_for_input=Approval).approved

    @flow
    def deploy():
        return approve()

    thread, box = start(deploy)
    pause = waiting(engine)
    assert engine.get_run(pause.run_id).state is RunState.PAUSED
    resume_flow_run(pause.run_id, {"approved": True})
    thread.join(10)
    assert box == {"result": True}
    assert engine.detail(pause.run_id).tasks[0].result == "True"


def test_structural_errors_name_every_field_and_store_nothing(engine: Engine) -> None:
    @flow
    def deploy():
        return pause_flow_run(wait_for_input=Approval)

    thread, box = start(deploy)
    pause = waiting(engine)
    with pytest.raises(InputInvalid) as caught:
        resume_flow_run(
            pause.run_id, {"reason": "x" * 30, "risk": 9, "env": "prod", "extra": 1}, "bob"
        )
    assert caught.value.errors == {
        "": "unknown field 'extra'",
        "approved": "is required",
        "env": "must be one of: staging, production",
        "reason": "must be at most 20 characters long",
        "risk": "must be at most 5",
    }
    with pytest.raises(InputInvalid, match="approved: must be true or false"):
        resume_flow_run(pause.run_id, {"approved": "yes"})
    still = engine.get_pause(pause.run_id, pause.key)
    assert (still.status, still.response, still.responder) == (PauseStatus.WAITING, None, None)
    assert engine.get_run(pause.run_id).state is RunState.PAUSED
    resume_flow_run(pause.run_id, {"approved": False})
    thread.join(10)
    assert box["result"].approved is False


def test_empty_input_accepted_when_every_field_has_a_default(engine: Engine) -> None:
    class Defaults(RunInput):
        ok: bool = True
        amount: Decimal = Decimal("1.5")

    @flow
    def ask():
        return pause_flow_run(wait_for_input=Defaults)

    thread, box = start(ask)
    resume_flow_run(waiting(engine).run_id)
    thread.join(10)
    assert box["result"] == Defaults()


def test_resume_errors_for_unknown_finished_and_expired_runs(engine: Engine) -> None:
    with pytest.raises(RunNotFound, match="no run with id 'nope'"):
        resume_flow_run("nope", {})

    @flow
    def quick():
        return 1

    quick()
    done = engine.list_runs()[0]
    with pytest.raises(RunNotWaiting, match="not waiting for input \\(it is completed\\)"):
        resume_flow_run(done.id, {})

    @flow
    def short():
        try:
            pause_flow_run(wait_for_input=Approval, timeout=0.2)
        except PauseTimeout:
            return "gave up"

    assert short() == "gave up"
    run = engine.list_runs(flow_name="short")[0]
    assert run.state is RunState.COMPLETED
    with pytest.raises(RunNotWaiting):
        resume_flow_run(run.id, {"approved": True})
    assert engine.detail(run.id).pauses[0].status is PauseStatus.TIMED_OUT


def test_an_answer_after_the_deadline_while_the_flow_goes_on_is_told_it_came_too_late(
    engine: Engine,
) -> None:
    """Without a key it was told the run "is not waiting for input (it is running)", as if
    it had never been asked; only an answer naming the pause heard it had expired."""
    gone_on = threading.Event()
    release = threading.Event()

    @flow(name="goes-on-after-timeout")
    def goes_on() -> str:
        try:
            pause_flow_run(wait_for_input=Approval, timeout=0.2)
        except PauseTimeout:
            gone_on.set()
            release.wait(10)
            return "went on"
        return "answered"

    thread, box = start(goes_on)
    assert gone_on.wait(10)
    run = engine.list_runs(flow_name="goes-on-after-timeout")[0]
    assert run.state is RunState.RUNNING
    for key in (None, "1"):
        with pytest.raises(PauseExpired, match="stopped waiting for input '1' at "):
            resume_flow_run(run.id, {"approved": True}, key=key)
    release.set()
    thread.join(10)
    assert box == {"result": "went on"}


def test_past_deadline_is_refused_even_before_the_sweep(engine: Engine) -> None:
    @flow
    def hold():
        pause_flow_run(wait_for_input=Approval, timeout=30)

    thread, box = start(hold)
    pause = waiting(engine)
    later = pause.deadline.replace(year=pause.deadline.year + 1)
    engine.store.clock = lambda: later
    with pytest.raises(PauseExpired, match="stopped waiting for input '1'"):
        resume_flow_run(pause.run_id, {"approved": True})
    engine.store.clock = type(engine.store).__init__.__defaults__[0]
    engine.cancel(pause.run_id)
    thread.join(10)
    assert isinstance(box["error"], RunCancelled)


def test_uncaught_timeout_fails_the_run_saying_nobody_answered(engine: Engine) -> None:
    @flow
    def hold():
        pause_flow_run(wait_for_input=Approval, timeout=0.1)

    with pytest.raises(PauseTimeout):
        hold()
    run = engine.list_runs()[0]
    assert run.state is RunState.FAILED
    assert run.state_name == "TimedOut"
    assert "waited for 0.1s for input '1' and nobody answered in time" in run.state_message


def test_negative_timeout_and_bad_keys_are_refused(engine: Engine) -> None:
    @flow
    def bad(timeout, key):
        pause_flow_run(timeout=timeout, key=key)

    # 10**400: too large for a float, which raised OverflowError rather than this.
    for wrong in (-1, float("inf"), float("nan"), 1e12, 10**400):
        with pytest.raises(
            ValueError,
            match=r"^timeout must be from 0 up to 3,153,600,000 "
            r"seconds \(100 years\), or None to wait with no deadline \(got ",
        ):
            bad(wrong, None)
    for wrong in (True, "5"):
        with pytest.raises(TypeError, match="^timeout must be a number of seconds"):
            bad(wrong, None)

    @flow
    def escalates_too_late() -> None:
        pause_flow_run(timeout=10, escalate_after=10, escalate_to=["boss"])

    with pytest.raises(ValueError, match=r"^escalate_after \(10 s\) must be less than timeout"):
        escalates_too_late()
    with pytest.raises(ValueError, match="pause key 'has space'"):
        bad(1, "has space")
    with pytest.raises(TypeError, match=r"^pause key must be text \(got 5\)$"):
        bad(1, 5)
    with pytest.raises(ValueError) as too_long:  # the message names it, but not all of it
        bad(1, "k" * 5000)
    assert str(too_long.value) == (
        f"pause key {'k' * 80!r}... (5,000 characters) must be 1-200 letters, digits, '-', "
        "'_', '.' or ':'"
    )


def test_pause_outside_a_flow_is_a_clear_error() -> None:
    with pytest.raises(
        MissingContext, match=r"pause_flow_run\(\) can only be called inside a flow run"
    ):
        pause_flow_run()


def test_named_key_answered_once_is_not_asked_again(engine: Engine) -> None:
    @flow
    def twice():
        first = pause_flow_run(wait_for_input=int, key="do-not-repeat")
        second = pause_flow_run(wait_for_input=int, key="do-not-repeat")
        return first, second

    thread, box = start(twice)
    resume_flow_run(waiting(engine).run_id, {"value": 7})
    thread.join(10)
    assert box == {"result": (7, 7)}


def test_approvers_and_forbid_starter(engine: Engine) -> None:
    @flow(approvers=["U_LEAD", "S_SRE"], forbid_starter=True)
    def guarded():
        return pause_flow_run(wait_for_input=Approval)

    from signoff.engine.runner import call_flow

    thread, box = start(lambda: call_flow(guarded, {}, started_by="U_LEAD"))
    pause = waiting(engine)
    assert pause.approvers == ("U_LEAD", "S_SRE")
    with pytest.raises(ResponderNotAllowed, match="started a run may not answer it"):
        resume_flow_run(pause.run_id, {"approved": True}, responder="U_LEAD")
    with pytest.raises(ResponderNotAllowed, match="only U_LEAD, S_SRE may answer"):
        resume_flow_run(pause.run_id, {"approved": True}, responder="U_RANDOM")
    with pytest.raises(ResponderNotAllowed):
        resume_flow_run(pause.run_id, {"approved": True})
    assert engine.get_pause(pause.run_id, pause.key).status is PauseStatus.WAITING
    resume_flow_run(pause.run_id, {"approved": True}, "U_OTHER", responder_groups=["S_SRE"])
    thread.join(10)
    assert box["result"].approved is True


def test_cancel_stops_a_paused_flow(engine: Engine) -> None:
    @flow
    def hold():
        pause_flow_run(wait_for_input=Approval)

    thread, box = start(hold)
    pause = waiting(engine)
    run = engine.cancel(pause.run_id, by="carol")
    thread.join(10)
    assert isinstance(box["error"], RunCancelled)
    assert (run.state, run.state_message) == (RunState.CANCELLED, "cancelled by carol")
    assert engine.get_pause(pause.run_id, pause.key).status is PauseStatus.CANCELLED
    with pytest.raises(InvalidTransition, match="is already cancelled"):
        engine.cancel(pause.run_id)


def test_resume_wakes_the_flow_without_polling(engine: Engine) -> None:
    """Same process: the waiter is woken directly, well inside any polling interval."""
    import time

    marks: dict = {}

    @flow
    def hold():
        pause_flow_run()
        marks["woke"] = time.perf_counter()

    thread, _ = start(hold)
    pause = waiting(engine)
    marks["resumed"] = time.perf_counter()
    resume_flow_run(pause.run_id)
    thread.join(10)
    assert marks["woke"] - marks["resumed"] < 0.5


@task
def sync_task_that_pauses() -> int:
    return pause_flow_run(int, timeout=30)


@task
async def async_task_that_pauses() -> int:
    return await pause_flow_run(int, timeout=30)


@flow(name="async-flow-sync-task")
async def async_flow_sync_task() -> int:
    return sync_task_that_pauses() + 1


@flow(name="sync-flow-async-task")
def sync_flow_async_task() -> int:
    return asyncio.run(async_task_that_pauses()) + 1


@pytest.mark.parametrize(
    ("called", "name"),
    [
        (lambda: asyncio.run(async_flow_sync_task()), "async-flow-sync-task"),
        (sync_flow_async_task, "sync-flow-async-task"),
    ],
)
def test_a_pause_in_a_task_waits_as_its_task_does_not_as_its_flow(
    engine: Engine, called, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A sync task of an async flow blocks on the pause (it was handed a coroutine nobody
    awaited, and the run completed without asking), and says that it holds the loop; an
    async task of a sync flow awaits it."""
    thread, box = start(called)
    pause = waiting(engine, name)
    resume_flow_run(pause.run_id, {"value": 41}, "U0ALICE")
    thread.join(10)
    assert box == {"result": 42}
    assert engine.get_run(pause.run_id).state is RunState.COMPLETED
    said = [r for r in caplog.records if getattr(r, "action", "") == "pause_blocks_loop"]
    assert len(said) == (1 if name == "async-flow-sync-task" else 0)


@flow(name="gives-up-waiting")
async def gives_up_waiting() -> str:
    try:
        return str(await asyncio.wait_for(pause_flow_run(int, timeout=60), 0.2))
    except TimeoutError:
        return "went on without an answer"


def test_a_flow_that_stops_awaiting_its_pause_ends_it_and_completes(engine: Engine) -> None:
    """asyncio.wait_for cancelled the wait: the run completes with what the flow returned
    (it stayed paused, and the answer then ran the whole flow again in a worker)."""
    assert asyncio.run(gives_up_waiting()) == "went on without an answer"
    (run,) = engine.list_runs(flow_name="gives-up-waiting")
    assert (run.state, run.result) == (RunState.COMPLETED, "'went on without an answer'")
    assert engine.get_pause(run.id, "1").status is PauseStatus.TIMED_OUT
    with pytest.raises(RunNotWaiting, match="completed"):
        resume_flow_run(run.id, {"value": 1})


def test_a_pause_the_flow_stops_awaiting_ends_at_once_and_takes_no_answer(
    engine: Engine,
) -> None:
    """The flow goes on without a write for a while after wait_for gave up: its pause reads
    as timed out meanwhile, and an answer to it is refused rather than stored unheard."""
    release = threading.Event()

    @flow(name="gives-up-and-goes-on")
    async def gives_up_and_goes_on() -> str:
        try:
            await asyncio.wait_for(pause_flow_run(int, timeout=60), 0.2)
        except TimeoutError:
            await asyncio.to_thread(release.wait, 30)
        return "went on"

    thread, box = start(lambda: asyncio.run(gives_up_and_goes_on()))
    try:
        pause = waiting(engine, "gives-up-and-goes-on")
        # The pause times out and the run is running again, in one write.
        wait_for(
            lambda: (
                engine.get_pause(pause.run_id, pause.key).status is PauseStatus.TIMED_OUT
                and engine.get_run(pause.run_id).state is RunState.RUNNING
            ),
            what="the abandoned pause to time out while the flow goes on",
        )
        # Too late, as an answer naming the pause is told (not "the run is running").
        with pytest.raises(PauseExpired, match="when its flow stopped awaiting it"):
            resume_flow_run(pause.run_id, {"value": 1}, "U0ALICE")
    finally:
        release.set()
        thread.join(10)
    assert box == {"result": "went on"}
    assert engine.get_run(pause.run_id).state is RunState.COMPLETED
    assert engine.get_pause(pause.run_id, pause.key).responder is None


@flow(name="answered-as-it-is-cancelled")
async def answered_as_it_is_cancelled() -> str:
    return f"answered {await pause_flow_run(int, timeout=60)}"


def test_an_answer_stored_before_the_flow_stops_awaiting_is_the_flows(engine: Engine) -> None:
    """The answer was stored, and its sender told it was accepted, a moment before the
    flow's await was cancelled (asyncio.wait_for's deadline, a task's cancel): the flow
    went on without it, and nothing heard it. Now the await returns it."""
    held, answered = threading.Event(), threading.Event()
    flows: list[asyncio.Task[str]] = []
    loop_of: list[asyncio.AbstractEventLoop] = []

    async def scenario() -> str:
        loop_of.append(asyncio.get_running_loop())
        flows.append(asyncio.create_task(answered_as_it_is_cancelled()))
        return await flows[0]

    def hold_the_loop() -> None:
        held.set()
        assert answered.wait(30)
        flows[0].cancel()  # before the flow's task runs again to take the answer

    thread, box = start(lambda: asyncio.run(scenario()))
    pause = waiting(engine, "answered-as-it-is-cancelled")
    loop_of[0].call_soon_threadsafe(hold_the_loop)
    assert held.wait(30)
    resume_flow_run(pause.run_id, {"value": 7}, "U0ALICE")
    answered.set()
    thread.join(30)
    assert box == {"result": "answered 7"}
    run = engine.get_run(pause.run_id)
    assert (run.state, run.result) == (RunState.COMPLETED, "'answered 7'")
    assert engine.get_pause(pause.run_id, pause.key).status is PauseStatus.ACCEPTED


@flow(name="gathered-times-out")
async def gathered_times_out(i: int) -> int:
    await pause_flow_run(int, timeout=0.3)
    return i


def test_runs_ended_as_asyncio_run_cancels_them_are_recorded_before_the_engine_closes(
    make_engine: Callable[..., Engine],
) -> None:
    """gather() raised the first PauseTimeout, and asyncio.run cancelled the other flows as
    they were recording their own ends: those writes were dropped from the store threads'
    queue, and the runs read "running" for good (until a worker took them over)."""
    engine = make_engine()
    previous = set_engine(engine)

    async def main() -> None:
        await asyncio.gather(*(gathered_times_out(i) for i in range(30)))

    try:
        with pytest.raises(PauseTimeout):
            asyncio.run(main())
    finally:
        set_engine(previous)
        engine.close()  # as a script's engine closes at exit
    states = [r.state for r in make_engine().list_runs(flow_name="gathered-times-out", limit=100)]
    assert len(states) == 30
    assert RunState.RUNNING not in states and RunState.PAUSED not in states, states


def test_a_pause_given_up_while_it_is_being_stored_ends_once_it_is(
    engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deadline ran out while the pause was still being stored (the database busy): it
    was stored all the same and left waiting, so the run read as paused while its flow
    went on, and an answer to it was taken and never heard."""
    started, go, storing, gave_up, release = (threading.Event() for _ in range(5))
    hooks: dict[str, Callable[[], object]] = {}
    open_pause = engine.store.open_pause

    def opening(*args: Any, **kwargs: Any) -> Any:
        storing.set()  # handed to a store thread: cancelling the await no longer stops it
        return open_pause(*args, **kwargs)

    monkeypatch.setattr(engine.store, "open_pause", opening)

    @flow(name="gives-up-while-storing")
    async def gives_up_while_storing() -> str:
        started.set()
        await asyncio.to_thread(go.wait, 30)
        loop = asyncio.get_running_loop()
        try:
            # asyncio.wait_for's deadline (it is this, from Python 3.12), made to pass when
            # the test says rather than after a time that a loaded machine may overrun
            # before the write even starts.
            async with asyncio.timeout(None) as deadline:
                hooks["deadline passes"] = lambda: loop.call_soon_threadsafe(
                    deadline.reschedule, loop.time()
                )
                await pause_flow_run(int, timeout=60)
        except TimeoutError:
            gave_up.set()
            await asyncio.to_thread(release.wait, 30)
        return "went on"

    thread, box = start(lambda: asyncio.run(gives_up_while_storing()))
    try:
        assert started.wait(30)
        with writes_held(database_url):
            go.set()
            assert storing.wait(30), "the pause was never handed over to be stored"
            hooks["deadline passes"]()
            assert gave_up.wait(30)  # before the pause could be stored
        (run,) = engine.list_runs(flow_name="gives-up-while-storing")
        wait_for(
            lambda: (
                (pause := engine.get_pause(run.id, "1")) is not None
                and pause.status is PauseStatus.TIMED_OUT
                and engine.get_run(run.id).state is RunState.RUNNING
            ),
            what="the pause stored late to time out while the flow goes on",
        )
        with pytest.raises(PauseExpired, match="when its flow stopped awaiting it"):
            resume_flow_run(run.id, {"value": 1}, "U0ALICE")
        # Named, it says when it stopped: not at its deadline, an hour from now.
        with pytest.raises(PauseExpired) as expired:
            resume_flow_run(run.id, {"value": 1}, "U0ALICE", key="1")
        assert str(expired.value) == (
            f"run {run.id} stopped waiting for input '1' when its flow stopped awaiting it"
        )
        assert expired.value.deadline is None
    finally:
        release.set()
        thread.join(10)
    assert box == {"result": "went on"}
    assert engine.get_run(run.id).state is RunState.COMPLETED


def test_a_pause_key_of_the_longest_length_with_a_deadline_waits_and_resumes(
    engine: Engine,
) -> None:
    # The deadline's timer id holds the key; past 191 characters PostgreSQL's job table
    # refused it and the run failed at its pause ("value too long").
    key = "k" * 200

    @flow
    def deploy():
        return pause_flow_run(wait_for_input=Approval, key=key, timeout=600).approved

    thread, box = start(deploy)
    pause = waiting(engine)
    assert pause.key == key
    assert engine.get_run(pause.run_id).state is RunState.PAUSED
    resume_flow_run(pause.run_id, {"approved": True}, key=key, responder="alice")
    thread.join(10)
    assert box == {"result": True}


class Go(RunInput):
    ok: bool


@flow(name="awaited-under-a-deadline")
async def awaited_under_a_deadline() -> bool:
    return (await pause_flow_run(wait_for_input=Go)).ok


@flow(name="pauses-in-two-tasks")
async def pauses_in_two_tasks() -> list[bool]:
    async def ask(key: str) -> bool:
        return (await pause_flow_run(wait_for_input=Go, key=key)).ok

    return list(await asyncio.gather(ask("first"), ask("second")))


def _nothing_waits(
    engine: Engine, run_id: str, status: PauseStatus = PauseStatus.CANCELLED
) -> None:
    assert [p.status for p in engine.detail(run_id).pauses] == [status]
    assert engine.waiting_pause(run_id) is None
    assert engine.stats().waiting_inputs == 0


def test_an_async_flow_cancelled_while_it_waits_leaves_no_question_open(engine: Engine) -> None:
    """Cancelled by whoever awaited it, the run crashed with its pause still waiting: on the
    Home tab, counted as waiting, and answered only to hear the run had crashed. Now the
    pause ends as its await is cancelled (timed out, as the flow's own wait did)."""

    async def under_a_deadline() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(awaited_under_a_deadline(), 0.5)

    handler = signal.getsignal(signal.SIGINT)
    asyncio.run(under_a_deadline())
    (run,) = engine.list_runs(flow_name="awaited-under-a-deadline")
    # Not taken for Ctrl-C (which suspends the run instead: test_script_exit.py).
    assert run.state is RunState.CRASHED
    _nothing_waits(engine, run.id, PauseStatus.TIMED_OUT)
    # The flow noted Ctrl-C while it ran, and put back the handler it stood in front of.
    assert signal.getsignal(signal.SIGINT) is handler


def test_a_run_that_fails_beside_a_waiting_pause_leaves_no_question_open(engine: Engine) -> None:
    with pytest.raises(AlreadyWaiting):
        asyncio.run(pauses_in_two_tasks())
    (run,) = engine.list_runs(flow_name="pauses-in-two-tasks")
    assert run.state is RunState.FAILED
    _nothing_waits(engine, run.id)
    # An answer to the question it closed says how the run ended (it said "cancelled").
    [closed] = engine.detail(run.id).pauses  # whichever of the two was stored first
    with pytest.raises(RunNotWaiting) as late:
        resume_flow_run(run.id, {"ok": True}, "U0ALICE", key=closed.key)
    assert str(late.value) == (
        f"run {run.id} is not waiting for input (it is failed, and its input {closed.key!r} "
        "was closed unanswered)"
    )


def test_an_unnamed_pause_never_takes_the_number_a_named_one_has(engine: Engine) -> None:
    """After ``key="2"``, the next unnamed pause was numbered "2" too, and returned the
    answer given to the named one without asking anybody (as Prefect's does)."""

    @flow(name="named-then-numbered")
    def named_then_numbered() -> list[bool]:
        first = pause_flow_run(wait_for_input=Approval, key="2")
        second = pause_flow_run(wait_for_input=Approval)
        return [first.approved, second.approved]

    thread, box = start(named_then_numbered)
    named = waiting(engine, "named-then-numbered")
    assert named.key == "2"
    resume_flow_run(named.run_id, {"approved": True}, key="2")
    numbered = wait_for(lambda: engine.waiting_pause(named.run_id), what="the second pause to ask")
    assert numbered.key == "3"
    resume_flow_run(named.run_id, {"approved": False}, key="3")
    thread.join(10)
    assert box == {"result": [True, False]}


def test_a_named_pause_may_not_take_the_number_an_unnamed_one_has(engine: Engine) -> None:
    @flow(name="numbered-then-named")
    def numbered_then_named() -> bool:
        pause_flow_run(wait_for_input=Approval)
        return pause_flow_run(wait_for_input=Approval, key="1").approved

    thread, box = start(numbered_then_named)
    first = waiting(engine, "numbered-then-named")
    resume_flow_run(first.run_id, {"approved": True})
    thread.join(10)
    error = box["error"]
    assert isinstance(error, ValueError)
    assert str(error).startswith("pause key '1' is the key an earlier pause of this flow")
    assert engine.get_run(first.run_id).state is RunState.FAILED


@flow(name="timed-twice")
def timed_twice() -> int:
    first = pause_flow_run(int, timeout=600, escalate_after=300, escalate_to=["carol"])
    second = pause_flow_run(int, timeout=600)
    return first + second


def test_the_timers_of_settled_pauses_are_deleted(make_engine: Callable[..., Engine]) -> None:
    """Each pause's timers stayed in the job table until their time came (an hour, a
    week), answered or not: a row per pause ever made, firing later for nothing, and for
    ever in a process without workers."""
    from signoff.engine import set_engine

    engine = make_engine()
    previous = set_engine(engine)
    try:
        thread, box = start(timed_twice)
        first = waiting(engine, "timed-twice")
        run_id = first.run_id

        def jobs() -> set[str]:
            return {job for job, _ in engine.timers.pending() if run_id in job}

        set_before = wait_for(lambda: len(jobs()) == 2 and jobs(), what="the first pause's timers")
        assert set_before == {f"expire:{run_id}:1", f"escalate:{run_id}:1"}
        resume_flow_run(run_id, {"value": 4}, responder="alice")
        wait_for(lambda: f"expire:{run_id}:2" in jobs(), what="the second pause's timer")
        # A worker's pass deletes those of the answered pause, not the waiting one's.
        assert engine.timers.forget_settled() == 2
        assert jobs() == {f"expire:{run_id}:2"}
        resume_flow_run(run_id, {"value": 5}, responder="alice")
        thread.join(10)
        assert box == {"result": 9}
    finally:
        set_engine(previous)
    # A script closing its engine deletes what its own pauses left.
    engine.close()
    reader = make_engine()
    assert not [job for job, _ in reader.timers.pending() if run_id in job]
