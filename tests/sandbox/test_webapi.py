"""The Web API emulator, exercised through a real slack_sdk WebClient."""

from __future__ import annotations

import json
import re
import threading
import urllib.request

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.webhook import WebhookClient

from signoff.bot.sandbox import ConditionTimeout, NoSuchUser, SlackSandbox

from .conftest import FakeClock

BUTTONS = [
    {"type": "section", "text": {"type": "mrkdwn", "text": "Deploy *r42*?"}},
    {
        "type": "actions",
        "elements": [
            {
                "type": "button",
                "text": {"type": "plain_text", "text": "Approve"},
                "action_id": "approve",
                "value": "r42",
            },
        ],
    },
]
MODAL = {
    "type": "modal",
    "callback_id": "run_input",
    "title": {"type": "plain_text", "text": "Provide input"},
    "submit": {"type": "plain_text", "text": "Submit"},
    "blocks": [
        {
            "type": "input",
            "block_id": "field:reason",
            "label": {"type": "plain_text", "text": "Reason"},
            "element": {"type": "plain_text_input", "action_id": "value"},
        }
    ],
}


@pytest.fixture
def client(slack_sandbox):
    return WebClient(token="xoxb-test", base_url=slack_sandbox.api_url)


def error_of(call, *args, **kwargs):
    with pytest.raises(SlackApiError) as info:
        call(*args, **kwargs)
    return info.value.response


def test_post_update_and_inspect(slack_sandbox, client):
    posted = client.chat_postMessage(channel="C0GENERAL", text="Deploy r42?", blocks=BUTTONS)
    assert re.fullmatch(r"\d{10}\.\d{6}", posted["ts"]), posted["ts"]
    assert posted["channel"] == "C0GENERAL"
    message = slack_sandbox.channel("C0GENERAL").last
    assert message.text == "Deploy r42?"
    assert message.blocks[1]["elements"][0]["action_id"] == "approve"
    assert all("block_id" in b for b in message.blocks)  # Slack fills in block ids

    client.chat_update(channel="C0GENERAL", ts=posted["ts"], text="Approved")
    updated = slack_sandbox.channel("#general").last
    assert (updated.text, updated.edits, updated.blocks[0]["type"]) == ("Approved", 1, "section")
    client.chat_update(channel="C0GENERAL", ts=posted["ts"], text="Approved", blocks=[])
    assert slack_sandbox.channel("C0GENERAL").last.blocks == []

    second = client.chat_postMessage(channel="C0GENERAL", text="next")
    assert second["ts"] > posted["ts"]


def test_message_errors(client):
    assert error_of(client.chat_update, channel="C0GENERAL", ts="1.2", text="x")["error"] == (
        "message_not_found"
    )
    assert (
        error_of(client.chat_postMessage, channel="D0NOPE", text="x")["error"]
        == "channel_not_found"
    )
    assert (
        error_of(client.chat_postMessage, channel="#nope", text="x")["error"] == "channel_not_found"
    )
    no_text = error_of(client.api_call, "chat.postMessage", json={"channel": "C0GENERAL"})
    assert no_text["error"] == "no_text"
    bad = error_of(
        client.chat_postMessage,
        channel="C0GENERAL",
        text="t",
        blocks=[{"type": "header", "text": {"type": "mrkdwn", "text": "*x*"}}],
    )
    assert bad["error"] == "invalid_blocks"
    assert bad["response_metadata"]["messages"] == [
        "[ERROR] must be plain_text, not mrkdwn [json-pointer:/blocks/0/text/type]"
    ]
    assert error_of(client.chat_postMessage, channel="C0GENERAL", text="x" * 40001)["error"] == (
        "msg_too_long"
    )


def test_any_c_channel_is_created_on_post(slack_sandbox, client):
    client.chat_postMessage(channel="C0DEPLOYS", text="hi")
    assert slack_sandbox.channel("C0DEPLOYS").last.text == "hi"


