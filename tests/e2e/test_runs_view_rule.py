"""Who may see a run from Slack (the view rule), over real HTTP on both stores: ``/runs
show`` and its Show button refuse privately, naming the rule and nothing of the run, and
``/runs`` lists leave out the runs the person may not view, saying how many, while paging
on past them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Literal

import pytest

from signoff.bot.slack import ids
from signoff.bot.testing import RunningBot, running_bot
from signoff.engine import Engine, RunState, flow, pause_flow_run
from signoff.engine.input import RunInput
from tests.support.waiting import wait_for

BASE = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


class Go(RunInput):
    decision: Literal["approve", "reject"]


@flow(name="rv-guarded", starters=["U0CAROL"])
def rv_guarded(service: str) -> str:
    answer = pause_flow_run(wait_for_input=Go, timeout=600, approvers=["U0BOB"])
    return f"{service} {answer.decision}"


@flow(name="rv-ops", cancellers=["S0OPS"])
def rv_ops(n: int = 1) -> int:
    return n


@flow(name="rv-audited", viewers=["S0AUDIT"])
def rv_audited(n: int = 1) -> int:
    return n


@flow(name="rv-open")
def rv_open(n: int = 1) -> int:
    return n


@pytest.fixture
def bot(make_engine: Callable[..., Engine]) -> Iterator[RunningBot]:
    with running_bot(engine=make_engine(admins=["U0DAVE"])) as running:
        running.slack.add_user("U0DAVE", "dave", "Dave Admin")
        yield running


def runs(bot: RunningBot, user: str, text: str = ""):
    """Type ``/runs text``; return the ephemeral answer."""
    before = len(bot.slack.ephemeral(user))
    reply = bot.driver.slash_command(user, "/runs", text)
    assert reply.status == 200, reply.text
    return bot.slack.wait_for(lambda ws: ws.ephemeral(user)[before:][-1], timeout=10)


def shown(message) -> str:
    return message.text + json.dumps(message.blocks)


def listed(message) -> list[str]:
    return [
        b["block_id"].removeprefix("run:")
        for b in message.blocks
        if b.get("block_id", "").startswith("run:")
    ]


def test_show_refuses_whoever_the_flow_does_not_name_and_shows_those_it_does(
    bot: RunningBot,
) -> None:
    engine = bot.engine
    run = engine.submit("rv-guarded", {"service": "payroll-db"}, started_by="U0CAROL")
    bot.root_message(run.id)  # waits on bob's decision

    refused = runs(bot, "alice", f"show {run.id[:8]}").text
    assert refused.startswith(":no_entry: You may not view this: runs of 'rv-guarded' are")
    assert "shown only to whoever started them" in refused
    assert "payroll-db" not in refused and "Parameters" not in refused
    [record] = [r for r in engine.audit_trail(run.id) if r.action == "refused"]
    assert (record.actor_id, record.data["action"]) == ("U0ALICE", "view")

    for user in ("carol", "bob", "dave"):  # started it; answers it; admin
        assert "payroll-db" in runs(bot, user, f"show {run.id[:8]}").text, user

    # The Show button refuses alike, even pressed on a list that had the run in it.
    listing = runs(bot, "carol", "all")
    before = len(bot.slack.ephemeral("alice"))
    bot.driver.click("alice", listing, action_id=ids.SHOW_RUN, value=run.id)
    clicked = bot.slack.wait_for(lambda ws: ws.ephemeral("U0ALICE")[before:][-1], timeout=10)
    assert clicked.text == refused

    # Bob answers; once the run is over he may still view it (he acted on it).
    prompt = bot.root_message(run.id)
    bot.driver.click("bob", prompt, action_id=ids.PROVIDE_INPUT)
    bot.slack.wait_for(lambda ws: ws.open_view("U0BOB"))
    bot.driver.submit("bob", {"decision": "approve"})
    wait_for(lambda: engine.get_run(run.id).state.is_final, timeout=15)
    assert "payroll-db" in runs(bot, "bob", f"show {run.id[:8]}").text


def test_a_group_the_flow_names_lets_its_members_view(bot: RunningBot) -> None:
    bot.slack.add_usergroup("S0OPS", "ops", ["U0ALICE"])
    run = bot.engine.submit("rv-ops", {"n": 41}, started_by="U0CAROL")
    assert '"n": 41' in runs(bot, "alice", f"show {run.id[:8]}").text
    assert runs(bot, "bob", f"show {run.id[:8]}").text.startswith(":no_entry:")


def test_a_flow_s_viewers_see_its_runs_in_show_and_lists(bot: RunningBot) -> None:
    bot.slack.add_usergroup("S0AUDIT", "auditors", ["U0ALICE"])
    run = bot.engine.submit("rv-audited", {"n": 7}, started_by="U0CAROL")
    assert '"n": 7' in runs(bot, "alice", f"show {run.id[:8]}").text
    assert run.id in listed(runs(bot, "alice", "all"))
    refused = runs(bot, "bob", f"show {run.id[:8]}").text
    assert refused.startswith(":no_entry:") and "its viewers" in refused
    assert run.id not in listed(runs(bot, "bob", "all"))


def test_lists_leave_out_runs_the_person_may_not_view_and_page_on_past_them(
    bot: RunningBot,
) -> None:
    store = bot.engine.store
    made = []
    for i in range(24):  # every third run is guarded: carol's
        flow_name = "rv-guarded" if i % 3 == 0 else "rv-open"
        run_id = uuid.uuid4().hex
        store.clock = lambda i=i: BASE + timedelta(seconds=i)
        made.append(
            store.create_run(
                run_id,
                flow_name,
                None,
                b"",
                {"i": i},
                RunState.COMPLETED,
                owner=None,
                started_by="U0CAROL" if flow_name == "rv-guarded" else "U0BOB",
            )
        )
    store.clock = lambda: datetime.now(UTC)
    newest_first = sorted(made, key=lambda r: (r.created_at, r.id), reverse=True)
    open_ids = [r.id for r in newest_first if r.flow_name == "rv-open"]

    first = runs(bot, "alice", "completed")
    assert listed(first) == [r.id for r in newest_first[:15] if r.flow_name == "rv-open"]
    assert "5 runs you may not view are not shown." in shown(first)
    more = [
        e
        for b in first.blocks
        if b.get("type") == "actions"
        for e in b["elements"]
        if e["action_id"] == ids.MORE_RUNS
    ]
    before = len(bot.slack.ephemeral("alice"))
    bot.driver.click("alice", first, action_id=ids.MORE_RUNS, value=more[0]["value"])
    second = bot.slack.wait_for(lambda ws: ws.ephemeral("U0ALICE")[before:][-1], timeout=10)
    # Each run the person may view once, in order, across the pages; none of the others.
    assert listed(first) + listed(second) == open_ids
    assert "3 runs you may not view are not shown." in shown(second)

    # Whoever started the guarded runs sees every run, with no such line.
    everything = runs(bot, "carol", "completed")
    assert listed(everything) == [r.id for r in newest_first[:15]]
    assert "may not view" not in shown(everything)
