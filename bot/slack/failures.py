"""A listener that fails: logged by kind, and, once Slack has its acknowledgement, told to
the person who acted instead of handed back to Bolt.

Bolt answers a listener's exception with a 500 when the listener has not acknowledged yet,
which Slack shows as an error: right, and left to Bolt. After ``ack()``, Bolt clears the
acknowledgement again; if the HTTP thread had not sent it yet, the request waits out
Slack's 3 seconds and ends as unhandled (Bolt 1.x, ``ThreadListenerRunner``). So a listener
that acknowledges first is wrapped in ``reported``: its failure is logged here and the
person is told through the request's ``response_url`` (a slash command's, or a click's in a
message).
"""

from __future__ import annotations

import functools
import http.client
import logging
import urllib.error
from collections.abc import Callable
from typing import Any, ParamSpec

from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from signoff.bot.errors import CredentialsRefused
from signoff.bot.forms.mrkdwn import escape_mrkdwn

logger = logging.getLogger(__name__)

P = ParamSpec("P")

#: what the person who acted sees when the listener failed after acknowledging (a bug)
FAILED_TEXT = (
    ":warning: Signoff failed while handling that, after it had begun. "
    "Its log has the details (`listener_failed`)."
)


#: what Slack answers for a bot token it no longer takes (revoked, the app uninstalled):
#: every call fails alike until whoever runs Signoff replaces ``SLACK_BOT_TOKEN``
BOT_TOKEN_REFUSED = frozenset(
    {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"}
)
#: what Slack answers for a click whose trigger_id is too old to open a form with
_TRIGGER_SPENT = ("expired_trigger_id", "exchanged_trigger_id")
#: what a dropped or stalled connection raises that urllib does not wrap in URLError
_NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError)


def _method(error: SlackApiError) -> str:
    return str(getattr(error.response, "api_url", "")).rstrip("/").rsplit("/", 1)[-1]


def _unavailable(error: SlackApiError) -> bool:
    """Slack answered, but not as Slack: a 5xx, or a body without its ``error`` code (an
    HTML page from a proxy in front of it)."""
    data = error.response.data
    return error.response.status_code >= 500 or not (isinstance(data, dict) and data.get("error"))


def failed_text(error: Exception) -> str:
    """What the person who acted is told of ``error``: the log entry it names is the one
    ``log_failure`` writes for it, so that an operator finds it."""
    if isinstance(error, SlackApiError):
        if error.response.status_code == 429:
            return (
                ":hourglass: Slack asked Signoff to slow down, so that was not done. "
                "Try again in a few seconds."
            )
        if _unavailable(error):
            return (
                ":warning: Signoff could not finish that: Slack is not answering properly "
                f"right now (HTTP {error.response.status_code}). Try again in a minute; "
                "its log has the details (`slack_unavailable`)."
            )
        code = str(error.response.get("error"))[:100]
        if code in BOT_TOKEN_REFUSED:
            return (
                f":warning: Signoff could not finish that: Slack refuses its bot token "
                f"(`{code}`). Whoever runs Signoff must set a valid `SLACK_BOT_TOKEN`; its "
                "log has the details (`bot_token_refused`)."
            )
        if code in _TRIGGER_SPENT:
            return (
                ":hourglass: That click expired before Signoff could open its form "
                f"(`{code}`): Slack allows 3 seconds. Click again."
            )
        return (
            f":warning: Signoff could not finish that: Slack refused one of its calls "
            f"(`{code}`). Its log has the details (`slack_call_refused`)."
        )
    if isinstance(error, CredentialsRefused):
        settings = " or ".join(f"`{name}`" for name in error.settings)
        return (
            f":warning: Signoff cannot read its runs: {escape_mrkdwn(str(error))}. Whoever "
            f"runs Signoff must set {settings}; its log has the details "
            "(`backend_credentials_refused`)."
        )
    if isinstance(error, _NETWORK_ERRORS):
        return (
            ":warning: Signoff could not finish that: Slack could not be reached. "
            "Its log has the details (`slack_unreachable`)."
        )
    return FAILED_TEXT


def log_failure(error: Exception) -> None:
    """Log a listener's failure by kind: Slack refusing or unreachable is the request's or
    Slack's doing (a warning); anything else is a bug here (an error, with its traceback)."""
    if isinstance(error, SlackApiError):
        method, status = _method(error), error.response.status_code
        if status == 429:
            logger.warning(
                "Slack rate-limited %s",
                method,
                extra={"action": "slack_rate_limited", "method": method},
            )
        elif _unavailable(error):
            logger.warning(
                "Slack answered %s with HTTP %d and no Slack error",
                method,
                status,
                extra={"action": "slack_unavailable", "method": method, "status": status},
            )
        elif (code := str(error.response.get("error"))) in BOT_TOKEN_REFUSED:
            # A setting to mend, as a run's change that Slack refuses for it says.
            logger.error(
                "Slack refuses the token in SLACK_BOT_TOKEN (%s) for %s; set a valid bot "
                "token and restart serve",
                code,
                method,
                extra={"action": "bot_token_refused", "method": method, "error": code},
            )
        else:
            # An expired trigger_id, say: nothing this process can mend.
            logger.warning(
                "Slack refused %s: %s",
                method,
                error.response.get("error"),
                extra={"action": "slack_call_refused", "method": method},
            )
    elif isinstance(error, CredentialsRefused):
        # A setting to mend, said in one line (not a listener's traceback each time).
        logger.warning(
            "%s",
            error,
            extra={"action": "backend_credentials_refused", "settings": ",".join(error.settings)},
        )
    elif isinstance(error, _NETWORK_ERRORS):
        reason = error.reason if isinstance(error, urllib.error.URLError) else error
        logger.warning(
            "Slack could not be reached: %s",
            str(reason) or type(error).__name__,
            extra={"action": "slack_unreachable"},
        )
    else:
        logger.error(
            "listener failed",
            exc_info=(type(error), error, error.__traceback__),
            extra={"action": "listener_failed"},
        )


def reported(listener: Callable[P, None]) -> Callable[P, None]:
    """``listener``, whose failure after its ``ack()`` is logged and told to the person
    who acted (through the request's ``response_url``, when it has one) rather than raised
    to Bolt.

    Bolt passes a listener the arguments it names, by name (it reads the signature through
    the wrapper), so ``ack`` and ``body`` are read from the keyword arguments.

    Example::

        @app.action("show_run")
        @reported
        def show(ack: Ack, body: dict[str, Any]) -> None:
            ack()
            ...
    """

    @functools.wraps(listener)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            listener(*args, **kwargs)
        except Exception as exc:
            ack: Any = kwargs.get("ack")
            if ack is None or ack.response is None:
                raise  # not acknowledged: Bolt answers 500, and the app's handler logs it
            log_failure(exc)
            body: Any = kwargs.get("body")
            url = body.get("response_url") if isinstance(body, dict) else None
            if not isinstance(url, str):
                return  # nowhere to answer: a view's submission, say
            try:
                WebhookClient(url).send(
                    text=failed_text(exc), response_type="ephemeral", replace_original=False
                )
            except Exception as told:  # Slack unreachable too: the log has both
                log_failure(told)

    return run


__all__ = ["BOT_TOKEN_REFUSED", "FAILED_TEXT", "failed_text", "log_failure", "reported"]
