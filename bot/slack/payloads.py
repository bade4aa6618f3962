"""Slack's requests as typed values: every body is parsed here, at the edge, or refused.

A signed request is turned into one of the models below before any listener sees it; a
body that does not fit gets ``PayloadError`` with a message naming the field that was
wrong. Listeners read the same models (``BlockActions.model_validate(body)``), so no
listener indexes a raw dict. Lengths are capped at Slack's own limits: nothing longer
comes from Slack, and a longer value is refused before any slow work is done with it.
"""

from __future__ import annotations

import codecs
import json
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, unquote_plus

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from signoff.bot.errors import PayloadError

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_COMMAND_TEXT",
    "Action",
    "AppRateLimited",
    "BlockActions",
    "Channel",
    "Container",
    "ElementState",
    "EventCallback",
    "Interaction",
    "OtherInteraction",
    "SlackRequest",
    "SlashCommand",
    "SubmittedView",
    "UrlVerification",
    "User",
    "ViewState",
    "ViewSubmission",
    "check_socket_payload",
    "parse_request",
    "read_request",
]

#: The largest body accepted. A modal's state (100 inputs of 3,000 characters) stays far
#: below it once form-encoded.
MAX_BODY_BYTES = 2 * 1024 * 1024
#: The longest slash command text read: Slack's message box takes 4,000 characters, and
#: Slack sends each ``&``, ``<`` and ``>`` typed as an entity of up to five (``&amp;``).
MAX_COMMAND_TEXT = 4000 * 5

#: a user, channel, team or user group id (U024BE7LH): letters and digits only, so that an
#: id with a space, a NUL or markup in it is refused here rather than stored or shown
SlackId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9]+$")]
Short = Annotated[str, Field(max_length=255)]


class _Model(BaseModel):
    # Slack adds fields over time; what the bot reads is typed, the rest is ignored.
    model_config = ConfigDict(extra="ignore", frozen=True)


class User(_Model):
    id: SlackId


class Ref(_Model):
    """A team or enterprise as Slack names them in a payload."""

    id: Annotated[str, Field(max_length=64)] | None = None


class PressedMessage(_Model):
    """The message a button was pressed in, as far as the listeners read it (its blocks, to
    close a deleted run's prompt: each is an object in every message Slack sends)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    ts: Short | None = None
    blocks: list[dict[str, Any]] | None = None


class _Interaction(_Model):
    """What Bolt itself reads from every interaction payload (to route it and authorize):
    typed here, so that a wrongly shaped field is refused before Bolt trips on it."""

    team: Ref | None = None
    enterprise: Ref | None = None
    is_enterprise_install: bool | None = None
    api_app_id: Short | None = None
    message: PressedMessage | None = None
    view: dict[str, Any] | None = None


class Channel(_Model):
    id: SlackId


class Container(_Model):
    type: Short = ""
    channel_id: SlackId | None = None
    message_ts: Short | None = None


class Action(_Model):
    action_id: Short
    block_id: Short | None = None
    #: a button's value (Slack caps it at 2,000 characters)
    value: Annotated[str, Field(max_length=2000)] | None = None


#: a response_url: Slack's, over HTTP(S)
ResponseUrl = Annotated[str, Field(max_length=3000, pattern=r"^https?://[^\s]+$")]


class BlockActions(_Interaction):
    """A click on a button (or another interactive element) in a message or a modal."""

    type: Literal["block_actions"]
    user: User
    trigger_id: Short = ""
    actions: Annotated[list[Action], Field(min_length=1, max_length=25)]
    container: Container | None = None
    channel: Channel | None = None
    response_url: ResponseUrl | None = None

    @property
    def channel_id(self) -> str | None:
        """Where the click happened, if it was in a conversation."""
        if self.channel is not None:
            return self.channel.id
        return self.container.channel_id if self.container else None


class OptionValue(_Model):
    value: Annotated[str, Field(max_length=150)]


class ElementState(_Model):
    """One input's state in ``view.state.values``; which field is set depends on its type."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    type: Short = ""
    value: Annotated[str, Field(max_length=3000)] | None = None
    selected_option: OptionValue | None = None
    selected_options: Annotated[list[OptionValue], Field(max_length=100)] | None = None
    selected_date: Annotated[str, Field(max_length=10)] | None = None
    selected_time: Annotated[str, Field(max_length=8)] | None = None
    selected_date_time: int | None = None
    selected_user: SlackId | None = None
    selected_users: Annotated[list[SlackId], Field(max_length=100)] | None = None
    selected_conversation: SlackId | None = None
    selected_conversations: Annotated[list[SlackId], Field(max_length=100)] | None = None


#: Slack's limits on a modal: 100 blocks, and 25 elements in a block (an actions block's)
MAX_VIEW_BLOCKS = 100
MAX_BLOCK_ELEMENTS = 25


