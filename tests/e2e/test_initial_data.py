"""with_initial_data in Slack: the form starts from the values, and still asks for them."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pydantic
import pytest
from pydantic import Field

from signoff.bot.sandbox import FieldRejected
from signoff.bot.testing import form_errors, running_bot
from signoff.engine import Engine, PauseStatus, RunState, flow, pause_flow_run
from signoff.engine.input import RunInput
from tests.support.waiting import wait_for


class Address(pydantic.BaseModel):
    city: str
    postcode: str = Field(pattern=r"^\d{4}$")


class Shipping(RunInput):
    address: Address


class Order(RunInput):
    quantity: int = Field(ge=1, le=10)
    reason: str


class Contact(pydantic.BaseModel):
    city: str
    postcode: str | None = None
    floor: int = 1


class Delivery(RunInput):
    contact: Contact | None = None


@flow(name="initial-shipping")
def shipping(address: dict[str, Any]) -> str:
    answer = pause_flow_run(wait_for_input=Shipping.with_initial_data(address=address))
    return f"{type(answer.address).__name__} {answer.address.city} {answer.address.postcode}"


@flow(name="initial-order")
def order(quantity: int) -> str:
    model = Order.with_initial_data(quantity=quantity, reason="looks fine")
    answer = pause_flow_run(wait_for_input=model)
    return f"{answer.quantity} {answer.reason}"


@flow(name="initial-delivery")
def delivery() -> str:
    start = Contact(city="Oslo", postcode="0150", floor=3)
    answer = pause_flow_run(wait_for_input=Delivery.with_initial_data(contact=start))
    return repr(answer.contact)


class Freeze(RunInput):
    starts: dt.datetime


@flow(name="initial-freeze")
def freeze() -> str:
    model = Freeze.with_initial_data(starts=dt.datetime(2026, 12, 18, 17, 0))
    answer = pause_flow_run(wait_for_input=model)
    # the flow's own naive datetimes: an answer with a zone raised TypeError here
    return "before the holidays" if answer.starts < dt.datetime(2026, 12, 24) else "late"


def _open_form(bot: Any, run_id: str) -> dict[str, Any]:
    bot.driver.click("bob", bot.root_message(run_id), action_id="provide_input")
    view: dict[str, Any] = bot.slack.wait_for(lambda ws: ws.open_view("U0BOB")).view
    return {b["block_id"]: b for b in view["blocks"] if b["type"] == "input"}


def _finished(engine: Engine, run_id: str) -> Any:
    return wait_for(lambda: (r := engine.get_run(run_id)).state.is_final and r, timeout=15)


def test_a_prefilled_nested_model_submitted_as_shown_reaches_the_flow_as_the_model(
    engine: Engine,
) -> None:
    with running_bot(engine=engine) as bot:
        run = engine.submit("initial-shipping", {"address": {"city": "Oslo", "postcode": "0150"}})
        inputs = _open_form(bot, run.id)
        assert inputs["field:address.city"]["element"]["initial_value"] == "Oslo"
        assert bot.driver.submit("bob", {}).status == 200  # as prefilled
        done = _finished(engine, run.id)
        assert (done.state, done.result) == (RunState.COMPLETED, "'Address Oslo 0150'")
        # The audit and the run's record show what Bob sent, not an empty answer.
        assert engine.detail(run.id).pauses[-1].response == {
            "address": {"city": "Oslo", "postcode": "0150"}
        }


def test_a_prefilled_value_the_model_refuses_comes_back_under_its_input(engine: Engine) -> None:
    with running_bot(engine=engine) as bot:
        run = engine.submit("initial-shipping", {"address": {"city": "Oslo", "postcode": "oslo"}})
        _open_form(bot, run.id)
        assert bot.driver.submit("bob", {}).response_action == "update"
        form = wait_for(lambda: (v := bot.outcome("bob")).callback_id == "signoff_input" and v)
        errors = wait_for(lambda: form_errors(bot.outcome("bob")))
        assert errors == {"field:address.postcode": "must match the pattern ^\\d{4}$"}
        assert form.callback_id == "signoff_input"
        pause = engine.waiting_pause(run.id)
        assert pause is not None and pause.status is PauseStatus.WAITING  # nothing resumed

        assert bot.driver.submit("bob", {"address.postcode": "0151"}).status == 200
        assert _finished(engine, run.id).result == "'Address Oslo 0151'"


@pytest.mark.parametrize("quantity", [2, 500])
def test_a_required_field_stays_required_when_prefilled(engine: Engine, quantity: int) -> None:
    with running_bot(engine=engine) as bot:
        run = engine.submit("initial-order", {"quantity": quantity})
        inputs = _open_form(bot, run.id)
        assert not inputs["field:quantity"]["optional"]
        assert not inputs["field:reason"]["optional"]
        assert inputs["field:reason"]["element"]["initial_value"] == "looks fine"
        # 500 is over the field's bound: the form leaves it out, and Bob must enter a number.
        shown = inputs["field:quantity"]["element"].get("initial_value")
        assert shown == (str(quantity) if quantity <= 10 else None)

        # Emptying a prefilled box is refused by the Slack client, as for any required input.
        with pytest.raises(FieldRejected) as refused:
            bot.driver.submit("bob", {"reason": ""})
        assert "field:reason" in refused.value.errors

        assert bot.driver.submit("bob", {"quantity": "3", "reason": "ship"}).status == 200
        done = _finished(engine, run.id)
        assert (done.state, done.result) == (RunState.COMPLETED, "'3 ship'")
        assert "Answer recorded" in json.dumps(bot.outcome("bob").view)


def test_every_value_of_a_prefilled_nested_model_shows_and_comes_back(engine: Engine) -> None:
    """The instance given to with_initial_data fills in its fields that have defaults of
    their own (postcode=None, floor=1) too, and reaches the flow as it was given."""
    with running_bot(engine=engine) as bot:
        run = engine.submit("initial-delivery", {})
        inputs = _open_form(bot, run.id)
        assert inputs["field:contact.postcode"]["element"]["initial_value"] == "0150"
        assert inputs["field:contact.floor"]["element"]["initial_value"] == "3"
        assert bot.driver.submit("bob", {}).status == 200  # as prefilled
        done = _finished(engine, run.id)
        assert done.result == repr(repr(Contact(city="Oslo", postcode="0150", floor=3)))


def test_a_datetime_given_without_a_zone_reaches_the_flow_without_one(engine: Engine) -> None:
    with running_bot(engine=engine) as bot:
        run = engine.submit("initial-freeze", {})
        inputs = _open_form(bot, run.id)
        shown = inputs["field:starts"]["element"]["initial_date_time"]
        assert shown == int(dt.datetime(2026, 12, 18, 17, 0, tzinfo=dt.UTC).timestamp())
        assert bot.driver.submit("bob", {}).status == 200  # as prefilled
        done = _finished(engine, run.id)
        assert (done.state, done.result) == (RunState.COMPLETED, "'before the holidays'")
        assert engine.detail(run.id).pauses[-1].response == {"starts": "2026-12-18T17:00:00"}
