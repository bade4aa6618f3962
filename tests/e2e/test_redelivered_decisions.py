"""A decision button's click Slack delivers again is acted on once.

A one-click decision (the buttons on a run's message, for a model that is one decision)
answers as the form does, but through ``block_actions``. Slack delivers the click again
when it took the first delivery for failed: over HTTP signed anew (``X-Slack-Retry-Num``),
over Socket Mode as a new envelope (``retry_attempt``), maybe to another replica. The person
clicked once: the run resumes once, with one audit record of the decision, and nobody is
told in the channel that it was "already answered" (by the person themselves).
"""

from __future__ import annotations

import json

from signoff.bot.sandbox import ConditionTimeout, Driver, Message, SlackSandbox
from signoff.bot.slack import ids
from signoff.bot.testing import SIGNING_SECRET, RunningBot
from signoff.engine import Engine, RunState, flow, pause_flow_run
from signoff.engine.input import RunInput
from tests.support.replicas import another_replica
from tests.support.waiting import wait_for

CHANNEL = "C0GENERAL"
#: what the second click on a prompt already decided is told (bot.slack.interactions)
ALREADY = "already answered"


class Verdict(RunInput):
    approved: bool
    comment: str = ""


@flow(name="rdd-one")
def rdd_one() -> bool:
    return pause_flow_run(Verdict, timeout=600).approved


@flow(name="rdd-two", approvers=["U0ALICE", "U0BOB"])
def rdd_two() -> list[str]:
    return [str(a.responder) for a in pause_flow_run(Verdict, timeout=600, quorum=2)]


def prompt(slack: SlackSandbox, run_id: str) -> Message:
    """The run's message: its prompt, with the decision buttons."""
    return slack.wait_for(
        lambda ws: next((m for m in ws.channel(CHANNEL).messages if run_id[:8] in m.text), None),
        timeout=10,
    )


def actions(engine: Engine, run_id: str) -> list[str]:
    return [r.action for r in engine.audit_trail(run_id)]


def approve(engine: Engine, slack: SlackSandbox, driver: Driver, user: str, run_id: str) -> None:
    """``user`` clicks the run's first decision button ("Approve"), and it is acted on."""
    before = actions(engine, run_id).count("answer.received")
    pressed = driver.click(user, prompt(slack, run_id), action_id=f"{ids.DECIDE}:0")
    assert pressed.status == 200
    wait_for(
        lambda: actions(engine, run_id).count("answer.received") > before,
        timeout=10,
        what="the decision",
    )


def settled(slack: SlackSandbox, user: str) -> list[str]:
    """What ``user`` was told privately, once nothing new has come for 1.5 s: a reply to the
    first click may still be on its way when the click is delivered again, and the
    redelivery's listener would run after its ack."""
    for _ in range(10):
        count = len(slack.ephemeral(user))
        try:
            slack.wait_for(lambda ws: len(slack.ephemeral(user)) > count or None, timeout=1.5)
        except ConditionTimeout:
            break
    return [m.text for m in slack.ephemeral(user)]


def everything_said(slack: SlackSandbox, run_id: str) -> str:
    """The run's message, its thread and every ephemeral in the channel, as one text."""
    root = prompt(slack, run_id)
    said = [json.dumps(root.blocks), *(m.text for m in slack.thread(CHANNEL, root.ts))]
    said += [m.text for user in ("U0ALICE", "U0BOB") for m in slack.ephemeral(user)]
    return "\n".join(said)


def completed(engine: Engine, run_id: str) -> str | None:
    return wait_for(
        lambda: (r := engine.get_run(run_id)).state is RunState.COMPLETED and r, timeout=15
    ).result


def test_a_decision_slack_delivers_again_over_http_resumes_the_run_once(
    engine: Engine, bot: RunningBot
) -> None:
    run = engine.submit("rdd-one", {})
    approve(engine, bot.slack, bot.driver, "alice", run.id)
    again = bot.driver.redeliver(attempt=1, reason="http_timeout")
    assert (again.status, again.body, again.problems) == (200, b"", ())

    assert completed(engine, run.id) == "True"
    # A decision that completes the input tells the clicker nothing privately: the run's
    # message says it. The redelivery adds nothing, "already answered" least of all.
    assert settled(bot.slack, "alice") == []
    assert actions(engine, run.id).count("answer.received") == 1
    assert "refused" not in actions(engine, run.id)
    [pause] = engine.detail(run.id).pauses
    assert [a.responder for a in pause.answers] == ["U0ALICE"]
    notes = [m.text for m in bot.slack.thread(CHANNEL, prompt(bot.slack, run.id).ts)]
    assert len(notes) == len(set(notes))
    assert ALREADY not in everything_said(bot.slack, run.id)


def test_a_quorum_decision_slack_delivers_again_counts_once(
    engine: Engine, bot: RunningBot
) -> None:
    run = engine.submit("rdd-two", {})
    approve(engine, bot.slack, bot.driver, "alice", run.id)
    again = bot.driver.redeliver(attempt=2, reason="http_timeout")
    assert (again.status, again.body, again.problems) == (200, b"", ())

    # Told once that her answer counts; not also "You already answered this".
    assert settled(bot.slack, "alice") == ["Recorded: answer 1 of the 2 this needs."]
    assert actions(engine, run.id) == ["run.started", "answer.received"]
    assert engine.get_run(run.id).state is not RunState.COMPLETED

    approve(engine, bot.slack, bot.driver, "bob", run.id)
    assert completed(engine, run.id) == "['U0ALICE', 'U0BOB']"
    assert actions(engine, run.id).count("answer.received") == 2
    assert ALREADY not in everything_said(bot.slack, run.id)


def test_a_decision_redelivered_over_socket_mode_counts_once(
    engine: Engine, socket_bot: tuple[SlackSandbox, Driver]
) -> None:
    slack, driver = socket_bot
    run = engine.submit("rdd-two", {})
    approve(engine, slack, driver, "alice", run.id)
    again = driver.redeliver(attempt=1, reason="timeout")
    assert (again.status, again.json, again.problems) == (200, None, ())

    assert settled(slack, "alice") == ["Recorded: answer 1 of the 2 this needs."]
    assert actions(engine, run.id) == ["run.started", "answer.received"]
    [pause] = engine.detail(run.id).pauses
    assert [a.responder for a in pause.answers] == ["U0ALICE"]
    assert ALREADY not in everything_said(slack, run.id)


def test_a_decision_delivered_again_to_another_replica_counts_once(
    engine: Engine, bot: RunningBot, database_url: str
) -> None:
    run = engine.submit("rdd-two", {})
    approve(engine, bot.slack, bot.driver, "alice", run.id)
    with another_replica(bot, database_url) as replica:
        to_replica = bot.slack.driver(f"{replica.url}/slack/events", SIGNING_SECRET)
        again = to_replica.redeliver(reason="http_timeout", delivery=bot.driver.last_delivery)
        assert (again.status, again.problems) == (200, ())
        assert settled(bot.slack, "alice") == ["Recorded: answer 1 of the 2 this needs."]
    assert actions(engine, run.id) == ["run.started", "answer.received"]
    assert ALREADY not in everything_said(bot.slack, run.id)
