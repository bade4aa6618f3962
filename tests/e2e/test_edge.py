"""The Slack edge over real HTTP: forged requests get 401 before any parsing, replays do
nothing (on any replica), malformed signed payloads get a 400 that names the problem,
oversized input is refused at Slack's limits, and a form cannot be pointed at another run.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from signoff.bot.backends.embedded import EmbeddedBackend
from signoff.bot.sandbox.transport import JSON, AppConnection
from signoff.bot.slack import ids
from signoff.bot.slack.edge import SlackEdge
from signoff.bot.testing import SIGNING_SECRET, RunningBot, running_bot
from signoff.engine import Engine, EngineSettings, PauseStatus, RunState, flow, pause_flow_run
from signoff.engine.input import RunInput
from tests.support.forging import reopen_pointed_at
from tests.support.replicas import another_replica
from tests.support.waiting import wait_for


class Go(RunInput):
    ok: bool = True


@flow(name="edge-wait")
def edge_wait() -> bool:
    return pause_flow_run(wait_for_input=Go, timeout=600).ok


@pytest.fixture
def bot(engine: Engine) -> Iterator[RunningBot]:
    with running_bot(engine=engine) as running:
        yield running


def command_body(text: str, user: str = "U0ALICE") -> str:
    # A trigger_id of its own, as Slack gives every command typed.
    return urlencode(
        {
            "command": "/runs",
            "text": text,
            "user_id": user,
            "channel_id": "C0GENERAL",
            "trigger_id": f"1.2.{uuid.uuid4().hex}",
            "response_url": "http://127.0.0.1:9/response/none",
        }
    )


def forged_requests(conn: AppConnection) -> list[tuple[str, bytes, dict[str, str]]]:
    """Requests that fail the signature check in every way the issue saw 500s for."""
    good = command_body("start edge-wait")
    signed = conn.signed_headers(good)
    now = str(int(time.time()))
    wrong = {**signed, "X-Slack-Signature": "v0=" + "0" * 64}
    cases = [
        ("no headers", good.encode(), {"Content-Type": "application/x-www-form-urlencoded"}),
        ("wrong signature", good.encode(), wrong),
        ("signature of another body", command_body("cancel x").encode(), signed),
        ("not UTF-8, unsigned", b"payload=\xff\xfe\xfd", {"Content-Type": "text/plain"}),
        ("not UTF-8, wrongly signed", b"\xff\xfe{", wrong),
        ("not JSON, wrongly signed", b"payload={nope", wrong),
        ("JSON type, not JSON", b"{nope", {**wrong, "Content-Type": "application/json"}),
        ("stale", good.encode(), conn.signed_headers(good, timestamp=int(time.time()) - 301)),
        ("empty body", b"", wrong),
        ("signature not ASCII", good.encode(), {**signed, "X-Slack-Signature": "v0=é"}),
    ]
    for stamp in ("abc", "1e9", "", "-5", "¹²³", " 12", now + ".5", "9" * 40):
        cases.append(
            (f"timestamp {stamp!r}", good.encode(), {**signed, "X-Slack-Request-Timestamp": stamp})
        )
    return cases


def test_forged_requests_get_401_before_anything_is_parsed(engine: Engine, bot: RunningBot) -> None:
    conn = AppConnection(f"{bot.server.url}/slack/events", SIGNING_SECRET)
    cases = forged_requests(conn)
    answers = {name: conn.raw(body, headers) for name, body, headers in cases}
    statuses = {name: a.status for name, a in answers.items()}
    assert statuses == {name: 401 for name in statuses}, statuses
    # Nothing was acted on: no run started.
    assert engine.list_runs() == []
    # The same command, signed, does start a run: the 401s were the signature's doing.
    assert conn.send(command_body("start edge-wait")).status == 200
    wait_for(lambda: engine.list_runs(), timeout=10, what="the signed command's run")


def test_a_replayed_request_does_nothing_on_any_replica(
    engine: Engine, bot: RunningBot, database_url: str
) -> None:
    conn = AppConnection(f"{bot.server.url}/slack/events", SIGNING_SECRET)
    body = command_body("start edge-wait")
    headers = conn.signed_headers(body)
    assert conn.raw(body, headers).status == 200
    run = wait_for(lambda: engine.list_runs(), timeout=10)[0]
    assert conn.raw(body, headers).status == 200  # the replay is answered ...

    # ... and so is the same replay sent to another replica on the same database.
    with another_replica(bot, database_url) as replica:
        other = AppConnection(f"{replica.url}/slack/events", SIGNING_SECRET)
        assert other.raw(body, headers).status == 200
        # A fresh request through the replica still works, so the replay was recognised.
        # (A different body: the same body signed in the same second is the same request.)
        assert other.send(command_body("start  edge-wait")).status == 200
        wait_for(lambda: len(engine.list_runs()) == 2, timeout=10, what="the fresh request's run")
    # Two requests were fresh, so two runs; the replays added none.
    assert run.id in [r.id for r in engine.list_runs()] and len(engine.list_runs()) == 2


def test_a_request_stamped_ahead_of_our_clock_is_not_acted_on_twice(tmp_path: Path) -> None:
    """Its claim lapsed 300 s after it came, while its signature passed for 300 s more."""
    start = 1_800_000_000.0
    now = [start]
    engine = Engine(
        EngineSettings.load(database_url=f"sqlite:///{tmp_path / 'edge.db'}"),
        clock=lambda: datetime.fromtimestamp(now[0], tz=UTC),
    )
    handled: list[bytes] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        handled.append(environ["wsgi.input"].read())
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b""]

    edge = SlackEdge(app, EmbeddedBackend(engine), SIGNING_SECRET, clock=lambda: now[0])
    body = command_body("cancel 0123abcd")
    # Slack's clock (or whoever signed) is 250 s ahead of ours: inside the window.
    headers = AppConnection("http://unused", SIGNING_SECRET).signed_headers(
        body, timestamp=int(now[0]) + 250
    )

    def post() -> str:
        environ = {
            "REQUEST_METHOD": "POST",
            "CONTENT_TYPE": headers["Content-Type"],
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body.encode()),
            "HTTP_X_SLACK_REQUEST_TIMESTAMP": headers["X-Slack-Request-Timestamp"],
            "HTTP_X_SLACK_SIGNATURE": headers["X-Slack-Signature"],
        }
        status: list[str] = []
        edge(environ, lambda given, _headers: status.append(given))
        return status[0]

    try:
        assert post().startswith("200") and len(handled) == 1
        for later in (301, 549):  # the signature still passes: 51 and 299 s after its stamp
            now[0] = start + later
            assert post().startswith("200")
            assert len(handled) == 1, f"the same request was acted on again {later} s later"
        now[0] = start + 551  # now it is stale, and refused as such
        assert post().startswith("401") and len(handled) == 1
    finally:
        engine.close()


#: 200 KB of correctly formed JSON, nested far deeper than Python's recursion limit
DEEP = "[" * 100_000 + "]" * 100_000


def payload_body(payload: object) -> str:
    return urlencode({"payload": json.dumps(payload)})


@pytest.mark.parametrize(
    ("body", "content_type", "named"),
    [
        ("payload={not json", "application/x-www-form-urlencoded", "payload is not JSON"),
        (payload_body([1, 2]), "application/x-www-form-urlencoded", "JSON object"),
        (
            payload_body({"type": "block_actions"}),
            "application/x-www-form-urlencoded",
            "payload.user",
        ),
        (
            payload_body({"type": "block_actions", "user": {"id": 7}, "actions": []}),
            "application/x-www-form-urlencoded",
            "payload.user.id",
        ),
        (
            payload_body(
                {
                    "type": "block_actions",
                    "user": {"id": "U0ALICE"},
                    "actions": [{"action_id": ids.PROVIDE_INPUT, "value": "x" * 5000}],
                }
            ),
            "application/x-www-form-urlencoded",
            "payload.actions.0.value",
        ),
        (payload_body({"type": "no_such_type"}), "application/x-www-form-urlencoded", "payload"),
        ("command=%2Fruns&text=help", "application/x-www-form-urlencoded", "user_id"),
        ("hello", "application/x-www-form-urlencoded", "not form-encoded"),
        ("{}", "application/json", "body"),
        # json.loads recurses once per level, and used to raise RecursionError (a 500)
        pytest.param(DEEP, "application/json", "the body is JSON nested", id="deep-json"),
        pytest.param(
            urlencode({"payload": DEEP}),
            "application/x-www-form-urlencoded",
            "payload is JSON nested too deeply",
            id="deep-payload",
        ),
        ("[1]", "application/json", "JSON object"),
        # found by 10,000 fuzzed payloads: Bolt's middleware calls .get on a null event
        (
            '{"type": "url_verification", "challenge": "c", "event": null}',
            "application/json",
            "body.event: must be an object when present",
        ),
    ],
)
def test_malformed_signed_payloads_get_400_naming_the_problem(
    bot: RunningBot, body: str, content_type: str, named: str
) -> None:
    conn = AppConnection(f"{bot.server.url}/slack/events", SIGNING_SECRET)
    answer = conn.raw(body, conn.signed_headers(body, content_type=content_type))
    assert answer.status == 400
    assert named in answer.body.decode()


@pytest.mark.parametrize(
    ("event", "named"),
    [
        ({"type": "subteam_updated", "subteam": "S0OPS"}, "body.event.subteam"),
        ({"type": "subteam_updated", "subteam": {"id": ["S0OPS"]}}, "body.event.subteam.id"),
        ({"type": "subteam_members_changed", "subteam_id": {"id": 1}}, "body.event.subteam_id"),
        ({"type": "app_home_opened", "user": "U0BOB", "tab": ["home"]}, "body.event.tab"),
    ],
)
def test_an_event_a_listener_reads_in_another_shape_gets_400_not_a_traceback(
    bot: RunningBot, caplog: pytest.LogCaptureFixture, event: dict[str, object], named: str
) -> None:
    """The user group events' listener called ``.get`` on a ``subteam`` that was text: the
    edge acknowledged it 200 and the listener failed behind the ack, with a traceback."""
    conn = AppConnection(f"{bot.server.url}/slack/events", SIGNING_SECRET)
    body = json.dumps(
        {"type": "event_callback", "event_id": "Ev0SHAPE", "team_id": "T0", "event": event}
    )
    with caplog.at_level(logging.INFO):
        answer = conn.raw(body, conn.signed_headers(body, content_type=JSON))
        # a valid event after it: had the first reached a listener, its failure is logged
        # by the time this one's home is published
        bot.driver.open_home("bob")
        bot.slack.wait_for(lambda ws: ws.home_view("bob"), timeout=10)
    assert answer.status == 400
    assert named in answer.body.decode()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    ("values", "named"),
    [
        # a modal holds 100 blocks at most
        ({f"b{i}": {"a": {"value": "v"}} for i in range(101)}, "payload.view.state.values:"),
        # and a block 25 elements
        ({"b": {f"a{i}": {"value": "v"} for i in range(26)}}, "payload.view.state.values.b:"),
    ],
)
def test_a_form_with_more_inputs_than_a_modal_holds_gets_400(
    bot: RunningBot, values: dict[str, object], named: str
) -> None:
    """Checked whole, 2 MB of tiny inputs was half a second of the HTTP listener's event
    loop, which answers every request, for each such request."""
    conn = AppConnection(f"{bot.server.url}/slack/events", SIGNING_SECRET)
    view = {"type": "modal", "callback_id": ids.INPUT_VIEW, "state": {"values": values}}
    answer = conn.send_payload({"type": "view_submission", "user": {"id": "U0BOB"}, "view": view})
    assert answer.status == 400
    assert named in answer.body.decode() and "at most" in answer.body.decode()


def test_a_signed_body_that_is_not_utf8_gets_400(bot: RunningBot) -> None:
    conn = AppConnection(f"{bot.server.url}/slack/events", SIGNING_SECRET)
    body = b"payload=\xff\xfe"
    answer = conn.raw(body, conn.signed_headers(body))
    assert answer.status == 400 and b"not UTF-8" in answer.body


def test_slacks_notice_that_events_are_dropped_is_acknowledged_and_logged(
    bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    """It was refused as malformed (400), which Slack counts as a failed delivery, and
    nobody heard that Slack was dropping the app's events."""
    conn = AppConnection(f"{bot.server.url}/slack/events", SIGNING_SECRET)
    notice = {
        "token": "x",
        "type": "app_rate_limited",
        "team_id": "T0TEAM",
        "minute_rate_limited": 1518467820,
        "api_app_id": "A0APP",
    }
    body = json.dumps(notice)
    answer = conn.raw(body, conn.signed_headers(body, content_type="application/json"))
    assert answer.status == 200
    told = [r for r in caplog.records if getattr(r, "action", "") == "slack_events_rate_limited"]
    assert [(r.levelname, r.team_id) for r in told] == [("WARNING", "T0TEAM")]


