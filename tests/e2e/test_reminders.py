"""Reminders before a prompt's deadline: scheduled as durable engine timers, posted in the thread.

The reminder is due at ``deadline - min(10 minutes, half the time to the deadline)``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from signoff.bot.backends.embedded import EmbeddedBackend
from signoff.bot.config import BotSettings
from signoff.bot.slack import ids, reminders
from signoff.bot.slack.server import Server
from signoff.bot.testing import RunningBot, running_bot
from signoff.engine import Engine, PauseStatus, PauseTimeout, flow, pause_flow_run
from signoff.engine.input import RunInput
from tests.support.waiting import wait_for


class Ok(RunInput):
    ok: bool = True


@flow(name="rm-guarded", approvers=["U0BOB", "S0SRE"])
def rm_guarded() -> bool:
    return pause_flow_run(wait_for_input=Ok, timeout=3600).ok


@flow(name="rm-open", forbid_starter=True)
def rm_open(timeout: float = 3600) -> str:
    try:
        return str(pause_flow_run(wait_for_input=Ok, timeout=timeout).ok)
    except PauseTimeout:
        return "nobody"


class Go(RunInput):
    approved: bool


@flow(name="rm-quorum", approvers=["U0ALICE", "U0BOB", "S0SRE"])
def rm_quorum() -> int:
    return len(pause_flow_run(wait_for_input=Go, timeout=3600, quorum=2))


@pytest.fixture
def bot(engine: Engine) -> Iterator[RunningBot]:
    with running_bot(engine=engine) as running:
        yield running


def reminders_in(bot: RunningBot, ts: str) -> list:
    return [m for m in bot.slack.channel(bot.channel).thread(ts) if "Reminder" in m.text]


def pending(engine: Engine, run_id: str) -> datetime | None:
    jobs = dict(engine.timers.pending())
    return jobs.get(reminders.job_id(run_id, "1"))


def test_reminder_time_is_ten_minutes_or_half_the_wait_before_the_deadline() -> None:
    now = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    cases = {
        timedelta(hours=2): timedelta(minutes=10),
        timedelta(minutes=20): timedelta(minutes=10),
        timedelta(minutes=10): timedelta(minutes=5),
        timedelta(seconds=2): timedelta(seconds=1),
    }
    for wait, lead in cases.items():
        assert reminders.reminder_time(now + wait, now) == now + wait - lead


def test_remind_mentions_the_approvers_once_and_only_while_waiting(
    engine: Engine, bot: RunningBot
) -> None:
    run = engine.submit("rm-guarded", {})
    root = bot.root_message(run.id)
    deadline = engine.get_pause(run.id, "1").deadline
    due = wait_for(lambda: pending(engine, run.id), timeout=5)  # set just after the post
    assert due == deadline - timedelta(minutes=10)

    # Several workers may fire the same job at once: one message, whoever wins.
    with ThreadPoolExecutor(4) as pool:
        posted = list(pool.map(lambda _: reminders.remind(run_id=run.id, key="1"), range(4)))
    assert posted.count(True) == 1
    [reminder] = reminders_in(bot, root.ts)
    assert reminder.text.startswith(":bell: Reminder: *rm-guarded* run")
    assert "<@U0BOB>, <!subteam^S0SRE>: please answer before" in reminder.text
    assert engine.get_metadata(run.id, ids.reminder_key("1")) == reminder.ts
    assert reminders.remind(run_id=run.id, key="1") is False  # fired again later: nothing

    bot.slack.add_usergroup("S0SRE", "sre", ["U0ALICE"])
    bot.driver.click("alice", root, action_id=ids.PROVIDE_INPUT)
    bot.slack.wait_for(lambda ws: ws.open_view("alice"))
    assert bot.driver.submit("alice", {"ok": True}).status == 200
    wait_for(lambda: engine.get_run(run.id).state.is_final, timeout=10)
    wait_for(lambda: pending(engine, run.id) is None, timeout=10)  # answered: job dropped
    assert reminders.remind(run_id=run.id, key="1") is False
    assert len(reminders_in(bot, root.ts)) == 1
    reminded = [r for r in engine.audit_trail(run.id) if r.action == "reminder.sent"]
    assert len(reminded) == 1 and reminded[0].key == "1"


def test_a_replica_that_does_not_post_to_slack_posts_the_reminder_it_fired(
    engine: Engine, bot: RunningBot, make_engine: Callable[..., Engine]
) -> None:
    """Any replica's timers may fire a reminder, but only the replica holding the Slack
    notifier's lease could post: one fired elsewhere was claimed and audited as sent, and
    never reached Slack."""
    run = engine.submit("rm-guarded", {})
    root = bot.root_message(run.id)  # the bot holds the lease: it posted this
    wait_for(lambda: pending(engine, run.id), timeout=5)
    settings = BotSettings.load(
        bot_token=bot.slack.token,
        signing_secret="x",
        api_url=bot.slack.api_url,
        channel=bot.channel,
    )
    standby = Server(EmbeddedBackend(make_engine()), settings, port=0)
    standby.start()
    try:
        # The standby's notifier is this process's newest: the job goes through it.
        assert reminders.remind(run_id=run.id, key="1") is True
    finally:
        standby.stop()
    [reminder] = reminders_in(bot, root.ts)
    assert "<@U0BOB>, <!subteam^S0SRE>: please answer before" in reminder.text
    assert engine.get_metadata(run.id, ids.reminder_key("1")) == reminder.ts
    assert [r.key for r in engine.audit_trail(run.id) if r.action == "reminder.sent"] == ["1"]


def test_remind_says_anyone_and_does_nothing_once_cancelled(
    engine: Engine, bot: RunningBot
) -> None:
    run = engine.submit("rm-open", {}, started_by="U0CAROL")
    root = bot.root_message(run.id)
    wait_for(lambda: pending(engine, run.id), timeout=5)  # the prompt is recorded
    assert reminders.remind(run_id=run.id, key="1") is True
    [reminder] = reminders_in(bot, root.ts)
    assert "Anyone here (not <@U0CAROL>, who started it): please answer" in reminder.text

    engine.cancel(run.id)
    wait_for(lambda: engine.get_pause(run.id, "1").status is PauseStatus.CANCELLED)
    assert reminders.remind(run_id=run.id, key="1") is False
    assert reminders.remind(run_id="no-such-run", key="1") is False


def test_a_quorum_reminder_says_what_is_missing_and_spares_who_answered(
    engine: Engine, bot: RunningBot
) -> None:
    run = engine.submit("rm-quorum", {})
    root = bot.root_message(run.id)
    wait_for(lambda: pending(engine, run.id), timeout=5)  # the prompt is recorded
    engine.resume(run.id, {"approved": True}, "U0BOB")
    assert reminders.remind(run_id=run.id, key="1") is True
    [reminder] = reminders_in(bot, root.ts)
    assert "It has 1 of the 2 answers it needs (<@U0BOB> answered)." in reminder.text
    # Bob cannot answer again: he is not asked to.
    assert "<@U0ALICE>, <!subteam^S0SRE>: please answer before" in reminder.text
    assert reminder.text.count("<@U0BOB>") == 1


def test_the_stored_job_fires_by_itself_before_the_deadline(
    engine: Engine, bot: RunningBot
) -> None:
    run = engine.submit("rm-open", {"timeout": 2})
    root = bot.root_message(run.id)
    deadline = engine.get_pause(run.id, "1").deadline
    due = wait_for(lambda: pending(engine, run.id), timeout=5)
    assert timedelta(seconds=0.5) < deadline - due <= timedelta(seconds=1)

    reminder = bot.slack.wait_for(lambda ws: reminders_in(bot, root.ts), timeout=5)[0]
    assert "Anyone here" in reminder.text
    assert engine.get_pause(run.id, "1").status is PauseStatus.WAITING  # before the deadline
    wait_for(lambda: engine.get_run(run.id).state.is_final, timeout=10)
    assert engine.get_run(run.id).result == "'nobody'"
    assert len(reminders_in(bot, root.ts)) == 1


def test_a_reminder_for_a_deleted_prompt_posts_the_prompt_again(
    engine: Engine, bot: RunningBot
) -> None:
    run = engine.submit("rm-open", {}, started_by="U0CAROL")
    root = bot.root_message(run.id)
    wait_for(lambda: pending(engine, run.id), timeout=5)  # the prompt is recorded
    bot.slack.workspace.delete_message(bot.channel, root.ts)  # its button with it

    assert reminders.remind(run_id=run.id, key="1") is True
    again = bot.root_message(run.id)
    assert again.ts != root.ts and "was deleted" in str(again.blocks)
    [reminder] = reminders_in(bot, again.ts)
    assert engine.get_metadata(run.id, ids.reminder_key("1")) == reminder.ts
    # The new first message asks in place of the deleted one: answering it ends the run.
    bot.driver.click("alice", again, action_id=ids.PROVIDE_INPUT)
    bot.slack.wait_for(lambda ws: ws.open_view("alice"))
    assert bot.driver.submit("alice", {"ok": True}).status == 200
    wait_for(lambda: engine.get_run(run.id).state.is_final, timeout=10)
    assert engine.get_run(run.id).result == "'True'"
    bot.slack.wait_for(
        lambda ws: "is *completed*" in ws.channel(bot.channel).message(again.ts).text
    )
