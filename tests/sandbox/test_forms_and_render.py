"""Pure parts of the sandbox: state shapes, renderings, Block Kit Builder links, public API."""

from __future__ import annotations

import json
from enum import Enum
from urllib.parse import unquote

import pytest

import signoff.bot.forms.blockkit
import signoff.bot.sandbox
from signoff.bot.sandbox import (
    Message,
    block_kit_builder_url,
    element_state,
    fill_state,
    render_message,
    render_mrkdwn,
    render_view,
)
from signoff.bot.sandbox.forms import client_problems, initial_state


def pt(text):
    return {"type": "plain_text", "text": text}


OPTIONS = [{"text": pt("High"), "value": "high"}, {"text": pt("Low"), "value": "low"}]


class Priority(Enum):
    HIGH = "high"


@pytest.mark.parametrize(
    ("element", "value", "expected"),
    [
        ({"type": "plain_text_input"}, "x", {"value": "x"}),
        ({"type": "number_input"}, 3, {"value": "3"}),
        (
            {"type": "static_select", "options": OPTIONS},
            Priority.HIGH,
            {"selected_option": OPTIONS[0]},
        ),
        ({"type": "radio_buttons", "options": OPTIONS}, "Low", {"selected_option": OPTIONS[1]}),
        (
            {"type": "multi_static_select", "options": OPTIONS},
            "low",
            {"selected_options": [OPTIONS[1]]},
        ),
        ({"type": "checkboxes", "options": OPTIONS[:1]}, True, {"selected_options": [OPTIONS[0]]}),
        ({"type": "datepicker"}, "2025-01-31", {"selected_date": "2025-01-31"}),
        ({"type": "datetimepicker"}, 1738330200, {"selected_date_time": 1738330200}),
        ({"type": "multi_users_select"}, "U1", {"selected_users": ["U1"]}),
        ({"type": "file_input"}, None, {"files": []}),
    ],
)
def test_element_state_shapes(element, value, expected):
    assert element_state(element, value) == {"type": element["type"], **expected}


def test_element_state_rejects_wrong_types():
    with pytest.raises(TypeError):
        element_state({"type": "plain_text_input"}, 3)
    with pytest.raises(TypeError):
        element_state({"type": "number_input"}, True)
    with pytest.raises(TypeError):
        element_state({"type": "checkboxes", "options": OPTIONS}, True)
    with pytest.raises(ValueError, match="no option"):
        element_state({"type": "static_select", "options": OPTIONS}, "medium")


def test_initial_state_and_fill_state():
    element = {
        "type": "static_select",
        "action_id": "value",
        "options": OPTIONS,
        "initial_option": OPTIONS[1],
    }
    assert initial_state(element) == {"type": "static_select", "selected_option": OPTIONS[1]}
    view = {
        "blocks": [
            {"type": "input", "block_id": "field:p", "label": pt("Priority"), "element": element},
            {
                "type": "actions",
                "block_id": "a",
                "elements": [{"type": "datepicker", "action_id": "d"}],
            },
            {
                "type": "section",
                "block_id": "s",
                "text": pt("x"),
                "accessory": {"type": "button", "action_id": "b", "text": pt("B")},
            },
        ]
    }
    assert fill_state(view) == {
        "field:p": {"value": {"type": "static_select", "selected_option": OPTIONS[1]}},
        "a": {"d": {"type": "datepicker", "selected_date": None}},
    }
    assert fill_state(view, {"d": "2025-02-01"})["a"]["d"]["selected_date"] == "2025-02-01"
    assert (
        fill_state(view, {"priority": "high"})["field:p"]["value"]["selected_option"] == OPTIONS[0]
    )


def test_client_problems_for_bounds_and_urls():
    view = {
        "blocks": [
            {
                "type": "input",
                "block_id": "n",
                "label": pt("N"),
                "element": {
                    "type": "number_input",
                    "action_id": "v",
                    "is_decimal_allowed": True,
                    "min_value": "1",
                    "max_value": "2",
                },
            },
            {
                "type": "input",
                "block_id": "u",
                "label": pt("U"),
                "element": {"type": "url_text_input", "action_id": "v"},
            },
            {
                "type": "input",
                "block_id": "m",
                "label": pt("M"),
                "element": {
                    "type": "multi_static_select",
                    "action_id": "v",
                    "options": OPTIONS,
                    "max_selected_items": 1,
                },
            },
        ]
    }
    state = fill_state(view, {"n": "2.5", "u": "not a url", "m": ["high", "low"]})
    assert client_problems(view, state) == {
        "n": "Please enter a number between 1 and 2.",
        "u": "Please enter a valid URL.",
        "m": "Please select no more than 1.",
    }


