"""The driver: signed Slack requests to a tiny stdlib app (signing, slash commands, clicks)."""

from __future__ import annotations

import time
from urllib.parse import urlencode

import pytest
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient

from signoff.bot.sandbox import NothingToInteractWith
from tests.sandbox.views import BUTTONS, TEXT, field, modal, open_modal, opt, pt

from .conftest import SECRET

# -- signing ----------------------------------------------------------------------------------


def test_requests_are_signed_like_slack(driver, tiny_app):
    driver.slash_command("alice", "/runs", "pending")
    request = tiny_app.last
    assert request.valid_signature
    timestamp = request.headers["x-slack-request-timestamp"]
    assert abs(int(timestamp) - time.time()) < 60
    expected = SignatureVerifier(SECRET).generate_signature(timestamp=timestamp, body=request.raw)
    assert request.headers["x-slack-signature"] == expected
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"


def test_unsigned_stale_and_wrongly_signed_requests_are_rejected(slack_sandbox, driver, tiny_app):
    body = urlencode({"command": "/runs", "text": ""})
    assert driver.raw(body, {"Content-Type": "application/x-www-form-urlencoded"}).status == 401
    stale = driver.signed_headers(body, timestamp=int(time.time()) - 301)
    response = driver.raw(body, stale)
    assert (response.status, response.json) == (401, {"error": "invalid request"})
    impostor = slack_sandbox.driver(tiny_app.url, "not-the-secret")
    assert impostor.slash_command("alice", "/runs").status == 401
    assert driver.raw(body, driver.signed_headers(body)).status == 200
    assert [r.valid_signature for r in tiny_app.received] == [False, False, False, True]


# -- slash commands ---------------------------------------------------------------------------


def test_slash_command_body_and_immediate_reply(slack_sandbox, driver, tiny_app):
    tiny_app.handler = lambda r: (200, {"text": "Working on it..."})
    driver.slash_command("alice", "/runs", "show r42", channel="C0DEPLOYS")
    form = tiny_app.last.form
    assert form["command"] == "/runs"
    assert form["text"] == "show r42"
    assert (form["user_id"], form["user_name"], form["channel_id"]) == (
        "U0ALICE",
        "alice",
        "C0DEPLOYS",
    )
    assert form["team_id"] == "T0SANDBOX"
    assert form["trigger_id"]
    assert form["response_url"].startswith(slack_sandbox.base_url + "/response/")
    assert [m.text for m in slack_sandbox.ephemeral("alice")] == ["Working on it..."]

    tiny_app.handler = lambda r: (
        200,
        {"response_type": "in_channel", "text": "Everyone sees this"},
    )
    driver.slash_command("alice", "/runs", "list")
    assert slack_sandbox.channel("C0GENERAL").last.text == "Everyone sees this"


def test_slash_command_response_url_and_trigger(slack_sandbox, driver, tiny_app):
    def handler(request):
        WebhookClient(request.form["response_url"]).send(text="later reply")
        slack_sandbox.client().views_open(
            trigger_id=request.form["trigger_id"], view=modal(field("reason", TEXT))
        )
        return 200, None

    tiny_app.handler = handler
    driver.slash_command("bob", "/runs")
    assert [m.text for m in slack_sandbox.ephemeral("bob")] == ["later reply"]
    assert slack_sandbox.open_view("bob").title == "Provide input"


# -- clicks -----------------------------------------------------------------------------------