def test_threads(slack_sandbox, client):
    parent = client.chat_postMessage(channel="C0GENERAL", text="parent")["ts"]
    reply = client.chat_postMessage(channel="C0GENERAL", text="reply", thread_ts=parent)
    client.chat_postMessage(
        channel="C0GENERAL", text="loud", thread_ts=parent, reply_broadcast=True
    )
    channel = slack_sandbox.channel("C0GENERAL")
    assert [m.text for m in channel.messages] == ["parent", "loud"]
    assert [m.text for m in slack_sandbox.thread("C0GENERAL", parent)] == ["reply", "loud"]
    assert channel.messages[0].thread_ts == parent
    assert reply["message"]["thread_ts"] == parent
    replies = client.conversations_replies(channel="C0GENERAL", ts=parent)
    assert [m["text"] for m in replies["messages"]] == ["parent", "reply", "loud"]
    assert (
        error_of(client.chat_postMessage, channel="C0GENERAL", text="x", thread_ts="9.9")["error"]
        == "thread_not_found"
    )


def test_dms_use_d_ids(slack_sandbox, client):
    opened = client.conversations_open(users="U0ALICE")
    assert opened["channel"]["id"] == "D0ALICE"
    posted = client.chat_postMessage(channel="U0ALICE", text="needs you")
    assert posted["channel"] == "D0ALICE"
    assert slack_sandbox.channel("alice").last.text == "needs you"
    # chat.update needs the D... id, not the user id (as on Slack)
    assert error_of(client.chat_update, channel="U0ALICE", ts=posted["ts"], text="x")["error"] == (
        "channel_not_found"
    )
    client.chat_update(channel="D0ALICE", ts=posted["ts"], text="done")
    assert client.conversations_open(users="U0ALICE")["already_open"] is True
    group = client.conversations_open(users="U0ALICE,U0BOB")["channel"]["id"]
    assert group.startswith("G")
    assert error_of(client.conversations_open, users="U0NOBODY")["error"] == "user_not_found"


def test_ephemeral_messages(slack_sandbox, client):
    sent = client.chat_postEphemeral(channel="C0GENERAL", user="U0BOB", text="only bob")
    [message] = slack_sandbox.ephemeral("bob")
    assert (message.text, message.ts, message.channel) == (
        "only bob",
        sent["message_ts"],
        "C0GENERAL",
    )
    assert slack_sandbox.ephemeral("alice") == []
    assert slack_sandbox.channel("C0GENERAL").messages == ()
    assert (
        error_of(client.chat_update, channel="C0GENERAL", ts=sent["message_ts"], text="x")["error"]
        == "message_not_found"
    )
    assert (
        error_of(client.chat_postEphemeral, channel="C0GENERAL", user="U0X", text="x")["error"]
        == "user_not_found"
    )


def test_views_open_needs_a_fresh_trigger():
    clock = FakeClock()
    with SlackSandbox(clock=clock) as sandbox:
        client = sandbox.client()
        trigger = sandbox.issue_trigger("alice")
        view = client.views_open(trigger_id=trigger, view=MODAL)["view"]
        assert view["id"].startswith("V")
        assert view["state"] == {"values": {}}
        assert sandbox.open_view("U0ALICE").callback_id == "run_input"
        assert error_of(client.views_open, trigger_id=trigger, view=MODAL)["error"] == (
            "exchanged_trigger_id"
        )
        assert error_of(client.views_open, trigger_id="123.456.abc", view=MODAL)["error"] == (
            "expired_trigger_id"
        )
        stale = sandbox.issue_trigger("bob")
        clock.advance(3.1)
        assert error_of(client.views_open, trigger_id=stale, view=MODAL)["error"] == (
            "expired_trigger_id"
        )
        assert sandbox.open_view("bob") is None


def test_invalid_view_gets_slack_error_format(slack_sandbox, client):
    view = {**MODAL, "title": {"type": "plain_text", "text": "x" * 30}}
    response = error_of(
        client.views_open, trigger_id=slack_sandbox.issue_trigger("alice"), view=view
    )
    assert response.data == {
        "ok": False,
        "error": "invalid_arguments",
        "response_metadata": {
            "messages": ["[ERROR] must be less than 25 characters [json-pointer:/view/title/text]"]
        },
    }


