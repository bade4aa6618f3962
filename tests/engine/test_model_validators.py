"""A model's own validators judge an answer as though the flow loaded it itself (Prefect's
flow does ``cls(**value)`` after the server's schema check): with the run's context, and
whatever they raise is raised in the flow from its pause. Whether the flow waits in the
process that takes the answer (which judges it at once) or in another (the flow judges
it), the same happens, and a verdict is stored either way."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pydantic
import pytest

from signoff.engine import (
    Engine,
    PauseStatus,
    RunState,
    flow,
    get_run_logger,
    pause_flow_run,
    resume_flow_run,
)
from signoff.engine.input import RunInput
from tests.support.running import start, waiting
from tests.support.waiting import wait_for


class Note(RunInput):
    note: str | None = None

    @pydantic.field_validator("note")
    @classmethod
    def strip(cls, value: Any) -> Any:
        return value.strip()  # the model's own bug: None has no strip()


class Quantity(RunInput):
    qty: int

    @pydantic.field_validator("qty")
    @classmethod
    def logged(cls, value: int) -> int:
        get_run_logger().info(f"validating qty={value}")
        return value


#: what the answer's refusal says when loading it raised AttributeError
STRIP_ERROR = {
    "": "loading the answer raised AttributeError: 'NoneType' object has no attribute 'strip'"
}


def answerer(engine: Engine, make_engine: Callable[..., Engine], where: str) -> Engine:
    """The engine that takes the answer: the flow's own, or another process's."""
    return engine if where == "here" else make_engine()


@flow(name="strips-a-note")
def strips_a_note() -> str:
    try:
        return str(pause_flow_run(wait_for_input=Note, timeout=60))
    except AttributeError:
        return "flow saw the error"


@pytest.mark.parametrize("where", ["here", "elsewhere"])
def test_what_a_validator_raises_besides_a_validation_error_is_raised_in_the_flow(
    engine: Engine, make_engine: Callable[..., Engine], where: str
) -> None:
    thread, box = start(strips_a_note)
    pause = waiting(engine, "strips-a-note")
    by = answerer(engine, make_engine, where)
    answered = by.resume(pause.run_id, {"note": None}, responder="alice")
    thread.join(10)
    # The person answering is told the answer was taken (and, judged here, refused): the
    # AttributeError is the flow's, which caught it and went on.
    assert box == {"result": "flow saw the error"}
    if where == "here":
        assert (answered.status, answered.errors) == (PauseStatus.REJECTED, STRIP_ERROR)
    settled = wait_for(
        lambda: (
            (p := by.get_pause(pause.run_id, pause.key)).status is not PauseStatus.ANSWERED and p
        ),
        what="the flow's verdict",
    )
    assert (settled.status, settled.errors, settled.responder) == (
        PauseStatus.REJECTED,
        STRIP_ERROR,
        "alice",
    )
    rejected = [r for r in engine.audit_trail(pause.run_id) if r.action == "answer.rejected"]
    assert [r.data for r in rejected] == [{"responder": "alice", "errors": STRIP_ERROR}]
    assert engine.get_run(pause.run_id).state is RunState.COMPLETED


@pytest.mark.parametrize("where", ["here", "elsewhere"])
def test_a_flow_that_does_not_catch_it_fails_with_the_validators_exception(
    engine: Engine, make_engine: Callable[..., Engine], where: str
) -> None:
    @flow(name="strips-uncaught")
    def strips_uncaught() -> Note:
        return pause_flow_run(wait_for_input=Note, timeout=60)

    thread, box = start(strips_uncaught)
    pause = waiting(engine, "strips-uncaught")
    answerer(engine, make_engine, where).resume(pause.run_id, {"note": None})
    thread.join(10)
    assert isinstance(box.get("error"), AttributeError)
    run = wait_for(
        lambda: (r := engine.get_run(pause.run_id)).state.is_final and r, what="the run to end"
    )
    assert run.state is RunState.FAILED
    assert run.state_message == "AttributeError: 'NoneType' object has no attribute 'strip'"
    assert engine.get_pause(pause.run_id, pause.key).status is PauseStatus.REJECTED


@pytest.mark.parametrize("where", ["here", "elsewhere"])
def test_a_validator_runs_in_the_runs_context(
    engine: Engine, make_engine: Callable[..., Engine], where: str
) -> None:
    @flow(name="logs-in-a-validator")
    def logs_in_a_validator() -> int:
        return pause_flow_run(wait_for_input=Quantity, timeout=60).qty

    thread, box = start(logs_in_a_validator)
    pause = waiting(engine, "logs-in-a-validator")
    answered = answerer(engine, make_engine, where).resume(pause.run_id, {"qty": 3})
    thread.join(10)
    assert box == {"result": 3}
    if where == "here":
        assert answered.status is PauseStatus.ACCEPTED
    detail = engine.detail(pause.run_id)
    assert detail.run.state is RunState.COMPLETED
    assert [log.message for log in detail.logs] == ["validating qty=3"]


def test_a_validator_runs_once_when_the_pause_was_handed_on_by_another_process(
    engine: Engine, make_engine: Callable[..., Engine]
) -> None:
    """The waiter here still holds the pause as it was asked, so the answer is judged on
    the quick path, found handed on when stored, and stored by the usual path: the model's
    validators (and what they log) run once, not once per path."""

    @flow(name="logs-once-handed-on")
    def logs_once_handed_on() -> int:
        return pause_flow_run(wait_for_input=Quantity, timeout=60, approvers=["U_OPS", "U_DEV"]).qty

    thread, box = start(logs_once_handed_on)
    pause = waiting(engine, "logs-once-handed-on")
    make_engine().reassign(pause.run_id, "U_SRE", by="U_OPS")
    answered = engine.resume(pause.run_id, {"qty": 4}, "U_DEV")
    thread.join(10)
    assert (box, answered.status, answered.responder) == (
        {"result": 4},
        PauseStatus.ACCEPTED,
        "U_DEV",
    )
    assert [log.message for log in engine.detail(pause.run_id).logs] == ["validating qty=4"]


def test_an_async_flows_validators_run_in_its_context_and_raise_in_it(engine: Engine) -> None:
    """The same for a flow that awaits its pause (its waiter is a coroutine's)."""

    @flow(name="async-validators")
    async def async_validators() -> tuple[int, str]:
        qty = (await pause_flow_run(wait_for_input=Quantity, timeout=60)).qty
        try:
            await pause_flow_run(wait_for_input=Note, timeout=60)
        except AttributeError as exc:
            return qty, type(exc).__name__
        return qty, "no error"

    async def main() -> tuple[int, str]:
        running = asyncio.ensure_future(async_validators())
        first = await asyncio.to_thread(waiting, engine, "async-validators")
        assert (await resume_flow_run(first.run_id, {"qty": 5})).status is PauseStatus.ACCEPTED
        second = await asyncio.to_thread(
            wait_for,
            lambda: (p := engine.waiting_pause(first.run_id)) and p.key != first.key and p,
        )
        refused = await resume_flow_run(second.run_id, {"note": None})
        assert (refused.status, refused.errors) == (PauseStatus.REJECTED, STRIP_ERROR)
        return await running

    assert asyncio.run(main()) == (5, "AttributeError")
    run = engine.list_runs(flow_name="async-validators")[0]
    assert [log.message for log in engine.detail(run.id).logs] == ["validating qty=5"]


@flow(name="reads-before-hand-over")
def reads_before_hand_over() -> int:
    return pause_flow_run(wait_for_input=Quantity, timeout=60).qty


@flow(name="awaits-before-hand-over")
async def awaits_before_hand_over() -> int:
    return (await pause_flow_run(wait_for_input=Quantity, timeout=60)).qty


@pytest.mark.parametrize(
    ("name", "call"),
    [
        ("reads-before-hand-over", reads_before_hand_over),
        ("awaits-before-hand-over", lambda: asyncio.run(awaits_before_hand_over())),
    ],
    ids=["sync", "async"],
)
def test_a_flow_that_reads_its_answer_before_it_is_handed_over_does_not_judge_it_again(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, name: str, call: Callable[[], int]
) -> None:
    """Between storing an answer and handing it to the flow waiting here, something else
    may wake the flow (the event of that very answer, heard back from PostgreSQL): the
    flow then reads the answer itself, and takes what the resumer judged of it rather than
    running the model's validators a second time. The hand-over is held back here until
    the flow has ended, so the wake-up always comes first."""
    hand_over = Engine._answered

    def held_back(self: Engine, pause: Any, *args: Any) -> Any:
        self.waiters.wake(pause.run_id)
        wait_for(lambda: self.get_run(pause.run_id).state.is_final, what="the flow to end")
        return hand_over(self, pause, *args)

    monkeypatch.setattr(Engine, "_answered", held_back)
    thread, box = start(call)
    pause = waiting(engine, name)
    answered = engine.resume(pause.run_id, {"qty": 6}, responder="alice")
    thread.join(10)
    assert (box, answered.status) == ({"result": 6}, PauseStatus.ACCEPTED)
    assert [log.message for log in engine.detail(pause.run_id).logs] == ["validating qty=6"]
    accepted = [r for r in engine.audit_trail(pause.run_id) if r.action == "answer.accepted"]
    assert len(accepted) == 1
