"""signoff.bot.forms.blockkit: every limit rejects its case at the right json-pointer; valid payloads pass."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from slack_sdk.models.blocks import (
    CheckboxesElement,
    InputBlock,
    NumberInputElement,
    Option,
    PlainTextInputElement,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from signoff.bot.forms.blockkit import check_message, check_view, format_problem
from tests.sandbox.blockkit_cases import (
    BUTTON,
    MESSAGE_CASES,
    VIEW_CASES,
    input_block,
    modal,
    opt,
    pt,
)


@pytest.mark.parametrize(
    ("view", "pointer", "fragment"),
    [case[1:] for case in VIEW_CASES],
    ids=[case[0] for case in VIEW_CASES],
)
def test_view_limit_is_reported_at_its_pointer(view, pointer, fragment):
    problems = check_view(view)
    matching = [p for p in problems if p.endswith(f"[json-pointer:{pointer}]") and fragment in p]
    assert matching, problems
    assert all(p.startswith("[ERROR] ") for p in problems)


@pytest.mark.parametrize(
    ("blocks", "text", "pointer", "fragment"),
    [case[1:] for case in MESSAGE_CASES],
    ids=[case[0] for case in MESSAGE_CASES],
)
def test_message_limit_is_reported_at_its_pointer(blocks, text, pointer, fragment):
    problems = check_message(blocks, text)
    assert any(p.endswith(f"[json-pointer:{pointer}]") and fragment in p for p in problems), (
        problems
    )


def full_modal() -> dict[str, Any]:
    """A modal using every input element type, with valid initial values."""
    options = [opt("high"), opt("low")]
    elements: list[dict[str, Any]] = [
        {"type": "plain_text_input", "min_length": 0, "max_length": 10, "initial_value": "hi"},
        {
            "type": "number_input",
            "is_decimal_allowed": True,
            "min_value": "0",
            "max_value": "9.5",
            "initial_value": "2.5",
        },  # fmt: skip
        {"type": "email_text_input", "initial_value": "a@b.co"},
        {"type": "url_text_input", "initial_value": "https://x.io"},
        {"type": "static_select", "options": options, "initial_option": opt("low")},
        {"type": "static_select", "option_groups": [{"label": pt("G"), "options": options}]},
        {
            "type": "multi_static_select",
            "options": options,
            "initial_options": [opt("high")],
            "max_selected_items": 2,
        },  # fmt: skip
        {"type": "external_select", "min_query_length": 2},
        {"type": "radio_buttons", "options": options, "initial_option": options[0]},
        {
            "type": "checkboxes",
            "options": [{"text": {"type": "mrkdwn", "text": "*A*"}, "value": "a"}],
        },
        {"type": "datepicker", "initial_date": "2024-02-29"},
        {"type": "timepicker", "initial_time": "23:59", "timezone": "Europe/Berlin"},
        {"type": "datetimepicker", "initial_date_time": 1738330200},
        {"type": "users_select", "initial_user": "U0ALICE"},
        {"type": "multi_users_select", "initial_users": ["U0ALICE"]},
        {
            "type": "conversations_select",
            "filter": {"include": ["public", "im"]},
            "response_url_enabled": True,
        },  # fmt: skip
        {"type": "multi_conversations_select", "initial_conversations": ["C1"]},
        {"type": "channels_select", "initial_channel": "C1"},
        {"type": "multi_channels_select"},
        {"type": "rich_text_input", "initial_value": {"type": "rich_text", "elements": []}},
        {"type": "file_input", "max_files": 10, "filetypes": ["pdf"]},
    ]
    blocks = [
        input_block({**el, "action_id": "value", "focus_on_load": i == 0}, f"field:f{i}")
        for i, el in enumerate(elements)
    ]
    blocks += [
        {"type": "header", "text": pt("Deploy r42")},
        {"type": "section", "text": {"type": "mrkdwn", "text": "*Why*"}, "accessory": BUTTON},
        {
            "type": "context",
            "elements": [pt("c"), {"type": "image", "image_url": "https://i", "alt_text": "i"}],
        },  # fmt: skip
        {"type": "actions", "elements": [BUTTON, {**BUTTON, "action_id": "other"}]},
    ]
    return modal(*blocks, close=pt("Cancel"), callback_id="run_input", private_metadata="{}")


def test_a_modal_with_every_element_passes():
    assert check_view(full_modal()) == []


def test_initial_option_matches_even_without_explicit_emoji_flag():
    view = full_modal()
    element = view["blocks"][4]["element"]
    element["options"] = [{**o, "text": {**o["text"], "emoji": True}} for o in element["options"]]
    assert check_view(view) == []


def test_views_built_with_slack_sdk_models_pass():
    view = View(
        type="modal",
        title="Approve",
        submit="Submit",
        callback_id="run_input",
        blocks=[
            SectionBlock(text="Please review"),
            InputBlock(
                block_id="field:reason",
                label="Reason",
                element=PlainTextInputElement(action_id="value"),
            ),
            InputBlock(
                block_id="field:level",
                label="Level",
                element=StaticSelectElement(
                    action_id="value",
                    options=[Option(value="a", text="A"), Option(value="b", text="B")],
                    initial_option=Option(value="b", text="B"),
                ),
            ),
            InputBlock(
                block_id="field:n", label="N", element=NumberInputElement(action_id="value")
            ),
            InputBlock(
                block_id="field:ok",
                label="OK",
                optional=True,
                element=CheckboxesElement(
                    action_id="value", options=[Option(value="yes", text="Yes")]
                ),
            ),
        ],
    )
    assert check_view(view.to_dict()) == []


def test_home_view_and_message_pass():
    assert check_view({"type": "home", "blocks": [{"type": "section", "text": pt("hi")}]}) == []
    blocks = copy.deepcopy(full_modal()["blocks"][-4:])
    assert check_message(blocks, "fallback") == []
    assert check_message([], "blocks removed") == []
    assert check_message(None, "x" * 40000) == []


def test_format_matches_slack():
    assert format_problem("must be less than 25 characters", "/view/title/text") == (
        "[ERROR] must be less than 25 characters [json-pointer:/view/title/text]"
    )
