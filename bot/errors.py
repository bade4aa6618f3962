"""Every error the bot raises, in one tree.

::

    BotError
    ├── SettingsError        a SLACK_* / SIGNOFF_* setting is missing or malformed
    └── ModalError           (bot.modals) a schema cannot become a modal
        └── UnsupportedField (field, reason)
"""

from __future__ import annotations

from bot.modals import ModalError, UnsupportedField


class BotError(Exception):
    """The Slack side failed."""


class SettingsError(BotError):
    """A setting is missing or malformed."""


__all__ = ["BotError", "ModalError", "SettingsError", "UnsupportedField"]
