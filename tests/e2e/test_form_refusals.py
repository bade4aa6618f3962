"""What the model's types refuse is refused inside the modal, under the right input."""

from __future__ import annotations

import json
from decimal import Decimal

import pydantic
import pytest
from pydantic import AnyUrl, EmailStr, Field, HttpUrl

from signoff.bot.sandbox import Message, OpenView
from signoff.bot.testing import RunningBot, form_errors, running_bot
from signoff.engine import Engine, PauseStatus, RunState, flow, pause_flow_run
from signoff.engine.input import RunInput
from tests.support.threads import reply_with
from tests.support.waiting import wait_for


class Purchase(RunInput):
    buyer: EmailStr
    quote: HttpUrl
    docs: AnyUrl
    amount: Decimal = Field(ge=0, le=1000)
    code: str = Field(pattern=r"^[A-Z]{3}$", max_length=200, description="three capitals")


class Address(pydantic.BaseModel):
    city: str = Field(min_length=2)
    postcode: str = Field(pattern=r"^\d{4}$")


class Shipping(RunInput):
    name: str
    address: Address | None = None


@flow(name="form-purchase")
def purchase() -> str:
    answer = pause_flow_run(wait_for_input=Purchase)
    return f"{answer.buyer} {answer.amount}"


@flow(name="form-shipping")
def shipping() -> str:
    answer = pause_flow_run(wait_for_input=Shipping)
    return answer.address.city if answer.address else "no address"


GOOD = {
    "buyer": "ada@example.com",
    "quote": "https://quotes.example.com/42",
    "docs": "https://docs.example.com/spec",
    "amount": "12.50",
    "code": "ABC",
}


def bob_opens_form(bot: RunningBot, run_id: str) -> tuple[Message, OpenView]:
    """Bob clicks the run's prompt; the prompt, and the form it opened for him."""
    prompt = bot.root_message(run_id)
    bot.driver.click("bob", prompt, action_id="provide_input")
    return prompt, bot.slack.wait_for(lambda ws: ws.open_view("U0BOB"))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("buyer", "ada@", "must be an email address"),
        ("quote", "not a url", "must be a URL starting with http:// or https://"),
        # A URL all the same: the message says which ones the field takes.
        ("quote", "ftp://quotes.example.com", "must be a URL starting with http:// or https://"),
        ("docs", "not a url", "must be a URL"),
        ("amount", "-3", "must be at least 0"),
        ("amount", "1000.01", "must be at most 1000"),
        # A multiline box can send a final newline; pydantic's $ does not match before it.
        ("code", "ABC\n", "must match the pattern ^[A-Z]{3}$"),
    ],
)
def test_structural_refusals_stay_in_the_modal(
    engine: Engine, field: str, value: str, message: str
) -> None:
    with running_bot(engine=engine) as bot:
        run = engine.submit("form-purchase", {})
        bob_opens_form(bot, run.id)
        reply = bot.driver.submit("bob", {**GOOD, field: value}, client_checks=False)
        # Acknowledged at once; the schema's verdict comes back as the form again, with the
        # error under the input.
        assert (reply.status, reply.response_action, reply.problems) == (200, "update", ())
        form = bot.outcome("bob")
        assert form.callback_id == "signoff_input"
        assert form_errors(form) == {f"field:{field}": message}
        pause = engine.waiting_pause(run.id)
        assert pause is not None and pause.status is PauseStatus.WAITING  # nothing resumed

        # Everything else Bob entered is still there: fixing the one field is enough.
        assert bot.driver.submit("bob", {field: GOOD[field]}).status == 200
        assert "Answer recorded" in json.dumps(bot.outcome("bob").view)
        done = wait_for(lambda: (r := engine.get_run(run.id)).state.is_final and r, timeout=15)
        assert (done.state, done.result) == (RunState.COMPLETED, "'ada@example.com 12.50'")
        # The model never refused anything: every refusal happened in the modal.
        assert [p.status for p in engine.detail(run.id).pauses] == [PauseStatus.ACCEPTED]


