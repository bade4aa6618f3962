"""The typed, read-only records the sandbox hands out: users, messages, views, calls, answers.

Every record is a frozen snapshot taken under the workspace lock; mutating its dicts does not
change the workspace. Ask the sandbox again to see newer state.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

__all__ = [
    "AppResponse",
    "Call",
    "Channel",
    "EphemeralMessage",
    "JsonDict",
    "Message",
    "OpenView",
    "User",
    "Usergroup",
]

#: A JSON object as Slack sends and receives it.
JsonDict: TypeAlias = dict[str, Any]


@dataclass(frozen=True)
class User:
    """A workspace member.

    Attributes:
        id: ``U...`` id.
        name: The handle (``alice``).
        real_name: Full name (``Alice Adams``).
        email: Profile email.
        is_bot: Bot users (like the app's own) are True.
        tz: IANA time zone name.
        team_id: The member's own team, for a guest of another organisation in a Slack
            Connect channel; empty for the workspace's own members.
    """

    id: str
    name: str
    real_name: str
    email: str = ""
    is_bot: bool = False
    tz: str = "Europe/London"
    team_id: str = ""

    def to_api(self, team_id: str) -> JsonDict:
        """The ``user`` object ``users.info`` returns."""
        return {
            "id": self.id,
            "team_id": self.team_id or team_id,
            "name": self.name,
            "real_name": self.real_name,
            "deleted": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "tz": self.tz,
            "profile": {
                "real_name": self.real_name,
                "display_name": self.name,
                "email": self.email,
            },
        }


@dataclass(frozen=True)
class Usergroup:
    """A user group (``S...``) that can be mentioned as ``<!subteam^S...>``."""

    id: str
    handle: str
    name: str
    users: tuple[str, ...]


@dataclass(frozen=True)
class Message:
    """A message in a channel or DM, as the app last left it.

    Attributes:
        channel: Conversation id (``C...``, ``D...``, ``G...``).
        ts: Slack timestamp, unique per channel, e.g. ``"1700000000.000100"``.
        text: The ``text`` argument (notification fallback when there are blocks).
        blocks: Block Kit blocks; Slack fills in missing ``block_id``/``action_id``.
        user: Author's user id (the bot user for API posts).
        thread_ts: Parent ts when this is a thread reply (or the parent itself once replied to).
        reply_broadcast: A thread reply also shown in the channel.
        edits: How many times ``chat.update``/``replace_original`` changed it.
        metadata: The ``metadata`` posted with it (``event_type`` and ``event_payload``).
    """

    channel: str
    ts: str
    text: str
    blocks: list[JsonDict]
    user: str
    bot_id: str | None = None
    thread_ts: str | None = None
    reply_broadcast: bool = False
    edits: int = 0
    metadata: JsonDict | None = None

    @property
    def is_reply(self) -> bool:
        """True for a thread reply (not the parent)."""
        return self.thread_ts is not None and self.thread_ts != self.ts

    def to_api(self, team_id: str, *, with_metadata: bool = False) -> JsonDict:
        """The ``message`` object Slack returns and puts into ``block_actions`` payloads
        (``metadata`` only when asked for, as ``include_all_metadata`` does)."""
        data: JsonDict = {
            "type": "message",
            "user": self.user,
            "ts": self.ts,
            "text": self.text,
            "team": team_id,
            "blocks": self.blocks,
        }
        if self.bot_id:
            data["bot_id"] = self.bot_id
        if self.thread_ts:
            data["thread_ts"] = self.thread_ts
        if self.edits:
            data["edited"] = {"user": self.user, "ts": self.ts}
        if with_metadata and self.metadata is not None:
            data["metadata"] = self.metadata
        return data


@dataclass(frozen=True)
class EphemeralMessage:
    """A message only ``user`` sees (``chat.postEphemeral`` or a ``response_url`` reply).

    Ephemeral messages cannot be changed with ``chat.update``; only through the response_url
    of an interaction on them.
    """

    channel: str
    user: str
    ts: str
    text: str
    blocks: list[JsonDict]
    thread_ts: str | None = None
    edits: int = 0


@dataclass(frozen=True)
class Channel:
    """A conversation and its messages.

    Attributes:
        id: ``C...`` channel, ``D...`` DM or ``G...`` group DM.
        name: Channel name (``general``); for DMs the other user's id.
        kind: ``channel``, ``im`` or ``mpim``.
        members: User ids for DMs, group DMs and private channels (public channels do not
            track membership).
        messages: Top-level messages (and broadcast replies), oldest first.
        replies: Parent ts -> its thread replies, oldest first.
    """

    id: str
    name: str
    kind: Literal["channel", "im", "mpim"] = "channel"
    members: tuple[str, ...] = ()
    messages: tuple[Message, ...] = ()
    replies: Mapping[str, tuple[Message, ...]] = field(default_factory=dict)
    #: a private channel: Slack shows it (and its members) only to its members
    is_private: bool = False

    @property
    def last(self) -> Message | None:
        """The newest top-level message, or None."""
        return self.messages[-1] if self.messages else None

    def thread(self, ts: str) -> tuple[Message, ...]:
        """Replies in the thread of the message ``ts``, oldest first."""
        return self.replies.get(ts, ())

    def message(self, ts: str) -> Message | None:
        """The message (top-level or reply) with this ``ts``."""
        for message in self.messages:
            if message.ts == ts:
                return message
        for thread in self.replies.values():
            for message in thread:
                if message.ts == ts:
                    return message
        return None


@dataclass(frozen=True)
class OpenView:
    """A view a user currently has open (a modal in the stack, or their Home tab).

    Attributes:
        user: The user seeing it.
        view: The full view object as Slack returns it (``id``, ``hash``, ``state``, ...).
        position: 0 for the root of a modal stack, 1 and 2 for pushed views; 0 for Home.
    """

    user: str
    view: JsonDict
    position: int = 0

    @property
    def id(self) -> str:
        """The ``V...`` view id."""
        return str(self.view["id"])

    @property
    def hash(self) -> str:
        """The view hash; changes on every update."""
        return str(self.view["hash"])

    @property
    def type(self) -> str:
        """``modal`` or ``home``."""
        return str(self.view["type"])

    @property
    def callback_id(self) -> str:
        """The view's ``callback_id`` (empty string if none)."""
        return str(self.view.get("callback_id") or "")

    @property
    def private_metadata(self) -> str:
        """The view's ``private_metadata`` (empty string if none)."""
        return str(self.view.get("private_metadata") or "")

    @property
    def title(self) -> str:
        """The title text (empty for Home views)."""
        title = self.view.get("title") or {}
        return str(title.get("text", ""))

    @property
    def blocks(self) -> list[JsonDict]:
        """The view's blocks."""
        blocks: list[JsonDict] = self.view.get("blocks", [])
        return blocks

    @property
    def state_values(self) -> dict[str, dict[str, JsonDict]]:
        """What the user has entered so far: ``block_id -> action_id -> value``."""
        values: dict[str, dict[str, JsonDict]] = self.view.get("state", {}).get("values", {})
        return values


@dataclass(frozen=True)
class Call:
    """One request the emulator received.

    Attributes:
        method: Web API method (``chat.postMessage``) or ``response_url``.
        args: Parsed arguments (JSON strings such as ``blocks`` decoded; the token removed).
        at: When it arrived, on the sandbox clock.
        status: HTTP status answered.
        response: The JSON body answered.
    """

    method: str
    args: JsonDict
    at: float
    status: int
    response: JsonDict

    @property
    def ok(self) -> bool:
        """True when the call succeeded."""
        return self.status == 200 and bool(self.response.get("ok"))

    @property
    def error(self) -> str | None:
        """The Slack error code, if the call failed."""
        error = self.response.get("error")
        return str(error) if error is not None else None


@dataclass(frozen=True)
class AppResponse:
    """What the app answered to one request: its HTTP answer, or its Socket Mode ack.

    A Socket Mode ack reads like an HTTP answer: status 200, ``json`` is the ack's ``payload``
    (None for an empty ack) and ``body`` that payload as JSON, so ``response_action`` and
    ``errors`` work the same for both.

    Attributes:
        status: HTTP status (200 for an ack).
        body: Raw body.
        headers: Response headers, names lower-cased (none for an ack).
        json: The body parsed as a JSON object, if it was one.
        problems: What Slack would object to in the answer (e.g. an invalid ``update`` view,
            ``errors`` keyed by something that is not an input block_id). Empty when fine.
    """

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    json: JsonDict | None = None
    problems: tuple[str, ...] = ()

    @classmethod
    def parse(cls, status: int, body: bytes, headers: Mapping[str, str]) -> AppResponse:
        """Build from a raw HTTP answer."""
        parsed: Any = None
        if body.strip().startswith(b"{"):
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
        lowered = {k.lower(): v for k, v in headers.items()}
        return cls(status, body, lowered, parsed if isinstance(parsed, dict) else None)

    @property
    def text(self) -> str:
        """The body as text."""
        return self.body.decode("utf-8", "replace")

    @property
    def response_action(self) -> str | None:
        """``response_action`` of a view_submission answer, if any."""
        action = (self.json or {}).get("response_action")
        return str(action) if action is not None else None

    @property
    def errors(self) -> dict[str, str]:
        """``errors`` of a ``response_action: errors`` answer (block_id -> message)."""
        errors = (self.json or {}).get("errors") or {}
        return {str(k): str(v) for k, v in errors.items()}