def test_a_view_too_large_is_refused_as_slack_refuses_it(slack_sandbox, client):
    """Each part within its own limit, the whole over 250,000 bytes: ``view_too_large``."""
    block = MODAL["blocks"][0]
    blocks = [
        {**block, "block_id": f"field:f{i}", "label": {"type": "plain_text", "text": "L" * 2000},
         "hint": {"type": "plain_text", "text": "H" * 2000}}
        for i in range(60)
    ]  # fmt: skip
    view = {**MODAL, "blocks": blocks}
    trigger = slack_sandbox.issue_trigger("alice")
    assert error_of(client.views_open, trigger_id=trigger, view=view).data == {
        "ok": False,
        "error": "view_too_large",
    }
    assert slack_sandbox.open_view("alice") is None
    fits = {**MODAL, "blocks": blocks[:50]}  # some 210 kB
    assert client.views_open(trigger_id=slack_sandbox.issue_trigger("alice"), view=fits)["ok"]


def test_view_stack_update_and_hash(slack_sandbox, client):
    root = client.views_open(trigger_id=slack_sandbox.issue_trigger("alice"), view=MODAL)["view"]
    for _ in range(2):
        client.views_push(trigger_id=slack_sandbox.issue_trigger("alice"), view=MODAL)
    stack = slack_sandbox.view_stack("alice")
    assert [v.position for v in stack] == [0, 1, 2]
    assert stack[2].view["root_view_id"] == root["id"]
    assert stack[2].view["previous_view_id"] == stack[1].id
    assert (
        error_of(client.views_push, trigger_id=slack_sandbox.issue_trigger("alice"), view=MODAL)[
            "error"
        ]
        == "push_limit_reached"
    )

    new = {**MODAL, "title": {"type": "plain_text", "text": "Updated"}}
    assert error_of(client.views_update, view_id=root["id"], hash="stale", view=new)["error"] == (
        "hash_conflict"
    )
    updated = client.views_update(view_id=root["id"], hash=root["hash"], view=new)["view"]
    assert (updated["id"], updated["title"]["text"]) == (root["id"], "Updated")
    assert updated["hash"] != root["hash"]
    assert error_of(client.views_update, view_id="V0NOPE", view=new)["error"] == "not_found"


def test_views_update_keeps_entered_input_with_same_ids(slack_sandbox, client):
    view = client.views_open(
        trigger_id=slack_sandbox.issue_trigger("alice"), view={**MODAL, "external_id": "run-r42"}
    )["view"]
    typed = {"field:reason": {"value": {"type": "plain_text_input", "value": "typed"}}}
    slack_sandbox.workspace.set_view_state(view["id"], typed)
    client.views_update(external_id="run-r42", view={**MODAL, "external_id": "run-r42"})
    assert slack_sandbox.open_view("alice").state_values == typed
    renamed = json.loads(json.dumps(MODAL).replace("field:reason", "field:reason.v2"))
    client.views_update(view_id=view["id"], view=renamed)
    assert slack_sandbox.open_view("alice").state_values == {}


def test_views_publish(slack_sandbox, client):
    home = {
        "type": "home",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "2 pending"}}],
    }
    first = client.views_publish(user_id="U0CAROL", view=home)["view"]
    again = client.views_publish(user_id="U0CAROL", view=home, hash=first["hash"])["view"]
    assert again["id"] == first["id"]
    assert slack_sandbox.home_view("carol").blocks[0]["text"]["text"] == "2 pending"
    assert error_of(client.views_publish, user_id="U0CAROL", view=MODAL)["error"] == (
        "invalid_arguments"
    )
    assert error_of(client.views_publish, user_id="U0X", view=home)["error"] == "user_not_found"