def test_unknown_actions_and_closed_views_are_acknowledged(bot: RunningBot) -> None:
    conn = AppConnection(f"{bot.server.url}/slack/events", SIGNING_SECRET)
    unknown = {
        "type": "block_actions",
        "user": {"id": "U0ALICE"},
        "trigger_id": "1.2.3",
        "actions": [{"action_id": "not_ours", "value": "x"}],
    }
    closed = {"type": "view_closed", "user": {"id": "U0ALICE"}, "view": {"id": "V1"}}
    for payload in (unknown, closed):
        assert conn.send_payload(payload).status == 200


def test_command_text_as_long_as_slack_takes_is_read_even_when_slack_escaped_it(
    bot: RunningBot,
) -> None:
    # 4,000 characters typed, each of which Slack sends as an entity four or five long.
    typed = "show " + "<&>" * 1331
    before = len(bot.slack.ephemeral("alice"))
    answer = bot.driver.slash_command("alice", "/runs", typed)
    assert answer.status == 200
    told = bot.slack.wait_for(lambda ws: ws.ephemeral("alice")[before:] or None, timeout=10)
    assert "no run with id" in told[-1].text


def test_command_text_past_slacks_limit_is_refused_and_clicks_still_answered(
    engine: Engine, bot: RunningBot
) -> None:
    run = engine.submit("edge-wait", {})
    prompt = bot.root_message(run.id)
    conn = AppConnection(f"{bot.server.url}/slack/events", SIGNING_SECRET, timeout=30)
    huge = command_body("show " + "'a" * 250_000)  # 500 KB, an unclosed quote every byte
    answers: list = []
    senders = [threading.Thread(target=lambda: answers.append(conn.send(huge))) for _ in range(5)]
    for sender in senders:
        sender.start()
    bot.driver.click("alice", prompt, action_id=ids.PROVIDE_INPUT)
    bot.slack.wait_for(lambda ws: ws.open_view("U0ALICE"), timeout=10)
    assert bot.driver.submit("alice", {}).status == 200
    for sender in senders:
        sender.join(30)
    assert [a.status for a in answers] == [400] * 5
    assert all(b"text: String should have at most 20000 characters" in a.body for a in answers)
    assert wait_for(lambda: engine.get_run(run.id).state is RunState.COMPLETED, timeout=15)


