"""A run of an open flow whose messages are in a private channel, over real HTTP on both
stores: ``/runs show`` refuses whoever is not in that channel (save its starter), ``/runs``
lists leave such runs out and say how many, reading where a page's runs are in one
database read and asking Slack once per channel, not per run; when Slack will not say who
is in the channel, the run is not shown; and an app installed without the scopes that
asks for keeps the view rule alone, and says so once."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any, Literal

import pytest
from sqlalchemy import event

from signoff.bot.config import BotSettings
from signoff.bot.sandbox import SlackSandbox
from signoff.bot.slack.app import check_slack
from signoff.bot.testing import RunningBot, running_bot
from signoff.engine import Engine, flow, pause_flow_run
from signoff.engine.input import RunInput
from tests.support.waiting import wait_for

PRIVATE = "C0HR"


@flow(name="pc-open")
def pc_open(salary: int = 1) -> int:
    return salary


class Go(RunInput):
    decision: Literal["approve", "reject"]


@flow(name="pc-ask")
def pc_ask(salary: int = 1) -> str:
    return pause_flow_run(wait_for_input=Go, timeout=600).decision


@pytest.fixture
def bot(make_engine: Callable[..., Engine]) -> Iterator[RunningBot]:
    with running_bot(engine=make_engine()) as running:
        running.slack.add_channel(PRIVATE, "hr", private=True, members=["carol"])
        yield running


def runs(bot: RunningBot, user: str, text: str = ""):
    """Type ``/runs text``; return the ephemeral answer."""
    before = len(bot.slack.ephemeral(user))
    reply = bot.driver.slash_command(user, "/runs", text)
    assert reply.status == 200, reply.text
    return bot.slack.wait_for(lambda ws: ws.ephemeral(user)[before:][-1], timeout=10)


def in_private(bot: RunningBot, salary: int, started_by: str = "U0CAROL") -> str:
    """A finished run of the open flow whose messages are in the private channel."""
    run = bot.engine.submit(
        "pc-open", {"salary": salary}, started_by=started_by, tags={"slack.channel": PRIVATE}
    )
    wait_for(lambda: bot.engine.get_run(run.id).state.is_final, timeout=15)
    return run.id


def test_show_refuses_who_is_not_in_the_run_s_private_channel(bot: RunningBot) -> None:
    run = bot.engine.submit(
        "pc-ask", {"salary": 98765}, started_by="U0BOB", tags={"slack.channel": PRIVATE}
    )
    bot.root_message(run.id, channel=PRIVATE)  # its prompt, in the private channel
    run_id = run.id
    refused = runs(bot, "alice", f"show {run_id[:8]}").text
    assert refused.startswith(":no_entry: You may not view this")
    assert f"<#{PRIVATE}>" in refused and "98765" not in refused
    # A member of the channel sees it; so does whoever started it, though not in it.
    assert "98765" in runs(bot, "carol", f"show {run_id[:8]}").text
    assert "98765" in runs(bot, "bob", f"show {run_id[:8]}").text


def listed(reply: Any) -> list[str]:
    return [
        b["block_id"].removeprefix("run:") for b in reply.blocks if "run:" in b.get("block_id", "")
    ]


def test_lists_leave_out_runs_in_a_private_channel_asking_slack_once(bot: RunningBot) -> None:
    hidden = [in_private(bot, 1000 + i) for i in range(5)]
    public = []
    for i in range(5):
        run = bot.engine.submit("pc-open", {"salary": 5 + i}, started_by="U0CAROL")
        wait_for(lambda r=run: bot.engine.get_run(r.id).state.is_final, timeout=15)
        public.append(run.id)
    # Where each run's messages are is read for the page at once, not run by run.
    reads: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # The listener's reads only: the notifier reads threads meanwhile, posting updates.
        listener = threading.current_thread().name.startswith("signoff-listener")
        if listener and "FROM run_metadata" in statement and "slack.thread" in str(args):
            reads.append(statement)

    asked = len(bot.slack.calls("conversations.info"))
    event.listen(bot.engine.store.engine, "before_cursor_execute", count)
    try:
        listing = runs(bot, "alice", "pc-open")
    finally:
        event.remove(bot.engine.store.engine, "before_cursor_execute", count)
    assert sorted(listed(listing)) == sorted(public)
    assert "5 runs you may not view are not shown." in json.dumps(listing.blocks)
    assert len(reads) == 1, reads
    # One look at each channel for the whole page, not one per run.
    channels = [c.args.get("channel") for c in bot.slack.calls("conversations.info")[asked:]]
    assert sorted(channels) == sorted({PRIVATE, bot.channel}), channels

    # A member sees them all; so does whoever started them, though not in the channel.
    assert sorted(listed(runs(bot, "carol", "pc-open"))) == sorted([*hidden, *public])
    started_by_bob = in_private(bot, 77, started_by="U0BOB")
    assert started_by_bob in listed(runs(bot, "bob", "pc-open"))
    assert started_by_bob not in listed(runs(bot, "alice", "pc-open"))


def test_an_app_without_the_scopes_keeps_the_view_rule_alone_and_says_so_once(
    bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="signoff.bot.slack.channel_access")
    bot.slack.add_channel("C0LEGAL", "legal", private=True, members=["carol"])
    run_id = in_private(bot, 55555)
    other = bot.engine.submit(
        "pc-open", {"salary": 66666}, started_by="U0CAROL", tags={"slack.channel": "C0LEGAL"}
    )
    wait_for(lambda: bot.engine.get_run(other.id).state.is_final, timeout=15)
    bot.slack.withhold_scopes("channels:read", "groups:read")
    # Installed before the manifest asked for them: shown as before, not hidden from all.
    assert "55555" in runs(bot, "alice", f"show {run_id[:8]}").text
    assert {run_id, other.id} <= set(listed(runs(bot, "bob", "pc-open")))
    assert "66666" in runs(bot, "bob", f"show {other.id[:8]}").text
    assert len(bot.slack.calls("conversations.info")) >= 2  # asked of each channel
    said = [r for r in caplog.records if getattr(r, "action", "") == "channel_scopes_missing"]
    assert len(said) == 1
    assert "channels:read and groups:read" in said[0].getMessage()
    assert "manifest" in said[0].getMessage()


def test_start_up_names_the_scopes_the_installed_app_lacks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="signoff.bot.slack.app")
    with SlackSandbox() as slack:
        settings = BotSettings.load(
            bot_token=slack.token, api_url=slack.api_url, signing_secret="s", channel="C0GENERAL"
        )
        check_slack(settings)
        assert not [r for r in caplog.records if getattr(r, "action", "") == "slack_scopes_missing"]
        slack.withhold_scopes("channels:read", "groups:read")
        check_slack(settings)
    said = [r for r in caplog.records if getattr(r, "action", "") == "slack_scopes_missing"]
    assert [r.scopes for r in said] == [["channels:read", "groups:read"]]


def test_a_slack_failure_does_not_show_the_run(bot: RunningBot) -> None:
    run_id = in_private(bot, 424242)
    bot.slack.fail_next("conversations.info", status=200, error="internal_error")
    answer = runs(bot, "alice", f"show {run_id[:8]}").text
    assert f"could not check whether you are a member of <#{PRIVATE}>" in answer
    assert "424242" not in answer


def test_slack_rate_limiting_past_retries_refuses_naming_the_channel(bot: RunningBot) -> None:
    run_id = in_private(bot, 313131)
    bot.slack.fail_next("conversations.info", times=20, status=429, retry_after=0)
    answer = runs(bot, "alice", f"show {run_id[:8]}").text
    assert f"could not check whether you are a member of <#{PRIVATE}>" in answer
    assert "ratelimited" in answer and "313131" not in answer
    assert run_id not in listed(runs(bot, "bob", "pc-open"))
