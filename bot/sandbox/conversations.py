"""Channels, DMs and group DMs, their messages and threads, and ephemeral messages.

Not thread-safe on its own: :class:`~bot.sandbox.workspace.Workspace` calls it under its
lock, after resolving people (who may open a DM, whose DM a user id names).

Rules kept: replies to a reply join the parent's thread (``thread_not_found`` for an unknown
parent); an edit keeps the message's ts and counts the edits; a DM with one user, or a group
DM with several, is opened once and then found again; unknown conversations are
``channel_not_found`` and unknown messages ``message_not_found``. Block and action ids that
the app did not give are filled in, as Slack does (:func:`~bot.sandbox.identifiers.fill_ids`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Literal

from signoff.bot.sandbox.errors import ApiFailure
from signoff.bot.sandbox.identifiers import IdSource, fill_ids
from signoff.bot.sandbox.records import Channel, EphemeralMessage, JsonDict, Message

__all__ = ["ConversationStore"]


@dataclass
class _Conversation:
    id: str
    name: str
    kind: Literal["channel", "im", "mpim"]
    members: tuple[str, ...] = ()
    messages: list[Message] = field(default_factory=list)
    is_private: bool = False


class ConversationStore:
    """Every conversation with its messages, and every user's ephemeral messages."""

    def __init__(self, ids: IdSource) -> None:
        self._ids = ids
        self._conversations: dict[str, _Conversation] = {}
        self._ephemeral: dict[str, list[EphemeralMessage]] = {}

    # -- conversations ----------------------------------------------------------------------

    def add_channel(
        self,
        channel_id: str,
        name: str | None = None,
        *,
        private: bool = False,
        members: tuple[str, ...] = (),
    ) -> None:
        """Create a channel, unless it exists; a private one with these members."""
        if channel_id not in self._conversations:
            self._conversations[channel_id] = _Conversation(
                channel_id,
                name or channel_id.lower(),
                "channel",
                members if private else (),
                is_private=private,
            )

    def open(self, members: tuple[str, ...]) -> str:
        """The DM (one member) or group DM (several) with these sorted member ids, created
        if needed."""
        for conversation in self._conversations.values():
            if conversation.kind != "channel" and conversation.members == members:
                return conversation.id
        if len(members) == 1:
            conversation_id = "D" + members[0][1:]
            if conversation_id in self._conversations:
                conversation_id = self._ids.prefixed("D")
            kind: Literal["im", "mpim"] = "im"
        else:
            conversation_id, kind = self._ids.prefixed("G"), "mpim"
        self._conversations[conversation_id] = _Conversation(
            conversation_id, ",".join(members), kind, members
        )
        return conversation_id

    def find(self, ref: str) -> str | None:
        """The id of the conversation ``ref`` names by id, ``#name`` or name, or None."""
        name = ref.removeprefix("#")
        if ref in self._conversations:
            return ref
        for conversation in self._conversations.values():
            if conversation.kind == "channel" and conversation.name == name:
                return conversation.id
        return None

    def channel_names(self) -> dict[str, str]:
        """Channel ids to names (DMs and group DMs left out)."""
        return {c.id: c.name for c in self._conversations.values() if c.kind == "channel"}

    # -- messages ---------------------------------------------------------------------------

    def post(
        self,
        channel_id: str,
        text: str,
        blocks: list[JsonDict],
        *,
        thread_ts: str | None,
        reply_broadcast: bool,
        user: str,
        bot_id: str | None,
        metadata: JsonDict | None,
    ) -> Message:
        """Store a new message by ``user`` (a thread reply when ``thread_ts`` is given)."""
        conversation = self._conversations.get(channel_id)
        if conversation is None:
            raise ApiFailure("channel_not_found")
        if thread_ts is not None:
            parent = self._find(conversation, thread_ts)
            if parent is None:
                raise ApiFailure("thread_not_found")
            thread_ts = parent.thread_ts or parent.ts  # replies to replies join the parent
            self._store(conversation, replace(parent, thread_ts=thread_ts))
        message = Message(
            channel=channel_id,
            ts=self._ids.ts(),
            text=text,
            blocks=fill_ids(blocks),
            user=user,
            bot_id=bot_id,
            thread_ts=thread_ts,
            reply_broadcast=reply_broadcast,
            metadata=metadata,
        )
        conversation.messages.append(message)
        return copy.deepcopy(message)

    def update(
        self, channel_id: str, ts: str, text: str | None, blocks: list[JsonDict] | None
    ) -> Message:
        """Change a message; omitted text or blocks stay as they were."""
        conversation = self._conversations.get(channel_id)
        old = self._find(conversation, ts) if conversation else None
        if conversation is None or old is None:
            raise ApiFailure("message_not_found")
        new = replace(
            old,
            text=old.text if text is None else text,
            blocks=old.blocks if blocks is None else fill_ids(blocks),
            edits=old.edits + 1,
        )
        self._store(conversation, new)
        return copy.deepcopy(new)

    def delete(self, channel_id: str, ts: str) -> None:
        """Remove a message."""
        conversation = self._conversations.get(channel_id)
        if conversation is None or self._find(conversation, ts) is None:
            raise ApiFailure("message_not_found")
        conversation.messages = [m for m in conversation.messages if m.ts != ts]

    @staticmethod
    def _find(conversation: _Conversation | None, ts: str) -> Message | None:
        if conversation is None:
            return None
        return next((m for m in conversation.messages if m.ts == ts), None)

    @staticmethod
    def _store(conversation: _Conversation, message: Message) -> None:
        conversation.messages = [
            message if m.ts == message.ts else m for m in conversation.messages
        ]

    # -- ephemeral messages -----------------------------------------------------------------

    def post_ephemeral(
        self, channel_id: str, user: str, text: str, blocks: list[JsonDict], thread_ts: str | None
    ) -> EphemeralMessage:
        """Show a message to one user only."""
        message = EphemeralMessage(
            channel_id, user, self._ids.ts(), text, fill_ids(blocks), thread_ts
        )
        self._ephemeral.setdefault(user, []).append(message)
        return message

    def change_ephemeral(
        self, user: str, ts: str, text: str | None, blocks: list[JsonDict] | None
    ) -> None:
        """Replace (or, with ``text`` and ``blocks`` None, delete) an ephemeral message."""
        messages = self._ephemeral.get(user, [])
        if text is None and blocks is None:
            self._ephemeral[user] = [m for m in messages if m.ts != ts]
            return
        self._ephemeral[user] = [
            replace(m, text=text or "", blocks=fill_ids(blocks or []), edits=m.edits + 1)
            if m.ts == ts
            else m
            for m in messages
        ]

    # -- snapshots --------------------------------------------------------------------------

    def snapshot(self, ref: str, user_id: str) -> Channel:
        """A copy of the conversation ``ref`` names by id or ``#name``/name, or of the DM with
        ``user_id``; an empty Channel when there is none."""
        conversation = next(
            (
                c
                for c in self._conversations.values()
                if ref == c.id
                or (c.kind == "channel" and c.name == ref.removeprefix("#"))
                or (c.kind == "im" and c.members == (user_id,))
            ),
            None,
        )
        if conversation is None:
            return Channel(ref, ref.removeprefix("#"))
        replies: dict[str, list[Message]] = {}
        for message in conversation.messages:
            if message.is_reply and message.thread_ts:
                replies.setdefault(message.thread_ts, []).append(message)
        return copy.deepcopy(
            Channel(
                conversation.id,
                conversation.name,
                conversation.kind,
                conversation.members,
                tuple(m for m in conversation.messages if not m.is_reply or m.reply_broadcast),
                {ts: tuple(thread) for ts, thread in replies.items()},
                conversation.is_private,
            )
        )

    def ephemeral(self, user_id: str) -> list[EphemeralMessage]:
        """A copy of the ephemeral messages ``user_id`` sees, oldest first."""
        return copy.deepcopy(self._ephemeral.get(user_id, []))
