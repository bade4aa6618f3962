"""Hostile input from outside, over real HTTP with Slack-signed requests: markup typed into
``/runs`` or carried by a button, clicks naming runs that do not exist, JSON nested past
Python's parser, and characters a database cannot store. Every one gets a specific answer
(never silence), nothing it carries is shown as live markup, and the run it names, or the
prompt it was sent from, is left as it was.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator

import pytest

from signoff.bot.sandbox.transport import JSON, AppConnection
from signoff.bot.slack import ids
from signoff.bot.testing import SIGNING_SECRET, RunningBot, running_bot
from signoff.engine import Engine, flow, pause_flow_run
from signoff.engine.input import RunInput
from tests.support.waiting import wait_for

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


def buttons(message) -> list[dict]:
    return [e for b in message.blocks if b.get("type") == "actions" for e in b["elements"]]


@pytest.mark.parametrize(
    "value",
    [
        f"{'0' * 32}:1",  # PROVIDE_INPUT: a run that does not exist
        '{"t": "<!here>:1", "f": "ok", "v": true}',  # a decision for one
    ],
)
def test_a_click_naming_a_run_that_does_not_exist_leaves_the_prompt_pressed(
    engine: Engine, bot: RunningBot, value: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="signoff.bot.slack.deleted")
    run = engine.submit("hostile-wait", {})
    prompt = bot.root_message(run.id)
    action_id = ids.PROVIDE_INPUT if value.endswith(":1") else f"{ids.DECIDE}:0"
    # Slack's payload for a press on the prompt, but carrying another button's value.
    forged_click(bot, action_id, value, prompt)
    told = bot.slack.wait_for(
        lambda ws: ws.open_view("U0ALICE") or ws.ephemeral("U0ALICE"), timeout=10
    )
    shown = str(told.view) if hasattr(told, "view") else told[-1].text
    assert "no longer exists" in shown
    settled = wait_for(
        lambda: [
            a
            for r in caplog.records
            if (a := getattr(r, "action", "")).startswith("deleted_run_prompt")
        ],
        what="the pressed message closed or kept",
    )
    # The prompt is about a run that does exist and waits: it keeps its buttons and words.
    assert settled == ["deleted_run_prompt_kept"]
    kept = bot.slack.workspace.channel(bot.channel).message(prompt.ts)
    assert buttons(kept) == buttons(prompt) and kept.text == prompt.text
    assert not bot.slack.workspace.calls("chat.update")
    # ... and the run is answered from it as before.
    bot.slack.workspace.close_views("U0ALICE", all_views=True)
    bot.driver.click("alice", kept, action_id=ids.PROVIDE_INPUT)
    bot.slack.wait_for(
        lambda ws: (v := ws.open_view("U0ALICE")) and v.callback_id == ids.INPUT_VIEW
    )
    assert bot.driver.submit("alice", {"ok": True}).status == 200
    assert "Answer recorded" in str(bot.outcome("alice").view)


def test_the_prompt_of_a_run_that_is_gone_still_loses_its_buttons(
    engine: Engine, bot: RunningBot
) -> None:
    run = engine.submit("hostile-wait", {})
    prompt = bot.root_message(run.id)
    # A prompt whose run was since deleted, as a backend that deletes runs leaves it: its
    # buttons name a run that no longer exists, and one of them is pressed.
    gone = "f" * 32
    blocks = json.loads(json.dumps(prompt.blocks).replace(run.id, gone))
    bot.slack.workspace.update_message(bot.channel, prompt.ts, prompt.text, blocks)
    orphan = bot.slack.workspace.channel(bot.channel).message(prompt.ts)
    forged_click(bot, ids.PROVIDE_INPUT, f"{gone}:1", orphan)
    closed = bot.slack.wait_for(
        lambda ws: not buttons(m := ws.channel(bot.channel).message(prompt.ts)) and m, timeout=10
    )
    assert "was deleted" in json.dumps(closed.blocks)


@pytest.mark.parametrize("other", [1, "text", None, ["a", "list"]])
def test_a_click_on_a_gone_run_in_a_message_with_a_block_that_is_no_object_gets_400(
    bot: RunningBot, other: object
) -> None:
    """Closing the pressed prompt read each of its blocks as an object: a message whose
    blocks held anything else (which Slack never sends) was acked 200 and the listener
    failed behind the ack with a traceback."""
    gone = "f" * 32
    ws = bot.slack.workspace
    pressed = {"action_id": ids.PROVIDE_INPUT, "value": f"{gone}:1"}
    ts = "1700000000.000001"
    payload = {
        "type": "block_actions",
        "user": {"id": "U0ALICE"},
        "trigger_id": ws.issue_trigger("U0ALICE"),
        "channel": {"id": bot.channel},
        "container": {"type": "message", "channel_id": bot.channel, "message_ts": ts},
        "actions": [pressed],
        "message": {"ts": ts, "blocks": [other, {"type": "actions", "elements": [pressed]}]},
    }
    conn = AppConnection(f"{bot.server.url}/slack/events", SIGNING_SECRET)
    answer = conn.send_payload(payload)
    assert answer.status == 400
    assert "payload.message.blocks.0" in answer.body.decode()


@pytest.mark.parametrize("nested", ["[" * 1500 + "]" * 1500, "[" * 3000])
def test_a_parameter_nested_deeper_than_json_reads_is_refused_by_name(
    engine: Engine, bot: RunningBot, nested: str
) -> None:
    reply = typed(bot, f"start hostile-wait count={nested}")
    assert (
        reply
        == ":warning: `count`: JSON nested too deeply (more than 100 levels of lists and objects)"
    )
    assert engine.list_runs() == []
    # /runs still answers, and starts the flow when asked properly.
    assert "Started" in typed(bot, "start hostile-wait count=2")


@pytest.mark.parametrize("value", ["[" * 999 + "]" * 999, "[" * 1990])
def test_a_decision_button_nested_deeper_than_json_reads_is_refused(
    engine: Engine, bot: RunningBot, value: str
) -> None:
    run = engine.submit("hostile-wait", {})
    bot.root_message(run.id)
    forged_click(bot, f"{ids.DECIDE}:0", value)
    told = bot.slack.wait_for(lambda ws: ws.ephemeral("U0ALICE"), timeout=10)
    assert told[-1].text == "That button is not one of Signoff's; nothing was changed."
    assert engine.get_pause(run.id, "1").status.value == "waiting"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("show \x00", "no run with id"),
        # four characters at least: a shorter prefix is refused before any look-up
        ("cancel \x00\x00\x00\x00", "no run with id"),
        ("all before=\x00", "no run"),
        ("\x00", "Unknown command"),
    ],
)
def test_a_nul_typed_where_a_run_or_flow_goes_is_no_such_run_not_an_outage(
    bot: RunningBot, text: str, says: str
) -> None:
    # PostgreSQL cannot hold a NUL in text: no stored run or flow can be named by one.
    reply = typed(bot, text)
    assert says in reply and "unavailable" not in reply, reply


@pytest.mark.parametrize(
    ("action_id", "value"),
    [
        (ids.PROVIDE_INPUT, "\x00:1"),
        (ids.PROVIDE_INPUT, "{run}:\x00"),
        (ids.REASSIGN, "\x00:1"),
        (ids.REASSIGN, "{run}:\x00"),
        (f"{ids.DECIDE}:0", '{{"t": "\\u0000:1", "f": "ok", "v": true}}'),
        (f"{ids.DECIDE}:0", '{{"t": "{run}:\\u0000", "f": "ok", "v": true}}'),
        # JSON in a value can carry a lone surrogate, which no database stores (the edge
        # refuses one in the value itself)
        (f"{ids.DECIDE}:0", '{{"t": "\\ud800:1", "f": "ok", "v": true}}'),
    ],
)
def test_a_nul_or_a_lone_surrogate_in_a_buttons_value_is_no_such_run(
    engine: Engine, bot: RunningBot, action_id: str, value: str
) -> None:
    run = engine.submit("hostile-wait", {})
    bot.root_message(run.id)
    forged_click(bot, action_id, value.format(run=run.id))
    told = bot.slack.wait_for(
        lambda ws: ws.open_view("U0ALICE") or ws.ephemeral("U0ALICE"), timeout=10
    )
    shown = json.dumps(told.view) if hasattr(told, "view") else told[-1].text
    assert "unavailable" not in shown and "cannot read" not in shown, shown
    assert "no longer exists" in shown or "no input named" in shown or "not waiting" in shown, shown
    assert engine.get_pause(run.id, "1").status.value == "waiting"


@pytest.mark.parametrize("action_id", [ids.PROVIDE_INPUT, ids.REASSIGN])
def test_a_button_naming_an_input_the_run_never_asked_for_says_so(
    engine: Engine, bot: RunningBot, action_id: str
) -> None:
    run = engine.submit("hostile-wait", {})
    bot.root_message(run.id)
    forged_click(bot, action_id, f"{run.id}:bogus")
    told = bot.slack.wait_for(
        lambda ws: ws.open_view("U0ALICE") or ws.ephemeral("U0ALICE"), timeout=10
    )
    shown = json.dumps(told.view) if hasattr(told, "view") else told[-1].text
    assert "no input named" in shown and "bogus" in shown, shown
    assert "not waiting" not in shown, shown
    assert engine.get_pause(run.id, "1").status.value == "waiting"


def test_an_event_slack_delivers_again_is_acted_on_once(bot: RunningBot) -> None:
    ws = bot.slack.workspace
    body = json.dumps(
        {
            "type": "event_callback",
            "team_id": ws.team_id,
            "api_app_id": ws.app_id,
            "event_id": "Ev0HOSTILE01",
            "event_time": int(time.time()),
            "event": {
                "type": "app_home_opened",
                "user": "U0ALICE",
                "channel": ws.open_conversation(["U0ALICE"]),
                "tab": "home",
                "event_ts": f"{time.time():.6f}",
            },
        }
    )
    conn = AppConnection(f"{bot.server.url}/slack/events", SIGNING_SECRET)
    assert conn.send(body, JSON).status == 200
    bot.slack.wait_for(lambda ws: ws.home_view("U0ALICE"), timeout=10)
    published = len(ws.calls("views.publish"))
    # Slack's retries: the same body, signed again a moment later, saying which retry it is.
    for attempt, stamp in ((1, 1), (2, 2)):
        headers = conn.signed_headers(body, timestamp=int(time.time()) + stamp, content_type=JSON)
        headers |= {"X-Slack-Retry-Num": str(attempt), "X-Slack-Retry-Reason": "http_timeout"}
        assert conn.raw(body, headers).status == 200
    # A fresh event (another id) is still acted on, after the retries.
    assert bot.driver.open_home("alice").status == 200
    bot.slack.wait_for(lambda ws: len(ws.calls("views.publish")) > published, timeout=10)
    assert len(ws.calls("views.publish")) == published + 1
