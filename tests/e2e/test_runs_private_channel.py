"""A run of an open flow whose messages are in a private channel, over real HTTP on both
stores: ``/runs show`` refuses whoever is not in that channel (save its starter), ``/runs``
lists leave such runs out and say how many, asking Slack once per channel, not per run;
and when Slack will not say who is in the channel, the run is not shown."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Literal

import pytest

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


def test_lists_leave_out_runs_in_a_private_channel_asking_slack_once(bot: RunningBot) -> None:
    hidden = [in_private(bot, 1000 + i) for i in range(3)]
    public = bot.engine.submit("pc-open", {"salary": 5}, started_by="U0CAROL")
    wait_for(lambda: bot.engine.get_run(public.id).state.is_final, timeout=15)
    asked = len(bot.slack.calls("conversations.members"))

    listing = runs(bot, "alice", "pc-open")
    ids = [
        b["block_id"].removeprefix("run:")
        for b in listing.blocks
        if "run:" in b.get("block_id", "")
    ]
    assert ids == [public.id]
    assert "3 runs you may not view are not shown." in json.dumps(listing.blocks)
    # One look at the channel's members for the whole page, not one per run.
    assert len(bot.slack.calls("conversations.members")) == asked + 1

    ids = [
        b["block_id"]
        for b in runs(bot, "carol", "pc-open").blocks
        if "run:" in b.get("block_id", "")
    ]
    assert sorted(ids) == sorted(f"run:{r}" for r in [*hidden, public.id])


def test_a_slack_failure_does_not_show_the_run(bot: RunningBot) -> None:
    run_id = in_private(bot, 424242)
    bot.slack.fail_next("conversations.info", status=200, error="internal_error")
    answer = runs(bot, "alice", f"show {run_id[:8]}").text
    assert f"could not check whether you are a member of <#{PRIVATE}>" in answer
    assert "424242" not in answer