class ViewState(_Model):
    # Capped at Slack's limits: 2 MB of tiny inputs were 80,000 models to check, half a
    # second on the HTTP listener's event loop (which answers every request) per request.
    values: Annotated[
        dict[Short, Annotated[dict[Short, ElementState], Field(max_length=MAX_BLOCK_ELEMENTS)]],
        Field(max_length=MAX_VIEW_BLOCKS),
    ] = Field(default_factory=dict)

    def as_mapping(self) -> dict[str, dict[str, dict[str, Any]]]:
        """The state as Slack sent it, with only the typed fields (for ``parse_submission``)."""
        return {
            block: {
                action: state.model_dump(exclude_none=True) for action, state in actions.items()
            }
            for block, actions in self.values.items()
        }


class SubmittedView(_Model):
    type: Annotated[str, Field(min_length=1, max_length=32)]
    id: Short = ""
    callback_id: Short = ""
    private_metadata: Annotated[str, Field(max_length=3000)] = ""
    state: ViewState = Field(default_factory=ViewState)


class ViewSubmission(_Interaction):
    """A modal's submit button."""

    type: Literal["view_submission"]
    user: User
    view: SubmittedView  # type: ignore[assignment]
    trigger_id: Short = ""
    response_urls: Annotated[list[dict[str, Any]], Field(max_length=10)] | None = None


class OtherInteraction(_Interaction):
    """Any other interactivity payload (``view_closed``, shortcuts, ...): acknowledged only."""

    type: Literal[
        "view_closed", "shortcut", "message_action", "block_suggestion", "interactive_message"
    ]
    user: User | None = None
    channel: Channel | None = None
    container: Container | None = None
    callback_id: Short | None = None
    trigger_id: Short | None = None
    response_url: ResponseUrl | None = None


Interaction = Annotated[
    BlockActions | ViewSubmission | OtherInteraction, Field(discriminator="type")
]


class SlashCommand(_Model):
    """A slash command, as Slack form-encodes it."""

    command: Annotated[str, Field(min_length=2, max_length=32, pattern=r"^/")]
    text: Annotated[str, Field(max_length=MAX_COMMAND_TEXT)] = ""
    user_id: SlackId
    user_name: Annotated[str, Field(max_length=255)] = ""
    channel_id: Annotated[str, Field(max_length=64)] = ""
    trigger_id: Short = ""
    response_url: ResponseUrl


class EventBody(_Model):
    """The event inside an Events API delivery; Bolt routes it by ``type``."""

    model_config = ConfigDict(extra="allow", frozen=True)

    type: Short
    user: SlackId | None = None
    channel: Annotated[str, Field(max_length=64)] | None = None
    bot_id: Annotated[str, Field(max_length=64)] | None = None
    subtype: Short | None = None
    #: what the listeners read of the events they take (``app_home_opened``, the user group
    #: events): typed, so that one of another shape is refused here, not a listener's
    #: traceback after the ack
    tab: Short | None = None
    subteam_id: Short | None = None
    subteam: Ref | None = None


