"""Types for RunInput fields that name a Slack user or conversation.

Use them like any other annotation::

    class Handover(BaseModel):
        owner: SlackUser
        notify: SlackChannels = []

Each type validates the id's shape and marks its JSON schema with ``"x-slack": "user"`` or
``"x-slack": "channel"``, which is how ``bot.forms.modals`` knows to render a user or conversation
picker instead of a text box.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

__all__ = [
    "CHANNEL_ID_PATTERN",
    "USER_ID_PATTERN",
    "SlackChannel",
    "SlackChannels",
    "SlackUser",
    "SlackUsers",
]

#: Workspace users start with U; Enterprise Grid org-wide users start with W. (At most 64
#: characters, as every Slack id: what a select element can be given.)
USER_ID_PATTERN = r"^[UW][A-Z0-9]{2,63}$"
#: Public channels C, private channels and group DMs G, direct messages D.
CHANNEL_ID_PATTERN = r"^[CGD][A-Z0-9]{2,63}$"

_USER_ID = re.compile(USER_ID_PATTERN)
_CHANNEL_ID = re.compile(CHANNEL_ID_PATTERN)


def _check_user_id(value: str) -> str:
    if not _USER_ID.match(value):
        raise ValueError(
            f"{value!r} is not a Slack user id (expected U… or W… followed by letters and digits)"
        )
    return value


def _check_channel_id(value: str) -> str:
    if not _CHANNEL_ID.match(value):
        raise ValueError(
            f"{value!r} is not a Slack conversation id "
            "(expected C…, G… or D… followed by letters and digits)"
        )
    return value


# The pattern goes into the schema too, so the engine's JSON-schema validation of a stored
# answer agrees with pydantic's; the custom validator exists only for a friendlier message.
SlackUser = Annotated[
    str,
    AfterValidator(_check_user_id),
    Field(json_schema_extra={"x-slack": "user", "pattern": USER_ID_PATTERN}),
]
"""A Slack user id such as ``U012AB3CD``; rendered as a user picker."""

SlackChannel = Annotated[
    str,
    AfterValidator(_check_channel_id),
    Field(json_schema_extra={"x-slack": "channel", "pattern": CHANNEL_ID_PATTERN}),
]
"""A Slack conversation id such as ``C012AB3CD``; rendered as a conversation picker."""

SlackUsers = list[SlackUser]
"""Several Slack user ids; rendered as a multi-user picker."""

SlackChannels = list[SlackChannel]
"""Several Slack conversation ids; rendered as a multi-conversation picker."""
