"""Whether a person may see a run whose messages are in a private channel.

The engine's view rule lets anyone view a run of a flow that names nobody; but such a run's
prompt, posted in a private channel, is for that channel's members only. So, on top of the
view rule: a run the backend says is open to all (``Backend.open_to_all``) whose messages
are in a private channel is shown only to the channel's members and to whoever started the
run. (A flow that names people is judged by the view rule alone: those it lets in, it lets
in by name.)

Where a run's messages are is its thread's channel once posted, else where they will go. A
page of runs reads those in one backend call (``Backend.get_records``); privacy comes from
``conversations.info`` and members from ``conversations.members`` (paged), both cached per
channel for ``TTL_SECONDS`` in a bounded cache, so that a list of runs asks Slack once per
channel, not once per run.

When Slack will not say, the run is not shown (``ChannelUnreadable``), with one exception:
an app installed before the manifest asked for ``channels:read`` and ``groups:read`` gets
``missing_scope`` every time, which would hide every such run from all but its starter; it
is judged by the view rule alone instead, as before, and the log says once which scopes to
add (``channel_scopes_missing``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from signoff.bot.backends import Actor, Backend, Run
from signoff.bot.errors import ChannelUnreadable
from signoff.bot.slack import ids

logger = logging.getLogger(__name__)

#: how long a channel's privacy and members are trusted
TTL_SECONDS = 60.0
#: channels kept at most (the oldest read goes first)
MAX_CHANNELS = 256
#: the scopes conversations.info and conversations.members need (public, private channels)
SCOPES = ("channels:read", "groups:read")
#: Slack's answers for a token without those scopes: the install predates them
_UNSCOPED = frozenset({"missing_scope", "not_allowed_token_type"})


class ChannelAccess:
    """Private channels' members, as Slack says, cached briefly."""

    def __init__(
        self,
        backend: Backend,
        default_channel: str,
        *,
        ttl: float = TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backend = backend
        self.default_channel = default_channel
        self.ttl = ttl
        self.clock = clock
        #: channel -> (read at, None when public or unknowable, else its members)
        self._seen: OrderedDict[str, tuple[float, frozenset[str] | None]] = OrderedDict()
        self._lock = threading.Lock()
        #: whether the missing scopes were logged (once: the app has one ChannelAccess)
        self._warned = False

    def _channel(self, run: Run, thread: object) -> str:
        """Where the run's messages are: its thread's channel once posted, else where they
        will go (the channel it was started in, or the default one)."""
        if isinstance(thread, dict) and thread.get("channel"):
            return str(thread["channel"])
        return run.tags.get("slack.channel") or self.default_channel

    def hidden_in(self, client: WebClient, actor: Actor, run: Run) -> str | None:
        """The private channel that keeps ``run`` from ``actor`` (who the view rule lets
        view it), or None. Raises ``ChannelUnreadable`` when Slack will not say."""
        if actor.id == run.started_by or not self.backend.open_to_all([run]):
            return None  # started it, or let in by name: the view rule decides
        channel = self._channel(run, self.backend.get_record(run.id, ids.THREAD))
        members = self._members(client, channel)
        return channel if members is not None and actor.id not in members else None

    def visible(self, client: WebClient, actor: Actor, runs: Sequence[Run]) -> list[Run]:
        """Of ``runs`` (which the view rule lets ``actor`` view), those no private channel
        keeps from them; one Slack doesn't answer for is left out. Two backend calls for
        the page at most, and Slack's once per channel."""
        open_ids = {r.id for r in self.backend.open_to_all(runs)}
        judged = [r for r in runs if r.id in open_ids and actor.id != r.started_by]
        if not judged:
            return list(runs)
        threads = self.backend.get_records([r.id for r in judged], ids.THREAD)
        where = {r.id: self._channel(r, threads.get(r.id)) for r in judged}
        shut: set[str] = set()
        for channel in dict.fromkeys(where.values()):
            try:
                members = self._members(client, channel)
            except ChannelUnreadable:
                members = frozenset()  # not shown: it may be for some people only
            if members is not None and actor.id not in members:
                shut.add(channel)
        return [r for r in runs if where.get(r.id) not in shut]

    def _members(self, client: WebClient, channel: str) -> frozenset[str] | None:
        """The private ``channel``'s members; None when it is public, or when the app may
        not ask (then the view rule alone decides)."""
        now = self.clock()
        with self._lock:
            cached = self._seen.get(channel)
            if cached is not None and now - cached[0] < self.ttl:
                return cached[1]
        members: frozenset[str] | None = None
        try:
            info = client.conversations_info(channel=channel)
            if (info.get("channel") or {}).get("is_private"):
                found: set[str] = set()
                cursor = None
                while True:
                    page = client.conversations_members(channel=channel, cursor=cursor, limit=1000)
                    found.update(page.get("members") or [])
                    cursor = (page.get("response_metadata") or {}).get("next_cursor")
                    if not cursor:
                        break
                members = frozenset(found)
        except SlackApiError as exc:
            error = str(exc.response.get("error") or exc)
            if error not in _UNSCOPED:
                self._unread(channel, error)
            self._unscoped(error, exc.response.get("needed"))
        except OSError as exc:  # unreachable past the client's retries; a timeout
            self._unread(channel, str(exc) or type(exc).__name__)
        with self._lock:
            self._seen[channel] = (now, members)
            self._seen.move_to_end(channel)
            while len(self._seen) > MAX_CHANNELS:
                self._seen.popitem(last=False)
        return members

    def _unscoped(self, error: str, needed: object) -> None:
        """Say once that the app lacks the scopes: it is not a passing failure, and a line
        per channel a minute would bury the rest of the log."""
        with self._lock:
            if self._warned:
                return
            self._warned = True
        logger.warning(
            "Slack app lacks the scopes channels:read and groups:read (the manifest asks "
            "them): runs of open flows in private channels are shown to anyone the view rule "
            "lets in; add the scopes (reinstall the app from manifest.yml)",
            extra={
                "action": "channel_scopes_missing",
                "scopes": list(SCOPES),
                "error": error,
                "needed": needed,
            },
        )

    @staticmethod
    def _unread(channel: str, error: str) -> None:
        logger.warning(
            "Slack would not say who may see a channel's runs; they are not shown",
            extra={"action": "channel_members_unread", "channel": channel, "error": error},
        )
        raise ChannelUnreadable(channel, error)