class UrlVerification(_Model):
    type: Literal["url_verification"]
    challenge: Annotated[str, Field(max_length=1000)]
    #: never sent with this type, but Bolt's middleware reads it whatever the type
    event: EventBody | None = None

    @field_validator("event", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Absent is fine; an explicit null would reach Bolt, which calls .get on it.
        if value is None:
            raise ValueError("must be an object when present")
        return value


class EventCallback(_Model):
    type: Literal["event_callback"]
    event_id: Short = ""
    team_id: Annotated[str, Field(max_length=64)] | None = None
    enterprise_id: Annotated[str, Field(max_length=64)] | None = None
    api_app_id: Short | None = None
    is_ext_shared_channel: bool | None = None
    authorizations: Annotated[list[dict[str, Any]], Field(max_length=10)] | None = None
    event: EventBody


class AppRateLimited(_Model):
    """Slack's notice that the app went past the Events API's limit (30,000 events a
    workspace an hour): Slack drops the workspace's events for the rest of the minute."""

    type: Literal["app_rate_limited"]
    team_id: Annotated[str, Field(max_length=64)] = ""
    api_app_id: Short | None = None
    minute_rate_limited: int | None = None


EventEnvelope = Annotated[
    UrlVerification | EventCallback | AppRateLimited, Field(discriminator="type")
]
SlackRequest = SlashCommand | BlockActions | ViewSubmission | OtherInteraction | EventCallback
SslCheck = dict[str, str]

_INTERACTION: TypeAdapter[BlockActions | ViewSubmission | OtherInteraction] = TypeAdapter(
    Interaction
)
_EVENT: TypeAdapter[UrlVerification | EventCallback | AppRateLimited] = TypeAdapter(EventEnvelope)


def _problem(where: str, exc: ValidationError, *, tagged: bool = False) -> PayloadError:
    """The first few field errors, each with its path, in one line (``tagged``: the path
    starts with the union's tag, which names the model rather than a field)."""
    parts = []
    for err in exc.errors()[:3]:
        loc = err["loc"][1:] if tagged and len(err["loc"]) > 1 else err["loc"]
        path = ".".join(str(p) for p in (where, *loc) if p != "")
        # a validator's own words, without pydantic's "Value error, " in front
        msg = str(err["ctx"]["error"]) if err["type"] == "value_error" else err["msg"]
        parts.append(f"{path}: {msg}")
    more = len(exc.errors()) - 3
    return PayloadError("; ".join(parts) + (f" (and {more} more)" if more > 0 else ""))


def _json_object(text: str, where: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise PayloadError(f"{where} is not JSON: {exc}") from None
    except RecursionError:
        # json.loads recurses once per level: "[" * 100_000 would otherwise be a 500.
        raise PayloadError(f"{where} is JSON nested too deeply to read") from None
    if not isinstance(value, dict):
        raise PayloadError(f"{where} must be a JSON object, not {type(value).__name__}")
    return value


def parse_request(
    content_type: str, body: bytes
) -> SlackRequest | UrlVerification | AppRateLimited | None:
    """The typed request in ``body``; None for Slack's SSL check (which needs no action).

    Raises:
        PayloadError: the body is not UTF-8, not the form or JSON Slack sends, or a field
            is missing, of the wrong type or longer than Slack allows. The message names it.
    """
    return read_request(content_type, body)[0]


def _form_fields(text: str) -> dict[str, str]:
    """The fields of a form-encoded body (the last value of each), as ``parse_qs`` reads them.

    An interactivity body is one field, ``payload=`` and a few kilobytes of JSON in which
    every quote, brace and colon is escaped: ``parse_qs`` unescapes those one by one in
    Python, which was half of the bot's own time per acknowledgement (0.1 to 0.2 ms).
    ``unquote_form`` does the same in C.
    """
    try:
        if text.startswith("payload=") and "&" not in text:
            # One field; any "&" within the JSON would have come escaped.
            return {"payload": unquote_form(text[len("payload=") :])}
        form = parse_qs(text, keep_blank_values=True, strict_parsing=bool(text), errors="strict")
    except UnicodeDecodeError:
        # Stored as U+FFFD, what was typed would be lost without a word.
        raise PayloadError("a form field is not UTF-8 once its %-escapes are decoded") from None
    except ValueError as exc:
        raise PayloadError(f"the body is not form-encoded: {exc}") from None
    return {k: v[-1] for k, v in form.items()}


def unquote_form(value: str) -> str:
    """``urllib.parse.unquote_plus(value)``, with every ``%XX`` decoded in one C pass.

    Each ``%`` becomes ``\\x`` (after doubling any backslash already there), so that
    ``codecs.escape_decode`` turns the escapes into their bytes. A ``%`` not followed by
    two hex digits makes that fail, and then ``unquote_plus`` decides, as it always did.

    >>> unquote_form("%7B%22a%22%3A+%2250%25%22%7D")
    '{"a": "50%"}'

    Raises:
        UnicodeDecodeError: the decoded bytes are not UTF-8.
    """
    try:
        raw = value.replace("+", " ").encode()
        escaped = raw.replace(b"\\", b"\\\\").replace(b"%", b"\\x")
        decoded: bytes = codecs.escape_decode(escaped)[0]
    except ValueError:  # a stray "%", or a lone surrogate that UTF-8 cannot encode
        return unquote_plus(value, errors="strict")
    return decoded.decode("utf-8")


def check_socket_payload(kind: str, payload: dict[str, Any]) -> None:
    """Check a Socket Mode envelope's ``payload`` (of envelope type ``kind``) against the
    models an HTTP request of that kind is read into, so that over the socket too no
    listener (and none of Bolt's middleware) meets a field missing or of the wrong type.

    Raises:
        PayloadError: as ``parse_request``.
    """
    try:
        if kind == "interactive":
            _INTERACTION.validate_python(payload)
        elif kind == "slash_commands":
            SlashCommand.model_validate(payload)
        else:
            _EVENT.validate_python(payload)
    except ValidationError as exc:
        raise _problem("payload", exc, tagged=kind != "slash_commands") from None


def read_request(
    content_type: str, body: bytes
) -> tuple[SlackRequest | UrlVerification | AppRateLimited | None, str | None]:
    """``parse_request``'s typed request, and for an interactivity payload its JSON text
    as sent (the form field ``payload``), so that it need not be decoded again; else None.

    Raises:
        PayloadError: as ``parse_request``.
    """
    if len(body) > MAX_BODY_BYTES:
        raise PayloadError(f"the body is larger than {MAX_BODY_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise PayloadError("the body is not UTF-8") from None
    if content_type.split(";", maxsplit=1)[0].strip().lower() == "application/json":
        try:
            return _EVENT.validate_python(_json_object(text, "the body")), None
        except ValidationError as exc:
            raise _problem("body", exc, tagged=True) from None
    fields = _form_fields(text)
    if "payload" in fields:
        try:
            payload = fields["payload"]
            return _INTERACTION.validate_python(_json_object(payload, "payload")), payload
        except ValidationError as exc:
            raise _problem("payload", exc, tagged=True) from None
    if "command" in fields:
        try:
            return SlashCommand.model_validate(fields), None
        except ValidationError as exc:
            raise _problem("", exc) from None
    if "ssl_check" in fields:
        return None, None
    raise PayloadError("the body is neither a slash command nor an interactivity payload")