def test_errors_in_an_optional_nested_model_land_under_the_inner_input(engine: Engine) -> None:
    with running_bot(engine=engine) as bot:
        run = engine.submit("form-shipping", {})
        bob_opens_form(bot, run.id)
        reply = bot.driver.submit(
            "bob", {"name": "Ada", "address.postcode": "12"}, client_checks=False
        )
        assert reply.response_action == "update"
        assert form_errors(bot.outcome("bob")) == {
            "field:address.city": "is required",
            "field:address.postcode": "must match the pattern ^\\d{4}$",
        }
        ok = bot.driver.submit("bob", {"address.city": "Oslo", "address.postcode": "0150"})
        assert ok.status == 200 and ok.response_action == "update"
        assert "Answer recorded" in json.dumps(bot.outcome("bob").view)
        done = wait_for(lambda: (r := engine.get_run(run.id)).state.is_final and r, timeout=15)
        assert done.result == "'Oslo'"


class Tag(RunInput):
    model_config = pydantic.ConfigDict(str_strip_whitespace=True)
    version: str = Field(pattern=r"^\d+\.\d+\.\d+$")


@flow(name="form-tag")
def tag() -> str:
    return pause_flow_run(wait_for_input=Tag).version


def test_a_pasted_space_the_model_strips_is_not_refused_in_the_modal(engine: Engine) -> None:
    with running_bot(engine=engine) as bot:
        run = engine.submit("form-tag", {})
        bob_opens_form(bot, run.id)
        # Copied from a release page with the line's end: the model drops it, so may the form.
        reply = bot.driver.submit("bob", {"version": "2.4.1\n"}, client_checks=False)
        assert (reply.status, reply.response_action) == (200, "update")
        assert "Answer recorded" in json.dumps(bot.outcome("bob").view)
        done = wait_for(lambda: (r := engine.get_run(run.id)).state.is_final and r, timeout=15)
        assert (done.state, done.result) == (RunState.COMPLETED, "'2.4.1'")


#: 98 inputs fit beside the context line and the divider; a description is one block more.
Wide = pydantic.create_model("Wide", __base__=RunInput, **{f"f{i}": (str, "x") for i in range(98)})  # type: ignore[call-overload]


@flow(name="form-wide")
def wide(described: bool) -> int:
    model = Wide.with_initial_data(description="Check each line.") if described else Wide
    return len(pause_flow_run(wait_for_input=model).model_dump())


def test_the_block_limit_is_met_at_the_boundary_and_reported_at_pause_past_it(
    engine: Engine,
) -> None:
    with running_bot(engine=engine) as bot:
        fits = engine.submit("form-wide", {"described": False})
        _, view = bob_opens_form(bot, fits.id)
        assert len(view.view["blocks"]) == 100
        assert bot.driver.submit("bob", {}).status == 200

        over = engine.submit("form-wide", {"described": True})
        root = bot.root_message(over.id)
        note = bot.slack.wait_for(
            lambda ws: next(
                (
                    m
                    for m in ws.channel(bot.channel).replies.get(root.ts, [])
                    if "cannot be shown as a Slack form" in m.text
                ),
                None,
            )
        )
        assert "101 blocks" in note.text
        assert wait_for(lambda: engine.get_run(over.id).state is RunState.CANCELLED)


def regions(count: int) -> list[str]:
    return [f"region-{i:04d}-{'x' * 20}" for i in range(count)]


def refuse_unknown(value: str, known: list[str]) -> str:
    if value not in known:
        raise ValueError(f"{value!r} is not a known region; choose one of: {', '.join(known)}")
    return value


class Pick(RunInput):
    """Refuses with some 3,700 characters: more than a section of a modal holds."""

    region: str

    @pydantic.field_validator("region")
    @classmethod
    def known(cls, value: str) -> str:
        return refuse_unknown(value, regions(120))


