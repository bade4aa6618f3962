"""Approvals through the Slack sandbox: one-click decisions with confirmation, refusals, quorum,
reassignment, escalation, direct messages, the Home tab and the trail in ``/runs show``."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Literal

import pytest

from signoff.bot.sandbox import render_view
from signoff.bot.slack import ids
from signoff.bot.testing import RunningBot, running_bot
from signoff.engine import (
    Engine,
    PauseStatus,
    PauseTimeout,
    RunState,
    flow,
    pause_flow_run,
    task,
)
from signoff.engine.input import RunInput
from tests.support.forging import reopen_pointed_at
from tests.support.running import start
from tests.support.threads import reply_with
from tests.support.waiting import wait_for

#: past the escalations below (300 s) and before their deadlines (600 s): an escalation
#: found due only after its pause's deadline is not made
ESCALATION_DUE = timedelta(seconds=301)


class Go(RunInput):
    approved: bool
    comment: str = ""


class Pick(RunInput):
    size: Literal["small", "large"]


@flow(name="sl-go", approvers=["U0ALICE", "S0OPS"], confirm=True)
def sl_go() -> str:
    answer = pause_flow_run(Go, timeout=600)
    return f"{answer.approved}:{answer.comment}"


@flow(name="sl-pick")
def sl_pick() -> str:
    return pause_flow_run(Pick, timeout=600).size


@flow(name="sl-two", approvers=["U0ALICE", "U0BOB"])
def sl_two() -> list[str]:
    answers = pause_flow_run(Go, timeout=600, quorum=2)
    return [str(a.responder) for a in answers]


@flow(name="sl-two-of-three", approvers=["U0ALICE", "U0BOB", "U0CAROL"])
def sl_two_of_three() -> list[str]:
    answers = pause_flow_run(Go, timeout=600, quorum=2)
    return [str(a.responder) for a in answers]


@flow(name="sl-dm-two", approvers=["U0ALICE", "U0BOB", "U0CAROL"])
def sl_dm_two() -> int:
    return len(pause_flow_run(Go, timeout=600, quorum=2, notify="dm"))


@flow(name="sl-two-escalated", approvers=["U0ALICE", "U0BOB"])
def sl_two_escalated() -> int:
    answers = pause_flow_run(Go, timeout=600, quorum=2, escalate_after=300, escalate_to=["U0CAROL"])
    return len(answers)


@flow(name="sl-two-in-time", approvers=["U0ALICE", "U0BOB", "U0CAROL"])
def sl_two_in_time() -> str:
    try:
        return str(len(pause_flow_run(Go, timeout=600, quorum=2)))
    except PauseTimeout:
        return "too few"


@flow(name="sl-veto", approvers=["U0ALICE", "U0BOB", "U0CAROL"])
def sl_veto() -> bool:
    return pause_flow_run(Go, timeout=600, quorum=2, veto="approved").vetoed


@flow(name="sl-dm", approvers=["U0ALICE"])
def sl_dm() -> bool:
    answer = pause_flow_run(
        Go, timeout=600, notify="dm", escalate_after=300, escalate_to=["U0CAROL"]
    )
    return answer.approved


@flow(name="sl-dm-release", approvers=["S0REL"], forbid_starter=True)
def sl_dm_release() -> bool:
    return pause_flow_run(Go, timeout=600, notify="dm").approved


@flow(name="sl-three-short", approvers=["U0ALICE", "S0REL"], forbid_starter=True)
def sl_three_short() -> int:
    return len(pause_flow_run(Go, timeout=600, quorum=3))


@flow(name="sl-not-the-starter", approvers=["U0ALICE", "U0BOB"], forbid_starter=True)
def sl_not_the_starter() -> bool:
    return pause_flow_run(Go, timeout=600).approved


@flow(name="sl-open-escalated")
def sl_open_escalated() -> bool:
    return pause_flow_run(Go, timeout=600, escalate_after=300, escalate_to=["U0CAROL"]).approved


@flow(name="sl-two-once-escalated", approvers=["U0ALICE"])
def sl_two_once_escalated() -> int:
    return len(
        pause_flow_run(Go, timeout=600, quorum=2, escalate_after=300, escalate_to=["U0CAROL"])
    )


@flow(name="sl-no-such-group", approvers=["S0NOPE"])
def sl_no_such_group() -> bool:
    return pause_flow_run(Go, timeout=600).approved


@pytest.fixture
def bot(engine: Engine) -> Iterator[RunningBot]:
    with running_bot(engine=engine) as running:
        running.slack.add_usergroup("S0OPS", "ops", ["U0BOB"])
        yield running


def buttons(message) -> list[dict]:
    return [e for b in message.blocks if b.get("type") == "actions" for e in b["elements"]]


def finished(engine: Engine, run_id: str):
    return wait_for(lambda: (r := engine.get_run(run_id)).state.is_final and r, timeout=15)


def root_shows(bot: RunningBot, ts: str, words: str) -> None:
    """Wait until the run's first message (``ts``) shows ``words`` in its blocks."""
    bot.slack.wait_for(
        lambda ws: words in json.dumps(ws.channel(bot.channel).message(ts).blocks), timeout=10
    )


def last_ephemeral(bot: RunningBot, user: str, before: int) -> str:
    return bot.slack.wait_for(lambda ws: ws.ephemeral(user)[before:][-1], timeout=10).text


