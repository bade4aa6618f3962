"""A run whose rows were edited by hand does not hold up what the bot posts for others."""

from __future__ import annotations

import logging
from typing import Literal

import pytest
from sqlalchemy import text

from signoff.bot.slack import ids
from signoff.bot.testing import running_bot
from signoff.engine import Engine, flow, pause_flow_run
from signoff.engine.input import RunInput
from tests.support.running import start, waiting
from tests.support.waiting import wait_for


class Verdict(RunInput):
    decision: Literal["ship", "hold"]


@flow(name="unreadable-asks")
def unreadable_asks(name: str) -> str:
    return f"{name}: {pause_flow_run(wait_for_input=Verdict, timeout=600).decision}"


def test_a_question_whose_pause_was_edited_by_hand_is_skipped_and_the_next_is_posted(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """The bot's first start handed the first question again and again, for ever: the
    second question was never posted."""
    first_thread, _ = start(unreadable_asks, "first")
    first = waiting(engine, "unreadable-asks").run_id
    second_thread, second_box = start(unreadable_asks, "second")
    second = wait_for(
        lambda: next(
            (
                p.run_id
                for r in engine.list_runs(flow_name="unreadable-asks")
                if r.id != first and (p := engine.waiting_pause(r.id)) is not None
            ),
            None,
        ),
        what="the second question",
    )
    with engine.store.engine.begin() as conn:
        conn.execute(text("UPDATE pauses SET approvers = '7' WHERE run_id = :id"), {"id": first})

    with caplog.at_level(logging.ERROR), running_bot(engine=engine) as bot:
        prompt = bot.root_message(second)
        skipped = [r for r in caplog.records if getattr(r, "action", "") == "slack_change_skipped"]
        assert [r.run_id for r in skipped][:1] == [first]
        assert f"run {first} cannot be read" in skipped[0].getMessage()
        bot.driver.click("alice", prompt, action_id=ids.PROVIDE_INPUT)
        bot.slack.wait_for(lambda ws: ws.open_view("U0ALICE"))
        bot.driver.submit("alice", {"decision": "ship"})
        second_thread.join(15)
        assert second_box["result"] == "second: ship"
    with engine.store.engine.begin() as conn:
        conn.execute(text("UPDATE pauses SET approvers = NULL WHERE run_id = :id"), {"id": first})
    engine.cancel(first)
    first_thread.join(15)