class PickAmongMany(RunInput):
    """Refuses with some 60,000 characters: more than a Slack message holds."""

    region: str

    @pydantic.field_validator("region")
    @classmethod
    def known(cls, value: str) -> str:
        return refuse_unknown(value, regions(2000))


@flow(name="form-long-refusal")
def long_refusal() -> str:
    try:
        return pause_flow_run(wait_for_input=Pick, timeout=600).region
    except pydantic.ValidationError:
        return "refused"


@flow(name="form-longer-refusal")
def longer_refusal() -> str:
    return pause_flow_run(wait_for_input=PickAmongMany, timeout=600).region


def test_a_refusal_longer_than_a_modal_section_is_shown_clipped(engine: Engine) -> None:
    with running_bot(engine=engine) as bot:
        run = engine.submit("form-long-refusal", {})
        prompt, _ = bob_opens_form(bot, run.id)
        assert bot.driver.submit("bob", {"region": "mars"}).status == 200

        # The modal did not stay on "Submitting...": it shows the start of the model's
        # words, cut to a section's 3,000 characters, and the advice after them.
        notice = bot.outcome("bob")
        assert notice.view["title"]["text"] == "Not accepted"
        text = notice.view["blocks"][0]["text"]["text"]
        assert len(text) <= 3000
        assert "'mars' is not a known region; choose one of: region-0000-" in text
        assert "…" in text and "region-0119" not in text
        assert text.endswith("if the run asks again, answer its newest prompt.")
        # The thread's note quotes the refusal too.
        note = reply_with(bot, prompt.ts, "answer was not accepted")
        assert "'mars' is not a known region" in note.text
        done = wait_for(lambda: (r := engine.get_run(run.id)).state.is_final and r, timeout=15)
        assert done.result == "'refused'"


def test_a_refusal_longer_than_a_message_still_reaches_the_thread(engine: Engine) -> None:
    with running_bot(engine=engine) as bot:
        run = engine.submit("form-longer-refusal", {})
        prompt, _ = bob_opens_form(bot, run.id)
        assert bot.driver.submit("bob", {"region": "mars"}).status == 200
        assert "not a known region" in json.dumps(bot.outcome("bob").view)

        # The flow does not catch the refusal, so the run fails with the model's 60,000
        # characters as its reason; the thread's notes and the first message still say so.
        note = reply_with(bot, prompt.ts, "answer was not accepted")
        assert "'mars' is not a known region" in note.text and len(note.text) <= 40_000
        failed = reply_with(bot, prompt.ts, "is *failed*")
        assert "input rejected by PickAmongMany" in failed.text
        bot.slack.wait_for(
            lambda ws: (
                "is *failed*" in json.dumps(ws.channel(bot.channel).message(prompt.ts).blocks)
            )
        )


class Codename(RunInput):
    codename: str

    @pydantic.field_validator("codename")
    @classmethod
    def not_taken(cls, value: str) -> str:
        raise ValueError(f"{value} is taken")


@flow(name="form-echoing-refusal")
def echoing_refusal() -> str:
    try:
        return pause_flow_run(wait_for_input=Codename, timeout=600).codename
    except pydantic.ValidationError:
        return "refused"


def test_markup_in_a_refusal_is_shown_as_text_in_the_modal(engine: Engine) -> None:
    with running_bot(engine=engine) as bot:
        run = engine.submit("form-echoing-refusal", {})
        prompt, _ = bob_opens_form(bot, run.id)
        assert bot.driver.submit("bob", {"codename": "<!channel> & co"}).status == 200

        # The model quoted what Bob typed; the modal shows it, as the thread does, rather
        # than letting Slack read it as a mention of everyone.
        text = bot.outcome("bob").view["blocks"][0]["text"]["text"]
        assert "codename: &lt;!channel&gt; &amp; co is taken" in text
        note = reply_with(bot, prompt.ts, "answer was not accepted")
        assert "&lt;!channel&gt; &amp; co is taken" in note.text
