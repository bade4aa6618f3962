"""Approving through a Slack user group while Slack will not say who is in it: a member is
told to try again, rather than refused by a rule that was never checked, and nothing is
recorded for them until it can be."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from signoff.bot.slack import ids
from signoff.bot.testing import RunningBot, running_bot
from signoff.engine import Engine, PauseStatus, flow, pause_flow_run
from signoff.engine.input import RunInput
from tests.support.waiting import wait_for


class Go(RunInput):
    approved: bool
    comment: str = ""


@flow(name="grp-ops", approvers=["U0ALICE", "S0OPS"], forbid_starter=True)
def grp_ops() -> bool:
    return pause_flow_run(Go, timeout=600).approved


@pytest.fixture
def bot(engine: Engine) -> Iterator[RunningBot]:
    with running_bot(engine=engine) as running:
        running.slack.add_usergroup("S0OPS", "ops", ["U0BOB", "U0CAROL"])
        yield running


def told(bot: RunningBot, user: str, before: int) -> str:
    return bot.slack.wait_for(lambda ws: ws.ephemeral(user)[before:][-1], timeout=15).text


@pytest.mark.parametrize(
    ("status", "error"), [(429, None), (503, None), (200, "fatal_error")], ids=str
)
def test_a_member_is_told_to_try_again_while_slack_will_not_list_the_group(
    engine: Engine, bot: RunningBot, status: int, error: str | None
) -> None:
    """Bob, in S0OPS, was told "Only <@U0ALICE>, <!subteam^S0OPS> may answer this." and a
    refusal of him was written to the trail."""
    run = engine.submit("grp-ops", {}, started_by="U0ALICE")
    prompt = bot.root_message(run.id)
    failing = threading.Event()
    failing.set()
    bot.slack.fail_next(
        "usergroups.users.list", 1000, status=status, error=error, when=lambda _: failing.is_set()
    )
    # Slack says the group changed (the same members): what was read of it is dropped.
    assert bot.driver.change_usergroup("S0OPS", ["bob", "carol"]).status == 200

    bot.driver.click("bob", prompt, action_id=f"{ids.DECIDE}:0")
    text = told(bot, "bob", 0)
    assert "Slack would not say who is in user group S0OPS" in text
    assert "try again" in text and "may answer this" not in text
    assert engine.get_pause(run.id, "1").status is PauseStatus.WAITING
    assert [r.action for r in engine.audit_trail(run.id)] == ["run.started"]

    failing.clear()
    bot.driver.click("bob", prompt, action_id=f"{ids.DECIDE}:0")
    assert wait_for(lambda: engine.get_run(run.id).state.is_final, timeout=15)
    answered = next(r for r in engine.audit_trail(run.id) if r.action == "answer.received")
    assert (answered.actor_id, answered.actor_name, answered.via) == ("U0BOB", "bob", "slack")


def test_someone_in_no_group_is_still_refused_by_the_rule_when_slack_lists_them_all(
    engine: Engine, bot: RunningBot
) -> None:
    run = engine.submit("grp-ops", {}, started_by="U0ALICE")
    prompt = bot.root_message(run.id)
    bot.slack.add_user("U0DAN", "dan")
    bot.driver.click("dan", prompt, action_id=f"{ids.DECIDE}:0")
    assert told(bot, "dan", 0) == "Only <@U0ALICE>, <!subteam^S0OPS> may answer this."
    refused = next(r for r in engine.audit_trail(run.id) if r.action == "refused")
    assert refused.actor_id == "U0DAN"


def test_a_member_is_not_kept_waiting_for_a_long_retry_after_on_the_group(
    engine: Engine, bot: RunningBot
) -> None:
    """Slack's Retry-After of 30 s was waited out up to five times while Bob heard nothing."""
    run = engine.submit("grp-ops", {}, started_by="U0ALICE")
    prompt = bot.root_message(run.id)
    failing = threading.Event()
    failing.set()
    bot.slack.fail_next(
        "usergroups.users.list", 1000, status=429, retry_after=30, when=lambda _: failing.is_set()
    )
    assert bot.driver.change_usergroup("S0OPS", ["bob", "carol"]).status == 200

    bot.driver.click("bob", prompt, action_id=f"{ids.DECIDE}:0")
    text = bot.slack.wait_for(lambda ws: ws.ephemeral("bob")[-1], timeout=10).text
    assert "Slack would not say who is in user group S0OPS just now (ratelimited)" in text
    assert [r.action for r in engine.audit_trail(run.id)] == ["run.started"]

    failing.clear()
    bot.driver.click("bob", prompt, action_id=f"{ids.DECIDE}:0")
    assert wait_for(lambda: engine.get_run(run.id).state.is_final, timeout=15)
