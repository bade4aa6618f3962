"""A one-click decision whose button would carry more than Slack lets a button's value
hold (2,000 characters): a long field name (an alias), a long input key and a long choice,
in characters JSON writes as six or twelve each.
Clicking it answers the run, as any other decision does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Literal

import pytest
from pydantic import Field

from signoff.bot.slack import ids
from signoff.bot.testing import RunningBot, running_bot
from signoff.engine import Engine, flow, pause_flow_run
from signoff.engine.input import RunInput
from tests.support.waiting import wait_for

#: a field name (an alias) nearly as long as a form's block id allows, in characters that
#: JSON writes as twelve each
LONG_NAME = "🚀" * 240
#: a choice as long as a form's option may be, in the same letters
LONG_CHOICE = "é" * 150


class LongGo(RunInput):
    approved: bool = Field(alias=LONG_NAME)


class LongPick(RunInput):
    size: Literal["small", "é" * 150] = Field(alias=LONG_NAME)


@flow(name="long-decision-bool")
def long_decision_bool() -> bool:
    return pause_flow_run(LongGo, timeout=600, key="k" * 120).approved


@flow(name="long-decision-choice")
def long_decision_choice() -> str:
    return pause_flow_run(LongPick, timeout=600, key="k" * 120).size


@pytest.fixture
def bot(engine: Engine) -> Iterator[RunningBot]:
    with running_bot(engine=engine) as running:
        yield running


def buttons(message) -> list[dict]:
    return [e for b in message.blocks if b.get("type") == "actions" for e in b["elements"]]


@pytest.mark.parametrize(
    ("name", "button", "result"),
    [("long-decision-bool", 1, "False"), ("long-decision-choice", 1, repr(LONG_CHOICE))],
)
def test_a_decision_too_long_for_a_button_value_still_answers_the_run(
    engine: Engine, bot: RunningBot, name: str, button: int, result: str
) -> None:
    run = engine.submit(name, {})
    prompt = bot.root_message(run.id)
    shown = buttons(prompt)
    assert all(len(b.get("value", "")) <= 2000 for b in shown)
    bot.driver.click("alice", prompt, action_id=f"{ids.DECIDE}:{button}")
    done = wait_for(lambda: (r := engine.get_run(run.id)).state.is_final and r, timeout=15)
    assert done.result == result, done.state_message


def test_a_decision_button_posted_before_carrying_its_answer_still_answers(
    engine: Engine, bot: RunningBot
) -> None:
    """Prompts posted by an earlier Signoff carry the answer itself in the button."""
    run = engine.submit("long-decision-choice", {})
    prompt = bot.root_message(run.id)
    blocks = json.loads(json.dumps(prompt.blocks))
    for block in blocks:
        for element in block.get("elements", []):
            if element.get("action_id") == f"{ids.DECIDE}:0":
                element["value"] = json.dumps(
                    {"t": f"{run.id}:{'k' * 120}", "f": LONG_NAME, "v": "small"},
                    ensure_ascii=False,
                )
    bot.slack.workspace.update_message(bot.channel, prompt.ts, prompt.text, blocks)
    earlier = bot.slack.workspace.channel(bot.channel).message(prompt.ts)
    bot.driver.click("alice", earlier, action_id=f"{ids.DECIDE}:0")
    done = wait_for(lambda: (r := engine.get_run(run.id)).state.is_final and r, timeout=15)
    assert done.result == "'small'", done.state_message
