"""What a failure to tell Slack of a run's change means for that change (``SlackNotifier``).

Slack's pace (429, after the client's own retries) defers the change for as long as
``Retry-After`` asks; Slack down or unreachable hands it again later; a refusal for good
(what a message holds, a person Slack cannot reach, a run whose rows were edited by hand)
skips it with one log line, so it does not hold up every later change of every run.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import urllib.error
from collections.abc import Iterator

from slack_sdk.errors import SlackApiError

from signoff.bot.backends import Event
from signoff.bot.errors import (
    BotTokenRefused,
    ChannelRefused,
    RunUnreadable,
    SlackRateLimited,
    SlackUnavailable,
)
from signoff.bot.slack.direct import PERSON_UNREACHABLE
from signoff.bot.slack.failures import BOT_TOKEN_REFUSED
from signoff.bot.slack.posting import (
    MESSAGE_REFUSED,
    ChannelUnavailable,
    MessageRefused,
    refusal_details,
)

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def judged(event: Event, default_channel: str) -> Iterator[None]:
    """Handle ``event``'s Slack calls in the block; what their failure means for it."""
    try:
        yield
    except MessageRefused as exc:
        _skipped(event, f"even as plain text ({exc.error})")
    except ChannelUnavailable as exc:
        if exc.channel != default_channel:
            raise
        # The configuration is wrong, and an invite mends it while serve runs: one line
        # naming the setting at each try, not a traceback; the change is handed again.
        refused = ChannelRefused(event.run_id, exc.channel, exc.error)
        logger.error(
            "%s",
            refused,
            extra={
                "action": "default_channel_unavailable",
                "run_id": event.run_id,
                "channel": exc.channel,
                "error": exc.error,
            },
        )
        raise refused from exc
    except RunUnreadable as exc:
        # Its rows were edited by hand: handed again, it would fail the same way for
        # ever, and hold up every later change of every run behind it.
        logger.error(
            "%s; what Signoff posts for this change of it is skipped, and later ones go on",
            exc,
            extra={
                "action": "slack_change_skipped",
                "run_id": event.run_id,
                "event": event.kind.value,
            },
        )
    except SlackApiError as exc:
        status = exc.response.status_code
        if status == 429:
            # The client has waited and tried again already: Slack's own pace, not a
            # fault.
            raise _rate_limited(event.run_id, exc) from exc
        method = str(exc.response.api_url).rstrip("/").rsplit("/", 1)[-1]
        if status >= 500:
            raise SlackUnavailable(event.run_id, f"HTTP {status} on {method}") from exc
        error = str(exc.response.get("error"))
        if error in BOT_TOKEN_REFUSED:
            # A setting to mend, not a fault of this change: one line naming the variable
            # at each try, not a traceback; the change is handed again.
            token_refused = BotTokenRefused(event.run_id, error)
            logger.error(
                "%s",
                token_refused,
                extra={"action": "bot_token_refused", "run_id": event.run_id, "error": error},
            )
            raise token_refused from exc
        if error not in MESSAGE_REFUSED and error not in PERSON_UNREACHABLE:
            raise  # Slack down, say: the change is handed again later
        # Refused for good: handed again, it would hold up every later change of
        # every run behind it.
        details = refusal_details(exc)
        _skipped(event, f"in {method} ({error}{f': {details}' if details else ''})")
    except (
        urllib.error.URLError,
        http.client.HTTPException,
        ConnectionError,
        TimeoutError,
    ) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise SlackUnavailable(event.run_id, str(reason) or type(exc).__name__) from exc


def _skipped(event: Event, why: str) -> None:
    logger.error(
        "Slack refused what Signoff posts for a change of run %s %s; the change is "
        "skipped, and later ones go on",
        event.run_id,
        why,
        extra={
            "action": "slack_change_skipped",
            "run_id": event.run_id,
            "event": event.kind.value,
        },
    )


def _rate_limited(run_id: str, exc: SlackApiError) -> SlackRateLimited:
    """Slack's 429 as the change's deferral, for as long as its ``Retry-After`` asks."""
    headers = {str(k).lower(): v for k, v in (exc.response.headers or {}).items()}
    given = headers.get("retry-after", "1")
    try:
        seconds = float(given[0] if isinstance(given, list) else given)
    except (TypeError, ValueError):
        seconds = 1.0
    method = str(exc.response.api_url).rstrip("/").rsplit("/", 1)[-1]
    return SlackRateLimited(run_id, min(max(seconds, 1.0), 300.0), method)
