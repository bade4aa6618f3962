"""Slack posts made effectively once, and updates of messages that may be gone.

A post's intent is claimed in run metadata (``slack.posting.<post id>``) before the call,
and the message carries its id in Slack message ``metadata``. A post whose intent was
claimed already may have reached Slack without its answer reaching us (the process died,
the answer came after the client's timeout, another replica was cut off mid-call): the
thread (or channel) is looked up first, and a message found there is adopted instead of
posted again. One that another process claimed within the client's timeout and that is not
there yet may be on its way (two replicas handed the same change at once, as on Prefect,
where no lease keeps replicas apart): ``PostInFlight``, and the change is handed again
later. Right before each post the consumer's lease is checked (``fence``), so a replica
that lost it gives its batch up instead; a post its caller has claimed for itself (a
reminder) is made by whichever replica claimed it.

Slack may refuse a message for what it holds (``MESSAGE_REFUSED``: its blocks, its
length): the same message would be refused for ever, and would hold up every later event
of every run. A post is made again as plain text saying so (``slack_message_refused``), and
one refused even then raises :class:`MessageRefused`; an update is made as plain text, or
skipped.

Someone may delete what was posted. An update of a deleted message, or of one Slack no
longer lets the bot edit, is skipped (``message_gone``); a reply into the thread of a deleted message raises
:class:`ThreadGone`, for the caller to decide where the reply goes instead. A conversation
Slack refuses the bot for good (it is not a member, the channel is archived or gone, a
direct message between two people) raises :class:`ChannelUnavailable` the same way: trying
again would hold up every later event of every run behind this one.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from signoff.bot.backends import Backend
from signoff.bot.errors import PostInFlight
from signoff.bot.slack import ids

__all__ = ["MESSAGE_REFUSED", "ChannelUnavailable", "MessageRefused", "Poster", "ThreadGone"]

logger = logging.getLogger(__name__)

#: what Slack answers for a message (or its conversation) that is no longer there, or that
#: the bot may no longer edit
_MESSAGE_GONE = (
    "message_not_found",
    "channel_not_found",
    "cant_update_message",
    "edit_window_closed",
)
#: what Slack answers when it refuses a message for what it holds: sent again as it is,
#: it is refused again
MESSAGE_REFUSED = frozenset(
    {
        "invalid_blocks",
        "invalid_blocks_format",
        "msg_too_long",
        "msg_blocks_too_long",
        "no_text",
        "too_many_attachments",
        "invalid_attachments",
        "invalid_metadata_format",
        "invalid_metadata_schema",
        "metadata_too_large",
        "metadata_must_be_sent_from_app",
        "markdown_text_conflict",
        "invalid_arguments",
    }
)
#: how much of a refused message's text its plain fallback keeps
_FALLBACK_CHARS = 2_800
#: what Slack answers when the bot may not post in a conversation, which trying again does
#: not change (only someone inviting the app, or unarchiving the channel)
CANNOT_POST = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "restricted_action",
        "restricted_action_read_only_channel",
        "restricted_action_thread_only_channel",
        "restricted_action_non_threadable_channel",
        "team_access_not_granted",
    }
)


class ChannelUnavailable(Exception):
    """Slack refuses the bot a conversation for good (``CANNOT_POST``)."""

    def __init__(self, channel: str, error: str) -> None:
        super().__init__(f"cannot post in {channel} ({error})")
        self.channel = channel
        self.error = error


class MessageRefused(Exception):
    """Slack refused a post for what it holds (``MESSAGE_REFUSED``), even as plain text."""

    def __init__(self, run_id: str, channel: str, error: str) -> None:
        super().__init__(f"Slack refused a message about run {run_id} in {channel} ({error})")
        self.run_id = run_id
        self.channel = channel
        self.error = error


def refusal_details(exc: SlackApiError) -> str:
    """Slack's reasons for refusing a call (``response_metadata.messages``), on one line."""
    data = exc.response.data
    meta = data.get("response_metadata") if isinstance(data, dict) else None
    said = meta.get("messages") if isinstance(meta, dict) else None
    return "; ".join(str(m)[:200] for m in said[:3]) if isinstance(said, list) else ""