def test_users_and_usergroups(slack_sandbox, client):
    user = client.users_info(user="U0BOB")["user"]
    assert (user["name"], user["real_name"], user["profile"]["email"]) == (
        "bob",
        "Bob Brown",
        "bob@example.com",
    )
    slack_sandbox.add_user("U0DAVE", "dave", "Dave Diaz")
    assert client.users_info(user="U0DAVE")["user"]["real_name"] == "Dave Diaz"
    assert error_of(client.users_info, user="U0NOBODY")["error"] == "user_not_found"
    slack_sandbox.add_usergroup("S0OPS", "ops", ["alice", "U0DAVE"])
    assert client.usergroups_users_list(usergroup="S0OPS")["users"] == ["U0ALICE", "U0DAVE"]
    assert client.usergroups_list(include_users=True)["usergroups"][0]["handle"] == "ops"
    assert error_of(client.usergroups_users_list, usergroup="S0NONE")["error"] == "no_such_subteam"


def test_a_user_group_of_someone_the_workspace_lacks_is_refused(slack_sandbox, client):
    """``add_usergroup("S0SRE", "sre", ["carl"])`` made a group whose member nobody is:
    the flow waiting on it could never be answered, and the test only timed out."""
    for member in ("carl", "U0DAVE"):
        with pytest.raises(NoSuchUser) as info:
            slack_sandbox.add_usergroup("S0SRE", "sre", ["U0CAROL", member])
        assert str(info.value) == (
            f"no user {member!r} in the sandbox workspace for user group 'sre' (add_user them first)"
        )
    assert error_of(client.usergroups_users_list, usergroup="S0SRE")["error"] == "no_such_subteam"


def test_response_url(slack_sandbox, client):
    posted = client.chat_postMessage(channel="C0GENERAL", text="Deploy?", blocks=BUTTONS)
    message = slack_sandbox.channel("C0GENERAL").message(posted["ts"])
    hook = WebhookClient(slack_sandbox.new_response_url("bob", "C0GENERAL", message))
    assert hook.send(text="just for bob").status_code == 200
    assert [m.text for m in slack_sandbox.ephemeral("bob")] == ["just for bob"]
    hook.send_dict({"text": "in the thread too", "thread_ts": posted["ts"]})
    hook.send(text="for all", response_type="in_channel")
    assert slack_sandbox.channel("C0GENERAL").last.text == "for all"
    hook.send(text="Approved by bob", replace_original=True)
    assert slack_sandbox.channel("C0GENERAL").message(posted["ts"]).text == "Approved by bob"
    hook.send(delete_original=True)
    assert slack_sandbox.channel("C0GENERAL").message(posted["ts"]) is None
    used_up = hook.send(text="sixth")
    assert used_up.status_code == 404
    assert json.loads(used_up.body)["error"] == "used_url"
    assert [c.status for c in slack_sandbox.calls("response_url")] == [200] * 5 + [404]


def test_rate_limit_retry_succeeds(slack_sandbox, monkeypatch):
    # RateLimitErrorRetryHandler sleeps Retry-After + random(); take the jitter out.
    monkeypatch.setattr("slack_sdk.http_retry.builtin_handlers.random.random", lambda: 0.0)
    client = slack_sandbox.client(retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)])
    slack_sandbox.fail_next("chat.postMessage", 2, status=429, retry_after=0)
    assert client.chat_postMessage(channel="C0GENERAL", text="finally")["ok"]
    calls = slack_sandbox.calls("chat.postMessage")
    assert [c.status for c in calls] == [429, 429, 200]
    assert calls[0].error == "ratelimited"


def test_rate_limit_without_retry_handler_raises(slack_sandbox, client):
    slack_sandbox.fail_next("chat.postMessage", status=429, retry_after=7)
    response = error_of(client.chat_postMessage, channel="C0GENERAL", text="x")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert client.chat_postMessage(channel="C0GENERAL", text="x")["ok"]