def test_a_form_pointed_at_another_run_is_refused(engine: Engine, bot: RunningBot) -> None:
    mine = engine.submit("edge-wait", {})
    other = engine.submit("edge-wait", {})
    prompt = bot.root_message(mine.id)
    bot.root_message(other.id)
    bot.driver.click("alice", prompt, action_id=ids.PROVIDE_INPUT)
    opened = bot.slack.wait_for(lambda ws: ws.open_view("U0ALICE"), timeout=10)
    # Someone holding a leaked secret edits the form's metadata to name the other run.
    reopen_pointed_at(bot, "U0ALICE", opened, mine.id, other.id)
    reply = bot.driver.submit("alice", {})
    assert reply.status == 200 and reply.response_action == "update"
    assert "changed after it was opened" in json.dumps(bot.slack.open_view("alice").blocks)
    for run in (mine, other):
        assert engine.get_pause(run.id, engine.detail(run.id).pauses[0].key).status is (
            PauseStatus.WAITING
        )


def test_a_button_naming_an_input_the_run_never_asked_for_says_so(
    engine: Engine, bot: RunningBot
) -> None:
    run = engine.submit("edge-wait", {})
    bot.root_message(run.id)
    conn = AppConnection(f"{bot.server.url}/slack/events", SIGNING_SECRET)
    forged = {
        "type": "block_actions",
        "user": {"id": "U0ALICE"},
        "trigger_id": bot.slack.workspace.issue_trigger("U0ALICE"),
        "channel": {"id": bot.channel},
        "actions": [{"action_id": ids.PROVIDE_INPUT, "value": f"{run.id}:no-such-key"}],
    }
    assert conn.send_payload(forged).status == 200
    told = bot.slack.wait_for(lambda ws: ws.ephemeral("U0ALICE"), timeout=10)
    assert told[-1].text == "This run has asked for no input named `no-such-key`."
