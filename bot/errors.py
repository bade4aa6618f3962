"""Every error the bot raises, in one tree.

::

    BotError
    ├── SettingsError        a SLACK_* / SIGNOFF_* setting is missing or malformed
    ├── SlackUnreachable (url)            Slack's Web API did not answer at SLACK_API_URL
    ├── TokenRefused (variable, error)    Slack refused the token that variable holds
    ├── PayloadError         (bot.slack.payloads) a signed request's body is malformed
    ├── TamperedMetadata     (bot.slack.sealing) a form's private_metadata was not sealed by us
    └── ModalError           (bot.forms.modals) a schema cannot become a modal
        └── UnsupportedField (field, reason)
"""

from __future__ import annotations


class BotError(Exception):
    """The Slack side failed."""


class SettingsError(BotError):
    """A setting is missing or malformed."""


class SlackUnreachable(BotError):
    """Slack's Web API could not be reached."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        super().__init__(f"Slack could not be reached at SLACK_API_URL={url}: {reason}")


class TokenRefused(BotError):
    """Slack refused a token."""

    def __init__(self, variable: str, error: str) -> None:
        self.variable = variable
        self.error = error
        super().__init__(f"Slack refused the token in {variable}: {error}")


class PayloadError(BotError):
    """A request's body is not what Slack sends; the message names what was wrong."""


class TamperedMetadata(BotError):
    """A form came back with ``private_metadata`` that this app did not seal."""


class ModalError(BotError):
    """A modal could not be built."""


class UnsupportedField(ModalError):
    """A field of the input model cannot be represented by any Slack input."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        where = f"field {field!r}" if field else "the input model"
        super().__init__(f"{where} cannot be shown in a Slack modal: {reason}")


__all__ = [
    "BotError",
    "ModalError",
    "PayloadError",
    "SettingsError",
    "SlackUnreachable",
    "TamperedMetadata",
    "TokenRefused",
    "UnsupportedField",
]