def test_one_click_decision_with_confirmation(engine: Engine, bot: RunningBot) -> None:
    run = engine.submit("sl-go", {}, started_by="U0CAROL")
    prompt = bot.root_message(run.id)
    shown = buttons(prompt)
    assert [b["text"]["text"] for b in shown] == [
        "Approved: yes",
        "Approved: no",
        "With a comment…",
        "Reassign",
    ]
    assert shown[0]["confirm"]["title"]["text"] == "Send this answer?"
    # Someone the flow does not name is told privately, and nothing changes.
    before = len(bot.slack.ephemeral("carol"))
    bot.driver.click("carol", prompt, action_id=f"{ids.DECIDE}:0")
    assert last_ephemeral(bot, "carol", before) == (
        "Only <@U0ALICE>, <!subteam^S0OPS> may answer this."
    )
    assert engine.get_pause(run.id, "1").status is PauseStatus.WAITING
    # A member of the approving group decides with one click.
    bot.driver.click("bob", prompt, action_id=f"{ids.DECIDE}:0")
    assert finished(engine, run.id).result == "'True:'"
    trail = engine.audit_trail(run.id)
    refused = next(r for r in trail if r.action == "refused")
    assert (refused.actor_id, refused.via) == ("U0CAROL", "slack")
    answered = next(r for r in trail if r.action == "answer.received")
    assert (answered.actor_id, answered.actor_name, answered.via) == ("U0BOB", "bob", "slack")
    assert answered.data["input"] == {"approved": True}


def test_a_change_to_an_approving_group_applies_at_once(engine: Engine, bot: RunningBot) -> None:
    run = engine.submit("sl-go", {}, started_by="U0ALICE")
    prompt = bot.root_message(run.id)
    before = len(bot.slack.ephemeral("carol"))
    bot.driver.click("carol", prompt, action_id=f"{ids.DECIDE}:0")  # S0OPS is read (Bob)
    assert "may answer this" in last_ephemeral(bot, "carol", before)

    # Bob leaves the group and Carol joins it: Slack tells the app, which stops trusting
    # what it read a moment ago (it used to, for a minute).
    assert bot.driver.change_usergroup("S0OPS", ["carol"]).status == 200
    before = len(bot.slack.ephemeral("bob"))
    bot.driver.click("bob", prompt, action_id=f"{ids.DECIDE}:0")
    assert last_ephemeral(bot, "bob", before) == (
        "Only <@U0ALICE>, <!subteam^S0OPS> may answer this."
    )
    assert engine.get_pause(run.id, "1").status is PauseStatus.WAITING
    bot.driver.click("carol", prompt, action_id=f"{ids.DECIDE}:0")
    assert finished(engine, run.id).result == "'True:'"
    answered = next(r for r in engine.audit_trail(run.id) if r.action == "answer.received")
    assert answered.actor_id == "U0CAROL"


def test_a_literal_of_two_choices_is_two_buttons_and_a_comment_opens_the_form(
    engine: Engine, bot: RunningBot
) -> None:
    run = engine.submit("sl-pick", {})
    prompt = bot.root_message(run.id)
    assert [b["text"]["text"] for b in buttons(prompt)] == [
        "Small",
        "Large",
        "With a comment…",
        "Reassign",
    ]
    assert "confirm" not in buttons(prompt)[0]
    bot.driver.click("alice", prompt, action_id=ids.PROVIDE_INPUT)
    assert bot.slack.wait_for(lambda ws: ws.open_view("alice"), timeout=10)
    bot.driver.submit("alice", {"size": "large"})
    assert finished(engine, run.id).result == "'large'"


def test_quorum_shows_the_count_and_refuses_the_same_person_twice(
    engine: Engine, bot: RunningBot
) -> None:
    run = engine.submit("sl-two", {})
    prompt = bot.root_message(run.id)
    assert "*Answers:* 0 of 2 (none yet)" in json.dumps(prompt.blocks)
    bot.driver.click("alice", prompt, action_id=f"{ids.DECIDE}:0")
    # Her note for the first answer, before counting the notes: it may come after the
    # prompt's update, and would then pass for the answer to her second click.
    assert last_ephemeral(bot, "alice", 0) == "Recorded: answer 1 of the 2 this needs."
    counted = bot.slack.wait_for(
        lambda ws: (
            (m := ws.channel(bot.channel).message(prompt.ts))
            and "1 of 2 (<@U0ALICE>)" in json.dumps(m.blocks)
            and m
        )
    )
    before = len(bot.slack.ephemeral("alice"))
    bot.driver.click("alice", counted, action_id=f"{ids.DECIDE}:0")
    assert "already answered" in last_ephemeral(bot, "alice", before)
    bot.driver.click("bob", counted, action_id=f"{ids.DECIDE}:0")
    assert finished(engine, run.id).result == "['U0ALICE', 'U0BOB']"


