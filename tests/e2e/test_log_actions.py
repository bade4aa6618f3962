"""Every record Signoff's loggers carry has an ``action``: the stable key a log pipeline
filters and alerts on (a record without one is ``null`` in the JSON format, ``-`` in text).

Libraries that log through a Signoff logger (Bolt, and slack_sdk's Socket Mode client,
through the app's logger) are held to it too, and their DEBUG lines, which hold whole
request bodies and envelopes, never reach the handlers.
"""

from __future__ import annotations

import json
import logging

import pytest

from signoff.bot.sandbox import Driver, SlackSandbox
from signoff.bot.sandbox.driver import VERIFICATION_TOKEN
from signoff.bot.testing import outcome, running_bot
from signoff.engine import Engine, RunState, flow, pause_flow_run
from signoff.engine.input import RunInput
from tests.support.waiting import wait_for


class Spend(RunInput):
    amount: int


@flow(name="log-actions-spend")
def log_actions_spend() -> int:
    return pause_flow_run(wait_for_input=Spend, timeout=600).amount


def _without_action(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Signoff's records without an action, each kind once (logger, level, message start)."""
    return sorted(
        {
            f"{r.name} {r.levelname} {r.getMessage()[:60]}"
            for r in caplog.records
            if r.name.startswith("signoff.") and not getattr(r, "action", None)
        }
    )


def _answered(engine: Engine, run_id: str) -> None:
    done = wait_for(lambda: (r := engine.get_run(run_id)).state.is_final and r, timeout=15)
    assert (done.state, done.result) == (RunState.COMPLETED, "7")


def test_every_record_of_a_run_answered_over_http_has_an_action(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with running_bot(engine=engine) as bot:
        run = engine.submit("log-actions-spend", {}, started_by="U0CAROL")
        prompt = bot.root_message(run.id)
        bot.driver.click("alice", prompt, action_id="provide_input")
        bot.slack.wait_for(lambda ws: ws.open_view("alice"), timeout=10)
        bot.driver.submit("alice", {"amount": 7})
        _answered(engine, run.id)
        bot.driver.slash_command("alice", "/runs", "help")
    assert [r for r in caplog.records if r.name.startswith("signoff.")]
    assert _without_action(caplog) == []


def test_every_record_over_socket_mode_has_an_action_and_no_envelope_is_logged(
    engine: Engine,
    socket_bot: tuple[SlackSandbox, Driver],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """At DEBUG, the Socket Mode client logged each envelope it got and each ack it sent,
    whole (a /runs command's response_url, with which anyone may post in the channel for
    30 minutes, and the verification token), through Bolt's logger, without an action."""
    caplog.set_level(logging.DEBUG)
    slack, driver = socket_bot
    slack.socket_mode.wait_for_connections(1)
    run = engine.submit("log-actions-spend", {})
    prompt = slack.wait_for(
        lambda ws: next(
            (m for m in ws.channel("C0GENERAL").messages if run.id[:8] in m.text), None
        ),
        timeout=10,
    )
    driver.click("alice", prompt, action_id="provide_input")
    slack.wait_for(lambda ws: ws.open_view("U0ALICE"), timeout=10)
    driver.submit("alice", {"amount": 7})
    assert "Answer recorded" in json.dumps(outcome(slack, "alice").view)
    _answered(engine, run.id)
    driver.slash_command("alice", "/runs", "help")
    slack.wait_for(lambda ws: ws.ephemeral("U0ALICE")[-1], timeout=10)

    assert _without_action(caplog) == []
    # The bot's records (the sandbox's own are a fake Slack's, like its access log).
    logged = "\n".join(
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("signoff.") and not r.name.startswith("signoff.bot.sandbox")
    )
    assert "response_url" not in logged and VERIFICATION_TOKEN not in logged