def test_server_errors_and_plain_error_injection(slack_sandbox):
    no_wait = FixedValueRetryIntervalCalculator(fixed_internal=0)
    retry = ServerErrorRetryHandler(max_retry_count=1, interval_calculator=no_wait)
    client = slack_sandbox.client(retry_handlers=[retry])
    slack_sandbox.fail_next("views.publish", status=503)
    home = {"type": "home", "blocks": [{"type": "divider"}]}
    assert client.views_publish(user_id="U0ALICE", view=home)["ok"]
    slack_sandbox.fail_next("chat.update", status=200, error="cant_update_message")
    assert error_of(client.chat_update, channel="C0GENERAL", ts="1", text="x")["error"] == (
        "cant_update_message"
    )
    slack_sandbox.fail_next("users.info", status=500)
    assert error_of(slack_sandbox.client().users_info, user="U0BOB").status_code == 500


def test_authentication(slack_sandbox):
    request = urllib.request.Request(f"{slack_sandbox.api_url}auth.test", data=b"", method="POST")
    with urllib.request.urlopen(request) as answer:
        assert json.load(answer) == {"ok": False, "error": "not_authed"}
    user_token = WebClient(token="xoxp-user", base_url=slack_sandbox.api_url)
    assert error_of(user_token.auth_test)["error"] == "invalid_auth"
    assert [c.error for c in slack_sandbox.calls("auth.test")] == ["not_authed", "invalid_auth"]


def test_fixed_bot_token():
    with SlackSandbox(bot_token="xoxb-right") as sandbox:
        wrong = WebClient(token="xoxb-wrong", base_url=sandbox.api_url)
        assert error_of(wrong.auth_test)["error"] == "invalid_auth"
        assert sandbox.client().auth_test()["user_id"] == "U0SIGNOFF"


def test_form_bodies_get_requests_and_unknown_params(slack_sandbox):
    # Bolt's per-request client adds team_id; form-encoded JSON arguments are decoded.
    client = WebClient(token="xoxb-test", base_url=slack_sandbox.api_url, team_id="T0SANDBOX")
    client.api_call(
        "chat.postMessage",
        params={"channel": "C0GENERAL", "text": "form", "blocks": json.dumps(BUTTONS)},
    )
    message = slack_sandbox.channel("C0GENERAL").last
    assert (message.text, message.blocks[1]["type"]) == ("form", "actions")
    request = urllib.request.Request(
        f"{slack_sandbox.api_url}users.info?user=U0ALICE",
        headers={"Authorization": "Bearer xoxb-test"},
    )
    with urllib.request.urlopen(request) as answer:
        assert json.load(answer)["user"]["name"] == "alice"
    assert error_of(client.api_call, "nonexistent.method")["error"] == "unknown_method"


def test_calls_are_recorded_without_tokens(slack_sandbox, client):
    client.chat_postMessage(channel="C0GENERAL", text="hi", token="xoxb-other")
    [call] = slack_sandbox.calls("chat.postMessage")
    assert call.args == {"channel": "C0GENERAL", "text": "hi"}
    assert call.ok and call.response["ts"]


def test_wait_for_wakes_on_changes_from_other_threads(slack_sandbox, client):
    worker = threading.Thread(
        target=lambda: client.chat_postMessage(channel="C0GENERAL", text="from a thread")
    )
    worker.start()
    message = slack_sandbox.wait_for(lambda ws: ws.channel("C0GENERAL").messages[0], timeout=5)
    worker.join()
    assert message.text == "from a thread"
    assert len(slack_sandbox.wait_for_calls("chat.postMessage", 1)) == 1


def test_wait_for_times_out_as_assertion(slack_sandbox):
    with pytest.raises(ConditionTimeout, match="condition not met") as info:
        slack_sandbox.wait_for(lambda ws: ws.open_view("alice"), timeout=0.05)
    assert isinstance(info.value, AssertionError)


def test_no_two_sandboxes_hand_out_the_same_message_ts() -> None:
    """Every sandbox began at 1700000000.000100: a bot that kept where an earlier sandbox's
    message was (the Prefect tests share one server) updated another message in the next."""
    with SlackSandbox() as one, SlackSandbox() as two:
        first = [one.client().chat_postMessage(channel="C0GENERAL", text="a")["ts"] for _ in "ab"]
        then = two.client().chat_postMessage(channel="C0GENERAL", text="b")["ts"]
    assert first[0] < first[1] < then and len({*first, then}) == 3