def test_a_quorum_fewer_people_may_answer_than_it_needs_is_flagged_in_its_thread(
    engine: Engine, bot: RunningBot
) -> None:
    """It was posted as any other, and waited out its deadline with nobody told why."""
    bot.slack.add_usergroup("S0REL", "release", ["U0BOB", "U0CAROL"])
    # Bob is in the group, but started the run: Alice and Carol are all who may answer.
    run = engine.submit("sl-three-short", {}, started_by="U0BOB")
    prompt = bot.root_message(run.id)
    note = reply_with(bot, prompt.ts, "warning")
    assert note.text == (
        ":warning: Input `1` needs answers from 3 different people, but only 2 may give "
        "them (<@U0ALICE>, <@U0CAROL>), so as it stands it cannot be decided. Add people to "
        "its user groups, or cancel the run."
    )
    engine.cancel(run.id, by="U0ALICE")


def test_a_group_slack_will_not_list_is_named_in_the_log_with_slacks_error(
    engine: Engine, bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    """The warning said only "could not read user group"."""
    caplog.set_level(logging.WARNING, logger="signoff.bot.slack.approvers")
    run = engine.submit("sl-no-such-group", {})
    prompt = bot.root_message(run.id)
    bot.driver.click("alice", prompt, action_id=f"{ids.DECIDE}:0")
    assert "Only <!subteam^S0NOPE> may answer this." in last_ephemeral(bot, "alice", 0)
    warned = [
        r.getMessage() for r in caplog.records if getattr(r, "action", "") == "usergroup_failed"
    ]
    assert warned[0] == "could not read the members of user group S0NOPE (no_such_subteam)"


def test_a_quorum_its_escalation_makes_whole_is_not_flagged(
    engine: Engine, bot: RunningBot
) -> None:
    run = engine.submit("sl-two-once-escalated", {})
    prompt = bot.root_message(run.id)
    engine.escalate_due_pauses(engine.store.clock() + ESCALATION_DUE)
    reply_with(bot, prompt.ts, "rotating_light")  # after the prompt's own notes, if any
    thread = bot.slack.channel(bot.channel).thread(prompt.ts)
    assert not [m.text for m in thread if "warning" in m.text]
    engine.cancel(run.id, by="U0ALICE")


def test_a_quorum_is_shown_as_answered_by_everyone_it_counted(
    engine: Engine, bot: RunningBot
) -> None:
    run = engine.submit("sl-two-of-three", {})
    prompt = bot.root_message(run.id)
    # Carol opens the form too, and is still filling it in when the quorum is reached.
    bot.driver.click("carol", prompt, action_id=ids.PROVIDE_INPUT)
    assert bot.slack.wait_for(lambda ws: ws.open_view("carol"), timeout=10)
    bot.driver.click("alice", prompt, action_id=f"{ids.DECIDE}:0")
    wait_for(lambda: engine.get_pause(run.id, "1").answered_by == ("U0ALICE",))
    bot.driver.click("bob", prompt, action_id=f"{ids.DECIDE}:1")
    assert finished(engine, run.id).result == "['U0ALICE', 'U0BOB']"
    # The first message names both people, not only the one whose answer came last.
    root_shows(bot, prompt.ts, "Answered by <@U0ALICE>, <@U0BOB>")
    # So does the form sent too late, and /runs show, with each answer.
    bot.driver.submit("carol", {"approved": True})
    assert json.dumps(bot.outcome("carol").view["blocks"]).count(
        "This input was already answered by <@U0ALICE>, <@U0BOB>."
    )
    bot.driver.slash_command("alice", "/runs", f"show {run.id}")
    shown = bot.slack.wait_for(
        lambda ws: next((e.text for e in ws.ephemeral("alice") if "*Input*" in e.text), None),
        timeout=10,
    )
    assert (
        '*Input* `1` accepted, 2 of 2 answers (<@U0ALICE>: `{"approved": true}`; '
        '<@U0BOB>: `{"approved": false}`)' in shown
    )
    # The flow's acceptance, in the audit trail, is of both answers, not only the last.
    assert "answer accepted by the flow `1` (the answers of <@U0ALICE>, <@U0BOB>)" in shown


def test_whoever_answered_a_quorum_is_told_they_cannot_hand_it_on(
    engine: Engine, bot: RunningBot
) -> None:
    run = engine.submit("sl-two-of-three", {})
    prompt = bot.root_message(run.id)
    before = len(bot.slack.ephemeral("bob"))
    bot.driver.click("bob", prompt, action_id=f"{ids.DECIDE}:0")
    assert last_ephemeral(bot, "bob", before) == "Recorded: answer 1 of the 2 this needs."
    before = len(bot.slack.ephemeral("bob"))
    bot.driver.click("bob", prompt, action_id=ids.REASSIGN)
    assert last_ephemeral(bot, "bob", before) == (
        "You already answered this, so there is no decision of yours left to hand over."
    )
    assert bot.slack.open_view("bob") is None
    assert engine.get_pause(run.id, "1").approvers == ("U0ALICE", "U0BOB", "U0CAROL")


def test_reassign_on_a_cancelled_run_says_so_at_once_without_a_form(
    engine: Engine, bot: RunningBot
) -> None:
    """It opened the form, and only refused once someone was picked and submitted."""
    run = engine.submit("sl-go", {})
    prompt = bot.root_message(run.id)
    engine.cancel(run.id, by="U0ALICE")
    wait_for(lambda: engine.get_run(run.id).state is RunState.CANCELLED)
    before = len(bot.slack.ephemeral("alice"))
    bot.driver.click("alice", prompt, action_id=ids.REASSIGN)
    assert last_ephemeral(bot, "alice", before) == "This run was cancelled."
    assert bot.slack.open_view("alice") is None


def test_a_quorum_handed_to_someone_who_may_already_answer_it_is_refused_in_the_form(
    engine: Engine, bot: RunningBot
) -> None:
    run = engine.submit("sl-two-of-three", {})
    prompt = bot.root_message(run.id)
    bot.driver.click("alice", prompt, action_id=ids.REASSIGN)
    assert bot.slack.wait_for(lambda ws: ws.open_view("alice"), timeout=10)
    reply = bot.driver.submit("alice", {"to": "U0BOB"})
    assert (reply.status, reply.response_action) == (200, "errors")
    # Slack shows a field's error as plain text: a mention would read "<@U0BOB>".
    assert reply.errors == {
        "to": "You may not reassign this: @bob may already answer it, and it needs 2 "
        "different people; hand it to someone who may not yet."
    }
    assert engine.get_pause(run.id, "1").approvers == ("U0ALICE", "U0BOB", "U0CAROL")


def test_handing_a_decision_to_someone_who_answered_it_names_them_not_the_clicker(
    engine: Engine, bot: RunningBot
) -> None:
    """Carol, who had not answered, was told "You already answered this": Bob had."""
    run = engine.submit("sl-two-of-three", {})
    prompt = bot.root_message(run.id)
    bot.driver.click("bob", prompt, action_id=f"{ids.DECIDE}:0")
    wait_for(lambda: engine.get_pause(run.id, "1").answered_by == ("U0BOB",))
    bot.driver.click("carol", prompt, action_id=ids.REASSIGN)
    assert bot.slack.wait_for(lambda ws: ws.open_view("carol"), timeout=10)
    reply = bot.driver.submit("carol", {"to": "U0BOB"})
    assert reply.errors == {"to": "@bob has already answered this; hand it to someone else."}


def test_handing_a_decision_to_its_runs_starter_names_the_starter_not_the_clicker(
    engine: Engine, bot: RunningBot
) -> None:
    """Alice, who may hand it on, was told "You may not reassign this: the person who
    started a run may not answer it": it is Carol, who started it, who may not have it."""
    run = engine.submit("sl-not-the-starter", {}, started_by="U0CAROL")
    prompt = bot.root_message(run.id)
    bot.driver.click("alice", prompt, action_id=ids.REASSIGN)
    assert bot.slack.wait_for(lambda ws: ws.open_view("alice"), timeout=10)
    reply = bot.driver.submit("alice", {"to": "U0CAROL"})
    assert reply.errors == {
        "to": "@carol started this run, so they may not answer it; hand it to someone else."
    }
    assert engine.get_pause(run.id, "1").approvers == ("U0ALICE", "U0BOB")


def shown_view(bot: RunningBot, user: str) -> str:
    """The modal ``user`` has open, as they read it (mentions by name)."""
    opened = bot.slack.open_view(user)
    assert opened is not None
    return render_view(opened, bot.slack.workspace.names())


def test_a_reassign_form_whose_sender_lost_the_decision_says_so_with_names(
    engine: Engine, bot: RunningBot
) -> None:
    """Bob, no longer in the approving group, read "<@U0ALICE>, <!subteam^S0OPS>" under the
    field, and no one else he picked could help."""
    run = engine.submit("sl-go", {})
    prompt = bot.root_message(run.id)
    bot.driver.click("bob", prompt, action_id=ids.REASSIGN)  # bob answers through S0OPS
    assert bot.slack.wait_for(lambda ws: ws.open_view("bob"), timeout=10)
    assert bot.driver.change_usergroup("S0OPS", ["carol"]).status == 200
    reply = bot.driver.submit("bob", {"to": "U0CAROL"})
    assert (reply.status, reply.response_action) == (200, "update")
    seen = shown_view(bot, "bob")
    assert "== Not allowed ==" in seen
    assert "only @alice, @ops may answer." in seen
    assert engine.get_pause(run.id, "1").approvers == ("U0ALICE", "S0OPS")
    refused = [r for r in engine.audit_trail(run.id) if r.action == "refused"]
    assert [(r.actor_id, r.data.get("action")) for r in refused] == [("U0BOB", "reassign")]


@pytest.mark.parametrize("closed_by", ["answer", "cancel"])
def test_a_reassign_form_sent_after_the_decision_closed_says_so_like_the_input_form(
    engine: Engine, bot: RunningBot, closed_by: str
) -> None:
    """Bob read the engine's "input '1' of run 48f4... was already answered by U0ALICE"."""
    run = engine.submit("sl-go", {})
    prompt = bot.root_message(run.id)
    bot.driver.click("bob", prompt, action_id=ids.REASSIGN)
    assert bot.slack.wait_for(lambda ws: ws.open_view("bob"), timeout=10)
    if closed_by == "answer":
        bot.driver.click("alice", prompt, action_id=f"{ids.DECIDE}:0")
        wait_for(lambda: engine.get_pause(run.id, "1").status is not PauseStatus.WAITING)
        expected = "This input was already answered by @alice."
    else:
        engine.cancel(run.id, by="U0ALICE")
        wait_for(lambda: engine.get_run(run.id).state is RunState.CANCELLED)
        expected = "This run was cancelled."
    reply = bot.driver.submit("bob", {"to": "U0CAROL"})
    assert (reply.status, reply.response_action) == (200, "update")
    seen = shown_view(bot, "bob")
    assert expected in seen
    assert f"Run `{run.id[:8]}` · input `1`" in seen
    assert run.id not in seen and "U0" not in seen


def test_a_vetoed_quorum_says_whose_no_ended_it(engine: Engine, bot: RunningBot) -> None:
    run = engine.submit("sl-veto", {})
    prompt = bot.root_message(run.id)
    bot.driver.click("carol", prompt, action_id=f"{ids.DECIDE}:0")
    wait_for(lambda: engine.get_pause(run.id, "1").answered_by == ("U0CAROL",))
    bot.driver.click("bob", prompt, action_id=f"{ids.DECIDE}:1")
    assert finished(engine, run.id).result == "True"
    root_shows(bot, prompt.ts, "Answered by <@U0CAROL>, <@U0BOB> (<@U0BOB> vetoed it)")


def test_cancel_button_asks_for_confirmation_and_the_rule_refuses_others(
    engine: Engine, bot: RunningBot
) -> None:
    run = engine.submit("sl-go", {}, started_by="U0CAROL")
    bot.root_message(run.id)
    bot.driver.slash_command("alice", "/runs", "")
    listing = bot.slack.wait_for(lambda ws: ws.ephemeral("alice")[-1], timeout=10)
    [cancel] = [b for b in buttons(listing) if b["action_id"] == ids.CANCEL_RUN]
    assert cancel["confirm"]["confirm"]["text"] == "Cancel the run"
    bot.slack.add_user("U0EVE", "eve")
    bot.driver.slash_command("eve", "/runs", f"cancel {run.id}")
    refusal = bot.slack.wait_for(lambda ws: ws.ephemeral("eve")[-1], timeout=10).text
    assert refusal.startswith(":no_entry: You may not cancel this: only whoever started it")
    assert engine.get_run(run.id).state is RunState.PAUSED
    bot.driver.click("alice", listing, action_id=ids.CANCEL_RUN, value=run.id)
    assert finished(engine, run.id).state is RunState.CANCELLED
    assert engine.audit_trail(run.id)[-1].action == "run.cancelled"


def test_reassign_tells_the_new_person_and_the_thread(engine: Engine, bot: RunningBot) -> None:
    run = engine.submit("sl-go", {})
    prompt = bot.root_message(run.id)
    bot.driver.click("alice", prompt, action_id=ids.REASSIGN)
    assert bot.slack.wait_for(lambda ws: ws.open_view("alice"), timeout=10)
    reply = bot.driver.submit("alice", {"to": "U0CAROL"})
    assert reply.status == 200 and reply.response_action == "update"
    note = reply_with(bot, prompt.ts, "handed input")
    assert "<@U0ALICE> handed input `1` to <@U0CAROL>" in note.text
    dm = bot.slack.wait_for(lambda ws: ws.channel("U0CAROL").last, timeout=10)
    assert "asked you to decide" in dm.text
    bot.driver.click("carol", dm, action_id=f"{ids.DECIDE}:1")
    assert finished(engine, run.id).result == "'False:'"
    assert any(r.action == "pause.reassigned" for r in engine.audit_trail(run.id))


def test_a_group_member_who_handed_a_decision_on_is_told_it_is_no_longer_theirs(
    engine: Engine, bot: RunningBot
) -> None:
    run = engine.submit("sl-go", {})
    prompt = bot.root_message(run.id)
    bot.driver.click("bob", prompt, action_id=ids.REASSIGN)  # bob answers through S0OPS
    assert bot.slack.wait_for(lambda ws: ws.open_view("bob"), timeout=10)
    assert bot.driver.submit("bob", {"to": "U0CAROL"}).response_action == "update"
    reply_with(bot, prompt.ts, "<@U0BOB> handed input `1` to <@U0CAROL>")
    # His Home tab no longer lists it as waiting on him, and his click changes nothing.
    bot.driver.open_home("bob")
    bot.slack.wait_for(
        lambda ws: (h := ws.home_view("bob")) and "Nothing waits on you." in json.dumps(h.view),
        timeout=10,
    )
    before = len(bot.slack.ephemeral("bob"))
    bot.driver.click("bob", prompt, action_id=f"{ids.DECIDE}:0")
    assert last_ephemeral(bot, "bob", before) == (
        "You handed this to <@U0CAROL>, so it is no longer yours to decide."
    )
    assert engine.get_pause(run.id, "1").status is PauseStatus.WAITING
    bot.driver.click("carol", prompt, action_id=f"{ids.DECIDE}:1")
    assert finished(engine, run.id).result == "'False:'"


def test_a_decision_is_handed_only_to_a_person_in_the_workspace(
    engine: Engine, bot: RunningBot
) -> None:
    run = engine.submit("sl-go", {})
    prompt = bot.root_message(run.id)
    bot.driver.click("alice", prompt, action_id=ids.REASSIGN)
    bot.slack.wait_for(lambda ws: ws.open_view("alice"), timeout=10)
    for to, error in [
        ("U0NOBODY", "There is no such person in this workspace."),
        (bot.slack.workspace.bot_user.id, "Choose a person: an app cannot decide."),
    ]:
        reply = bot.driver.submit("alice", {"to": to})
        assert (reply.status, reply.response_action) == (200, "errors")
        assert reply.json is not None and reply.json["errors"] == {"to": error}
    assert not any(r.action == "pause.reassigned" for r in engine.audit_trail(run.id))
    # Submitted without the form's state (only a forged request can): asked to choose.
    opened = bot.slack.open_view("alice")
    view = {k: v for k, v in opened.view.items() if k != "state"}
    forged = {"type": "view_submission", "user": {"id": "U0ALICE"}, "view": view}
    reply = bot.driver.deliver("interactive", forged)
    assert reply.json is not None
    assert (reply.status, reply.json["errors"]) == (200, {"to": "Choose who should decide."})


def test_a_reassign_form_pointed_at_another_run_is_refused(engine: Engine, bot: RunningBot) -> None:
    mine = engine.submit("sl-go", {})
    other = engine.submit("sl-go", {})
    prompt = bot.root_message(mine.id)
    bot.root_message(other.id)
    bot.driver.click("alice", prompt, action_id=ids.REASSIGN)
    opened = bot.slack.wait_for(lambda ws: ws.open_view("U0ALICE"), timeout=10)
    # Someone holding a leaked secret edits the form's metadata to name the other run.
    reopen_pointed_at(bot, "U0ALICE", opened, mine.id, other.id)
    reply = bot.driver.submit("alice", {"to": "U0CAROL"})
    assert reply.status == 200 and reply.response_action == "update"
    assert "changed after it was opened" in json.dumps(bot.slack.open_view("alice").blocks)
    assert not any(r.action == "pause.reassigned" for r in engine.audit_trail(other.id))
    assert not any(r.action == "pause.reassigned" for r in engine.audit_trail(mine.id))


def test_a_dm_prompt_handed_on_loses_its_buttons(engine: Engine, bot: RunningBot) -> None:
    """Alice's direct prompt kept its buttons after she handed the decision to Bob, and
    each only got her a refusal."""
    run = engine.submit("sl-dm", {})
    bot.root_message(run.id)
    dm = bot.slack.wait_for(lambda ws: ws.channel("U0ALICE").last, timeout=10)
    bot.driver.click("alice", dm, action_id=ids.REASSIGN)
    assert bot.slack.wait_for(lambda ws: ws.open_view("alice"), timeout=10)
    assert bot.driver.submit("alice", {"to": "U0BOB"}).response_action == "update"
    closed = bot.slack.wait_for(
        lambda ws: (m := ws.channel("U0ALICE").message(dm.ts)) and not buttons(m) and m,
        timeout=10,
    )
    assert "You handed this to <@U0BOB>" in json.dumps(closed.blocks)
    bob_dm = bot.slack.wait_for(lambda ws: ws.channel("U0BOB").last, timeout=10)
    bot.driver.click("bob", bob_dm, action_id=f"{ids.DECIDE}:0")
    assert finished(engine, run.id).result == "True"


def test_escalating_a_decision_anyone_may_answer_still_mentions_who_it_names(
    engine: Engine, bot: RunningBot
) -> None:
    """The escalation adds nobody to a decision anyone may answer (its record said it
    added them); its note still calls on the people it names."""
    run = engine.submit("sl-open-escalated", {})
    root = bot.root_message(run.id)
    engine.escalate_due_pauses(engine.store.clock() + ESCALATION_DUE)
    reply_with(bot, root.ts, "<@U0CAROL> may answer it now")
    assert engine.get_pause(run.id, "1").approvers == ()


def test_dm_prompt_escalation_and_home_tab(engine: Engine, bot: RunningBot) -> None:
    run = engine.submit("sl-dm", {})
    root = bot.root_message(run.id)
    dm = bot.slack.wait_for(lambda ws: ws.channel("U0ALICE").last, timeout=10)
    assert [b["text"]["text"] for b in buttons(dm)][:2] == ["Approved: yes", "Approved: no"]
    # Alice opens the Home tab: the run waits on her, with its buttons.
    bot.driver.open_home("alice")
    home = bot.slack.wait_for(lambda ws: ws.home_view("alice"), timeout=10)
    assert "sl-dm" in json.dumps(home.view) and "Waiting on you" in json.dumps(home.view)
    # Nobody answered: escalation adds carol, mentions her in the thread, messages her.
    engine.escalate_due_pauses(engine.store.clock() + ESCALATION_DUE)
    reply_with(bot, root.ts, "<@U0CAROL> may answer it now")
    carol_dm = bot.slack.wait_for(lambda ws: ws.channel("U0CAROL").last, timeout=10)
    bot.driver.click("carol", carol_dm, action_id=f"{ids.DECIDE}:0")
    assert finished(engine, run.id).result == "True"
    # Carol's Home tab is published after the event: her decision is listed.
    bot.slack.wait_for(
        lambda ws: (h := ws.home_view("carol")) and ": answered `" in json.dumps(h.view),
        timeout=10,
    )
    actions = [r.action for r in engine.audit_trail(run.id)]
    assert actions.count("pause.escalated") == 1


class Crash(BaseException):
    """Not an ``Exception``: a flow that raises it crashes its run rather than fail it."""


#: lets the flow below crash once the test has seen it ask
_crash_now = threading.Event()


@flow(name="sl-crashes-asking", approvers=["U0CAROL"])
async def sl_crashes_asking() -> None:
    asking = asyncio.create_task(pause_flow_run(Go, timeout=600, notify="dm"))
    await asyncio.to_thread(_crash_now.wait, 30)
    del asking  # left waiting: the run's end closes its question
    raise Crash("the GPU fell over")


def test_the_prompts_of_a_run_that_crashed_say_it_crashed_and_why(
    engine: Engine, bot: RunningBot
) -> None:
    """A run that crashed before its question was answered closed the question's prompts
    with ":no_entry_sign: Cancelled", as if someone had cancelled it; now they say it
    crashed, and why."""
    _crash_now.clear()
    thread, box = start(lambda: asyncio.run(sl_crashes_asking()))
    run_id = wait_for(lambda: (r := engine.list_runs(flow_name="sl-crashes-asking")) and r[0].id)
    root = bot.root_message(run_id)
    bot.slack.wait_for(lambda ws: ws.channel("U0CAROL").last, timeout=10)
    _crash_now.set()
    thread.join(10)
    assert isinstance(box.get("error"), Crash), box
    assert finished(engine, run_id).state is RunState.CRASHED
    crashed = ":boom: The run crashed before it was answered: Crash: the GPU fell over"
    root_shows(bot, root.ts, f"`1` {crashed}")
    direct = bot.slack.wait_for(
        lambda ws: (m := ws.channel("U0CAROL").last) and crashed in json.dumps(m.blocks) and m,
        timeout=10,
    )
    assert buttons(direct) == [] and "Cancelled" not in json.dumps(direct.blocks)


def test_direct_prompts_follow_the_count_and_lose_their_buttons_once_decided(
    engine: Engine, bot: RunningBot
) -> None:
    def dm_of(user: str, text: str):
        return bot.slack.wait_for(
            lambda ws: (m := ws.channel(user).last) and text in json.dumps(m.blocks) and m,
            timeout=10,
        )

    decided = engine.submit("sl-dm-two", {})
    prompt = bot.root_message(decided.id)
    dm_of("U0CAROL", "0 of 2 (none yet)")
    bot.driver.click("alice", prompt, action_id=f"{ids.DECIDE}:0")
    assert buttons(dm_of("U0CAROL", "1 of 2 (<@U0ALICE>)"))
    bot.driver.click("bob", dm_of("U0BOB", "1 of 2 (<@U0ALICE>)"), action_id=f"{ids.DECIDE}:1")
    assert finished(engine, decided.id).result == "2"
    # Carol's message no longer offers a decision that was made: it says who made it.
    closed = dm_of("U0CAROL", "Answered by <@U0ALICE>, <@U0BOB>")
    assert buttons(closed) == [] and "waiting for input" not in closed.text

    cancelled = engine.submit("sl-dm-two", {})
    bot.root_message(cancelled.id)
    dm_of("U0CAROL", f"run `{cancelled.id[:8]}` is waiting for input")
    engine.cancel(cancelled.id, by="U0ALICE")
    assert buttons(dm_of("U0CAROL", ":no_entry_sign: Cancelled")) == []


def test_a_direct_prompt_slack_fails_is_sent_again_and_the_others_still_go(
    engine: Engine, bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    """A 500 on one person's direct message lost it, every direct message after it, and
    the pause's reminder (the event delivered again found the prompt posted, and stopped);
    a person Slack cannot message held up the rest for ever."""
    caplog.set_level(logging.INFO)
    bot.slack.fail_next(
        "chat.postMessage", 1, status=500, when=lambda args: args.get("channel") == "U0ALICE"
    )
    bot.slack.fail_next(
        "chat.postMessage",
        50,
        status=200,
        error="user_not_found",
        when=lambda args: args.get("channel") == "U0BOB",
    )
    run = engine.submit("sl-dm-two", {})
    bot.root_message(run.id)
    for user in ("U0ALICE", "U0CAROL"):
        dm = bot.slack.wait_for(lambda ws, u=user: ws.channel(u).last, timeout=15)
        assert run.id[:8] in dm.text and buttons(dm)
    assert bot.slack.channel("U0BOB").last is None
    sent_to = [c.args.get("channel") for c in bot.slack.calls("chat.postMessage") if c.ok]
    assert sorted(sent_to.count(u) for u in ("U0ALICE", "U0CAROL")) == [1, 1]
    [refused] = [r for r in caplog.records if getattr(r, "action", "") == "direct_prompt_refused"]
    assert (refused.user, refused.levelno) == ("U0BOB", logging.WARNING)
    # What follows the direct messages was done too.
    wait_for(
        lambda: any(
            getattr(r, "action", "") == "reminder_scheduled" and r.run_id == run.id
            for r in caplog.records
        ),
        what="the reminder to be scheduled",
    )


def test_direct_prompts_skip_the_starter_whom_the_rule_refuses(
    engine: Engine, bot: RunningBot
) -> None:
    bot.slack.add_usergroup("S0REL", "release", ["U0BOB", "U0CAROL"])
    run = engine.submit("sl-dm-release", {}, started_by="U0BOB")
    bot.root_message(run.id)
    dm = bot.slack.wait_for(lambda ws: ws.channel("U0CAROL").last, timeout=10)
    assert [b["text"]["text"] for b in buttons(dm)][:2] == ["Approved: yes", "Approved: no"]
    # Bob is in the approving group but started the run: a prompt whose buttons would only
    # tell him so is not sent to him (members are messaged in order: his came first).
    assert not bot.slack.channel("U0BOB").messages
    bot.driver.click("carol", dm, action_id=f"{ids.DECIDE}:0")
    assert finished(engine, run.id).result == "True"


def test_escalating_a_quorum_with_an_answer_says_how_many_it_has(
    engine: Engine, bot: RunningBot
) -> None:
    run = engine.submit("sl-two-escalated", {})
    prompt = bot.root_message(run.id)
    bot.driver.click("alice", prompt, action_id=f"{ids.DECIDE}:0")
    wait_for(lambda: engine.get_pause(run.id, "1").answered_by == ("U0ALICE",))
    engine.escalate_due_pauses(engine.store.clock() + ESCALATION_DUE)
    note = reply_with(bot, prompt.ts, "rotating_light")
    # Not "Nobody has answered": Alice has; the quorum lacks one more person.
    assert note.text == (
        ":rotating_light: Input `1` has 1 of the 2 answers it needs: <@U0CAROL> may answer it now."
    )


def test_a_quorum_short_at_its_deadline_says_who_answered_in_time(
    engine: Engine, bot: RunningBot
) -> None:
    run = engine.submit("sl-two-in-time", {})
    prompt = bot.root_message(run.id)
    bot.driver.click("carol", prompt, action_id=ids.PROVIDE_INPUT)
    assert bot.slack.wait_for(lambda ws: ws.open_view("carol"), timeout=10)
    bot.driver.click("alice", prompt, action_id=f"{ids.DECIDE}:0")
    wait_for(lambda: engine.get_pause(run.id, "1").answered_by == ("U0ALICE",))
    engine.expire_due_pauses(engine.store.clock() + timedelta(hours=1))
    assert finished(engine, run.id).result == "'too few'"
    # Not "Nobody answered in time": Alice did, and the quorum needed one more.
    short = "Only 1 of the 2 answers it needed came in time (from <@U0ALICE>)"
    root_shows(bot, prompt.ts, short)
    bot.driver.submit("carol", {"approved": True})
    assert f"{short}, so this input is closed." in json.dumps(bot.outcome("carol").view)


def test_runs_show_includes_the_audit_trail(engine: Engine, bot: RunningBot) -> None:
    run = engine.submit("sl-go", {}, started_by="U0CAROL")
    bot.root_message(run.id)
    bot.driver.slash_command("alice", "/runs", f"show {run.id}")
    shown = bot.slack.wait_for(lambda ws: ws.ephemeral("alice")[-1], timeout=10).text
    assert "*Audit trail:*" in shown and "started the run" in shown


@task
def sl_step(i: int) -> str:
    return f"step {i} " + "r" * 400


@flow(name="sl-many-tasks")
def sl_many_tasks() -> str:
    for i in range(12):
        sl_step(i)
    pause_flow_run(Go, timeout=600)
    raise RuntimeError("boom " + "e" * 3000)


def test_runs_show_of_a_long_run_keeps_its_trail_and_says_what_it_left_out(
    engine: Engine, bot: RunningBot
) -> None:
    """Twelve long task results pushed the trail past the message's 3,900 characters, and
    the reply was cut there, mid-result, without its trail or a word about it."""
    run = engine.submit("sl-many-tasks", {}, started_by="U0CAROL")
    engine.resume(
        wait_for(lambda: engine.waiting_pause(run.id)).run_id, {"approved": True}, "U0ALICE"
    )
    assert finished(engine, run.id).state is RunState.FAILED
    bot.driver.slash_command("alice", "/runs", f"show {run.id}")
    shown = bot.slack.wait_for(lambda ws: ws.ephemeral("alice")[-1], timeout=10).text
    assert len(shown) <= 3900
    assert f"more lines; `signoff runs show {run.id[:8]}` has them all" in shown
    trail = shown.split("*Audit trail:*\n", 1)[1].splitlines()
    assert "started the run" in trail[0] and "answer accepted by the flow" in trail[-1]


def test_a_display_name_holding_a_lone_surrogate_still_decides(
    engine: Engine, bot: RunningBot
) -> None:
    """Slack's JSON may carry a lone surrogate escaped (\\ud800) in a display name: the
    click was acked, then storing who answered failed (UnicodeEncodeError) and the run
    waited on; the name is kept without it."""
    bot.slack.add_user("U0DORA", "do\ud800ra")
    run = engine.submit("sl-two-of-three", {}, started_by="U0CAROL")
    prompt = bot.root_message(run.id)
    bot.driver.click("U0ALICE", prompt, action_id=f"{ids.DECIDE}:0")
    wait_for(lambda: len(engine.get_pause(run.id, "1").answers) == 1, timeout=10)
    engine.reassign(run.id, "U0DORA", "U0BOB")
    bot.driver.click("U0DORA", prompt, action_id=f"{ids.DECIDE}:0")
    assert finished(engine, run.id).result == "['U0ALICE', 'U0DORA']"
    answered = [r for r in engine.audit_trail(run.id) if r.action == "answer.received"]
    assert [(r.actor_id, r.actor_name) for r in answered][-1] == ("U0DORA", "dora")
