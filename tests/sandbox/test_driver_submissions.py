"""The driver's view submissions: every element in Slack's shapes, errors, pushes, closes."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs

import pytest
from slack_sdk.webhook import WebhookClient

from signoff.bot.sandbox import FieldRejected, NothingToInteractWith, UnknownField
from tests.sandbox.views import TEXT, field, modal, open_modal, opt, pt

CHOICES = [opt("high"), opt("low", "Low priority")]
EVERY_ELEMENT = modal(
    field("reason", TEXT, "Reason"),
    field("email", {"type": "email_text_input"}),
    field("url", {"type": "url_text_input"}),
    field("count", {"type": "number_input", "is_decimal_allowed": False}),
    field("ratio", {"type": "number_input", "is_decimal_allowed": True}),
    field("level", {"type": "static_select", "options": CHOICES}),
    field(
        "grouped",
        {"type": "static_select", "option_groups": [{"label": pt("G"), "options": CHOICES}]},
    ),
    field("radio", {"type": "radio_buttons", "options": CHOICES}),
    field("many", {"type": "multi_static_select", "options": CHOICES}),
    field("boxes", {"type": "checkboxes", "options": CHOICES}),
    field("agree", {"type": "checkboxes", "options": [opt("yes", "I agree")]}, optional=True),
    field("day", {"type": "datepicker"}),
    field("at", {"type": "timepicker"}),
    field("when", {"type": "datetimepicker"}),
    field("owner", {"type": "users_select"}),
    field("reviewers", {"type": "multi_users_select"}),
    field("where", {"type": "conversations_select"}),
    field("wheres", {"type": "multi_conversations_select"}),
    field("chan", {"type": "channels_select"}),
    field("chans", {"type": "multi_channels_select"}),
    field("notes", {"type": "rich_text_input"}),
    field("files", {"type": "file_input"}),
    field("external", {"type": "external_select"}),
)


def test_submit_fills_every_element_in_slacks_shapes(slack_sandbox, driver, tiny_app):
    view = open_modal(slack_sandbox, "alice", EVERY_ELEMENT)
    response = driver.submit(
        "alice",
        {
            "Reason": "ship it",  # by label
            "email": "a@b.co",
            "url": "https://x.io",
            "count": 42,
            "ratio": 2.5,
            "level": "high",
            "grouped": "Low priority",  # by option text
            "radio": "low",
            "many": ["high", "low"],
            "boxes": ["low"],
            "agree": True,
            "day": dt.date(2025, 1, 31),
            "at": dt.time(13, 45),
            "when": dt.datetime(2025, 1, 31, 13, 30, tzinfo=dt.UTC),
            "owner": "bob",  # by handle
            "reviewers": ["U0BOB", "carol"],
            "where": "C0GENERAL",
            "wheres": ["C0GENERAL", "D0ALICE"],
            "chan": "#general",
            "chans": ["C0GENERAL"],
            "notes": "hi",
            "files": ["report.pdf"],
            "external": "ext-1",
        },
    )
    assert response.status == 200
    payload = tiny_app.last.payload
    assert payload["type"] == "view_submission"
    assert payload["view"]["id"] == view["id"]
    assert payload["view"]["private_metadata"] == '{"run": "r42"}'
    assert payload["response_urls"] == []
    values = {
        block_id.removeprefix("field:"): v["value"]
        for block_id, v in payload["view"]["state"]["values"].items()
    }
    assert values["reason"] == {"type": "plain_text_input", "value": "ship it"}
    assert values["email"] == {"type": "email_text_input", "value": "a@b.co"}
    assert values["url"] == {"type": "url_text_input", "value": "https://x.io"}
    assert values["count"] == {"type": "number_input", "value": "42"}
    assert values["ratio"] == {"type": "number_input", "value": "2.5"}
    assert values["level"] == {"type": "static_select", "selected_option": opt("high")}
    assert values["grouped"]["selected_option"] == opt("low", "Low priority")
    assert values["radio"] == {
        "type": "radio_buttons",
        "selected_option": opt("low", "Low priority"),
    }
    assert values["many"] == {"type": "multi_static_select", "selected_options": CHOICES}
    assert values["boxes"] == {"type": "checkboxes", "selected_options": [CHOICES[1]]}
    assert values["agree"] == {"type": "checkboxes", "selected_options": [opt("yes", "I agree")]}
    assert values["day"] == {"type": "datepicker", "selected_date": "2025-01-31"}
    assert values["at"] == {"type": "timepicker", "selected_time": "13:45"}
    assert values["when"] == {"type": "datetimepicker", "selected_date_time": 1738330200}
    assert values["owner"] == {"type": "users_select", "selected_user": "U0BOB"}
    assert values["reviewers"] == {
        "type": "multi_users_select",
        "selected_users": ["U0BOB", "U0CAROL"],
    }
    assert values["where"] == {"type": "conversations_select", "selected_conversation": "C0GENERAL"}
    assert values["wheres"]["selected_conversations"] == ["C0GENERAL", "D0ALICE"]
    assert values["chan"] == {"type": "channels_select", "selected_channel": "C0GENERAL"}
    assert values["chans"] == {"type": "multi_channels_select", "selected_channels": ["C0GENERAL"]}
    assert values["notes"]["rich_text_value"]["elements"][0]["elements"][0]["text"] == "hi"
    assert values["files"]["files"][0]["name"] == "report.pdf"
    assert values["external"]["selected_option"]["value"] == "ext-1"
    assert slack_sandbox.open_view("alice") is None  # empty 200 closes the modal


def test_unfilled_inputs_keep_initial_values_and_empty_shapes(slack_sandbox, driver, tiny_app):
    view = modal(
        field("reason", {**TEXT, "initial_value": "default"}),
        field("level", {"type": "static_select", "options": CHOICES, "initial_option": CHOICES[1]}),
        field("note", TEXT, optional=True),
        field("pick", {"type": "static_select", "options": CHOICES}, optional=True),
        field("tags", {"type": "checkboxes", "options": CHOICES}, optional=True),
        field("agree", {"type": "checkboxes", "options": [opt("yes")]}, optional=True),
    )
    open_modal(slack_sandbox, "alice", view)
    driver.submit("alice", {"agree": False})
    values = tiny_app.last.payload["view"]["state"]["values"]
    assert values["field:reason"]["value"]["value"] == "default"
    assert values["field:level"]["value"]["selected_option"] == CHOICES[1]
    assert values["field:note"]["value"] == {"type": "plain_text_input", "value": None}
    assert values["field:pick"]["value"] == {"type": "static_select", "selected_option": None}
    assert values["field:tags"]["value"] == {"type": "checkboxes", "selected_options": []}
    assert values["field:agree"]["value"] == {"type": "checkboxes", "selected_options": []}


def test_errors_keep_the_view_and_what_was_typed(slack_sandbox, driver, tiny_app):
    open_modal(slack_sandbox, "alice", modal(field("reason", TEXT), field("ticket", TEXT)))
    tiny_app.handler = lambda r: (
        200,
        {"response_action": "errors", "errors": {"field:ticket": "Unknown ticket"}},
    )
    response = driver.submit("alice", {"reason": "because", "ticket": "NOPE-1"})
    assert response.response_action == "errors"
    assert response.errors == {"field:ticket": "Unknown ticket"}
    assert response.problems == ()
    assert slack_sandbox.open_view("alice") is not None

    tiny_app.handler = lambda r: (200, None)
    driver.submit("alice", {"ticket": "OPS-1"})
    values = tiny_app.last.payload["view"]["state"]["values"]
    assert values["field:reason"]["value"]["value"] == "because"  # typed before, still there
    assert values["field:ticket"]["value"]["value"] == "OPS-1"
    assert slack_sandbox.open_view("alice") is None


def test_errors_keyed_by_non_input_block_are_reported(slack_sandbox, driver, tiny_app):
    open_modal(slack_sandbox, "alice", modal(field("reason", TEXT)))
    tiny_app.handler = lambda r: (200, {"response_action": "errors", "errors": {"reason": "bad"}})
    assert "'reason'" in driver.submit("alice", {"reason": "x"}).problems[0]


def test_update_push_and_clear(slack_sandbox, driver, tiny_app):
    first = open_modal(slack_sandbox, "alice", modal(field("reason", TEXT)))
    tiny_app.handler = lambda r: (
        200,
        {"response_action": "update", "view": modal(field("reason", TEXT), title=pt("Step 2"))},
    )
    assert driver.submit("alice", {"reason": "a"}).problems == ()
    top = slack_sandbox.open_view("alice")
    assert (top.id, top.title) == (first["id"], "Step 2")
    assert top.hash != first["hash"]

    tiny_app.handler = lambda r: (
        200,
        {"response_action": "push", "view": modal(field("more", TEXT), title=pt("Step 3"))},
    )
    driver.submit("alice", {"reason": "b"})
    assert [v.title for v in slack_sandbox.view_stack("alice")] == ["Step 2", "Step 3"]
    driver.submit("alice", {"more": "c"})
    assert len(slack_sandbox.view_stack("alice")) == 3
    assert driver.submit("alice", {"more": "d"}).problems == ("push_limit_reached",)

    tiny_app.handler = lambda r: (200, {"response_action": "clear"})
    driver.submit("alice", {"more": "e"})
    assert slack_sandbox.view_stack("alice") == []


def test_invalid_response_view_is_reported_and_ignored(slack_sandbox, driver, tiny_app):
    open_modal(slack_sandbox, "alice", modal(field("reason", TEXT)))
    bad = modal(field("reason", TEXT), title=pt("x" * 30))
    tiny_app.handler = lambda r: (200, {"response_action": "update", "view": bad})
    response = driver.submit("alice", {"reason": "a"})
    assert response.problems == (
        "[ERROR] must be less than 25 characters [json-pointer:/view/title/text]",
    )
    assert slack_sandbox.open_view("alice").title == "Provide input"


def test_empty_200_pops_only_the_top_view(slack_sandbox, driver, tiny_app):
    open_modal(slack_sandbox, "alice", modal(field("reason", TEXT)))
    slack_sandbox.client().views_push(
        trigger_id=slack_sandbox.issue_trigger("alice"),
        view=modal(field("more", TEXT), title=pt("Pushed")),
    )
    driver.submit("alice", {"more": "x"})
    assert [v.title for v in slack_sandbox.view_stack("alice")] == ["Provide input"]


def test_app_errors_keep_the_view_open(slack_sandbox, driver, tiny_app):
    open_modal(slack_sandbox, "alice", modal(field("reason", TEXT)))
    tiny_app.handler = lambda r: (404, {"error": "unhandled request"})
    response = driver.submit("alice", {"reason": "x"})
    assert response.status == 404
    assert "HTTP 404" in response.problems[0]
    assert slack_sandbox.open_view("alice") is not None


def test_client_side_checks(slack_sandbox, driver, tiny_app):
    view = modal(
        field("reason", {**TEXT, "min_length": 3}),
        field("count", {"type": "number_input", "is_decimal_allowed": False, "max_value": "10"}),
        field("email", {"type": "email_text_input"}, optional=True),
    )
    open_modal(slack_sandbox, "alice", view)
    with pytest.raises(FieldRejected) as info:
        driver.submit("alice", {"reason": "ab", "count": 2.5, "email": "nope"})
    assert info.value.errors == {
        "field:reason": "Please enter at least 3 characters.",
        "field:count": "Please enter a whole number.",
        "field:email": "Please enter a valid email address.",
    }
    with pytest.raises(FieldRejected) as info:
        driver.submit("alice", {"count": 3})
    assert info.value.errors == {"field:reason": "Please complete this required field."}
    assert tiny_app.received == []
    driver.submit("alice", {"count": 11}, client_checks=False)
    assert tiny_app.last.payload["view"]["state"]["values"]["field:count"]["value"]["value"] == "11"


def test_a_text_box_without_max_length_still_holds_no_more_than_3000(
    slack_sandbox, driver, tiny_app
):
    # Slack's text box takes 3,000 characters at most, max_length or none: the driver sent
    # anything longer on, and a large enough answer broke the connection to the app.
    open_modal(
        slack_sandbox,
        "alice",
        modal(field("reason", TEXT), field("short", {**TEXT, "max_length": 5})),
    )
    with pytest.raises(FieldRejected) as info:
        driver.submit("alice", {"reason": "x" * 3001, "short": "abcdef"})
    assert info.value.errors == {
        "field:reason": "Please enter no more than 3000 characters.",
        "field:short": "Please enter no more than 5 characters.",
    }
    assert tiny_app.received == []
    driver.submit("alice", {"reason": "x" * 3000, "short": "abcde"})
    assert len(tiny_app.received) == 1


def test_submit_errors(slack_sandbox, driver):
    with pytest.raises(NothingToInteractWith, match="no open modal"):
        driver.submit("alice", {})
    open_modal(
        slack_sandbox, "alice", modal(field("level", {"type": "static_select", "options": CHOICES}))
    )
    with pytest.raises(UnknownField, match="level"):
        driver.submit("alice", {"levle": "high"})
    with pytest.raises(FieldRejected, match="no option"):
        driver.submit("alice", {"level": "urgent"})


def test_a_notice_without_a_submit_button_cannot_be_submitted(slack_sandbox, driver, tiny_app):
    """A notice ("Answer recorded", a Close button only) left open: submitting the next
    answer into it went to the app as a view_submission Slack never sends, or failed with
    "no input 'approve' in this view; it has: " (an empty list)."""
    notice = {
        "type": "modal",
        "title": pt("Answer recorded"),
        "close": pt("Close"),
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Thanks"}}],
    }
    open_modal(slack_sandbox, "alice", notice)
    said = (
        "alice's top view ('Answer recorded') has no Submit button; close it first: close('alice')"
    )
    for values in ({"approve": True}, None):
        with pytest.raises(NothingToInteractWith) as info:
            driver.submit("alice", values)
        assert str(info.value) == said
    assert tiny_app.received == []


def test_close_sends_view_closed_when_asked(slack_sandbox, driver, tiny_app):
    open_modal(slack_sandbox, "alice", modal(field("reason", TEXT)))
    assert driver.close("alice") is None
    assert tiny_app.received == []
    open_modal(slack_sandbox, "alice", modal(field("reason", TEXT), notify_on_close=True))
    driver.close("alice")
    assert tiny_app.last.payload["type"] == "view_closed"
    assert tiny_app.last.payload["is_cleared"] is False
    assert slack_sandbox.open_view("alice") is None


def test_response_urls_for_conversation_selects(slack_sandbox, driver, tiny_app):
    select = {"type": "conversations_select", "response_url_enabled": True}
    open_modal(slack_sandbox, "alice", modal(field("where", select)))
    driver.submit("alice", {"where": "C0GENERAL"})
    [entry] = tiny_app.last.payload["response_urls"]
    assert (entry["block_id"], entry["channel_id"]) == ("field:where", "C0GENERAL")
    WebhookClient(entry["response_url"]).send(
        text="posted from the modal", response_type="in_channel"
    )
    assert slack_sandbox.channel("C0GENERAL").last.text == "posted from the modal"


def test_app_home_opened_event(slack_sandbox, driver, tiny_app):
    def handler(request):
        event = request.payload["event"]
        slack_sandbox.client().views_publish(
            user_id=event["user"], view={"type": "home", "blocks": [{"type": "divider"}]}
        )
        return 200, None

    tiny_app.handler = handler
    driver.open_home("carol")
    request = tiny_app.last
    assert request.valid_signature
    assert request.headers["content-type"] == "application/json"
    assert request.payload["type"] == "event_callback"
    assert request.payload["event"]["type"] == "app_home_opened"
    assert slack_sandbox.home_view("carol") is not None


def test_slash_command_form_is_plain_form_not_payload(driver, tiny_app):
    driver.slash_command("alice", "/runs", "a b&c <d>")
    # Slack escapes these three in a command's text; the app gets them so.
    assert parse_qs(tiny_app.last.raw.decode())["text"] == ["a b&amp;c &lt;d&gt;"]
