"""The Home tab with many runs of every kind: within Slack's limits for a view, whatever the
runs' names and failures hold."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from signoff.bot.slack.home import SHOWN
from signoff.bot.testing import RunningBot, running_bot
from signoff.engine import Engine, RunState, flow
from signoff.engine.runs import Pause
from tests.support.waiting import wait_for

#: what a flow that calls a web service may well raise: the error page it got back
ERROR_PAGE = "<html><head><title>502 Bad Gateway</title></head><body>" + "<p>&nbsp;</p>" * 300


@flow(name="home-fetch")
def home_fetch() -> None:
    raise RuntimeError(ERROR_PAGE)


@pytest.fixture
def bot(engine: Engine) -> Iterator[RunningBot]:
    with running_bot(engine=engine) as running:
        yield running


def test_a_run_that_failed_with_an_error_page_is_listed_within_a_sections_length(
    engine: Engine, bot: RunningBot
) -> None:
    run = engine.submit("home-fetch", {}, started_by="U0ALICE")
    wait_for(lambda: engine.get_run(run.id).state is RunState.FAILED, timeout=15)

    bot.driver.open_home("alice")
    # Published at all: the sandbox, as Slack, refuses a section longer than 3000 characters.
    home = bot.slack.wait_for(
        lambda ws: (h := ws.home_view("alice")) and "502 Bad Gateway" in json.dumps(h.view) and h,
        timeout=10,
    )
    line = next(b["text"]["text"] for b in home.view["blocks"] if run.id[:8] in json.dumps(b))
    assert "is *failed*: RuntimeError: &lt;html&gt;" in line and line.endswith("…")


def asking(engine: Engine, approvers: tuple[str, ...]) -> str:
    """A run suspended for a yes/no from ``approvers``, stored as a flow would store it."""
    run_id = uuid.uuid4().hex
    at = engine.store.clock()
    engine.store.create_run(
        run_id, "home-ask", None, b"", {}, RunState.RUNNING, owner=None, started_by="U0CAROL"
    )
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {"ok": {"type": "boolean"}},
        "required": ["ok"],
    }
    pause = Pause.waiting(
        run_id,
        "1",
        at,
        None,
        suspend=True,
        schema=schema,
        title=None,
        description=None,
        initial={},
        approvers=approvers,
        forbid_starter=False,
    )
    assert engine.store.open_pause(pause, None)
    return run_id


def test_more_runs_waiting_on_you_than_shown_says_so(engine: Engine, bot: RunningBot) -> None:
    mine = [asking(engine, ("U0ALICE",)) for _ in range(SHOWN + 2)]
    for _ in range(5):
        asking(engine, ("U0BOB",))

    bot.driver.open_home("alice")
    # The bot may already have published Alice's tab for a pause it saw while the runs were
    # being stored (with fewer runs, or the older ten); the tab she ends up with lists the
    # newest ten, newest first.
    newest = mine[::-1][:SHOWN]
    home = bot.slack.wait_for(
        lambda ws: (h := ws.home_view("alice")) and waiting_ids(h.view) == newest and h,
        timeout=10,
    )
    assert "The 10 newest of more than 10 runs waiting on you" in json.dumps(home.view)

    bot.driver.open_home("bob")
    home = bot.slack.wait_for(
        lambda ws: (h := ws.home_view("bob")) and len(waiting_ids(h.view)) == 5 and h,
        timeout=10,
    )
    assert "more than" not in json.dumps(home.view)  # all five are shown


def waiting_ids(view: dict[str, Any]) -> list[str]:
    """The runs a Home tab lists as waiting, top to bottom."""
    return [
        b["block_id"].split(":")[1]
        for b in view["blocks"]
        if b.get("block_id", "").startswith("home:")
    ]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # PostgreSQL refuses it
def test_a_run_changed_outside_signoff_is_listed_with_why_and_publishing_logs_no_info(
    engine: Engine, bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    """The runs alice started, one of them with a flow's name SQLite holds as bytes that
    are not UTF-8: the tab lists both, that one saying why it cannot be read, rather than
    "cannot read runs"; and a tab published is no INFO record (a busy workspace publishes
    tabs all day)."""
    made = []
    for name in ("home-good", "home-bad"):
        run_id = uuid.uuid4().hex
        engine.store.create_run(
            run_id, name, None, b"", {}, RunState.COMPLETED, owner=None, started_by="U0ALICE"
        )
        made.append(run_id)
    good, bad = made
    with engine.store.engine.begin() as conn:
        conn.execute(
            text("UPDATE runs SET flow_name = CAST(X'C3' AS TEXT) WHERE id = :id"), {"id": bad}
        )
    caplog.set_level(logging.DEBUG, logger="signoff.bot.slack.home")
    bot.driver.open_home("alice")
    home = bot.slack.wait_for(
        lambda ws: (h := ws.home_view("alice")) and bad[:8] in json.dumps(h.view) and h,
        timeout=10,
    )
    lines = [b["text"]["text"] for b in home.view["blocks"] if b["type"] == "section"]
    assert any(good[:8] in line and "home-good" in line for line in lines)
    (marked,) = [line for line in lines if bad[:8] in line]
    assert ":warning: cannot be read (its flow_name is not UTF-8 text)" in marked
    # logged once the sandbox has answered: waited for, then its level read
    wait_for(lambda: [r for r in caplog.records if getattr(r, "action", "") == "home_published"])
    published = [r for r in caplog.records if getattr(r, "action", "") == "home_published"]
    assert [r.levelname for r in published] == ["DEBUG"]