def plain_fallback(text: str, error: str, run_id: str | None = None) -> str:
    """A message's text, cut to fit, saying Slack refused it as written (and, given the
    run, where to see it)."""
    kept = text if len(text) <= _FALLBACK_CHARS else text[: _FALLBACK_CHARS - 1] + "…"
    where = f"; `/runs show {run_id[:8]}` shows the run" if run_id else ""
    return f"{kept}\n:warning: Slack refused this message as Signoff wrote it (`{error}`){where}."


class ThreadGone(Exception):
    """The message a reply was for is gone from Slack (deleted): ``thread_not_found``."""

    def __init__(self, channel: str, thread_ts: str) -> None:
        super().__init__(f"thread {thread_ts} in {channel} is gone (thread_not_found)")
        self.channel = channel
        self.thread_ts = thread_ts


class Poster:
    """Posts and updates for one backend's runs."""

    #: the ``event_type`` of the message metadata that names each post
    EVENT_TYPE = "signoff_post"
    #: how far back a post is looked for, before its intent was claimed (clock skew)
    LOOKBACK_SECONDS = 120

    #: how long past the client's timeout another process's claim counts as in flight
    IN_FLIGHT_MARGIN_SECONDS = 5.0

    def __init__(self, backend: Backend, client: WebClient, fence: Callable[[], None]) -> None:
        self.backend = backend
        self.client = client
        #: raises (``LeaseLost``) when this process may no longer post; checked per post
        self.fence = fence
        #: marks the intents this poster claimed, told apart from other processes'
        self.token = uuid.uuid4().hex[:12]

    def update(self, *, channel: str, ts: str, **message: Any) -> None:
        """Update a posted message. One that is gone from Slack (deleted by someone) stays
        gone: the run's other messages are still updated, rather than retried for ever."""
        try:
            self.client.chat_update(channel=channel, ts=ts, **message)
        except SlackApiError as exc:
            error = str(exc.response.get("error"))
            if error in MESSAGE_REFUSED:
                self._update_plainly(channel, ts, str(message.get("text") or ""), exc)
                return
            if error not in _MESSAGE_GONE and error not in CANNOT_POST:
                raise
            logger.warning(
                "posted message is gone or out of reach; not updated",
                extra={"action": "message_gone", "channel": channel, "ts": ts, "error": error},
            )

    def _update_plainly(self, channel: str, ts: str, text: str, refused: SlackApiError) -> None:
        """Update a message Slack refused as written with its text alone (no buttons left
        on it), or leave it as it is if that is refused too."""
        error = str(refused.response.get("error"))
        logger.error(
            "Slack refused an update of a message as written (%s%s); updating it as plain text",
            error,
            f": {details}" if (details := refusal_details(refused)) else "",
            extra={"action": "slack_message_refused", "channel": channel, "ts": ts},
        )
        fallback = plain_fallback(text, error)
        block = {"type": "section", "text": {"type": "mrkdwn", "text": fallback}}
        try:
            self.client.chat_update(channel=channel, ts=ts, text=fallback, blocks=[block])
        except SlackApiError as exc:
            again = str(exc.response.get("error"))
            if again not in MESSAGE_REFUSED and again not in _MESSAGE_GONE:
                raise
            logger.error(
                "Slack refused the plain update too (%s); the message is left as it was",
                again,
                extra={"action": "slack_message_refused", "channel": channel, "ts": ts},
            )

    def post(
        self,
        run_id: str,
        post_id: str,
        channel: str,
        text: str,
        blocks: list[Any] | None = None,
        thread_ts: str | None = None,
        *,
        fenced: bool = True,
    ) -> dict[str, str]:
        """Post a message once, whatever happened to earlier attempts; its channel and ts.

        ``fenced=False``: the caller claimed this post for itself already (a reminder), so
        any replica may make it, not only the one holding the consumer's lease.

        Raises:
            ThreadGone: ``thread_ts`` names a message Slack no longer has.
            ChannelUnavailable: Slack refuses the bot ``channel`` for good.
            MessageRefused: Slack refuses the message, even as plain text.
        """
        marker = f"{run_id}:{post_id}"
        intent = {"at": time.time(), "channel": channel, "thread_ts": thread_ts, "by": self.token}
        key = ids.posting_key(post_id)
        if not self.backend.add_record(run_id, key, intent):
            earlier = self.backend.get_record(run_id, key)
            found = self._find(marker, earlier) if isinstance(earlier, dict) else None
            if found is not None:
                logger.info(
                    "earlier post adopted",
                    extra={"action": "post_reconciled", "run_id": run_id, "post": post_id},
                )
                return found
            if isinstance(earlier, dict) and self._in_flight(earlier):
                raise PostInFlight(run_id, post_id)
            if isinstance(earlier, dict) and (
                earlier.get("channel"),
                earlier.get("thread_ts"),
            ) != (channel, thread_ts):
                # Going elsewhere now (the thread it was for is gone): a later attempt must
                # look for it where it goes.
                self.backend.set_record(run_id, key, intent)
        if fenced:
            self.fence()
        metadata = {"event_type": self.EVENT_TYPE, "event_payload": {"post": marker}}
        try:
            try:
                reply = self.client.chat_postMessage(
                    channel=channel,
                    text=text,
                    blocks=blocks,
                    thread_ts=thread_ts,
                    metadata=metadata,
                )
            except SlackApiError as exc:
                error = str(exc.response.get("error"))
                if error not in MESSAGE_REFUSED:
                    raise
                logger.error(
                    "Slack refused a message as written (%s%s); posting it as plain text",
                    error,
                    f": {details}" if (details := refusal_details(exc)) else "",
                    extra={
                        "action": "slack_message_refused",
                        "run_id": run_id,
                        "post": post_id,
                        "channel": channel,
                    },
                )
                reply = self.client.chat_postMessage(
                    channel=channel,
                    text=plain_fallback(text, error, run_id),
                    thread_ts=thread_ts,
                    metadata=metadata,
                )
        except SlackApiError as exc:
            error = str(exc.response.get("error"))
            if thread_ts and error == "thread_not_found":
                raise ThreadGone(channel, thread_ts) from exc
            if error in CANNOT_POST:
                raise ChannelUnavailable(channel, error) from exc
            if error in MESSAGE_REFUSED:
                raise MessageRefused(run_id, channel, error) from exc
            raise
        return {"channel": str(reply["channel"]), "ts": str(reply["ts"])}

    def _in_flight(self, intent: dict[str, Any]) -> bool:
        """Whether ``intent`` is another process's, claimed recently enough that its call
        may not have reached Slack yet (within the client's timeout, and a margin)."""
        by = intent.get("by")
        if by is None or by == self.token:
            return False  # this poster's own earlier attempt, or an intent from before marks
        try:
            age = time.time() - float(intent.get("at") or 0)
        except (TypeError, ValueError):
            return False
        return age < float(self.client.timeout) + self.IN_FLIGHT_MARGIN_SECONDS

    def _find(self, marker: str, intent: dict[str, Any]) -> dict[str, str] | None:
        """The message an earlier attempt posted, if Slack has it."""
        channel, thread_ts = str(intent["channel"]), intent.get("thread_ts")
        try:
            if thread_ts:
                found = self.client.conversations_replies(
                    channel=channel, ts=str(thread_ts), include_all_metadata=True, limit=1000
                )
            else:
                oldest = float(intent.get("at") or 0) - self.LOOKBACK_SECONDS
                found = self.client.conversations_history(
                    channel=channel, oldest=f"{oldest:.6f}", include_all_metadata=True, limit=1000
                )
        except SlackApiError as exc:
            error = exc.response.get("error")
            if error == "thread_not_found" or error in CANNOT_POST:
                # The thread is gone, with anything posted in it; or the conversation is
                # out of the bot's reach, and nothing it posted there can be found.
                return None
            raise
        for message in found.get("messages") or []:
            payload = (message.get("metadata") or {}).get("event_payload") or {}
            if payload.get("post") == marker:
                return {"channel": str(found.get("channel") or channel), "ts": str(message["ts"])}
        return None