@pytest.mark.parametrize("typed", ["NaN", "nan", "sNaN", "-NaN"])
def test_not_a_number_typed_into_a_bounded_number_box_is_refused_under_it(typed: str) -> None:
    # Decimal reads these as a number, which the bounds could not be compared with: the
    # sandbox page answered the submission with a 500 instead of the client's message.
    view = {
        "blocks": [
            {
                "type": "input",
                "block_id": "n",
                "label": pt("N"),
                "element": {
                    "type": "number_input",
                    "action_id": "v",
                    "is_decimal_allowed": True,
                    "min_value": "0",
                    "max_value": "1000",
                },
            }
        ]
    }
    assert client_problems(view, fill_state(view, {"n": typed})) == {"n": "Please enter a number."}


def test_client_problems_for_lengths_count_in_the_singular_and_plural():
    def text(block_id: str, low: int, high: int) -> dict:
        element = {"type": "plain_text_input", "action_id": "v"}
        return {
            "type": "input",
            "block_id": block_id,
            "label": pt(block_id),
            "element": {**element, "min_length": low, "max_length": high},
        }

    view = {"blocks": [text("one", 1, 1), text("few", 2, 3), text("long", 3, 9)]}
    state = fill_state(view, {"one": "ab", "few": "abcd", "long": "ab"})
    assert client_problems(view, state) == {
        "one": "Please enter no more than 1 character.",
        "few": "Please enter no more than 3 characters.",
        "long": "Please enter at least 3 characters.",
    }


def test_client_problems_for_email_url_and_number_boxes_longer_than_a_text_box():
    # Slack gives them no length of their own; none takes more than a text box.
    def box(kind: str) -> dict:
        element = {"type": kind, "action_id": "v"}
        if kind == "number_input":
            element["is_decimal_allowed"] = False
        return {"type": "input", "block_id": kind, "label": pt(kind), "element": element}

    kinds = ("email_text_input", "url_text_input", "number_input")
    view = {"blocks": [box(kind) for kind in kinds]}
    fits = {"email_text_input": "a@b.co", "url_text_input": "https://x.io", "number_input": "7"}
    assert client_problems(view, fill_state(view, fits)) == {}
    over = {
        "email_text_input": "a" * 2995 + "@b.co" + "m",
        "url_text_input": "https://x.io/" + "a" * 2988,
        "number_input": "1" * 3001,
    }
    assert client_problems(view, fill_state(view, over)) == dict.fromkeys(
        kinds, "Please enter no more than 3000 characters."
    )


VIEW = {
    "type": "modal",
    "callback_id": "run_input",
    "title": pt("Deploy approval"),
    "submit": pt("Approve"),
    "close": pt("Cancel"),
    "blocks": [
        {"type": "header", "text": pt("Approve the deploy of r42?")},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": "Requested by <@U0BOB>"},
            "fields": [pt("env: prod")],
        },
        {"type": "divider"},
        {
            "type": "input",
            "block_id": "field:reason",
            "label": pt("Reason"),
            "hint": pt("Why?"),
            "element": {
                "type": "plain_text_input",
                "action_id": "value",
                "placeholder": pt("Type here"),
            },
        },
        {
            "type": "input",
            "block_id": "field:level",
            "optional": True,
            "label": pt("Priority"),
            "element": {
                "type": "static_select",
                "action_id": "value",
                "options": OPTIONS,
                "initial_option": OPTIONS[0],
            },
        },
        {
            "type": "input",
            "block_id": "field:ok",
            "label": pt("Checks"),
            "element": {
                "type": "checkboxes",
                "action_id": "value",
                "options": OPTIONS,
                "initial_options": [OPTIONS[1]],
            },
        },
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "run r42"}]},
    ],
}


