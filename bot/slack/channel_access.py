"""Whether a person may see a run whose messages are in a private channel.

The engine's view rule lets anyone view a run of a flow that names nobody; but such a run's
prompt, posted in a private channel, is for that channel's members only. So, on top of the
view rule: a run of an open flow whose messages are in a private channel is shown only to
the channel's members and to whoever started the run. (A flow that names people is judged
by the engine's rule alone: those it lets in, it lets in by name.)

Privacy comes from ``conversations.info`` and members from ``conversations.members``
(paged), both cached per channel for ``TTL_SECONDS`` in a bounded cache, so that a list
of runs asks Slack once per channel, not once per run. When Slack will not say, the run
is not shown (``ChannelUnreadable``): never shown by default.
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
#: an id no Slack user has: whoever the view rule lets in as this, it lets in as anyone
_ANYONE = Actor("signoff.anyone")


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
        #: channel -> (read at, None when public, else its members)
        self._seen: OrderedDict[str, tuple[float, frozenset[str] | None]] = OrderedDict()
        self._lock = threading.Lock()

    def channel_of(self, run: Run) -> str:
        """Where the run's messages are: its thread's channel once posted, else where they
        will go (the channel it was started in, or the default one)."""
        thread = self.backend.get_record(run.id, ids.THREAD)
        if isinstance(thread, dict) and thread.get("channel"):
            return str(thread["channel"])
        return run.tags.get("slack.channel") or self.default_channel

    def hidden_in(self, client: WebClient, actor: Actor, run: Run) -> str | None:
        """The private channel that keeps ``run`` from ``actor`` (who the view rule lets
        view it), or None. Raises ``ChannelUnreadable`` when Slack will not say."""
        if actor.id == run.started_by or not self.backend.visible(_ANYONE, [run]):
            return None  # started it, or let in by name: the engine's rule decides
        channel = self.channel_of(run)
        members = self._members(client, channel)
        return channel if members is not None and actor.id not in members else None

    def visible(self, client: WebClient, actor: Actor, runs: Sequence[Run]) -> list[Run]:
        """Of ``runs`` (which the view rule lets ``actor`` view), those no private channel
        keeps from them; one Slack doesn't answer for is left out."""
        open_ids = {r.id for r in self.backend.visible(_ANYONE, runs)}
        kept = []
        for run in runs:
            if run.id in open_ids and actor.id != run.started_by:
                try:
                    members = self._members(client, self.channel_of(run))
                except ChannelUnreadable:
                    continue
                if members is not None and actor.id not in members:
                    continue
            kept.append(run)
        return kept

    def _members(self, client: WebClient, channel: str) -> frozenset[str] | None:
        """The private ``channel``'s members; None when it is public."""
        now = self.clock()
        with self._lock:
            cached = self._seen.get(channel)
            if cached is not None and now - cached[0] < self.ttl:
                return cached[1]
        try:
            info = client.conversations_info(channel=channel)
            members: frozenset[str] | None = None
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
            self._unread(channel, error)
        except OSError as exc:  # unreachable past the client's retries; a timeout
            self._unread(channel, str(exc) or type(exc).__name__)
        with self._lock:
            self._seen[channel] = (now, members)
            self._seen.move_to_end(channel)
            while len(self._seen) > MAX_CHANNELS:
                self._seen.popitem(last=False)
        return members

    @staticmethod
    def _unread(channel: str, error: str) -> None:
        logger.warning(
            "Slack would not say who may see a channel's runs; they are not shown",
            extra={"action": "channel_members_unread", "channel": channel, "error": error},
        )
        raise ChannelUnreadable(channel, error)
