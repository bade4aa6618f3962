"""Who may answer, and what happens to answers that come too late, over real HTTP.

Approvers are user ids or Slack user groups; ``forbid_starter`` refuses the run's starter.
A refused person is told so privately and nothing changes. A form submitted after the
pause was answered, timed out or cancelled gets a clear notice and changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pydantic
import pytest

from signoff.bot.slack import ids
from signoff.bot.testing import RunningBot, running_bot
from signoff.engine import Engine, PauseStatus, PauseTimeout, RunState, flow, pause_flow_run
from signoff.engine.input import RunInput
from tests.support.waiting import wait_for


class Amount(RunInput):
    amount: int = pydantic.Field(ge=1, le=100)


@flow(name="ans-sre-or-alice", approvers=["U0ALICE", "S0SRE"])
def ans_sre_or_alice() -> int:
    return pause_flow_run(wait_for_input=Amount, timeout=600).amount


@flow(name="ans-four-eyes", forbid_starter=True)
def ans_four_eyes() -> int:
    return pause_flow_run(wait_for_input=Amount, timeout=600).amount


@flow(name="ans-open")
def ans_open(timeout: float = 600) -> int:
    try:
        return pause_flow_run(wait_for_input=Amount, timeout=timeout).amount
    except PauseTimeout:
        return -1


@pytest.fixture
def bot(engine: Engine) -> Iterator[RunningBot]:
    with running_bot(engine=engine) as running:
        running.slack.add_usergroup("S0SRE", "sre", ["U0BOB"])
        yield running


def open_form(bot: RunningBot, user: str, message, **click):
    bot.driver.click(user, message, action_id=ids.PROVIDE_INPUT, **click)
    return bot.slack.wait_for(lambda ws: ws.open_view(user), timeout=10)


def refusal(bot: RunningBot, user: str, before: int) -> str:
    return bot.slack.wait_for(lambda ws: ws.ephemeral(user)[before:][-1], timeout=10).text


def notice(bot: RunningBot, user: str) -> str:
    view = bot.outcome(user)
    assert view.callback_id != ids.INPUT_VIEW
    return json.dumps(view.blocks)


def finished(engine: Engine, run_id: str):
    return wait_for(lambda: (r := engine.get_run(run_id)).state.is_final and r, timeout=15)


def test_approvers_by_user_id_and_by_user_group(engine: Engine, bot: RunningBot) -> None:
    run = engine.submit("ans-sre-or-alice", {})
    prompt = bot.root_message(run.id)
    assert "<@U0ALICE>, <!subteam^S0SRE>" in json.dumps(prompt.blocks)

    bot.driver.click("carol", prompt, action_id=ids.PROVIDE_INPUT)
    assert refusal(bot, "carol", 0) == "Only <@U0ALICE>, <!subteam^S0SRE> may answer this."
    assert bot.slack.open_view("carol") is None
    assert engine.get_pause(run.id, "1").status is PauseStatus.WAITING

    # Alice is named; Bob is in the group. Either may open the form; Bob answers.
    assert open_form(bot, "alice", prompt).callback_id == ids.INPUT_VIEW
    open_form(bot, "bob", prompt)
    assert bot.driver.submit("bob", {"amount": 7}).status == 200
    assert (finished(engine, run.id).result, engine.get_pause(run.id, "1").responder) == (
        "7",
        "U0BOB",
    )
    assert bot.slack.calls("usergroups.users.list")  # membership came from Slack


def test_the_starter_is_refused_when_four_eyes_are_required(
    engine: Engine, bot: RunningBot
) -> None:
    run = engine.submit("ans-four-eyes", {}, started_by="U0CAROL")
    prompt = bot.root_message(run.id)
    assert "(not <@U0CAROL>, who started it)" in json.dumps(prompt.blocks)

    bot.driver.click("carol", prompt, action_id=ids.PROVIDE_INPUT)
    assert refusal(bot, "carol", 0) == "You started this run, so someone else has to answer it."
    assert bot.slack.open_view("carol") is None

    # A form that reaches the starter anyway (forwarded, or opened before a rule change)
    # is checked again on submit, on the server.
    form = open_form(bot, "bob", prompt)
    bot.slack.workspace.open_modal("U0CAROL", form.view)
    reply = bot.driver.submit("carol", {"amount": 3})
    assert reply.response_action == "update" and not reply.problems
    assert "someone else has to answer it" in notice(bot, "carol")
    assert engine.get_pause(run.id, "1").status is PauseStatus.WAITING

    assert bot.driver.submit("bob", {"amount": 4}).status == 200
    assert finished(engine, run.id).result == "4"


def test_two_people_submit_the_same_prompt(engine: Engine, bot: RunningBot) -> None:
    run = engine.submit("ans-open", {})
    prompt = bot.root_message(run.id)
    listing_reply = bot.driver.slash_command("carol", "/runs")
    assert listing_reply.status == 200
    listing = bot.slack.wait_for(lambda ws: ws.ephemeral("carol")[-1])

    open_form(bot, "alice", prompt)
    open_form(bot, "bob", prompt)
    assert bot.driver.submit("alice", {"amount": 5}).status == 200
    assert "Answer recorded" in json.dumps(bot.outcome("alice").view)  # stored first
    late = bot.driver.submit("bob", {"amount": 9})
    assert late.status == 200 and late.response_action == "update" and not late.problems
    assert "This input was already answered by <@U0ALICE>." in notice(bot, "bob")

    assert finished(engine, run.id).result == "5"
    [pause] = engine.detail(run.id).pauses
    assert (pause.responder, pause.response) == ("U0ALICE", {"amount": 5})

    # A button from a list shown before the answer: nothing to answer any more.
    bot.driver.click("carol", listing, action_id=ids.PROVIDE_INPUT, value=run.id)
    assert "not waiting for input" in refusal(bot, "carol", 1)
    assert bot.slack.open_view("carol") is None


def test_a_form_submitted_after_the_deadline(engine: Engine, bot: RunningBot) -> None:
    run = engine.submit("ans-open", {"timeout": 2})
    open_form(bot, "alice", bot.root_message(run.id))
    wait_for(lambda: engine.get_pause(run.id, "1").status is PauseStatus.TIMED_OUT, timeout=5)

    reply = bot.driver.submit("alice", {"amount": 5})
    assert reply.response_action == "update"
    assert "Nobody answered in time" in notice(bot, "alice")
    assert finished(engine, run.id).result == "-1"  # the flow went on without an answer
    assert engine.get_pause(run.id, "1").responder is None


def test_a_form_submitted_after_the_run_was_cancelled(engine: Engine, bot: RunningBot) -> None:
    run = engine.submit("ans-open", {})
    open_form(bot, "bob", bot.root_message(run.id))
    engine.cancel(run.id, by="U0CAROL")

    reply = bot.driver.submit("bob", {"amount": 5})
    assert reply.response_action == "update"
    assert "This run was cancelled." in notice(bot, "bob")
    run = finished(engine, run.id)
    assert run.state is RunState.CANCELLED
    assert engine.get_pause(run.id, "1").status is PauseStatus.CANCELLED
