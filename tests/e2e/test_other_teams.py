"""People of another organisation in a Slack Connect channel: they see a run's prompt and can
press its buttons, but only the app's own workspace (and the teams it is told to trust)
decide."""

from __future__ import annotations

import json

import pytest

from signoff.bot.config import BotSettings
from signoff.bot.errors import SettingsError
from signoff.bot.slack import ids
from signoff.bot.testing import running_bot
from signoff.engine import Engine, PauseStatus, RunState, flow, pause_flow_run
from signoff.engine.input import RunInput
from tests.support.waiting import wait_for


class Go(RunInput):
    approved: bool


@flow(name="ot-anyone")
def ot_anyone() -> bool:
    # No approvers: anyone in the channel may answer, which is what a guest must not be.
    return pause_flow_run(Go, timeout=600).approved


def refusals(bot, user: str) -> list[str]:
    return [m.text for m in bot.slack.ephemeral(user) if "own Slack workspace" in m.text]


def test_a_guest_of_another_organisation_cannot_answer_and_a_member_can(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    with running_bot(engine=engine) as bot:
        bot.slack.add_user("U0GUEST", "guest", "Gus Guest", team_id="T0PARTNER")
        run = engine.submit("ot-anyone", {})
        prompt = bot.root_message(run.id)

        bot.driver.click("guest", prompt, action_id=f"{ids.DECIDE}:0")
        [said] = bot.slack.wait_for(lambda ws: refusals(bot, "guest"), timeout=10)
        assert "(T0PARTNER)" in said
        # The form is refused too: no modal opens for them.
        bot.driver.click("guest", prompt, action_id=ids.PROVIDE_INPUT)
        bot.slack.wait_for(lambda ws: len(refusals(bot, "guest")) == 2, timeout=10)
        assert bot.slack.open_view("guest") is None
        pause = engine.waiting_pause(run.id)
        assert pause is not None and pause.status is PauseStatus.WAITING
        assert [r for r in engine.audit_trail(run.id) if r.action == "answer.received"] == []
        assert any(
            getattr(r, "action", None) == "other_team_refused" and r.team == "T0PARTNER"
            for r in caplog.records
        )

        # A form that reached them all the same (opened before, or passed on) is refused
        # on submission, in the form.
        bot.driver.click("alice", prompt, action_id=ids.PROVIDE_INPUT)
        opened = bot.slack.wait_for(lambda ws: ws.open_view("U0ALICE"), timeout=10)
        fields = ("type", "title", "submit", "blocks", "callback_id", "private_metadata")
        bot.slack.workspace.open_modal("U0GUEST", {k: opened.view[k] for k in fields})
        reply = bot.driver.submit("guest", {"approved": True})
        assert (reply.status, reply.response_action) == (200, "update")
        assert "(T0PARTNER)" in json.dumps(bot.slack.open_view("guest").blocks)
        assert engine.get_run(run.id).state is RunState.PAUSED

        bot.driver.click("alice", prompt, action_id=f"{ids.DECIDE}:0")
        done = wait_for(lambda: (r := engine.get_run(run.id)).state.is_final and r, timeout=15)
        assert (done.state, done.result) == (RunState.COMPLETED, "True")


def test_a_team_the_app_is_told_to_trust_answers(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIGNOFF_SLACK_OTHER_TEAMS", "T0VENDOR, T0PARTNER")
    with running_bot(engine=engine) as bot:
        bot.slack.add_user("U0GUEST", "guest", "Gus Guest", team_id="T0PARTNER")
        run = engine.submit("ot-anyone", {})
        bot.driver.click("guest", bot.root_message(run.id), action_id=f"{ids.DECIDE}:1")
        done = wait_for(lambda: (r := engine.get_run(run.id)).state.is_final and r, timeout=15)
        assert (done.state, done.result) == (RunState.COMPLETED, "False")
        [answered] = [r for r in engine.audit_trail(run.id) if r.action == "answer.received"]
        assert answered.actor_id == "U0GUEST"
        assert refusals(bot, "guest") == []


def test_a_malformed_team_list_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNOFF_SLACK_OTHER_TEAMS", "T0PARTNER,acme corp")
    with pytest.raises(SettingsError) as refused:
        BotSettings.load(bot_token="xoxb-1", signing_secret="s", channel="C0GENERAL")
    assert str(refused.value).startswith(
        "SIGNOFF_SLACK_OTHER_TEAMS holds 'acme corp', which is not a Slack team"
    )