def test_render_view():
    assert render_view(VIEW) == "\n".join(
        [
            "== Deploy approval ==  (callback_id: run_input)",
            "## Approve the deploy of r42?",
            "Requested by @U0BOB",  # an id the renderer was given no name for
            "  - env: prod",
            "-" * 40,
            "Reason: [text: __________ (Type here)]  (field:reason)",
            "    hint: Why?",
            "Priority (optional): <select: *High* | Low>  (field:level)",
            "Checks: [ ] High  [x] Low  (field:ok)",
            "  run r42",
            "[ Approve ]  [ Cancel ]",
        ]
    )
    entered = {
        **VIEW,
        "state": {
            "values": {"field:reason": {"value": {"type": "plain_text_input", "value": "ship"}}}
        },
    }
    assert 'Reason: [text: "ship"]' in render_view(entered)


def test_render_message():
    blocks = [
        {"type": "section", "text": {"type": "mrkdwn", "text": "Deploy *r42*?"}},
        {
            "type": "actions",
            "elements": [
                {"type": "button", "text": pt("Approve"), "action_id": "a"},
                {"type": "button", "text": pt("Reject"), "action_id": "r"},
            ],
        },
    ]
    message = Message(channel="C1", ts="1.1", text="fallback", blocks=blocks, user="U0SIGNOFF")
    assert render_message(message) == "Deploy *r42*?\n[ Approve ]  [ Reject ]"
    assert render_message({"text": "plain only"}) == "plain only"


def test_mentions_dates_and_links_read_as_a_person_sees_them():
    names = {"U0BOB": "bob", "C0OPS": "ops", "S0SRE": "sre"}
    text = (
        "<@U0BOB> and <@U0NEW> in <#C0OPS>, ask <!subteam^S0SRE> or <!here>: "
        "due <!date^1795749831^{date_short_pretty} {time}|2026-11-27 03:23 UTC>, "
        "see <https://ci.example/42|build 42> &amp; <https://ci.example/43>; 1 &lt; 2"
    )
    assert render_mrkdwn(text, names) == (
        "@bob and @U0NEW in #ops, ask @sre or @here: due 2026-11-27 03:23 UTC, "
        "see build 42 (https://ci.example/42) & https://ci.example/43; 1 < 2"
    )
    message = {
        "text": "fallback",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": "Only <@U0BOB> may answer."}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "by <@U0BOB>"}]},
            {"type": "section", "text": pt("<@U0BOB> stays literal in plain text")},
        ],
    }
    assert render_message(message, names).splitlines() == [
        "Only @bob may answer.",
        "  by @bob",
        "<@U0BOB> stays literal in plain text",
    ]
    assert render_message({"text": "hi <@U0BOB>"}, names) == "hi @bob"


def test_block_kit_builder_url():
    prefix = "https://app.slack.com/block-kit-builder#"
    url = block_kit_builder_url({**VIEW, "id": "V1", "state": {"values": {}}, "hash": "h"})
    assert url.startswith(prefix)
    assert "%7B" in url and "{" not in url
    decoded = json.loads(unquote(url.removeprefix(prefix)))
    assert decoded == VIEW  # stored-view extras (id, state, hash) are dropped
    blocks = VIEW["blocks"][:2]
    assert json.loads(unquote(block_kit_builder_url(blocks).removeprefix(prefix))) == {
        "blocks": blocks
    }


def test_public_api_is_pinned():
    assert sorted(signoff.bot.forms.blockkit.__all__) == [
        "DATETIME_SECONDS",
        "INPUT_ELEMENT_TYPES",
        "STATEFUL_ELEMENT_TYPES",
        "VIEW_SIZE_LIMIT",
        "check_message",
        "check_view",
        "format_problem",
        "view_size",
    ]
    assert sorted(signoff.bot.sandbox.__all__) == sorted(
        [
            "DEFAULT_USERS", "AppNotConnected", "AppResponse", "Call", "Channel",
            "ConditionTimeout", "Driver", "EphemeralMessage", "FieldRejected", "HttpDriver",
            "JsonDict", "Message", "NoSuchUser", "NotAcknowledged", "NothingToInteractWith",
            "OpenView", "SandboxError", "SandboxNotRunning", "SlackSandbox", "SocketModeDriver",
            "SubmitBlocked", "UnknownField", "User", "Usergroup", "Workspace",
            "block_kit_builder_url", "client_problems", "element_state", "fill_state",
            "render_message", "render_mrkdwn", "render_view",
        ]
    )  # fmt: skip
    for name in signoff.bot.sandbox.__all__:
        assert getattr(signoff.bot.sandbox, name) is not None
