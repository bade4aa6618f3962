"""Slack delivering the same request again acts on it once, over HTTP and Socket Mode.

Slack delivers a request again when it took the first delivery for failed (no answer in
time): over HTTP signed anew, with ``X-Slack-Retry-Num``; over Socket Mode as a new
envelope with ``retry_attempt``. Either way it is the same interaction, with the same
``trigger_id``, and the person who typed or clicked once sees one outcome: one run, one
"Started" reply, one "Cancelled", whichever replica gets the redelivery.
"""

from __future__ import annotations

import json
import logging
import time

import pytest

from signoff.bot.sandbox import Driver, SlackSandbox
from signoff.bot.slack import ids
from signoff.bot.testing import SIGNING_SECRET, RunningBot, running_bot
from signoff.engine import Engine, RunState, flow, pause_flow_run
from signoff.engine.input import RunInput
from tests.support.holding import writes_held
from tests.support.replicas import another_replica
from tests.support.waiting import wait_for


class Go(RunInput):
    ok: bool = True


@flow(name="rd-wait")
def rd_wait(label: str) -> bool:
    return pause_flow_run(wait_for_input=Go, timeout=600).ok


def replies(slack: SlackSandbox, user: str, words: str) -> list[str]:
    return [m.text for m in slack.ephemeral(user) if words in m.text]


def settle(slack: SlackSandbox, user: str, words: str) -> list[str]:
    """What ``user`` was told with ``words`` in it, once the first reply is in and a
    redelivery has had the time to add another (it is answered, and acted on, by then)."""
    slack.wait_for(lambda ws: replies(slack, user, words) or None, timeout=10)
    # The redelivery's listener runs after its ack: an empty wait for its reply, bounded.
    with pytest.raises(AssertionError):
        slack.wait_for(lambda ws: len(replies(slack, user, words)) > 1 or None, timeout=1.5)
    return replies(slack, user, words)


def test_a_start_command_slack_delivers_again_starts_one_run(
    engine: Engine, bot: RunningBot
) -> None:
    assert bot.driver.slash_command("alice", "/runs", "start rd-wait label=x").status == 200
    wait_for(lambda: engine.list_runs(), timeout=10, what="the run")
    again = bot.driver.redeliver(attempt=1, reason="http_timeout")
    assert (again.status, again.body, again.problems) == (200, b"", ())
    assert len(settle(bot.slack, "U0ALICE", "Started")) == 1
    assert len(engine.list_runs()) == 1


def test_a_start_command_delivered_again_to_another_replica_starts_one_run(
    engine: Engine, bot: RunningBot, database_url: str
) -> None:
    assert bot.driver.slash_command("alice", "/runs", "start rd-wait label=x").status == 200
    wait_for(lambda: engine.list_runs(), timeout=10, what="the run")
    with another_replica(bot, database_url) as replica:
        # The same workspace's requests, delivered to the replica's URL.
        to_replica = bot.slack.driver(f"{replica.url}/slack/events", SIGNING_SECRET)
        delivery = bot.driver.last_delivery
        assert to_replica.redeliver(reason="http_timeout", delivery=delivery).status == 200
        assert len(settle(bot.slack, "U0ALICE", "Started")) == 1
        # A command typed afresh on the replica is acted on: the redelivery was recognised.
        assert to_replica.slash_command("alice", "/runs", "start rd-wait label=y").status == 200
        wait_for(lambda: len(engine.list_runs()) == 2, timeout=10, what="the fresh run")
    assert sorted(r.parameters["label"] for r in engine.list_runs()) == ["x", "y"]


def test_a_start_form_slack_delivers_again_starts_one_run(engine: Engine, bot: RunningBot) -> None:
    assert bot.driver.slash_command("alice", "/runs", "start rd-wait").status == 200
    form = bot.slack.wait_for(lambda ws: ws.open_view("U0ALICE"), timeout=10)
    assert form.callback_id == ids.START_VIEW
    submitted = bot.driver.submit("alice", {"label": "z"})
    assert (submitted.status, submitted.response_action) == (200, None)
    wait_for(lambda: engine.list_runs(), timeout=10, what="the run")
    again = bot.driver.redeliver(attempt=1, reason="http_timeout")
    assert (again.status, again.body) == (200, b"")
    assert len(settle(bot.slack, "U0ALICE", "Started")) == 1
    assert len(engine.list_runs()) == 1


