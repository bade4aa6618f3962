"""What Slack allows in Block Kit, and how it reports a breach.

The figures come from Slack's reference pages and from payloads the real Web API rejected;
``bot.forms.blockkit.walker`` applies them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final, Literal

Surface = Literal["modal", "home", "message"]
Obj = Mapping[str, Any]

#: Element types an ``input`` block accepts.
INPUT_ELEMENT_TYPES: Final = frozenset(
    {
        "plain_text_input", "number_input", "email_text_input", "url_text_input",
        "static_select", "multi_static_select", "external_select", "multi_external_select",
        "users_select", "multi_users_select", "conversations_select",
        "multi_conversations_select", "channels_select", "multi_channels_select",
        "radio_buttons", "checkboxes", "datepicker", "timepicker", "datetimepicker",
        "rich_text_input", "file_input",
    }
)  # fmt: skip
#: Element types that keep a value in ``view.state.values`` (everything but buttons, links).
STATEFUL_ELEMENT_TYPES: Final = INPUT_ELEMENT_TYPES
# Slack's element docs list slightly different hosts per element; we err on the lenient side so
# the sandbox never rejects a payload Slack would accept.
ACTIONS_ELEMENTS: Final = (INPUT_ELEMENT_TYPES - {"file_input"}) | {
    "button", "overflow", "workflow_button",
}  # fmt: skip
ACCESSORY_ELEMENTS: Final = ACTIONS_ELEMENTS - {"rich_text_input"} | {"image"}
#: type -> (max options, mrkdwn option text allowed, multiple selection)
OPTION_ELEMENTS: Final = {
    "static_select": (100, False, False),
    "multi_static_select": (100, False, True),
    "radio_buttons": (10, True, False),
    "checkboxes": (10, True, True),
}
#: type -> (single initial id field, list initial id field)
ID_ELEMENTS: Final = {
    "users_select": ("initial_user", "initial_users"),
    "multi_users_select": ("initial_user", "initial_users"),
    "conversations_select": ("initial_conversation", "initial_conversations"),
    "multi_conversations_select": ("initial_conversation", "initial_conversations"),
    "channels_select": ("initial_channel", "initial_channels"),
    "multi_channels_select": ("initial_channel", "initial_channels"),
}
PASSIVE_BLOCKS: Final = frozenset({"divider", "rich_text", "video", "file", "call", "table"})
VIEW_BLOCK_LIMIT: Final = 100
#: Slack refuses a larger view (its JSON, in bytes) with ``view_too_large``: "about 250 kB"
#: in Slack's error list; we take the lower reading, 250,000 rather than 256,000.
VIEW_SIZE_LIMIT: Final = 250_000
MESSAGE_BLOCK_LIMIT: Final = 50
DATE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
TIME: Final = re.compile(r"(?:[01]\d|2[0-3]):[0-5]\d")
#: a datetime picker's ``initial_date_time``: UNIX seconds, in exactly 10 digits
DATETIME_SECONDS: Final = range(1_000_000_000, 10_000_000_000)


def view_size(view: Any) -> int:
    """The size of ``view`` as Slack receives it: the bytes of its JSON as ``slack_sdk``
    writes it (``json.dumps``' defaults, so text beyond ASCII counts as its escapes).

    Args:
        view: The view, as a dict.

    Returns:
        The number of bytes.
    """
    return len(json.dumps(view, default=str).encode())


def format_problem(message: str, pointer: str) -> str:
    """Format one problem the way Slack does in ``response_metadata.messages``.

    Args:
        message: What is wrong, e.g. ``"must be less than 25 characters"``.
        pointer: JSON pointer to the offending value, e.g. ``"/view/title/text"``.

    Returns:
        ``"[ERROR] <message> [json-pointer:<pointer>]"``.
    """
    return f"[ERROR] {message} [json-pointer:{pointer}]"
