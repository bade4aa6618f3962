"""An input form's submission Slack delivers again is answered once, and shown as the first.

Slack delivers a form's submission again when it took the first delivery for failed: over
HTTP signed anew (``X-Slack-Retry-Num``), over Socket Mode as a new envelope
(``retry_attempt``). The modal then shows the answer to the redelivery. The person answered
once: the run gets one answer, one audit record of it, one note in its thread, and the
modal ends as the first delivery left it ("Answer recorded"), not with "already answered
by" themselves.
"""

from __future__ import annotations

import json

import pydantic

from signoff.bot.sandbox import Driver, SlackSandbox
from signoff.bot.slack import ids
from signoff.bot.testing import SIGNING_SECRET, RunningBot, form_errors, outcome
from signoff.engine import Engine, RunState, flow, pause_flow_run
from signoff.engine.input import RunInput
from tests.support.replicas import another_replica
from tests.support.waiting import wait_for


class Amount(RunInput):
    amount: int = pydantic.Field(ge=1, le=100)


@flow(name="redelivered-one")
def ra_one() -> int:
    return pause_flow_run(wait_for_input=Amount, timeout=600).amount


@flow(name="redelivered-two", approvers=["U0ALICE", "U0BOB"])
def ra_two() -> list[int]:
    return [a.value.amount for a in pause_flow_run(Amount, timeout=600, quorum=2)]


def shown(slack: SlackSandbox, user: str) -> str:
    return json.dumps(outcome(slack, user).blocks)


def answer(
    slack: SlackSandbox, driver: Driver, user: str, run_id: str, amount: int, **checks: bool
) -> str:
    """``user`` opens the run's form from its prompt and submits ``amount``; what the modal
    ends with."""
    prompt = slack.wait_for(
        lambda ws: next(
            (m for m in ws.channel("C0GENERAL").messages if run_id[:8] in m.text), None
        ),
        timeout=10,
    )
    driver.click(user, prompt, action_id=ids.PROVIDE_INPUT)
    slack.wait_for(lambda ws: ws.open_view(user), timeout=10)
    submitted = driver.submit(user, {"amount": amount}, **checks)
    assert (submitted.status, submitted.problems) == (200, ())
    return shown(slack, user)


def deliver_again(slack: SlackSandbox, driver: Driver, user: str, reason: str) -> str:
    """Slack delivers the last submission again; what the modal ends with."""
    again = driver.redeliver(attempt=1, reason=reason)
    assert (again.status, again.problems) == (200, ())
    return shown(slack, user)


def thread_notes(slack: SlackSandbox, run_id: str) -> list[str]:
    root = next(m for m in slack.channel("C0GENERAL").messages if run_id[:8] in m.text)
    return [m.text for m in slack.thread("C0GENERAL", root.ts)]


def answered_by(slack: SlackSandbox, run_id: str) -> str:
    """Who the run's message says answered, once it is completed."""
    root = slack.wait_for(
        lambda ws: next(
            (
                m
                for m in ws.channel("C0GENERAL").messages
                if run_id[:8] in m.text and "completed" in m.text
            ),
            None,
        ),
        timeout=10,
    )
    return json.dumps(root.blocks).split(":white_check_mark: ")[-1].split('"')[0]


def actions(engine: Engine, run_id: str) -> list[str]:
    return [r.action for r in engine.audit_trail(run_id)]


def test_an_answer_slack_delivers_again_over_http_is_recorded_once(
    engine: Engine, bot: RunningBot
) -> None:
    run = engine.submit("redelivered-one", {})
    first = answer(bot.slack, bot.driver, "alice", run.id, 7)
    assert f"your answer to run `{run.id[:8]}` is recorded" in first

    # The modal ends as the first delivery left it, not "already answered by <@U0ALICE>".
    assert deliver_again(bot.slack, bot.driver, "alice", "http_timeout") == first
    wait_for(lambda: engine.get_run(run.id).state is RunState.COMPLETED, timeout=15)
    assert engine.get_run(run.id).result == "7"
    assert answered_by(bot.slack, run.id) == "Answered by <@U0ALICE>"
    [pause] = engine.detail(run.id).pauses
    assert [a.responder for a in pause.answers] == ["U0ALICE"]
    assert actions(engine, run.id).count("answer.received") == 1
    assert "refused" not in actions(engine, run.id)