def test_a_cancel_slack_delivers_again_is_answered_once(engine: Engine, bot: RunningBot) -> None:
    typed = engine.submit("rd-wait", {"label": "typed"}, started_by="U0ALICE")
    clicked = engine.submit("rd-wait", {"label": "clicked"}, started_by="U0ALICE")
    bot.root_message(typed.id)
    bot.root_message(clicked.id)

    assert bot.driver.slash_command("alice", "/runs", f"cancel {typed.id}").status == 200
    wait_for(lambda: engine.get_run(typed.id).state is RunState.CANCELLED, timeout=10)
    assert bot.driver.redeliver().status == 200
    assert settle(bot.slack, "U0ALICE", typed.id[:8]) == [
        f"Cancelled *rd-wait* run `{typed.id[:8]}`."
    ]

    listing = bot.driver.slash_command("alice", "/runs", "all")
    assert listing.status == 200
    shown = bot.slack.wait_for(
        lambda ws: next(
            (m for m in ws.ephemeral("U0ALICE") if clicked.id[:8] in json.dumps(m.blocks)), None
        ),
        timeout=10,
    )
    assert (
        bot.driver.click("alice", shown, action_id=ids.CANCEL_RUN, value=clicked.id).status == 200
    )
    wait_for(lambda: engine.get_run(clicked.id).state is RunState.CANCELLED, timeout=10)
    assert bot.driver.redeliver().status == 200
    # Told once that it is cancelled, not also that it was "already cancelled".
    assert settle(bot.slack, "U0ALICE", clicked.id[:8]) == [
        f"Cancelled *rd-wait* run `{clicked.id[:8]}`."
    ]


def test_a_start_command_redelivered_over_socket_mode_starts_one_run(
    engine: Engine, socket_bot: tuple[SlackSandbox, Driver]
) -> None:
    slack, driver = socket_bot
    assert driver.slash_command("alice", "/runs", "start rd-wait label=x").status == 200
    wait_for(lambda: engine.list_runs(), timeout=10, what="the run")
    again = driver.redeliver(attempt=1, reason="timeout")
    assert (again.status, again.json, again.problems) == (200, None, ())
    assert len(settle(slack, "U0ALICE", "Started")) == 1
    assert len(engine.list_runs()) == 1


def test_a_second_sandbox_on_the_same_database_is_not_taken_for_a_redelivery(
    engine: Engine,
) -> None:
    """A sandbox (the demo, a test of one's own flows) run again on a database that outlived
    the first one, or on the same Prefect server: its first command is a new interaction,
    as every one of Slack's is, not the first sandbox's again."""
    for label in ("first", "second"):
        with running_bot(engine=engine) as running:
            command = running.driver.slash_command("alice", "/runs", f"start rd-wait label={label}")
            assert command.status == 200
            assert len(settle(running.slack, "U0ALICE", "Started")) == 1
    assert sorted(r.parameters["label"] for r in engine.list_runs()) == ["first", "second"]


def test_an_event_redelivered_over_socket_mode_is_acted_on_once(
    socket_bot: tuple[SlackSandbox, Driver],
) -> None:
    """Over HTTP the edge claims an event's ``event_id``; Socket Mode has no edge, and a
    retried envelope (``retry_attempt``) published alice's Home tab a second time."""
    slack, driver = socket_bot
    assert driver.open_home("alice").status == 200
    slack.wait_for(lambda ws: ws.home_view("U0ALICE"), timeout=10)
    again = driver.redeliver(attempt=1, reason="timeout")
    assert again.status == 200
    # The redelivery's listener would run after its ack: an empty wait for it, bounded.
    with pytest.raises(AssertionError):
        slack.wait_for(lambda ws: len(ws.calls("views.publish")) > 1 or None, timeout=1.5)
    assert len(slack.calls("views.publish")) == 1


def test_runs_typed_over_socket_mode_while_another_writer_holds_the_database_says_so(
    engine: Engine,
    database_url: str,
    socket_bot: tuple[SlackSandbox, Driver],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Over Socket Mode the trigger's claim waited for its turn to write for as long as
    another process wrote: '/runs' got Slack's timeout, then ran late. As over HTTP, it is
    told within Slack's 3 s that the database is busy, and nothing was done."""
    slack, driver = socket_bot
    with caplog.at_level(logging.WARNING), writes_held(database_url, table="once_keys"):
        started = time.monotonic()
        reply = driver.slash_command("alice", "/runs", "start rd-wait label=busy")
        assert time.monotonic() - started < 3.0, "Slack shows a timeout after 3 s"
    assert reply.status == 200
    (said,) = slack.workspace.ephemeral("U0ALICE")
    assert "busy" in said.text and "nothing was done" in said.text
    assert [r for r in caplog.records if getattr(r, "action", None) == "redelivery_check_busy"]
    assert engine.list_runs() == []
    # Typed again once the writer is done, it starts the run.
    assert driver.slash_command("alice", "/runs", "start rd-wait label=busy").status == 200
    wait_for(lambda: engine.list_runs(), timeout=10, what="the run")
    assert [r.parameters["label"] for r in engine.list_runs()] == ["busy"]
