"""What an interaction hands the app to answer with: trigger_ids and response_urls.

Not thread-safe on its own: :class:`~bot.sandbox.workspace.Workspace` calls it under its
lock, with the time from its clock (seconds, monotonic).

Rules kept: a trigger_id opens one view, within ``ttl`` seconds of the interaction
(``expired_trigger_id``, ``exchanged_trigger_id``); a response_url takes 5 posts within 30
minutes (``no_such_url``, ``expired_url``, ``used_url``, each with HTTP 404).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from signoff.bot.sandbox.errors import ApiFailure
from signoff.bot.sandbox.identifiers import IdSource

__all__ = ["ResponseUrl", "TriggerStore"]

_RESPONSE_URL_USES = 5
_RESPONSE_URL_TTL = 30 * 60.0


@dataclass
class _Trigger:
    user: str
    issued_at: float
    used: bool = False


@dataclass
class ResponseUrl:
    """Where a ``response_url`` posts: the user, channel and (for clicks) the source message."""

    id: str
    user: str
    channel: str
    issued_at: float
    message_ts: str | None = None
    ephemeral: bool = False
    uses: int = 0


class TriggerStore:
    """Every trigger_id and response_url issued, and how far each was used."""

    def __init__(self, ids: IdSource) -> None:
        self._ids = ids
        self._triggers: dict[str, _Trigger] = {}
        self._response_urls: dict[str, ResponseUrl] = {}

    def issue_trigger(self, user: str, now: float) -> str:
        """A new trigger_id for an interaction by ``user`` at ``now``."""
        trigger_id = self._ids.trigger_id()
        self._triggers[trigger_id] = _Trigger(user, now)
        return trigger_id

    def exchange_trigger(self, trigger_id: str | None, now: float, ttl: float) -> str:
        """Use a trigger_id once, no later than ``ttl`` seconds after it was issued, and
        return its user.

        Raises:
            ApiFailure: ``expired_trigger_id`` (unknown or too old) or ``exchanged_trigger_id``.
        """
        trigger = self._triggers.get(trigger_id or "")
        if trigger is None or now - trigger.issued_at > ttl:
            raise ApiFailure("expired_trigger_id")
        if trigger.used:
            raise ApiFailure("exchanged_trigger_id")
        trigger.used = True
        return trigger.user

    def issue_response_url(
        self, user: str, channel: str, message_ts: str | None, ephemeral: bool, now: float
    ) -> str:
        """Register a response_url issued at ``now`` and return its id."""
        url_id = self._ids.response_url_id()
        self._response_urls[url_id] = ResponseUrl(url_id, user, channel, now, message_ts, ephemeral)
        return url_id

    def use_response_url(self, url_id: str, now: float) -> ResponseUrl:
        """Count one use of a response_url at ``now``; a copy of it after that use.

        Raises:
            ApiFailure: ``no_such_url``, ``expired_url`` or ``used_url`` (HTTP 404).
        """
        url = self._response_urls.get(url_id)
        if url is None:
            raise ApiFailure("no_such_url", status=404)
        if now - url.issued_at > _RESPONSE_URL_TTL:
            raise ApiFailure("expired_url", status=404)
        if url.uses >= _RESPONSE_URL_USES:
            raise ApiFailure("used_url", status=404)
        url.uses += 1
        return replace(url)
