"""A click Signoff refuses is one attempt, so the audit trail (``signoff audit``, ``/runs
show``) holds one record of it: whichever button was pressed, and whatever the reason."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from signoff.bot.slack import ids
from signoff.bot.testing import RunningBot, running_bot
from signoff.engine import Engine, flow, pause_flow_run
from signoff.engine.input import RunInput
from tests.support.waiting import wait_for


class Go(RunInput):
    approved: bool


@flow(name="ra-alice", approvers=["U0ALICE"])
def ra_alice() -> bool:
    return pause_flow_run(Go, timeout=600).approved


@flow(name="ra-two", approvers=["U0ALICE", "U0BOB"])
def ra_two() -> int:
    return len(pause_flow_run(Go, timeout=600, quorum=2))


@pytest.fixture
def bot(engine: Engine) -> Iterator[RunningBot]:
    with running_bot(engine=engine) as running:
        yield running


def refusals(engine: Engine, run_id: str) -> list[tuple[str | None, str]]:
    return [
        (r.actor_id, str(r.data.get("action")))
        for r in engine.audit_trail(run_id)
        if r.action == "refused"
    ]


def told(bot: RunningBot, user: str, before: int) -> str:
    """What ``user`` was told privately (in the channel, or in a notice) after a click."""

    def said(ws):
        if ws.ephemeral(user)[before:]:
            return ws.ephemeral(user)[-1].text
        view = ws.open_view(user)
        return view and json.dumps(view.view["blocks"])

    return bot.slack.wait_for(said, timeout=10)


@pytest.mark.parametrize(
    ("action_id", "action"),
    [(f"{ids.DECIDE}:0", "answer"), (ids.PROVIDE_INPUT, "answer"), (ids.REASSIGN, "reassign")],
)
def test_a_refused_click_is_audited_once(
    engine: Engine, bot: RunningBot, action_id: str, action: str
) -> None:
    run = engine.submit("ra-alice", {})
    prompt = bot.root_message(run.id)
    before = len(bot.slack.ephemeral("carol"))
    bot.driver.click("carol", prompt, action_id=action_id)
    assert "<@U0ALICE>" in told(bot, "carol", before)
    assert refusals(engine, run.id) == [("U0CAROL", action)]


def test_answering_a_quorum_twice_is_audited_once(engine: Engine, bot: RunningBot) -> None:
    run = engine.submit("ra-two", {})
    prompt = bot.root_message(run.id)
    bot.driver.click("alice", prompt, action_id=f"{ids.DECIDE}:0")
    wait_for(lambda: engine.get_pause(run.id, "1").answered_by == ("U0ALICE",))
    assert told(bot, "alice", 0) == "Recorded: answer 1 of the 2 this needs."
    before = len(bot.slack.ephemeral("alice"))
    bot.driver.click("alice", prompt, action_id=f"{ids.DECIDE}:0")
    assert "already answered" in told(bot, "alice", before)
    assert refusals(engine, run.id) == [("U0ALICE", "answer")]
