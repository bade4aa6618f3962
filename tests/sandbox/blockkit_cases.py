"""Slack's Block Kit limits as cases: (case id, payload, JSON pointer of the problem,
a fragment of the message), with the small builders they are written with."""

from __future__ import annotations

from typing import Any


def pt(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


def opt(value: str, text: str | None = None) -> dict[str, Any]:
    return {"text": pt(text or value.title()), "value": value}


def input_block(element: dict[str, Any], block_id: str = "field:x", **extra: Any) -> dict[str, Any]:
    return {"type": "input", "block_id": block_id, "label": pt("X"), "element": element, **extra}


def modal(*blocks: dict[str, Any], **extra: Any) -> dict[str, Any]:
    view: dict[str, Any] = {
        "type": "modal",
        "title": pt("Approve"),
        "submit": pt("Submit"),
        "blocks": list(blocks) or [{"type": "divider"}],
    }
    view.update(extra)
    return view


def with_element(**fields: Any) -> dict[str, Any]:
    """A modal with one input block whose element is ``fields``."""
    return modal(input_block({"action_id": "value", **fields}))


TEXT = {"type": "plain_text_input"}
SELECT = {"type": "static_select", "options": [opt("a"), opt("b")]}
NUMBER = {"type": "number_input", "is_decimal_allowed": False}
BUTTON = {"type": "button", "text": pt("Go"), "action_id": "go"}

# (case id, view, json-pointer, message fragment)
VIEW_CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("view type missing", {"blocks": []}, "/view", "missing required field: type"),
    ("title missing", {**modal(), "title": None}, "/view", "missing required field: title"),
    ("title too long", modal(title=pt("x" * 25)), "/view/title/text", "less than 25"),
    ("title mrkdwn", modal(title={"type": "mrkdwn", "text": "T"}), "/view/title/type", "plain"),
    (
        "submit missing with input",
        {k: v for k, v in with_element(**TEXT).items() if k != "submit"},
        "/view/blocks/0/input",
        "must define submit to use input block",
    ),
    ("submit too long", modal(submit=pt("x" * 25)), "/view/submit/text", "less than 25"),
    ("close too long", modal(close=pt("x" * 25)), "/view/close/text", "less than 25"),
    ("no blocks", {**modal(), "blocks": []}, "/view/blocks", "at least 1"),
    (
        "101 blocks",
        modal(*[{"type": "divider"}] * 101),
        "/view/blocks",
        "no more than 100 items",
    ),
    (
        "private_metadata too long",
        modal(private_metadata="x" * 3001),
        "/view/private_metadata",
        "less than 3001",
    ),
    ("callback_id too long", modal(callback_id="x" * 256), "/view/callback_id", "less than 256"),
    (
        "block_id too long",
        modal({"type": "divider", "block_id": "x" * 256}),
        "/view/blocks/0/block_id",
        "less than 256",
    ),
    (
        "block_id duplicate",
        modal({"type": "divider", "block_id": "b"}, {"type": "divider", "block_id": "b"}),
        "/view/blocks/1/block_id",
        "unique",
    ),
    (
        "action_id duplicate in block",
        modal({"type": "actions", "elements": [BUTTON, BUTTON]}),
        "/view/blocks/0/elements/1/action_id",
        "unique within the block",
    ),
    (
        "action_id too long",
        modal(input_block({**TEXT, "action_id": "x" * 256})),
        "/view/blocks/0/element/action_id",
        "less than 256",
    ),
    (
        "label too long",
        modal({**input_block(TEXT), "label": pt("x" * 2001)}),
        "/view/blocks/0/label/text",
        "less than 2001",
    ),
    (
        "label mrkdwn",
        modal({**input_block(TEXT), "label": {"type": "mrkdwn", "text": "*X*"}}),
        "/view/blocks/0/label/type",
        "plain_text",
    ),
    (
        "label missing",
        modal({k: v for k, v in input_block(TEXT).items() if k != "label"}),
        "/view/blocks/0",
        "missing required field: label",
    ),
    (
        "hint too long",
        modal(input_block(TEXT, hint=pt("x" * 2001))),
        "/view/blocks/0/hint/text",
        "less than 2001",
    ),
    (
        "hint mrkdwn",
        modal(input_block(TEXT, hint={"type": "mrkdwn", "text": "h"})),
        "/view/blocks/0/hint/type",
        "plain_text",
    ),
    (
        "placeholder too long",
        with_element(**TEXT, placeholder=pt("x" * 151)),
        "/view/blocks/0/element/placeholder/text",
        "less than 151",
    ),
    (
        "option text too long",
        with_element(type="static_select", options=[opt("a", "x" * 76)]),
        "/view/blocks/0/element/options/0/text/text",
        "less than 76",
    ),
    (
        "option value too long",
        with_element(type="static_select", options=[opt("x" * 151)]),
        "/view/blocks/0/element/options/0/value",
        "less than 151",
    ),
    (
        "option description too long",
        with_element(type="radio_buttons", options=[{**opt("a"), "description": pt("x" * 76)}]),
        "/view/blocks/0/element/options/0/description/text",
        "less than 76",
    ),
    (
        "static select 101 options",
        with_element(type="static_select", options=[opt(f"o{i}") for i in range(101)]),
        "/view/blocks/0/element/options",
        "no more than 100 items",
    ),
    (
        "static select options and groups",
        with_element(
            type="static_select",
            options=[opt("a")],
            option_groups=[{"label": pt("G"), "options": [opt("b")]}],
        ),
        "/view/blocks/0/element",
        "not both",
    ),
    (
        "radio 11 options",
        with_element(type="radio_buttons", options=[opt(f"o{i}") for i in range(11)]),
        "/view/blocks/0/element/options",
        "no more than 10 items",
    ),
    (
        "checkboxes 11 options",
        with_element(type="checkboxes", options=[opt(f"o{i}") for i in range(11)]),
        "/view/blocks/0/element/options",
        "no more than 10 items",
    ),
    (
        "min_length over 3000",
        with_element(**TEXT, min_length=3001),
        "/view/blocks/0/element/min_length",
        "between 0 and 3000",
    ),
    (
        "max_length 0",
        with_element(**TEXT, max_length=0),
        "/view/blocks/0/element/max_length",
        "between 1 and 3000",
    ),
    (
        "min_length over max_length",
        with_element(**TEXT, min_length=10, max_length=5),
        "/view/blocks/0/element/min_length",
        "max_length",
    ),
    (
        "initial_value longer than max_length",
        with_element(**TEXT, max_length=3, initial_value="abcd"),
        "/view/blocks/0/element/initial_value",
        "max_length",
    ),
    (
        "number without is_decimal_allowed",
        with_element(type="number_input"),
        "/view/blocks/0/element",
        "missing required field: is_decimal_allowed",
    ),
    (
        "number bound not a string",
        with_element(**NUMBER, min_value=1),
        "/view/blocks/0/element/min_value",
        "string",
    ),
    (
        "number bound not numeric",
        with_element(**NUMBER, max_value="ten"),
        "/view/blocks/0/element/max_value",
        "number",
    ),
    (
        "number min over max",
        with_element(**NUMBER, min_value="10", max_value="1"),
        "/view/blocks/0/element/min_value",
        "max_value",
    ),
    (
        "number initial out of bounds",
        with_element(**NUMBER, min_value="1", max_value="5", initial_value="6"),
        "/view/blocks/0/element/initial_value",
        "between min_value and max_value",
    ),
    (
        "number initial decimal when not allowed",
        with_element(**NUMBER, initial_value="2.5"),
        "/view/blocks/0/element/initial_value",
        "integer",
    ),
    (
        "initial_option not an option",
        with_element(**SELECT, initial_option=opt("c")),
        "/view/blocks/0/element/initial_option",
        "exactly match",
    ),
    (
        "initial_option differs in text",
        with_element(**SELECT, initial_option=opt("a", "Other")),
        "/view/blocks/0/element/initial_option",
        "exactly match",
    ),
    (
        "initial_options not options",
        with_element(type="checkboxes", options=[opt("a")], initial_options=[opt("z")]),
        "/view/blocks/0/element/initial_options/0",
        "exactly match",
    ),
    (
        "date not a real day",
        with_element(type="datepicker", initial_date="2024-02-30"),
        "/view/blocks/0/element/initial_date",
        "YYYY-MM-DD",
    ),
    (
        "date with trailing junk",
        with_element(type="datepicker", initial_date="2024-01-01junk"),
        "/view/blocks/0/element/initial_date",
        "YYYY-MM-DD",
    ),
    (
        "time without leading zero",
        with_element(type="timepicker", initial_time="9:00"),
        "/view/blocks/0/element/initial_time",
        "HH:mm",
    ),
    (
        "time with seconds",
        with_element(type="timepicker", initial_time="09:00:00"),
        "/view/blocks/0/element/initial_time",
        "HH:mm",
    ),
    (
        "datetime in milliseconds",
        with_element(type="datetimepicker", initial_date_time=1738330200000),
        "/view/blocks/0/element/initial_date_time",
        "10-digit",
    ),
    (
        "datetime as string",
        with_element(type="datetimepicker", initial_date_time="1738330200"),
        "/view/blocks/0/element/initial_date_time",
        "integer",
    ),
    (
        "file_input max_files 11",
        with_element(type="file_input", max_files=11),
        "/view/blocks/0/element/max_files",
        "between 1 and 10",
    ),
    (
        "file_input max_files 0",
        with_element(type="file_input", max_files=0),
        "/view/blocks/0/element/max_files",
        "between 1 and 10",
    ),
    (
        "file_input with dispatch_action",
        modal(input_block({"type": "file_input", "action_id": "value"}, dispatch_action=True)),
        "/view/blocks/0/dispatch_action",
        "file_input",
    ),
    (
        "two focus_on_load",
        modal(
            input_block({**TEXT, "action_id": "a", "focus_on_load": True}, "field:a"),
            input_block({**TEXT, "action_id": "b", "focus_on_load": True}, "field:b"),
        ),
        "/view/blocks/1/element/focus_on_load",
        "only one element",
    ),
    (
        "section text too long",
        modal({"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}),
        "/view/blocks/0/text/text",
        "less than 3001",
    ),
    (
        "section 11 fields",
        modal({"type": "section", "fields": [pt(f"f{i}") for i in range(11)]}),
        "/view/blocks/0/fields",
        "no more than 10 items",
    ),
    (
        "header too long",
        modal({"type": "header", "text": pt("x" * 151)}),
        "/view/blocks/0/text/text",
        "less than 151",
    ),
    (
        "actions 26 elements",
        modal(
            {
                "type": "actions",
                "elements": [{**BUTTON, "action_id": f"b{i}"} for i in range(26)],
            }
        ),
        "/view/blocks/0/elements",
        "no more than 25 items",
    ),
    (
        "context 11 elements",
        modal({"type": "context", "elements": [pt(f"c{i}") for i in range(11)]}),
        "/view/blocks/0/elements",
        "no more than 10 items",
    ),
    (
        "button text too long",
        modal({"type": "actions", "elements": [{**BUTTON, "text": pt("x" * 76)}]}),
        "/view/blocks/0/elements/0/text/text",
        "less than 76",
    ),
    (
        "button value too long",
        modal({"type": "actions", "elements": [{**BUTTON, "value": "x" * 2001}]}),
        "/view/blocks/0/elements/0/value",
        "less than 2001",
    ),
    (
        "button url too long",
        modal({"type": "actions", "elements": [{**BUTTON, "url": "https://x/" + "x" * 3000}]}),
        "/view/blocks/0/elements/0/url",
        "less than 3001",
    ),
    (
        "button in an input block",
        modal(input_block(BUTTON)),
        "/view/blocks/0/element",
        "failed to match all allowed schemas",
    ),
    (
        "unknown element type",
        modal(input_block({"type": "magic_input", "action_id": "value"})),
        "/view/blocks/0/element",
        "failed to match all allowed schemas",
    ),
    ("unknown block type", modal({"type": "carousel"}), "/view/blocks/0/type", "unsupported"),
    (
        "home with title",
        {"type": "home", "title": pt("T"), "blocks": [{"type": "divider"}]},
        "/view/title",
        "not allowed in home",
    ),  # fmt: skip
    (
        "home with submit",
        {"type": "home", "submit": pt("T"), "blocks": [{"type": "divider"}]},
        "/view/submit",
        "not allowed in home",
    ),  # fmt: skip
    (
        "home with close",
        {"type": "home", "close": pt("T"), "blocks": [{"type": "divider"}]},
        "/view/close",
        "not allowed in home",
    ),  # fmt: skip
    (
        "file_input on home",
        {"type": "home", "blocks": [input_block({"type": "file_input", "action_id": "v"})]},
        "/view/blocks/0/element/type",
        "only supported in modals",
    ),
]


MESSAGE_CASES: list[tuple[str, Any, Any, str, str]] = [
    ("text over 40000", None, "x" * 40001, "/text", "less than 40001"),
    ("51 blocks", [{"type": "divider"}] * 51, "t", "/blocks", "no more than 50 items"),
    (
        "header mrkdwn",
        [{"type": "header", "text": {"type": "mrkdwn", "text": "*x*"}}],
        "t",
        "/blocks/0/text/type",
        "plain_text",
    ),
    (
        "duplicate block_id",
        [{"type": "divider", "block_id": "a"}, {"type": "divider", "block_id": "a"}],
        "t",
        "/blocks/1/block_id",
        "unique within the message",
    ),
    (
        "empty section text",
        [{"type": "section", "text": {"type": "mrkdwn", "text": ""}}],
        "t",
        "/blocks/0/text/text",
        "more than 0 characters",
    ),
    (
        "file_input in a message",
        [input_block({"type": "file_input", "action_id": "v"})],
        "t",
        "/blocks/0/element/type",
        "only supported in modals",
    ),
]
