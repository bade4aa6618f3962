"""The reference's three examples, with only their import lines changed, sync and async."""

from __future__ import annotations

import asyncio
import threading
from typing import Literal

import pydantic

from signoff.engine import (
    Engine,
    Pause,
    PauseStatus,
    RunState,
    flow,
    get_run_logger,
    pause_flow_run,
)
from signoff.engine.input import RunInput
from tests.support.waiting import wait_for


class UserNameInput(RunInput):
    name: str


class ShirtOrder(RunInput):
    size: Literal["small", "medium", "large", "xlarge"]
    color: Literal["red", "green", "black"]

    @pydantic.validator("color")
    def validate_age(cls, value, values, **kwargs):
        if value == "green" and values["size"] == "small":
            raise ValueError("Green is only in-stock for medium, large, and XL sizes.")
        return value


def answer_when_waiting(
    engine: Engine, answers: list[dict], responder: str = "alice"
) -> threading.Thread:
    """Answer each pause of the newest run in turn, from another thread, as a person would."""

    def run() -> None:
        for answer in answers:
            pause = wait_for(
                lambda: next(
                    (p for r in engine.list_runs(limit=1) if (p := engine.waiting_pause(r.id))),
                    None,
                ),
                what="a waiting pause",
            )
            engine.resume(pause.run_id, answer, responder=responder)
            wait_for(
                lambda p=pause: engine.get_pause(p.run_id, p.key).status is not PauseStatus.WAITING
            )

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def logs_of(engine: Engine) -> list[str]:
    return [entry.message for entry in engine.detail(engine.list_runs(limit=1)[0].id).logs]


def test_greet_user_async(engine: Engine) -> None:
    @flow
    async def greet_user():
        logger = get_run_logger()
        user_input = await pause_flow_run(wait_for_input=UserNameInput)
        logger.info(f"Hello, {user_input.name}!")

    answer_when_waiting(engine, [{"name": "Ada"}])
    asyncio.run(greet_user())
    assert logs_of(engine) == ["Hello, Ada!"]
    assert engine.list_runs()[0].flow_name == "greet-user"


def test_greet_user_with_initial_data(engine: Engine) -> None:
    @flow
    def greet_user():
        logger = get_run_logger()
        user_input = pause_flow_run(
            wait_for_input=UserNameInput.with_initial_data(name="anonymous")
        )
        if user_input.name == "anonymous":
            logger.info("Hello, stranger!")
        else:
            logger.info(f"Hello, {user_input.name}!")

    answer_when_waiting(engine, [{}])  # nothing typed: the initial value stands
    greet_user()
    assert logs_of(engine) == ["Hello, stranger!"]
    pause = engine.detail(engine.list_runs()[0].id).pauses[0]
    assert pause.schema["properties"]["name"]["default"] == "anonymous"
    assert pause.schema["title"] == "UserNameInput"


def test_greet_user_with_initial_data_async(engine: Engine) -> None:
    @flow
    async def greet_user():
        logger = get_run_logger()
        user_input = await pause_flow_run(
            wait_for_input=UserNameInput.with_initial_data(name="anonymous")
        )
        if user_input.name == "anonymous":
            logger.info("Hello, stranger!")
        else:
            logger.info(f"Hello, {user_input.name}!")

    answer_when_waiting(engine, [{"name": "Grace"}])
    asyncio.run(greet_user())
    assert logs_of(engine) == ["Hello, Grace!"]


def test_shirt_order_loop(engine: Engine) -> None:
    @flow
    def get_shirt_order():
        logger = get_run_logger()
        shirt_order = None
        while shirt_order is None:
            try:
                shirt_order = pause_flow_run(wait_for_input=ShirtOrder)
            except pydantic.ValidationError as exc:
                logger.error(f"Invalid size and color combination: {exc}")
        logger.info(f"Shirt order: {shirt_order.size}, {shirt_order.color}")

    answer_when_waiting(
        engine, [{"size": "small", "color": "green"}, {"size": "medium", "color": "green"}]
    )
    get_shirt_order()
    detail = engine.detail(engine.list_runs()[0].id)
    assert detail.run.state is RunState.COMPLETED
    first, second = detail.pauses
    assert (first.key, first.status, first.responder) == ("1", PauseStatus.REJECTED, "alice")
    assert first.errors == {"color": "Green is only in-stock for medium, large, and XL sizes."}
    # The second ask starts from the rejected answer, so only the wrong field needs fixing.
    assert (second.key, second.initial) == ("2", {"size": "small", "color": "green"})
    assert second.status is PauseStatus.ACCEPTED
    assert detail.logs[-1].message == "Shirt order: medium, green"
    assert "Invalid size and color combination" in detail.logs[0].message


def test_the_answer_a_flows_model_refuses_comes_back_to_the_answerer_with_the_reasons(
    engine: Engine,
) -> None:
    @flow
    def get_shirt_order():
        try:
            return pause_flow_run(wait_for_input=ShirtOrder)
        except pydantic.ValidationError:
            return None

    returned: list[Pause] = []

    def answer() -> None:
        pause = wait_for(
            lambda: next(
                (p for r in engine.list_runs(limit=1) if (p := engine.waiting_pause(r.id))), None
            )
        )
        returned.append(engine.resume(pause.run_id, {"size": "small", "color": "green"}, "al"))

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    assert get_shirt_order() is None
    thread.join(10)
    # The caller (the bot, a script) can tell the person why, without reading the pause.
    assert returned[0].status is PauseStatus.REJECTED
    assert returned[0].errors == {
        "color": "Green is only in-stock for medium, large, and XL sizes."
    }


def test_only_the_ask_right_after_a_refusal_starts_from_the_refused_answer(
    engine: Engine,
) -> None:
    def ask(model):
        while True:
            try:
                return pause_flow_run(wait_for_input=model)
            except pydantic.ValidationError:
                pass

    @flow
    def two_shirts():
        first = ask(ShirtOrder)
        second = ask(ShirtOrder.with_initial_data(size="xlarge", color="black"))
        return first.size, second.size

    answer_when_waiting(
        engine,
        [
            {"size": "small", "color": "green"},  # refused
            {"size": "medium", "color": "red"},
            {"size": "xlarge", "color": "black"},
        ],
    )
    assert two_shirts() == ("medium", "xlarge")
    refused, fixed, second_shirt = engine.detail(engine.list_runs()[0].id).pauses
    assert refused.status is PauseStatus.REJECTED
    assert fixed.initial == {"size": "small", "color": "green"}
    # A new question after an accepted answer starts from its own initial data, not from
    # a refusal two questions back.
    assert second_shirt.initial == {}
    assert second_shirt.schema["properties"]["size"]["default"] == "xlarge"


def test_shirt_order_without_loop_fails_the_run_naming_the_error(engine: Engine) -> None:
    @flow
    def get_shirt_order():
        pause_flow_run(wait_for_input=ShirtOrder)

    answer_when_waiting(engine, [{"size": "small", "color": "green"}])
    try:
        get_shirt_order()
    except pydantic.ValidationError:
        pass
    else:
        raise AssertionError("the flow should have raised ValidationError")
    run = engine.list_runs()[0]
    assert run.state is RunState.FAILED
    assert run.state_message == (
        "input rejected by ShirtOrder: color: Green is only in-stock for medium, large, and XL sizes."
    )