def test_click_sends_block_actions_and_trigger_opens_a_modal(slack_sandbox, driver, tiny_app):
    client = slack_sandbox.client()
    client.chat_postMessage(channel="C0GENERAL", text="Deploy r42?", blocks=BUTTONS)
    message = slack_sandbox.channel("C0GENERAL").last

    def handler(request):
        client.views_open(
            trigger_id=request.payload["trigger_id"], view=modal(field("reason", TEXT))
        )
        return 200, None

    tiny_app.handler = handler
    assert driver.click("alice", message, action_id="provide_input", value="r43").status == 200
    payload = tiny_app.last.payload
    assert payload["type"] == "block_actions"
    assert payload["user"]["id"] == "U0ALICE"
    assert payload["container"] == {
        "type": "message",
        "message_ts": message.ts,
        "channel_id": "C0GENERAL",
        "is_ephemeral": False,
    }
    assert payload["channel"]["id"] == "C0GENERAL"
    assert payload["message"]["ts"] == message.ts
    assert payload["message"]["blocks"] == message.blocks
    [action] = payload["actions"]
    assert (action["action_id"], action["block_id"], action["value"]) == (
        "provide_input",
        "other",
        "r43",
    )
    assert action["type"] == "button"
    assert payload["response_url"].startswith(slack_sandbox.base_url)
    # predicates get the workspace, which also takes handles
    view = slack_sandbox.wait_for(lambda ws: ws.open_view("alice"), timeout=5)
    assert view.callback_id == "run_input"


def test_click_response_url_replaces_the_message(slack_sandbox, driver, tiny_app):
    slack_sandbox.client().chat_postMessage(channel="C0GENERAL", text="Deploy?", blocks=BUTTONS)
    message = slack_sandbox.channel("C0GENERAL").last

    def handler(request):
        WebhookClient(request.payload["response_url"]).send(
            text="Approved by <@U0BOB>", replace_original=True
        )
        return 200, None

    tiny_app.handler = handler
    driver.click("bob", message, action_id="decide")
    updated = slack_sandbox.channel("C0GENERAL").message(message.ts)
    assert (updated.text, updated.blocks) == ("Approved by <@U0BOB>", [])


def test_click_on_ephemeral_message(slack_sandbox, driver, tiny_app):
    slack_sandbox.client().chat_postEphemeral(
        channel="C0GENERAL", user="U0CAROL", text="Only you", blocks=BUTTONS
    )
    [message] = slack_sandbox.ephemeral("carol")

    def handler(request):
        WebhookClient(request.payload["response_url"]).send(delete_original=True)
        return 200, None

    tiny_app.handler = handler
    driver.click("carol", message, action_id="reject")
    payload = tiny_app.last.payload
    assert payload["container"]["is_ephemeral"] is True
    assert "message" not in payload
    assert slack_sandbox.ephemeral("carol") == []


def test_click_errors(slack_sandbox, driver):
    slack_sandbox.client().chat_postMessage(channel="C0GENERAL", text="x", blocks=BUTTONS)
    message = slack_sandbox.channel("C0GENERAL").last
    with pytest.raises(NothingToInteractWith, match="approve_all"):
        driver.click("alice", message, action_id="approve_all")
    with pytest.raises(NothingToInteractWith):
        driver.click("alice", message, action_id="provide_input", value="r99")
    slack_sandbox.client().chat_delete(channel="C0GENERAL", ts=message.ts)
    with pytest.raises(NothingToInteractWith, match="gone"):
        driver.click("alice", message, action_id="decide")


def test_click_in_home_tab_and_select_in_modal(slack_sandbox, driver, tiny_app):
    home = {
        "type": "home",
        "blocks": [
            {
                "type": "actions",
                "elements": [{"type": "button", "text": pt("Open"), "action_id": "open"}],
            }
        ],
    }
    slack_sandbox.client().views_publish(user_id="U0ALICE", view=home)
    driver.click("alice", slack_sandbox.home_view("alice"), action_id="open")
    payload = tiny_app.last.payload
    assert payload["container"]["type"] == "view"
    assert payload["view"]["type"] == "home"
    assert "trigger_id" in payload

    select = {"type": "static_select", "options": [opt("high"), opt("low")]}
    open_modal(slack_sandbox, "alice", modal(field("level", select, dispatch_action=True)))
    driver.click("alice", slack_sandbox.open_view("alice"), action_id="value", value="low")
    [action] = tiny_app.last.payload["actions"]
    assert action["selected_option"] == opt("low")
    assert tiny_app.last.payload["view"]["state"]["values"]["field:level"]["value"][
        "selected_option"
    ] == opt("low")
    # the selection stays in the open view, as in the client
    assert slack_sandbox.open_view("alice").state_values["field:level"]["value"][
        "selected_option"
    ] == opt("low")
