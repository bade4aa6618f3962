"""Views and messages the driver tests show: Block Kit built by hand, as an app sends it."""

from __future__ import annotations

TEXT = {"type": "plain_text_input", "action_id": "value"}


def pt(text):
    return {"type": "plain_text", "text": text}


def opt(value, text=None):
    return {"text": pt(text or value.title()), "value": value}


def field(path, element, label=None, **extra):
    return {
        "type": "input",
        "block_id": f"field:{path}",
        "label": pt(label or path.title()),
        "element": {"action_id": "value", **element},
        **extra,
    }


def modal(*blocks, **extra):
    return {
        "type": "modal",
        "callback_id": "run_input",
        "title": pt("Provide input"),
        "submit": pt("Submit"),
        "private_metadata": '{"run": "r42"}',
        "blocks": list(blocks),
        **extra,
    }


BUTTONS = [
    {"type": "section", "text": {"type": "mrkdwn", "text": "Deploy *r42*?"}},
    {
        "type": "actions",
        "block_id": "decide",
        "elements": [
            {"type": "button", "text": pt("Approve"), "action_id": "decide", "value": "approve"},
            {"type": "button", "text": pt("Reject"), "action_id": "reject", "value": "reject"},
        ],
    },
    {
        "type": "actions",
        "block_id": "more",
        "elements": [
            {"type": "button", "text": pt("Input"), "action_id": "provide_input", "value": "r42"}
        ],
    },
    {
        "type": "actions",
        "block_id": "other",
        "elements": [
            {"type": "button", "text": pt("Other"), "action_id": "provide_input", "value": "r43"}
        ],
    },
]


def open_modal(sandbox, user, view):
    return sandbox.client().views_open(trigger_id=sandbox.issue_trigger(user), view=view)["view"]
