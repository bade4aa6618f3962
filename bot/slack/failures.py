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
import logging
import urllib.error
from collections.abc import Callable
from typing import Any, ParamSpec

from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

logger = logging.getLogger(__name__)

P = ParamSpec("P")

#: what the person who acted sees when the listener failed after acknowledging (a bug)
FAILED_TEXT = (
    ":warning: Signoff failed while handling that, after it had begun. "
    "Its log has the details (`listener_failed`)."
)


def failed_text(error: Exception) -> str:
    """What the person who acted is told of ``error``: the log entry it names is the one
    ``log_failure`` writes for it, so that an operator finds it."""
    if isinstance(error, SlackApiError):
        code = str(error.response.get("error"))[:100]
        return (
            f":warning: Signoff could not finish that: Slack refused one of its calls "
            f"(`{code}`). Its log has the details (`slack_call_refused`)."
        )
    if isinstance(error, urllib.error.URLError):
        return (
            ":warning: Signoff could not finish that: Slack could not be reached. "
            "Its log has the details (`slack_unreachable`)."
        )
    return FAILED_TEXT


def log_failure(error: Exception) -> None:
    """Log a listener's failure by kind: Slack refusing or unreachable is the request's or
    Slack's doing (a warning); anything else is a bug here (an error, with its traceback)."""
    if isinstance(error, SlackApiError):
        # An expired trigger_id, say: nothing this process can mend.
        logger.warning(
            "Slack refused a call: %s",
            error.response.get("error"),
            extra={"action": "slack_call_refused"},
        )
    elif isinstance(error, urllib.error.URLError):
        logger.warning(
            "Slack could not be reached: %s", error.reason, extra={"action": "slack_unreachable"}
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


__all__ = ["FAILED_TEXT", "failed_text", "log_failure", "reported"]
