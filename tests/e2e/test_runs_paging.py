"""``/runs`` over hundreds of runs in every state, stored as flows store them: every page
within Slack's limits for a message, and paging visits each run once, even while runs
change state between pages."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from signoff.bot.slack import ids
from signoff.bot.testing import RunningBot, running_bot
from signoff.engine import Engine, RunState
from signoff.engine.runs import Pause

BASE = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
#: the states runs are made in, in turn; "waiting" runs are suspended for an approval
KINDS = ("waiting", "completed", "failed", "cancelled", "running", "waiting")
FINAL = {"completed": RunState.COMPLETED, "failed": RunState.FAILED}
FINAL |= {"cancelled": RunState.CANCELLED, "running": RunState.RUNNING}
SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}


def made_runs(
    engine: Engine, count: int, flows: tuple[str, str] = ("pg-a", "pg-b")
) -> dict[str, str]:
    """``count`` runs of two ``flows``, four created at each instant (ties for the paging
    order), in KINDS' states by turn; the waiting ones ask two of three approvers, or
    anyone. Run id -> kind, oldest first."""
    made: dict[str, str] = {}
    store = engine.store
    for i in range(count):
        at = BASE + timedelta(seconds=i // 4)
        store.clock = lambda at=at: at
        run_id, kind, flow = uuid.uuid4().hex, KINDS[i % len(KINDS)], flows[i % 2]
        state = RunState.RUNNING if kind == "waiting" else FINAL[kind]
        store.create_run(run_id, flow, None, b"", {"i": i}, state, owner=None, started_by=None)
        if kind == "waiting":
            approvers = ("U0ALICE", "U0BOB", "U0CAROL") if i % 2 else ()
            pause = Pause.waiting(
                run_id,
                "1",
                at,
                None,
                suspend=True,
                schema=SCHEMA,
                title=None,
                description=None,
                initial={},
                approvers=approvers,
                forbid_starter=False,
                quorum=2 if approvers else 1,
            )
            assert store.open_pause(pause, None)
        made[run_id] = kind
    store.clock = lambda: datetime.now(UTC)
    return made


def newest_first(made: dict[str, str]) -> list[str]:
    """``made``'s runs as listed: newest first, and by id among those made at one instant."""
    at = {run_id: i // 4 for i, run_id in enumerate(made)}
    return sorted(made, key=lambda run_id: (at[run_id], run_id), reverse=True)


@pytest.fixture
def bot(engine: Engine) -> Iterator[RunningBot]:
    with running_bot(engine=engine) as running:
        yield running


def within_limits(message) -> None:
    """What Slack checks of a message beyond what the sandbox refuses outright."""
    assert len(message.blocks) <= 50
    for block in message.blocks:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000
        for element in block.get("elements", ()):
            if element.get("type") == "button":
                assert len(element["text"]["text"]) <= 75 and len(element["value"]) <= 2000
                # A button acts on the run it is shown next to.
                assert block["block_id"] in ("runs:more", f"run:{element['value']}")


def listed(message) -> list[str]:
    return [b["block_id"][4:] for b in message.blocks if b.get("block_id", "")[:4] == "run:"]


def every_page(bot: RunningBot, text: str, between=lambda seen: None) -> list[str]:
    """The runs ``/runs text`` lists, page after page through its More buttons; ``between``
    runs after each page with the runs listed so far."""
    before = len(bot.slack.ephemeral("alice"))
    bot.driver.slash_command("alice", "/runs", text)
    page = bot.slack.wait_for(lambda ws: ws.ephemeral("alice")[before:][-1], timeout=10)
    seen: list[str] = []
    while True:
        within_limits(page)
        seen += listed(page)
        between(seen)
        more = [
            e
            for b in page.blocks
            if b["type"] == "actions"
            for e in b["elements"]
            if e["action_id"] == ids.MORE_RUNS
        ]
        if not more:
            return seen
        before = len(bot.slack.ephemeral("alice"))
        bot.driver.click("alice", page, action_id=ids.MORE_RUNS, value=more[0]["value"])
        page = bot.slack.wait_for(lambda ws: ws.ephemeral("alice")[before:][-1], timeout=10)


def test_every_run_is_listed_once_while_runs_change_state_between_pages(
    engine: Engine, bot: RunningBot
) -> None:
    made = made_runs(engine, 240)
    order = newest_first(made)

    def meanwhile(seen: list[str]) -> None:
        # A run already listed and one not listed yet end while the person reads the page.
        for runs in (seen[::-1], order[len(seen) :]):
            if run := next((r for r in runs if not engine.get_run(r).state.is_final), None):
                engine.cancel(run, "U0CAROL")

    assert every_page(bot, "all", meanwhile) == order


def test_filters_list_exactly_their_runs_page_after_page(engine: Engine, bot: RunningBot) -> None:
    made = made_runs(engine, 120)
    order = newest_first(made)
    assert every_page(bot, "") == [r for r in order if made[r] == "waiting"]
    assert every_page(bot, "failed") == [r for r in order if made[r] == "failed"]
    assert every_page(bot, "running") == [r for r in order if made[r] == "running"]
    of_b = {r for i, r in enumerate(made) if i % 2}
    assert every_page(bot, "pg-b") == [r for r in order if r in of_b]


def test_a_flow_named_like_a_filter_is_listed_by_runs_flow(engine: Engine, bot: RunningBot) -> None:
    """`/runs failed` lists failed runs; the runs of a flow named "failed" are listed by
    `/runs flow failed`, page after page, and the More button's typed form says so."""
    made = made_runs(engine, 40, flows=("failed", "pg-b"))
    order = newest_first(made)
    of_failed = [r for i, r in enumerate(made) if i % 2 == 0]
    assert every_page(bot, "flow failed") == [r for r in order if r in of_failed]
    assert every_page(bot, "failed") == [r for r in order if made[r] == "failed"]
    before = len(bot.slack.ephemeral("alice"))
    bot.driver.slash_command("alice", "/runs", "flow failed")
    page = bot.slack.wait_for(lambda ws: ws.ephemeral("alice")[before:][-1], timeout=10)
    assert page.text == "Runs of failed"
    last = listed(page)[-1]
    assert f"Older runs: `/runs flow failed before={last}`" in str(page.blocks)
    before = len(bot.slack.ephemeral("alice"))
    bot.driver.slash_command("alice", "/runs", f"flow failed before={last[:12]}")
    following = bot.slack.wait_for(lambda ws: ws.ephemeral("alice")[before:][-1], timeout=10)
    assert listed(following) == [r for r in order if r in of_failed][15:30]
    for typed, said in (("flow no-such", "No flow `no-such`"), ("flow", "needs a flow")):
        before = len(bot.slack.ephemeral("alice"))
        bot.driver.slash_command("alice", "/runs", typed)
        reply = bot.slack.wait_for(lambda ws: ws.ephemeral("alice")[before:][-1], timeout=10)
        assert said in reply.text
