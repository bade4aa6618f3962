"""Hostile input from outside, over real HTTP with Slack-signed requests: markup typed into
``/runs`` or carried by a button, clicks naming runs that do not exist, JSON nested past
Python's parser, and characters a database cannot store. Every one gets a specific answer
(never silence), nothing it carries is shown as live markup, and the run it names, or the
prompt it was sent from, is left as it was.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from signoff.bot.sandbox.transport import AppConnection
from signoff.bot.slack import ids
from signoff.bot.testing import SIGNING_SECRET, RunningBot, running_bot
from signoff.engine import Engine, flow, pause_flow_run
from signoff.engine.input import RunInput

#: markup Slack acts on: a special mention (@channel, @here), a person, a channel, or a link
LIVE_MARKUP = re.compile(r"<[!@#]|<https?:")


class Go(RunInput):
    ok: bool = True


@flow(name="hostile-wait")
def hostile_wait(count: int = 1, label: str = "") -> bool:
    return pause_flow_run(wait_for_input=Go, timeout=600).ok


@pytest.fixture
def bot(engine: Engine) -> Iterator[RunningBot]:
    with running_bot(engine=engine) as running:
        yield running


def typed(bot: RunningBot, text: str, user: str = "alice") -> str:
    """Type ``/runs text``; the ephemeral answer's text."""
    before = len(bot.slack.ephemeral(user))
    assert bot.driver.slash_command(user, "/runs", text).status == 200
    return bot.slack.wait_for(lambda ws: ws.ephemeral(user)[before:][-1], timeout=10).text


def forged_click(bot: RunningBot, action_id: str, value: str, prompt=None) -> None:
    """A correctly signed click on a button carrying ``value``, in ``prompt`` (a message)
    when given, with a ``response_url`` as Slack gives one for a click in a message."""
    ws = bot.slack.workspace
    channel, ts = bot.channel, prompt.ts if prompt is not None else "1700000000.000001"
    payload = {
        "type": "block_actions",
        "user": {"id": "U0ALICE"},
        "trigger_id": ws.issue_trigger("U0ALICE"),
        "channel": {"id": channel},
        "container": {"type": "message", "channel_id": channel, "message_ts": ts},
        "response_url": bot.driver._response_url(ws.issue_response_url("U0ALICE", channel, ts)),
        "actions": [{"action_id": action_id, "value": value}],
    }
    if prompt is not None:
        payload["message"] = {"ts": prompt.ts, "text": prompt.text, "blocks": prompt.blocks}
    conn = AppConnection(f"{bot.server.url}/slack/events", SIGNING_SECRET)
    assert conn.send_payload(payload).status == 200


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("show <!channel>", "no run with id"),
        ("cancel <https://evil.example|click>", "no run with id"),
        ("start hostile-wait <!here>", "is not `name=value`"),
        ("start hostile-wait x`<!channel>`", "is not `name=value`"),
        ("start hostile-wait <!channel>=1", "has no parameter"),
        ("start hostile-wait <!here>=1 <!here>=2", "given twice"),
        ("all before=<!channel>", "no run"),
        ("all before=x`<https://evil.example|click>`", "no run"),
    ],
)
def test_markup_typed_into_runs_comes_back_as_text(bot: RunningBot, text: str, says: str) -> None:
    reply = typed(bot, text)
    assert says in reply
    assert not LIVE_MARKUP.search(reply), reply
    assert "&lt;" in reply  # shown, as typed, not dropped


@pytest.mark.parametrize("action_id", [ids.SHOW_RUN, ids.CANCEL_RUN, ids.MORE_RUNS])
def test_markup_in_a_list_buttons_value_comes_back_as_text(bot: RunningBot, action_id: str) -> None:
    value = "all|<!channel>" if action_id == ids.MORE_RUNS else "<https://evil.example|click>"
    before = len(bot.slack.workspace.calls("response_url"))
    forged_click(bot, action_id, value)
    told = bot.slack.wait_for(
        lambda ws: ws.calls("response_url")[before:] and ws.calls("response_url")[-1], timeout=10
    )
    assert "no run with id" in told.args["text"]
    assert not LIVE_MARKUP.search(told.args["text"]), told.args["text"]
