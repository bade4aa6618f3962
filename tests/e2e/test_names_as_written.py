"""Names with Slack's formatting characters in them (``*``, ``_``, ``~``, a backtick, a
``:code:``) are shown as written, and the formatting around them stays as meant: the bold
flow name in a prompt, a /runs list, the Home tab and a Cancel button's confirm dialog, and
a flow author's ``\\*`` in a description.

What a person sees is read through the sandbox's page renderer, which draws mrkdwn by
Slack's rules.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator

import pytest

from signoff.bot.sandbox.web.mrkdwn import to_html
from signoff.bot.slack import ids
from signoff.bot.testing import RunningBot, running_bot
from signoff.engine import Engine, flow, pause_flow_run
from signoff.engine.input import RunInput

NAME = "*rel_ease* ~v2~ `prod` _a_b_ :x: *"


class Go(RunInput):
    ok: bool


@flow(name=NAME)
def awkward() -> bool:
    described = Go.with_initial_data(description="Restart \\*all\\* hosts named \\_db_1\\_ now")
    return pause_flow_run(described, timeout=600).ok


@pytest.fixture
def bot(engine: Engine) -> Iterator[RunningBot]:
    with running_bot(engine=engine) as running:
        yield running


def seen(mrkdwn: str) -> str:
    """The text a person reads: the drawn HTML without its tags."""
    return html.unescape(re.sub(r"<[^>]+>", "", str(to_html(mrkdwn))))


def bold(mrkdwn: str) -> list[str]:
    """The text drawn in bold, each bold span on its own."""
    drawn = str(to_html(mrkdwn))
    return [html.unescape(re.sub(r"<[^>]+>", "", b)) for b in re.findall(r"<b>(.*?)</b>", drawn)]


def texts(blocks: list[dict]) -> list[str]:
    return [b["text"]["text"] for b in blocks if b.get("type") == "section"]


def test_a_prompt_shows_the_name_and_description_as_written(
    engine: Engine, bot: RunningBot
) -> None:
    run = engine.submit(NAME, {})
    prompt = bot.root_message(run.id)
    heading, description = texts(prompt.blocks)[:2]
    assert seen(heading) == f"{NAME} run {run.id[:8]} is waiting for input"
    assert bold(heading) == [NAME]
    assert seen(description) == "Restart *all* hosts named _db_1_ now"
    assert "<b>" not in str(to_html(description)) and "<i>" not in str(to_html(description))


def test_runs_list_home_and_confirm_show_the_name_as_written(
    engine: Engine, bot: RunningBot
) -> None:
    run = engine.submit(NAME, {}, started_by="U0ALICE")
    bot.root_message(run.id)
    assert bot.driver.slash_command("alice", "/runs", "").status == 200
    listed = bot.slack.wait_for(
        lambda ws: next(
            (e for e in ws.ephemeral("alice") if run.id[:8] in json.dumps(e.blocks)), None
        ),
        timeout=10,
    )
    line = next(t for t in texts(listed.blocks) if run.id[:8] in t)
    assert bold(line) == [NAME]
    cancel = next(
        e
        for b in listed.blocks
        if b.get("type") == "actions"
        for e in b["elements"]
        if e["action_id"] == ids.CANCEL_RUN
    )
    confirm = cancel["confirm"]["text"]["text"]
    assert seen(confirm) == f"{NAME} run {run.id[:8]} stops where it is. This cannot be undone."
    assert bold(confirm) == [NAME]

    bot.driver.open_home("alice")
    home = bot.slack.wait_for(lambda ws: ws.home_view("alice"), timeout=10)
    waiting, started = (t for t in texts(home.view["blocks"]) if run.id[:8] in t)
    assert bold(waiting) == [NAME]
    assert seen(waiting).startswith(f"{NAME} run {run.id[:8]} asks for input 1 (deadline: ")
    assert bold(started)[0] == NAME


@flow(name="ship*it*_`now`")
def ship(version: str = "1") -> str:
    return version


def test_an_unknown_parameter_names_the_flow_as_written(bot: RunningBot) -> None:
    # The name went into a code span as it was: its backticks ended the code early.
    assert bot.driver.slash_command("alice", "/runs", "start ship*it*_`now` size=3").status == 200
    told = bot.slack.wait_for(lambda ws: ws.ephemeral("alice"), timeout=10)[-1]
    assert seen(told.text) == "⚠️ Flow ship*it*_`now` has no parameter size; it takes version"
    assert bold(told.text) == ["ship*it*_`now`"]