def test_a_quorum_answer_slack_delivers_again_counts_once(engine: Engine, bot: RunningBot) -> None:
    run = engine.submit("redelivered-two", {})
    first = answer(bot.slack, bot.driver, "alice", run.id, 3)
    assert "Your answer is 1 of the 2 this input needs" in first

    # Not "You already answered this"; and no refusal recorded against her.
    assert deliver_again(bot.slack, bot.driver, "alice", "http_timeout") == first
    assert actions(engine, run.id) == ["run.started", "answer.received"]

    assert "recorded" in answer(bot.slack, bot.driver, "bob", run.id, 4)
    wait_for(lambda: engine.get_run(run.id).state is RunState.COMPLETED, timeout=15)
    assert engine.get_run(run.id).result == "[3, 4]"
    assert actions(engine, run.id).count("answer.received") == 2
    # The run's message and thread say who answered, each person once.
    assert answered_by(bot.slack, run.id) == "Answered by <@U0ALICE>, <@U0BOB>"
    notes = thread_notes(bot.slack, run.id)
    assert len(notes) == len(set(notes))


def test_a_refused_answer_slack_delivers_again_is_refused_once(
    engine: Engine, bot: RunningBot
) -> None:
    run = engine.submit("redelivered-one", {})
    answer(bot.slack, bot.driver, "alice", run.id, 500, client_checks=False)
    refused = outcome(bot.slack, "alice")
    assert refused.callback_id == ids.INPUT_VIEW and list(form_errors(refused)) == ["field:amount"]
    again = bot.driver.redeliver(attempt=1, reason="http_timeout")
    assert (again.status, again.problems) == (200, ())
    # The form again, to answer afresh; the refusal is recorded once.
    form = outcome(bot.slack, "alice")
    assert form.callback_id == ids.INPUT_VIEW
    assert actions(engine, run.id).count("answer.invalid") == 1

    assert bot.driver.submit("alice", {"amount": 5}).status == 200
    assert "recorded" in shown(bot.slack, "alice")
    wait_for(lambda: engine.get_run(run.id).state is RunState.COMPLETED, timeout=15)


def test_an_answer_redelivered_over_socket_mode_is_recorded_once(
    engine: Engine, socket_bot: tuple[SlackSandbox, Driver]
) -> None:
    slack, driver = socket_bot
    run = engine.submit("redelivered-two", {})
    first = answer(slack, driver, "alice", run.id, 3)
    assert "Your answer is 1 of the 2 this input needs" in first

    assert deliver_again(slack, driver, "alice", "timeout") == first
    assert actions(engine, run.id) == ["run.started", "answer.received"]
    [pause] = engine.detail(run.id).pauses
    assert [a.responder for a in pause.answers] == ["U0ALICE"]


def test_an_answer_delivered_again_to_another_replica_is_recorded_once(
    engine: Engine, bot: RunningBot, database_url: str
) -> None:
    run = engine.submit("redelivered-two", {})
    first = answer(bot.slack, bot.driver, "alice", run.id, 3)
    with another_replica(bot, database_url) as replica:
        to_replica = bot.slack.driver(f"{replica.url}/slack/events", SIGNING_SECRET)
        again = to_replica.redeliver(reason="http_timeout", delivery=bot.driver.last_delivery)
        assert (again.status, again.problems) == (200, ())
        assert shown(bot.slack, "alice") == first
    assert actions(engine, run.id) == ["run.started", "answer.received"]
