"""Every error the bot raises, in one tree.

::

    BotError
    ├── SettingsError        a SLACK_* / SIGNOFF_* setting is missing or malformed
    └── ModalError           (bot.modals) a schema cannot become a modal
        └── UnsupportedField (field, reason)
"""

from __future__ import annotations


class BotError(Exception):
    """The Slack side failed."""


class SettingsError(BotError):
    """A setting is missing or malformed."""


class ModalError(BotError):
    """A modal could not be built."""


class UnsupportedField(ModalError):
    """A field of the input model cannot be represented by any Slack input."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        where = f"field {field!r}" if field else "the input model"
        super().__init__(f"{where} cannot be shown in a Slack modal: {reason}")


__all__ = ["BotError", "ModalError", "SettingsError", "UnsupportedField"]
